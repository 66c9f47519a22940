// `gzipCodec`: libdeflate's whole-buffer gzip (core/libdeflate_loader.h) as promises, run on the
// libuv thread pool so the event loop stays free while a CT inflates.
#pragma once

#include <napi.h>

namespace spleen_trt {

void RegisterGzipCodec(Napi::Env env, Napi::Object exports);

}  // namespace spleen_trt
