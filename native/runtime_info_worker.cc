#include "runtime_info_worker.h"

#include "runtime_info_js.h"

namespace spleen_trt {

RuntimeInfoWorker::RuntimeInfoWorker(Napi::Env env)
    : Napi::AsyncWorker(env, "spleen_trt:getRuntimeInfo"), deferred_(Napi::Promise::Deferred::New(env)) {}

// A C++ exception thrown here (std::bad_alloc, say) is turned into OnError by Napi::AsyncWorker.
void RuntimeInfoWorker::Execute() { result_ = core::collectRuntimeInfo(); }

void RuntimeInfoWorker::OnOK() { deferred_.Resolve(RuntimeInfoToJs(Env(), result_)); }

void RuntimeInfoWorker::OnError(const Napi::Error& error) { deferred_.Reject(error.Value()); }

}  // namespace spleen_trt
