// `runDeflate`: the label-map DEFLATE encoder (core/run_deflate.h) on the libuv thread pool.
//   runDeflate.deflateLabelPlanes(labels, dims, channels, planeBegin, planeEnd, words, wordBytes,
//     final, maxOutput): Promise<{ deflated: Buffer, crc: number, length: number } | null>
//   runDeflate.crc32Combine(crc1, crc2, length2): number, zlib's crc32_combine
#pragma once

#include <napi.h>

namespace spleen_trt {

void RegisterRunDeflate(Napi::Env env, Napi::Object exports);

}  // namespace spleen_trt
