// A small HTTP service around one Segmenter, with nothing but node:http.
//   node examples/http-service.mjs [port]        (port 0: any free port; it prints the one it got)
//   curl --data-binary @ct.nii.gz -o mask.nii.gz http://localhost:8080/segment
//
// POST /segment takes a NIfTI (.nii or .nii.gz) as the request body and answers with the mask as
// .nii.gz (header X-Spleen-Volume-Ml); GET /health says which backend runs. One Segmenter serves
// every request: it queues runs in call order, so requests never compete for the CPU or GPU.
// Bad input is a 400 with the package's error code; SIGTERM/SIGINT stop accepting, let running
// requests finish, then close the Segmenter.
import http from 'node:http';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { Segmenter, encodeNifti, isSpleenTrtError, parseNifti } from 'spleen-trt';

const MAX_BODY_BYTES = 512 * 2 ** 20;
const gzipAsync = promisify(gzip);
const segmenter = await Segmenter.create();

async function readBody(request) {
  const chunks = [];
  let size = 0;
  for await (const chunk of request) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw Object.assign(new Error('request body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function reply(response, status, body, headers = {}) {
  const json = typeof body === 'object' && !(body instanceof Uint8Array);
  response.writeHead(status, { 'content-type': json ? 'application/json' : 'application/gzip', ...headers });
  response.end(json ? `${JSON.stringify(body)}\n` : body);
}

const server = http.createServer(async (request, response) => {
  try {
    if (request.method === 'GET' && request.url === '/health') {
      return reply(response, 200, { status: 'ok', backend: segmenter.info.backend });
    }
    if (request.method !== 'POST' || request.url !== '/segment') {
      return reply(response, 404, { error: 'not found' });
    }
    const { volume } = parseNifti(await readBody(request));
    const { mask, summary } = await segmenter.segment(volume);
    const body = await gzipAsync(encodeNifti(mask));
    return reply(response, 200, body, { 'x-spleen-volume-ml': summary.volumeMl.toFixed(2) });
  } catch (error) {
    if (isSpleenTrtError(error)) return reply(response, 400, { error: error.code, message: error.message });
    const status = error?.status ?? 500;
    return reply(response, status, { error: status === 413 ? 'ERR_TOO_LARGE' : 'ERR_INTERNAL', message: String(error?.message ?? error) });
  }
});

server.listen(Number(process.argv[2] ?? 8080), () => {
  console.log(`listening on http://localhost:${server.address().port} (${segmenter.info.backend})`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    server.close(async () => {
      await segmenter.close();
      console.log('closed');
    });
  });
}
