/**
 * Prometheus metrics in a registry of the app's own (several apps in one process, as in tests,
 * never collide). Queue depth is read at scrape time (collect), not polled.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { JobRunner, RunnerObserver } from './job-runner.js';

const STAGE_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640];

export interface ServiceMetrics {
  registry: Registry;
  observer: RunnerObserver;
  bytesIn: Counter;
  bytesOut: Counter;
  httpSeconds: Histogram;
  rejected: Counter;
}

export function createMetrics(runner: () => JobRunner | undefined, labels: { backend: string; model: string }): ServiceMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'spleen_trt_' });
  new Gauge({
    name: 'spleen_trt_info',
    help: 'The backend and model this server runs (value 1)',
    labelNames: ['backend', 'model'],
    registers: [registry],
  }).set(labels, 1);
  new Gauge({
    name: 'spleen_trt_queue_depth',
    help: 'Jobs by state: queued (waiting) and running',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const stats = runner()?.stats();
      this.set({ state: 'queued' }, stats?.queued ?? 0);
      this.set({ state: 'running' }, stats?.running ?? 0);
    },
  });
  const jobs = new Counter({ name: 'spleen_trt_jobs_total', help: 'Finished jobs by outcome', labelNames: ['outcome', 'code'], registers: [registry] });
  const stages = new Histogram({
    name: 'spleen_trt_stage_seconds',
    help: 'Time per job stage (queue wait, read, preprocess, network, postprocess, write; upload and validate per request)',
    labelNames: ['stage'],
    buckets: STAGE_BUCKETS,
    registers: [registry],
  });
  const jobSeconds = new Histogram({
    name: 'spleen_trt_job_seconds',
    help: 'Submission to end of a job, by outcome',
    labelNames: ['outcome'],
    buckets: STAGE_BUCKETS,
    registers: [registry],
  });
  const bytesIn = new Counter({ name: 'spleen_trt_upload_bytes_total', help: 'Bytes of uploads received', registers: [registry] });
  const bytesOut = new Counter({ name: 'spleen_trt_download_bytes_total', help: 'Bytes of artifacts sent', registers: [registry] });
  const rejected = new Counter({ name: 'spleen_trt_rejected_total', help: 'Submissions refused, by code', labelNames: ['code'], registers: [registry] });
  const httpSeconds = new Histogram({
    name: 'spleen_trt_http_request_seconds',
    help: 'HTTP request duration by route template and status class',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers: [registry],
  });
  return {
    registry,
    bytesIn,
    bytesOut,
    httpSeconds,
    rejected,
    observer: {
      stage: (stage, seconds) => stages.observe({ stage }, seconds),
      finished: (state, totalMs, code) => {
        jobs.inc({ outcome: state, code: code ?? '' });
        jobSeconds.observe({ outcome: state }, totalMs / 1000);
      },
    },
  };
}
