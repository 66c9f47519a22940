// The TensorRT part of the addon's exports (typed and wrapped by src/native/tensorrt.ts):
//   getTensorRtStatusAsync(): Promise<{ available, version?, reason? }>
//   buildEngine(request, onProgress | null): { promise, cancel }    (build_job.cc)
//   loadEngine(plan, device, contexts, useCudaGraph): Promise<{ handle, info }>   (engine_js.cc)
//   engineRun(handle, input, batch): Promise<{ output, h2dMs, computeMs, d2hMs, usedCudaGraph }>
//   engineClose(handle): Promise<void>
// Arguments are validated in TS; the checks here only keep a wrong call from crashing.
#pragma once

#include <napi.h>

namespace spleen_trt {

void RegisterTensorRt(Napi::Env env, Napi::Object exports);

// Defined in build_job.cc and engine_js.cc.
Napi::Value BuildEngine(const Napi::CallbackInfo& info);
Napi::Value LoadEngine(const Napi::CallbackInfo& info);
Napi::Value EngineRun(const Napi::CallbackInfo& info);
Napi::Value EngineClose(const Napi::CallbackInfo& info);

}  // namespace spleen_trt
