#!/usr/bin/env node
// Type declarations for CommonJS consumers: a copy of dist/**/*.d.ts under dist/cjs-types/, marked
// "type": "commonjs". `require('spleen-trt')` loads the one ES module build (Node's require(esm),
// unflagged from Node 20.19 and 22.12: see package.json "engines"), so there is a single copy of
// every class and of the native addon; but TypeScript under `module: node16` refuses to let a
// CommonJS file import declarations that live in a "type": "module" package (TS1471/TS1479). The
// same declarations read as CommonJS are what that consumer needs ("exports" -> "require" ->
// "types"); `nodenext` (TypeScript >= 5.8) accepts either.
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const target = path.join(dist, 'cjs-types');
rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
// Walked by hand: fs.cpSync refuses to copy a directory into a subdirectory of itself.
function copyDeclarations(from, to) {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    if (entry.isDirectory() && source !== target) {
      copyDeclarations(source, path.join(to, entry.name));
    } else if (entry.isFile() && entry.name.endsWith('.d.ts')) {
      mkdirSync(to, { recursive: true });
      copyFileSync(source, path.join(to, entry.name));
    }
  }
}
copyDeclarations(dist, target);
writeFileSync(path.join(target, 'package.json'), '{ "type": "commonjs" }\n');
