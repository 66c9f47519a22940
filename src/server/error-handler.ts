/**
 * One error handler for the service: every failure becomes an RFC 9457 problem document with the
 * package's (or the service's) error code. No stack, no file path, no message of an unexpected
 * error ever reaches the client; those are logged with the request id instead.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isSpleenTrtError } from '../index.js';
import { describeFailure, isServiceError, ServiceError, type ResponseErrorCode } from './service-error.js';
import { STATUS_CODES } from 'node:http';

/** Fastify's and @fastify/multipart's own error codes, as the service's. */
function fromFramework(error: FastifyError): ServiceError | undefined {
  if (isServiceError(error) || isSpleenTrtError(error)) return undefined;
  if (error.validation) return new ServiceError('ERR_BAD_REQUEST', error.message);
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new ServiceError('ERR_UNSUPPORTED_MEDIA_TYPE', 'Send the volume as application/octet-stream, application/gzip, application/zip (a DICOM series) or one file in multipart/form-data');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
      return new ServiceError('ERR_PAYLOAD_TOO_LARGE', error.message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_PROTO_VIOLATION':
      return new ServiceError('ERR_BAD_REQUEST', error.message);
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    return new ServiceError(error.statusCode === 404 ? 'ERR_NOT_FOUND' : 'ERR_BAD_REQUEST', STATUS_CODES[error.statusCode] ?? 'Bad request');
  }
  return undefined;
}

/** Past this, a refused upload's remaining bytes are not worth reading: the connection is closed. */
const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;

/** Refusals after which reading the rest of the body would be endless or unbounded. */
const CLOSE_CODES: ReadonlySet<ResponseErrorCode> = new Set(['ERR_PAYLOAD_TOO_LARGE', 'ERR_UPLOAD_TIMEOUT', 'ERR_UPLOAD_INCOMPLETE']);

/**
 * Whether a refused request's unread body is read and discarded (Node does it once the answer is
 * sent, and the connection stays open) rather than the connection closed. Closing with unread
 * bytes makes the kernel reset the connection while the client is still sending, and most HTTP
 * clients (fetch/undici among them) then report a network error instead of the 429 or 503 that
 * was sent: a client told to retry later must be able to read that. So capacity refusals of a body
 * of declared, bounded size are drained; oversized, chunked, stalled or cut-off bodies are not.
 */
function drainsRestOfBody(request: FastifyRequest, code: ResponseErrorCode): boolean {
  if (CLOSE_CODES.has(code)) return false;
  const declared = Number(request.headers['content-length']);
  return Number.isFinite(declared) && declared <= DRAIN_LIMIT_BYTES;
}

export function sendProblem(
  request: FastifyRequest,
  reply: FastifyReply,
  failure: { statusCode: number; code: ResponseErrorCode; message: string; retryAfterS?: number },
): FastifyReply {
  if (failure.retryAfterS !== undefined) reply.header('Retry-After', String(Math.ceil(failure.retryAfterS)));
  if (!request.raw.complete && !drainsRestOfBody(request, failure.code)) reply.header('Connection', 'close');
  return reply
    .code(failure.statusCode)
    .type('application/problem+json')
    .send({
      type: 'about:blank',
      title: STATUS_CODES[failure.statusCode] ?? 'Error',
      status: failure.statusCode,
      code: failure.code,
      detail: failure.message,
      instance: String(request.id),
    });
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const failure = describeFailure(fromFramework(error) ?? error);
    if (failure.statusCode >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: failure.code, statusCode: failure.statusCode }, 'request refused');
    return sendProblem(request, reply, failure);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, { statusCode: 404, code: 'ERR_NOT_FOUND', message: 'No such route' }),
  );
}
