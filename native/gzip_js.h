// `gzipCodec`: libdeflate's whole-buffer gzip inflation (core/libdeflate_loader.h) as a promise,
// run on the libuv thread pool so the event loop stays free while a CT inflates:
//   gzipCodec.available, .library (path | null), .reason (string | null)
//   gzipCodec.gunzip(input: Uint8Array, size: number): Promise<Buffer> of exactly `size` bytes
//   gzipCodec.crc32(crc: number, input: Uint8Array): Promise<number>, zlib.crc32(input, crc)'s value
//   gzipCodec.isal.available, .library, .reason: ISA-L (core/isal_loader.h)
//   gzipCodec.isal.inflateDecode(input, maxInflated, voxOffset, type, dims, channels, slope, inter,
//     out: Float32Array): Promise<void>, a .nii.gz's voxels decoded while it inflates
//     (core/inflate_decode.h), on the pool
#pragma once

#include <napi.h>

namespace spleen_trt {

void RegisterGzipCodec(Napi::Env env, Napi::Object exports);

}  // namespace spleen_trt
