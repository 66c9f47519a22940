/**
 * A worker's own Prometheus figures, in its own registry (two workers in one process, or a worker
 * beside a service, never collide on the default registry), and a tiny HTTP endpoint for them.
 * The queue's depth is the service's to report (one producer asks Redis; N workers would count
 * the same jobs N times).
 */
import http from 'node:http';
import { once } from 'node:events';
import { Counter, Histogram, Registry } from 'prom-client';

/** How a job run ended in this worker. */
export type JobOutcome = 'completed' | 'failed' | 'retried' | 'handed_back' | 'cancelled';

export class WorkerMetrics {
  readonly registry: Registry;
  readonly jobs: Counter<'outcome'>;
  readonly jobSeconds: Histogram<'outcome'>;
  readonly stalled: Counter;
  readonly lockRenewalFailures: Counter;

  constructor(labels: Record<string, string> = {}) {
    this.registry = new Registry();
    this.registry.setDefaultLabels(labels);
    const registers = [this.registry];
    this.jobs = new Counter({ name: 'spleen_trt_worker_jobs_total', help: 'Job runs by outcome', labelNames: ['outcome'], registers });
    this.jobSeconds = new Histogram({
      name: 'spleen_trt_worker_job_seconds',
      help: 'Job run time (read, segment, store), by outcome',
      labelNames: ['outcome'],
      // A GPU job takes about a second, a CPU job tens of seconds, a large CPU job minutes.
      buckets: [0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600],
      registers,
    });
    this.stalled = new Counter({
      name: 'spleen_trt_worker_stalled_jobs_total',
      help: 'Stalled jobs this worker found and moved back to waiting (their worker died or lost its lock)',
      registers,
    });
    this.lockRenewalFailures = new Counter({
      name: 'spleen_trt_worker_lock_renewal_failures_total',
      help: 'Job locks this worker failed to renew (a blocked event loop, lost Redis): the job may run twice',
      registers,
    });
  }

  /** Records one job run. */
  observe(outcome: JobOutcome, seconds: number): void {
    this.jobs.inc({ outcome });
    this.jobSeconds.observe({ outcome }, seconds);
  }
}

/** Serves `registry` at GET /metrics on `port` (0: any free port); resolves when listening. */
export async function serveMetrics(registry: Registry, port: number, host = '127.0.0.1'): Promise<http.Server> {
  const server = http.createServer((request, response) => {
    if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`),
    );
  });
  server.listen(port, host);
  await once(server, 'listening');
  return server;
}
