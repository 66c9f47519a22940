/**
 * `spleen-trt worker --queue redis://host:port`: takes segmentation jobs from Redis and runs them
 * with this process's own Segmenter, created before the first job is taken. `--devices 0,1,...`
 * starts one such process per GPU and forwards signals to them. Events are JSON lines on stdout.
 * SIGTERM / SIGINT: stop taking jobs, let the running one finish within --shutdown-grace-ms,
 * hand it back otherwise, then free the Segmenter; a second signal exits at once.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Segmenter } from '../index.js';
import { readAheadWanted } from '../io/read-ahead.js';
import { parseRedisUrl } from '../queue/connection.js';
import { createSegmentationWorker } from '../queue/segmentation-worker.js';
import { DirectoryStorage } from '../queue/shared-storage.js';
import { serveMetrics, WorkerMetrics } from '../queue/worker-metrics.js';
import { parseChoiceFlag, parseNumberFlag, UsageError } from './usage-error.js';

export const WORKER_USAGE = `Usage: spleen-trt worker --queue redis://host:port [options]

Takes segmentation jobs from a Redis queue (BullMQ) and runs them with this process's Segmenter.
Inputs and results are read and written in the shared data directory every node mounts.

Options:
  --queue <url>                 redis://[user:password@]host[:port][/db] (required)
  --data-dir <dir>              shared storage: inputs/ and results/ (default: ./spleen-trt-data)
  --concurrency <n>             jobs at once (default: 1; one Segmenter runs one volume at a time);
                                with TensorRT one more job is taken and its input read while the
                                network runs (SPLEEN_TRT_READ_AHEAD=0 / =1 turns that off / on)
  --backend <b>                 auto | onnxruntime | onednn | tensorrt (default: auto)
  --model <dir|file.onnx>       model directory or ONNX (default: the embedded model)
  --threads <n>                 CPU threads for onnxruntime (default: all cores)
  --precision <p>               TensorRT precision: fp32 | tf32 | fp16 (default: fp32)
  --device <n>                  CUDA device for TensorRT (default: 0)
  --devices <n,n,...>           one worker process per device (each gets --device n)
  --name <name>                 worker name shown in job status (default: <hostname>-<pid>)
  --prefix <p>                  BullMQ key prefix, the same as the service's (default: bull)
  --metrics-port <port>         serve this worker's Prometheus metrics at /metrics (with
                                --devices: port, port+1, ...)
  --metrics-host <host>         address for /metrics (default: 127.0.0.1)
  --lock-duration-ms <ms>       job lock; a dead worker's job runs elsewhere after about this
                                long (default: 30000)
  --stalled-interval-ms <ms>    how often to look for stalled jobs (default: 30000)
  --max-stalled-count <n>       stalls a job may survive before it fails (default: 1)
  --max-started-attempts <n>    starts a job may have before it fails (default: 5)
  --shutdown-grace-ms <ms>      on SIGTERM, how long the running job may finish before it is
                                handed back to the queue (default: 25000)
  --verbose                     print stacks with errors`;

const OPTIONS = {
  queue: { type: 'string' },
  'data-dir': { type: 'string' },
  concurrency: { type: 'string' },
  backend: { type: 'string' },
  model: { type: 'string' },
  threads: { type: 'string' },
  precision: { type: 'string' },
  device: { type: 'string' },
  devices: { type: 'string' },
  name: { type: 'string' },
  prefix: { type: 'string' },
  'metrics-port': { type: 'string' },
  'metrics-host': { type: 'string' },
  'lock-duration-ms': { type: 'string' },
  'stalled-interval-ms': { type: 'string' },
  'max-stalled-count': { type: 'string' },
  'max-started-attempts': { type: 'string' },
  'shutdown-grace-ms': { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

const positive = (n: number): boolean => Number.isInteger(n) && n >= 1;
const nonNegative = (n: number): boolean => Number.isInteger(n) && n >= 0;

function logLine(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
}

function parseDevices(text: string): number[] {
  const devices = text.split(',').map((d) => Number(d.trim()));
  if (devices.length === 0 || !devices.every(nonNegative) || new Set(devices).size !== devices.length) {
    throw new UsageError(`--devices expects distinct device numbers such as 0,1,2, got "${text}"`);
  }
  return devices;
}

/** One child per device: the same options, with --device, --name and --metrics-port of its own. */
async function runPerDevice(values: Values, devices: number[], metricsPort: number | undefined): Promise<number> {
  const base = values.name ?? `${os.hostname()}-${process.pid}`;
  const shared: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    if (['devices', 'device', 'name', 'metrics-port', 'help'].includes(key) || value === undefined) continue;
    if (value === true) shared.push(`--${key}`);
    else if (typeof value === 'string') shared.push(`--${key}`, value);
  }
  const children = devices.map((device, i) => {
    const args = [process.argv[1], 'worker', ...shared, '--device', String(device), '--name', `${base}-gpu${device}`];
    if (metricsPort !== undefined) args.push('--metrics-port', String(metricsPort === 0 ? 0 : metricsPort + i));
    return spawn(process.execPath, args, { stdio: 'inherit' });
  });
  const forward = (signal: NodeJS.Signals): void => {
    for (const child of children) if (child.exitCode === null) child.kill(signal);
  };
  process.on('SIGTERM', forward);
  process.on('SIGINT', forward);
  const codes = await Promise.all(
    children.map((child) => new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))))),
  );
  process.off('SIGTERM', forward);
  process.off('SIGINT', forward);
  return Math.max(...codes);
}

export async function workerCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  if (values.help) {
    process.stdout.write(`${WORKER_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`worker takes no positional arguments, got "${positionals[0]}"`);
  if (values.queue === undefined) throw new UsageError('worker needs --queue redis://host:port');
  try {
    parseRedisUrl(values.queue);
  } catch {
    throw new UsageError(`--queue expects a redis:// URL, got "${values.queue}"`);
  }
  const backend = parseChoiceFlag(values.backend, '--backend', ['auto', 'onnxruntime', 'onednn', 'tensorrt'] as const);
  const precision = parseChoiceFlag(values.precision, '--precision', ['fp32', 'tf32', 'fp16'] as const);
  const concurrency = parseNumberFlag(values.concurrency, '--concurrency', positive, 'an integer >= 1');
  const threads = parseNumberFlag(values.threads, '--threads', positive, 'an integer >= 1');
  const device = parseNumberFlag(values.device, '--device', nonNegative, 'an integer >= 0');
  const metricsPort = parseNumberFlag(values['metrics-port'], '--metrics-port', (n) => nonNegative(n) && n < 65536, 'a port number');
  const lockDurationMs = parseNumberFlag(values['lock-duration-ms'], '--lock-duration-ms', positive, 'an integer >= 1');
  const stalledIntervalMs = parseNumberFlag(values['stalled-interval-ms'], '--stalled-interval-ms', positive, 'an integer >= 1');
  const maxStalledCount = parseNumberFlag(values['max-stalled-count'], '--max-stalled-count', nonNegative, 'an integer >= 0');
  const maxStartedAttempts = parseNumberFlag(values['max-started-attempts'], '--max-started-attempts', positive, 'an integer >= 1');
  const shutdownGraceMs = parseNumberFlag(values['shutdown-grace-ms'], '--shutdown-grace-ms', nonNegative, 'an integer >= 0');
  if (values.devices !== undefined) {
    if (device !== undefined) throw new UsageError('use --device or --devices, not both');
    return runPerDevice(values, parseDevices(values.devices), metricsPort);
  }

  const name = values.name ?? `${os.hostname()}-${process.pid}`;
  // The Segmenter first: a TensorRT engine build may take minutes, and no job is taken before.
  const segmenter = await Segmenter.create({ backend, model: values.model, threads, device, precision });
  const readAhead = readAheadWanted(segmenter.info.backend);
  logLine({ event: 'segmenter', worker: name, backend: segmenter.info.backend, model: segmenter.info.model.name, fallbackReason: segmenter.info.fallbackReason, readAhead });
  const metrics = new WorkerMetrics({ worker: name });
  const server = metricsPort === undefined ? undefined : await serveMetrics(metrics.registry, metricsPort, values['metrics-host'] ?? '127.0.0.1');
  const worker = createSegmentationWorker({
    connection: values.queue,
    storage: new DirectoryStorage(values['data-dir'] ?? 'spleen-trt-data'),
    segmenter,
    name,
    prefix: values.prefix,
    concurrency,
    readAhead,
    lockDurationMs,
    stalledIntervalMs,
    maxStalledCount,
    maxStartedAttempts,
    shutdownGraceMs,
    metrics,
    log: logLine,
  });
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  worker.start();
  const address = server?.address();
  logLine({ event: 'ready', worker: name, metricsPort: typeof address === 'object' && address ? address.port : undefined });

  const signal = await stopped;
  logLine({ event: 'stopping', worker: name, signal });
  const again = (): void => {
    logLine({ event: 'exit', worker: name, reason: 'second signal' });
    process.exit(1);
  };
  process.once('SIGTERM', again);
  process.once('SIGINT', again);
  await worker.close();
  await segmenter.close();
  if (server) await new Promise((resolve) => server.close(resolve));
  logLine({ event: 'stopped', worker: name });
  return 0;
}
