/**
 * The whole service as one fastify app: the segmentation plugin plus the OpenAPI document.
 * Call `listen` on the result; `close()` stops intake, lets the running job finish within the
 * grace period, then cancels what is left. The Segmenter stays the caller's to close.
 */
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { segmentationPlugin, type SegmentationPluginOptions } from './segmentation-plugin.js';

export interface CreateSegmentationServerOptions extends SegmentationPluginOptions {
  /** fastify's logger option (pino); default info level with the Authorization header redacted. */
  logger?: FastifyServerOptions['logger'];
  /** Idle keep-alive connections are closed after this; keep it below the shutdown grace. Default 5 s. */
  keepAliveTimeoutMs?: number;
}

/**
 * @example
 * const segmenter = await Segmenter.create();
 * const app = createSegmentationServer({ segmenter, dataDir: 'spleen-jobs', auth: { tokens: [process.env.TOKEN!] } });
 * await app.listen({ host: '127.0.0.1', port: 8080 });
 */
export function createSegmentationServer(options: CreateSegmentationServerOptions): FastifyInstance {
  const { logger, keepAliveTimeoutMs, ...pluginOptions } = options;
  const app = Fastify({
    logger: logger ?? { level: 'info', redact: ['req.headers.authorization', 'req.headers.cookie'] },
    genReqId: () => randomUUID(),
    keepAliveTimeout: keepAliveTimeoutMs ?? 5000,
    return503OnClosing: true,
  });
  // Registered before any route: @fastify/swagger only sees routes added after it.
  void app.register(swagger, {
    // Shared schemas keep their $id as their name in the document (Job, Problem...).
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    openapi: {
      openapi: '3.0.3',
      info: { title: 'spleen-trt segmentation service', version: '1', description: 'Spleen segmentation of abdominal CT (MONAI spleen_ct_segmentation)' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: options.auth === false ? [] : [{ bearer: [] }],
    },
  });
  void app.register(segmentationPlugin, pluginOptions);
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true, response: { 200: { type: 'object', additionalProperties: true } } } }, async () =>
    app.swagger(),
  );
  return app;
}
