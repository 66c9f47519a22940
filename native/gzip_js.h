// `gzipCodec`: libdeflate's whole-buffer gzip inflation (core/libdeflate_loader.h) as a promise,
// run on the libuv thread pool so the event loop stays free while a CT inflates:
//   gzipCodec.available, .library (path | null), .reason (string | null)
//   gzipCodec.gunzip(input: Uint8Array, size: number): Promise<Buffer> of exactly `size` bytes
//   gzipCodec.crc32(crc: number, input: Uint8Array): Promise<number>, zlib.crc32(input, crc)'s value
#pragma once

#include <napi.h>

namespace spleen_trt {

void RegisterGzipCodec(Napi::Env env, Napi::Object exports);

}  // namespace spleen_trt
