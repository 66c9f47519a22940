// libdeflate opened at run time (dlopen), as the CUDA driver and TensorRT are: the addon loads and
// works without it, and .nii.gz then goes through zlib in Node. Debian/Ubuntu ship it as
// libdeflate0 (libdeflate.so.0); its whole-buffer gzip codec is several times faster than zlib's.
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
  void* (*allocCompressor)(int) = nullptr;
  void (*freeCompressor)(void*) = nullptr;
  std::size_t (*gzipCompress)(void*, const void*, std::size_t, void*, std::size_t) = nullptr;
  std::size_t (*gzipCompressBound)(void*, std::size_t) = nullptr;
};

// Opened once per process (thread-safe). SPLEEN_TRT_NO_LIBDEFLATE=1 leaves it unopened, so the
// zlib fallback can be tested on a machine that has the library.
const Api& api();

// Inflates one whole gzip member into out[0, outSize): true only when the member decodes to
// exactly outSize bytes and uses all of `in` (a second member or trailing bytes: false, the
// caller falls back to zlib, which handles those). Never throws.
bool gunzipExact(const std::uint8_t* in, std::size_t inSize, std::uint8_t* out, std::size_t outSize, std::string* error);

// gzip of `in` at `level` (1..12; 1..9 as zlib's levels). Throws std::runtime_error on failure.
std::string gzip(const std::uint8_t* in, std::size_t inSize, int level);

}  // namespace spleen_trt::core::libdeflate
