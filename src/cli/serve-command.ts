/**
 * `spleen-trt serve`: the segmentation service over HTTP. The Segmenter is created before the
 * server listens (building a TensorRT engine can take minutes; /readyz is only reachable once it
 * exists); SIGTERM / SIGINT close the server gracefully, SIGHUP re-reads the token file.
 */
import { parseArgs } from 'node:util';
import { Segmenter } from '../index.js';
import { isLoopback, checkTokens, parseTokens, readTokenFile } from '../server/auth.js';
import { createSegmentationServer } from '../server/create-segmentation-server.js';
import { DEFAULT_LIMITS, DEFAULT_RETENTION, DEFAULT_SHUTDOWN_GRACE_MS, type AuthOptions } from '../server/server-options.js';
import { parseRedisUrl } from '../queue/connection.js';
import { queueServiceOptions } from '../queue/queue-service.js';
import { parseChoiceFlag, UsageError } from './usage-error.js';

export const SERVE_USAGE = `Usage: spleen-trt serve [options]

Serves the segmentation API (POST /v1/segmentations ...), a viewer page at /, /openapi.json,
/healthz, /readyz and /metrics.

Options:
  --host <addr>          listen address (default 127.0.0.1)
  --port <n>             port (default 8080; 0 picks a free one)
  --model <dir|onnx>     model (default: the embedded default model)
  --backend <name>       auto | onnxruntime | onednn | tensorrt (default auto)
  --threads <n>          onnxruntime CPU threads
  --data-dir <dir>       jobs and results (default ./spleen-trt-data)
  --token-file <file>    bearer tokens, one per line (re-read on SIGHUP); or SPLEEN_TRT_TOKENS=a,b
  --no-auth              no token: only with a loopback --host
  --cors-origin <url>    allow this origin (repeatable; CORS is off by default)
  --max-upload-mb <n>    largest upload (default ${DEFAULT_LIMITS.maxUploadBytes / 1024 ** 2})
  --max-voxels <n>       largest volume in voxels, from the header (default ${DEFAULT_LIMITS.maxVoxels})
  --max-dim <n>          longest axis in voxels (default ${DEFAULT_LIMITS.maxDim})
  --max-queue <n>        jobs waiting, uploads included (default ${DEFAULT_LIMITS.maxQueue}); over it: 429
  --max-uploads <n>      uploads received at once (default ${DEFAULT_LIMITS.maxConcurrentUploads})
  --job-timeout-s <n>    time limit of one job (default ${DEFAULT_LIMITS.jobTimeoutMs / 1000})
  --retention-h <n>      keep finished jobs this many hours (default ${DEFAULT_RETENTION.maxAgeMs / 3600_000})
  --max-store-gb <n>     size cap of the data dir's jobs (default ${DEFAULT_RETENTION.maxBytes / 1024 ** 3})
  --grace-s <n>          on SIGTERM, let the running job finish this long (default ${DEFAULT_SHUTDOWN_GRACE_MS / 1000})
  --log-level <level>    pino level (default info)
  --queue <url>          enqueue jobs on Redis (redis://host:port) for \`spleen-trt worker\`
                         processes instead of running them here; --data-dir must be the
                         directory the workers share
  --queue-prefix <p>     BullMQ key prefix, the workers' --prefix (default bull)
  --max-queued-per-client <n>  unfinished jobs per bearer token with --queue (default 100)`;

function number(value: string | undefined, name: string, integer = true): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new UsageError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got "${value}"`);
  return n;
}

/** Tokens from --token-file (a function, so SIGHUP can swap them) or SPLEEN_TRT_TOKENS. */
function resolveAuth(values: { 'token-file'?: string; 'no-auth'?: boolean; host: string }): { auth: AuthOptions; reload?: () => void } {
  const fromEnv = process.env.SPLEEN_TRT_TOKENS ? parseTokens(process.env.SPLEEN_TRT_TOKENS.replaceAll(',', '\n')) : [];
  if (values['no-auth']) {
    if (values['token-file'] || fromEnv.length > 0) throw new UsageError('--no-auth cannot be combined with tokens');
    if (!isLoopback(values.host) && values.host !== 'localhost') {
      throw new UsageError(`--no-auth is only allowed on a loopback address, not ${values.host}`);
    }
    return { auth: false };
  }
  const file = values['token-file'];
  if (file) {
    let tokens = readTokenFile(file);
    checkTokens(tokens);
    const reload = (): void => {
      const next = readTokenFile(file);
      checkTokens(next);
      tokens = next;
    };
    return { auth: { tokens: () => tokens }, reload };
  }
  if (fromEnv.length > 0) {
    checkTokens(fromEnv);
    return { auth: { tokens: fromEnv } };
  }
  throw new UsageError('a bearer token is required: --token-file <file> or SPLEEN_TRT_TOKENS, or --no-auth on a loopback --host');
}

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8080' },
      model: { type: 'string' },
      backend: { type: 'string' },
      threads: { type: 'string' },
      'data-dir': { type: 'string', default: 'spleen-trt-data' },
      'token-file': { type: 'string' },
      'no-auth': { type: 'boolean' },
      'cors-origin': { type: 'string', multiple: true },
      'max-upload-mb': { type: 'string' },
      'max-voxels': { type: 'string' },
      'max-dim': { type: 'string' },
      'max-queue': { type: 'string' },
      'max-uploads': { type: 'string' },
      'job-timeout-s': { type: 'string' },
      'retention-h': { type: 'string' },
      'max-store-gb': { type: 'string' },
      'grace-s': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      queue: { type: 'string' },
      'queue-prefix': { type: 'string' },
      'max-queued-per-client': { type: 'string' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${SERVE_USAGE}\n`);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, got "${values.port}"`);
  const { auth, reload } = resolveAuth({ ...values, host: values.host! });
  const mb = number(values['max-upload-mb'], 'max-upload-mb');
  const timeoutS = number(values['job-timeout-s'], 'job-timeout-s', false);
  const retentionH = number(values['retention-h'], 'retention-h', false);
  const storeGb = number(values['max-store-gb'], 'max-store-gb', false);
  const graceS = number(values['grace-s'], 'grace-s', false) ?? DEFAULT_SHUTDOWN_GRACE_MS / 1000;
  const limits = {
    maxUploadBytes: mb === undefined ? undefined : mb * 1024 ** 2,
    maxVoxels: number(values['max-voxels'], 'max-voxels'),
    maxDim: number(values['max-dim'], 'max-dim'),
    maxQueue: number(values['max-queue'], 'max-queue'),
    maxConcurrentUploads: number(values['max-uploads'], 'max-uploads'),
    jobTimeoutMs: timeoutS === undefined ? undefined : Math.round(timeoutS * 1000),
  };
  const backend = parseChoiceFlag(values.backend, '--backend', ['auto', 'onnxruntime', 'onednn', 'tensorrt'] as const);

  if (values.queue !== undefined) {
    try {
      parseRedisUrl(values.queue);
    } catch {
      throw new UsageError(`--queue expects a redis:// URL, got "${values.queue}"`);
    }
  }
  const maxQueuedPerClient = number(values['max-queued-per-client'], 'max-queued-per-client');
  // With --queue the workers own the Segmenters; this process only enqueues.
  const mode =
    values.queue === undefined
      ? { segmenter: await Segmenter.create({ model: values.model, backend, threads: number(values.threads, 'threads') }) }
      : queueServiceOptions({ connection: values.queue, dataDir: values['data-dir']!, prefix: values['queue-prefix'], maxQueuedPerClient });
  const { segmenter } = mode;
  const app = createSegmentationServer({
    ...mode,
    dataDir: values['data-dir']!,
    auth,
    limits,
    retention: {
      maxAgeMs: retentionH === undefined ? undefined : Math.round(retentionH * 3600_000),
      maxBytes: storeGb === undefined ? undefined : Math.round(storeGb * 1024 ** 3),
    },
    shutdownGraceMs: graceS * 1000,
    // Idle connections must not outlive the grace period (close() would wait for them).
    keepAliveTimeoutMs: Math.min(5000, Math.max(100, graceS * 500)),
    corsOrigins: values['cors-origin'],
    logger: { level: values['log-level'], redact: ['req.headers.authorization', 'req.headers.cookie'] },
  });
  await app.listen({ host: values.host, port });
  const address = app.server.address();
  const where = typeof address === 'object' && address ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` : String(address);
  process.stderr.write(`spleen-trt serve: ${where} (backend ${segmenter.info.backend}, model ${segmenter.info.model.name}${auth === false ? ', no auth' : ''})\n`);

  if (reload) {
    process.on('SIGHUP', () => {
      try {
        reload();
        app.log.info('tokens re-read');
      } catch (error) {
        app.log.error({ err: error }, 'could not re-read the token file; the previous tokens stay');
      }
    });
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        app.log.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      app.log.info({ signal }, 'shutting down');
      // A last resort if something hangs past the grace period.
      setTimeout(() => {
        app.log.error('shutdown took too long: exiting');
        process.exit(1);
      }, graceS * 1000 + 15_000).unref();
      app
        .close()
        .then(() => segmenter.close())
        .then(
          () => resolve(0),
          (error: unknown) => {
            app.log.error({ err: error }, 'shutdown failed');
            resolve(1);
          },
        );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
