#!/usr/bin/env node
/**
 * The `spleen-trt` command: dispatches to one module per subcommand. Runtime failures print
 * `error <code>: <message>` and exit 1; usage mistakes exit 2.
 */
import { errorCode } from '../errors.js';
import { benchCommand } from './bench-command.js';
import { demoCommand } from './demo-command.js';
import { evaluateCommand } from './evaluate-command.js';
import { importCommand } from './import-command.js';
import { exportCommand } from './export-command.js';
import { inferCommand } from './infer-command.js';
import { infoCommand } from './info-command.js';
import { phantomCommand } from './phantom-command.js';
import { serveCommand } from './serve-command.js';
import { UsageError } from './usage-error.js';

const USAGE = `Usage: spleen-trt <command> [options]

Commands:
  infer <file|dir>...   segment the spleen in NIfTI CT volumes
  demo                  run infer on a generated sample CT with the embedded default model
  info                  versions, backends available here and why not, GPUs
  import <src> -o <dir> MONAI bundle, model.pt or model.onnx -> model directory
  bench                 the bundle's speed table measured here (bench/results/)
  export                build a TensorRT engine (plan) from an ONNX model
  phantom -o <dir>      synthetic abdominal CTs with spleen labels (images/, labels/)
  evaluate              Dice and spleen volumes of the pipeline on labelled images
  serve                 the segmentation service over HTTP (job API, viewer, metrics)
  help [command]        this text, or a command's options

Run 'spleen-trt <command> --help' for a command's options.`;

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  infer: inferCommand,
  demo: demoCommand,
  info: infoCommand,
  phantom: phantomCommand,
  evaluate: evaluateCommand,
  import: importCommand,
  bench: benchCommand,
  export: exportCommand,
  serve: serveCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    if (rest[0] && COMMANDS[rest[0]]) return COMMANDS[rest[0]](['--help']);
    process.stdout.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    const { getRuntimeInfo } = await import('../runtime-info.js');
    process.stdout.write(`${(await getRuntimeInfo()).packageVersion}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`error: unknown command "${name}"\n\n${USAGE}\n`);
    return 2;
  }
  const verbose = rest.includes('--verbose');
  try {
    return await command(rest);
  } catch (error) {
    if (error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`error ERR_USAGE: ${(error as Error).message}\nRun 'spleen-trt ${name} --help' for usage.\n`);
      return 2;
    }
    if (error instanceof TypeError || error instanceof RangeError) {
      process.stderr.write(`error ${errorCode(error)}: ${error.message}\n`);
      return 2;
    }
    const code = errorCode(error);
    process.stderr.write(`error ${code}: ${(error as Error).message}\n`);
    if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`error ERR_UNEXPECTED: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
