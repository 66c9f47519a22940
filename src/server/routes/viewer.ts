/**
 * The viewer page and its two scripts: the page's own and NiiVue's self-contained ESM build from
 * the installed @niivue/niivue (its `exports` only expose the build with external dependencies).
 */
import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { VIEWER_HTML, VIEWER_JS } from '../viewer/viewer-page.js';

/** NiiVue's bundled ESM (no imports of its own), found from the package's entry point. */
export function niivueBundlePath(): string {
  return fileURLToPath(new URL('../../dist/index.min.js', import.meta.resolve('@niivue/niivue')));
}

const hidden = (summary: string) => ({ summary, hide: true, response: { 200: { type: 'string' } } });

export async function viewerRoutes(app: FastifyInstance): Promise<void> {
  const niivue = niivueBundlePath();
  const page = { config: { public: true } };
  app.get('/', { ...page, schema: hidden('The viewer page') }, async (_request, reply) => reply.type('text/html; charset=utf-8').send(VIEWER_HTML));
  app.get('/viewer/app.js', { ...page, schema: hidden('The viewer script') }, async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').send(VIEWER_JS),
  );
  app.get('/viewer/niivue.js', { ...page, schema: hidden('NiiVue') }, async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').header('Cache-Control', 'public, max-age=86400').send(createReadStream(niivue)),
  );
}
