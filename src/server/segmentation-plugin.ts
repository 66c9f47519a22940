/**
 * The service as a fastify plugin: register it in an existing app (under a prefix if you like).
 * It is encapsulated on purpose: its content-type parsers, auth hook and error handler apply to
 * its own routes only, never to the host app's.
 */
import multipart from '@fastify/multipart';
import cors from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { makeAuthCheck } from './auth.js';
import { installErrorHandler } from './error-handler.js';
import { InProcessRunner } from './in-process-runner.js';
import type { JobRunner } from './job-runner.js';
import { JobStore } from './job-store.js';
import { createMetrics, type ServiceMetrics } from './metrics.js';
import { healthRoutes } from './routes/health.js';
import { segmentationRoutes } from './routes/segmentations.js';
import { viewerRoutes } from './routes/viewer.js';
import { jobSchema, problemSchema, readinessSchema } from './schemas.js';
import { DEFAULT_SHUTDOWN_GRACE_MS, resolveLimits, resolveRetention, type SegmentationServiceOptions } from './server-options.js';

/** What a host (or a test) can reach after the plugin has loaded. */
export interface SegmentationServiceHandle {
  runner: JobRunner;
  store: JobStore;
  metrics: ServiceMetrics;
}

export interface SegmentationPluginOptions extends SegmentationServiceOptions {
  /** Called once the plugin has loaded, with its runner, store and metrics. */
  onReady?: (handle: SegmentationServiceHandle) => void;
}

/** Content types taken as the raw file: streamed, never buffered by fastify. */
const RAW_TYPES = ['application/octet-stream', 'application/gzip', 'application/x-gzip', 'application/zip', 'application/x-zip-compressed'];

function isPublic(request: FastifyRequest): boolean {
  return (request.routeOptions.config as { public?: boolean } | undefined)?.public === true;
}

/**
 * @example
 * const app = Fastify({ logger: true });
 * await app.register(segmentationPlugin, { prefix: '/spleen', segmenter, dataDir: 'jobs', auth: { tokens: [token] } });
 */
export async function segmentationPlugin(app: FastifyInstance, options: SegmentationPluginOptions): Promise<void> {
  const limits = resolveLimits(options.limits);
  const retention = resolveRetention(options.retention);
  const graceMs = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  const { segmenter } = options;
  let runner: JobRunner | undefined;
  const metrics = createMetrics(() => runner, { backend: segmenter.info.backend, model: segmenter.info.model.name });
  const store = new JobStore(options.dataDir);
  const inProcess = options.createRunner
    ? await options.createRunner({ store, retention, observer: metrics.observer, registry: metrics.registry, log: app.log })
    : await InProcessRunner.open({
        segmenter,
        store,
        maxQueue: limits.maxQueue,
        maxVoxels: limits.maxVoxels,
        jobTimeoutMs: limits.jobTimeoutMs,
        retention,
        observer: metrics.observer,
        log: app.log,
      });
  runner = inProcess;

  app.addSchema(problemSchema);
  app.addSchema(jobSchema);
  app.addSchema(readinessSchema);
  installErrorHandler(app);

  // Only the volume's own types are accepted (415 for the rest); the stream is read by the route.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(RAW_TYPES, (_request, _payload, done) => done(null));
  await app.register(multipart);
  if (options.corsOrigins && options.corsOrigins.length > 0) {
    await app.register(cors, { origin: [...options.corsOrigins], methods: ['GET', 'POST', 'DELETE'], exposedHeaders: ['Location', 'Retry-After'] });
  }

  const checkAuth = makeAuthCheck(options.auth);
  app.addHook('onRequest', async (request) => {
    if (options.auth === false || !isPublic(request)) checkAuth(request.headers.authorization, request.socket.localAddress);
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpSeconds.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: `${Math.floor(reply.statusCode / 100)}xx` },
      reply.elapsedTime / 1000,
    );
  });
  // preClose, not onClose: a request waiting for a job (?wait=) must see it end before the
  // server waits for its connections to close.
  app.addHook('preClose', async () => {
    await inProcess.close(graceMs);
  });

  await app.register(healthRoutes, { runner: inProcess, segmenter, limits, metrics });
  await app.register(segmentationRoutes, { runner: inProcess, store, limits, metrics });
  await app.register(viewerRoutes);
  options.onReady?.({ runner: inProcess, store, metrics });
}
