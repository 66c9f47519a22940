/**
 * What `spleen-trt serve --queue` hands the service in place of a Segmenter: a stand-in that
 * names the mode (the workers own the Segmenters) and a runner that enqueues. The service's data
 * directory is the shared storage the workers mount.
 */
import { SpleenTrtError } from '../errors.js';
import type { SegmenterLike, SegmentationServiceOptions } from '../server/server-options.js';
import { createSegmentationQueue } from './segmentation-queue.js';
import { QueueRunner } from './queue-runner.js';
import { DirectoryStorage } from './shared-storage.js';

export interface QueueServiceOptions {
  /** redis://host:port */
  connection: string;
  /** The shared data directory (the workers' --data-dir). */
  dataDir: string;
  prefix?: string;
  maxQueuedPerClient?: number;
  attempts?: number;
}

/** `segmenter` and `createRunner` for createSegmentationServer, jobs going to queue workers. */
export function queueServiceOptions(options: QueueServiceOptions): Pick<SegmentationServiceOptions, 'segmenter' | 'createRunner'> {
  const storage = new DirectoryStorage(options.dataDir);
  const segmenter: SegmenterLike = {
    info: { backend: 'queue', model: { name: 'queue workers' } },
    segment: () => Promise.reject(new SpleenTrtError('ERR_CLOSED', 'This service runs no Segmenter: its jobs go to queue workers')),
    close: async () => undefined,
  };
  return {
    segmenter,
    createRunner: async (context) => {
      const queue = createSegmentationQueue({
        connection: options.connection,
        storage,
        prefix: options.prefix,
        maxQueuedPerClient: options.maxQueuedPerClient,
        attempts: options.attempts,
      });
      return QueueRunner.open({
        queue,
        storage,
        store: context.store,
        retention: context.retention,
        observer: context.observer,
        registry: context.registry,
        connection: options.connection,
        log: context.log,
      });
    },
  };
}
