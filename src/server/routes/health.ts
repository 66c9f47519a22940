/** Liveness, readiness and the Prometheus endpoint. */
import type { FastifyInstance } from 'fastify';
import type { JobRunner } from '../job-runner.js';
import type { ServiceMetrics } from '../metrics.js';
import { healthSchema, readySchema } from '../schemas.js';
import type { SegmenterLike, ServiceLimits } from '../server-options.js';

export interface HealthRoutesOptions {
  runner: JobRunner;
  segmenter: SegmenterLike;
  limits: ServiceLimits;
  metrics: ServiceMetrics;
}

export async function healthRoutes(app: FastifyInstance, options: HealthRoutesOptions): Promise<void> {
  const { runner, segmenter, limits, metrics } = options;
  const quiet = { config: { public: true }, logLevel: 'warn' as const };
  app.get('/healthz', { ...quiet, schema: healthSchema }, async () => ({ status: 'ok' }));
  app.get('/readyz', { ...quiet, schema: readySchema }, async (_request, reply) => {
    const stats = runner.stats();
    const reason = !stats.accepting ? 'shutting down' : stats.queued >= limits.maxQueue ? 'queue full' : undefined;
    return reply.code(reason ? 503 : 200).send({
      ready: reason === undefined,
      backend: segmenter.info.backend,
      model: segmenter.info.model.name,
      queued: stats.queued,
      running: stats.running,
      maxQueue: limits.maxQueue,
      ...(reason ? { reason } : {}),
    });
  });
  app.get(
    '/metrics',
    { logLevel: 'warn', schema: { summary: 'Prometheus metrics', hide: true, response: { 200: { type: 'string' } } } },
    async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
}
