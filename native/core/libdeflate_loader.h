// libdeflate opened at run time (dlopen), as the CUDA driver and TensorRT are: the addon loads and
// works without it, and .nii.gz is then inflated by zlib in Node. Debian/Ubuntu ship it as
// libdeflate0 (libdeflate.so.0); its one-shot inflate is faster than zlib's.
//
// Only the few entry points used are declared here, from libdeflate's stable C API (unchanged
// since 1.0), so no libdeflate headers are needed to build.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace spleen_trt::core::libdeflate {

struct Api {
  bool available = false;
  std::string path;    // the file the loader mapped
  std::string reason;  // why it is unavailable (empty when available)

  void* (*allocDecompressor)() = nullptr;
  void (*freeDecompressor)(void*) = nullptr;
  // enum libdeflate_result: 0 success, 1 bad data, 2 short output, 3 insufficient space.
  int (*gzipDecompressEx)(void*, const void*, std::size_t, void*, std::size_t, std::size_t*, std::size_t*) = nullptr;
  // zlib's crc32 convention (start from 0, chain the previous value); PCLMUL-accelerated.
  std::uint32_t (*crc32)(std::uint32_t, const void*, std::size_t) = nullptr;
};

// Opened once per process (thread-safe). SPLEEN_TRT_NO_LIBDEFLATE=1 leaves it unopened, so the
// zlib fallback can be tested on a machine that has the library.
const Api& api();

// Inflates one whole gzip member into out[0, outSize): true only when the member decodes to
// exactly outSize bytes and uses all of `in` (a second member or trailing bytes: false, the
// caller falls back to zlib, which handles those). Never throws.
bool gunzipExact(const std::uint8_t* in, std::size_t inSize, std::uint8_t* out, std::size_t outSize, std::string* error);

}  // namespace spleen_trt::core::libdeflate
