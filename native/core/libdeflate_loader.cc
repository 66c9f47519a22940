#include "core/libdeflate_loader.h"

#include <mutex>

#include "core/dynamic_library.h"

namespace spleen_trt::core::libdeflate {

namespace {

Api load() {
  Api result;
  // The library stays mapped for the process: an inflation may still run on a pool thread at exit.
  static DynamicLibrary library;
  if (!openOptionalForever("SPLEEN_TRT_NO_LIBDEFLATE", {"libdeflate.so.0", "libdeflate.0.dylib", "libdeflate.dll"}, &library,
                           &result.reason)) {
    return result;
  }
  std::string error;
  result.allocDecompressor = library.function<decltype(result.allocDecompressor)>("libdeflate_alloc_decompressor", &error);
  result.freeDecompressor = library.function<decltype(result.freeDecompressor)>("libdeflate_free_decompressor", &error);
  result.gzipDecompressEx = library.function<decltype(result.gzipDecompressEx)>("libdeflate_gzip_decompress_ex", &error);
  result.crc32 = library.function<decltype(result.crc32)>("libdeflate_crc32", &error);
  if (!result.allocDecompressor || !result.freeDecompressor || !result.gzipDecompressEx || !result.crc32) {
    result.reason = library.path() + ": " + error;
    return result;
  }
  result.path = library.path();
  result.available = true;
  return result;
}

}  // namespace

const Api& api() {
  static std::once_flag once;
  static Api loaded;
  std::call_once(once, [] { loaded = load(); });
  return loaded;
}

bool gunzipExact(const std::uint8_t* in, std::size_t inSize, std::uint8_t* out, std::size_t outSize, std::string* error) {
  const Api& lib = api();
  if (!lib.available) {
    if (error) *error = lib.reason;
    return false;
  }
  void* decompressor = lib.allocDecompressor();
  if (decompressor == nullptr) {
    if (error) *error = "libdeflate_alloc_decompressor failed";
    return false;
  }
  std::size_t usedIn = 0;
  std::size_t produced = 0;
  const int status = lib.gzipDecompressEx(decompressor, in, inSize, out, outSize, &usedIn, &produced);
  lib.freeDecompressor(decompressor);
  if (status != 0 || produced != outSize || usedIn != inSize) {
    if (error) {
      *error = "libdeflate: result " + std::to_string(status) + ", " + std::to_string(produced) + " of " +
               std::to_string(outSize) + " bytes out, " + std::to_string(usedIn) + " of " + std::to_string(inSize) + " in";
    }
    return false;
  }
  return true;
}

}  // namespace spleen_trt::core::libdeflate
