/**
 * `spleen-trt bench` (`npm run bench`): the bundle's speed table measured on this machine, printed
 * and written (markdown, JSON, PNG) under bench/results/.
 */
import { parseArgs } from 'node:util';
import { runBench } from '../bench/run-bench.js';
import { parseNumberFlag } from './usage-error.js';

export const BENCH_USAGE = `Usage: spleen-trt bench [options]

Measures the MONAI bundle's speed table on this machine: model computation (batch 1, and batch 4
per window) and end2end per volume, for each backend and precision that can run here (the others
say why not), with speedups against onnxruntime CPU fp32. Each scenario runs in a fresh process;
warm-up runs are excluded and reported. Writes bench-<time>.{md,json,png} and latest.* to the
output directory and prints the markdown.

Options:
  --quick               few iterations (a smoke run; rough numbers)
  --large               also run the MSD-like 512x512x90 phantom on the CPU (GPU columns always do)
  --xlarge              also run a 512x512x300 abdominal series at 0.7x0.7x1 mm (every column)
  --merge <file.json>   add the columns of a bench/torch_baseline.py result (repeatable)
  --from <results.json> re-render earlier results (e.g. with --merge) instead of measuring
  --model <dir|onnx>    model to time (default: the embedded model)
  --threads <n>         onnxruntime intra-op threads (default: all cores)
  -o, --output <dir>    results directory (default: bench/results)
  --no-chart            skip the PNG
  --json                print the results JSON instead of the markdown`;

export async function benchCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      large: { type: 'boolean' },
      xlarge: { type: 'boolean' },
      merge: { type: 'string', multiple: true },
      from: { type: 'string' },
      model: { type: 'string' },
      threads: { type: 'string' },
      output: { type: 'string', short: 'o' },
      'no-chart': { type: 'boolean' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${BENCH_USAGE}\n`);
    return 0;
  }
  const threads = parseNumberFlag(values.threads, '--threads', (n) => Number.isInteger(n) && n >= 1 && n <= 1024, 'an integer >= 1');
  const { results, markdown, files } = await runBench({
    quick: values.quick,
    large: values.large,
    xlarge: values.xlarge,
    merge: values.merge,
    from: values.from,
    model: values.model,
    threads,
    outDir: values.output,
    chart: !values['no-chart'],
    command: ['spleen-trt bench', ...argv].join(' '),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(values.json ? `${JSON.stringify(results, null, 2)}\n` : `${markdown}\n`);
  process.stderr.write(`wrote ${files.join(', ')}\n`);
  return 0;
}
