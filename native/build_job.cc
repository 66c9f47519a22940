// buildEngine(request, onProgress): a TensorRT build on a std::thread of its own (builds take
// minutes and would otherwise hold a libuv pool thread), progress and the result delivered to the
// JS thread through one thread-safe function. Returns { promise, cancel }; cancel() makes the
// progress monitor tell TensorRT to stop at its next step.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "core/tensorrt_build.h"
#include "js_args.h"
#include "js_error.h"
#include "tensorrt_js.h"

namespace spleen_trt {

namespace {

struct BuildMessage {
  enum class Kind { kProgress, kDone };
  Kind kind = Kind::kProgress;
  core::BuildProgress progress;
};

class BuildJob;
void CallJs(Napi::Env env, Napi::Function callback, BuildJob* job, BuildMessage* message);
using BuildTsfn = Napi::TypedThreadSafeFunction<BuildJob, BuildMessage, CallJs>;

// Lives from buildEngine() until the thread-safe function is finalized (after the build thread
// released it and the last message ran), which deletes it.
class BuildJob {
 public:
  BuildJob(Napi::Env env, core::BuildRequest request, const Napi::Value& onProgress)
      : request_(std::move(request)), deferred_(Napi::Promise::Deferred::New(env)) {
    if (onProgress.IsFunction()) onProgress_ = Napi::Persistent(onProgress.As<Napi::Function>());
  }

  // JS thread. Starts the thread; after this, the job owns itself.
  Napi::Object Start(Napi::Env env) {
    tsfn_ = BuildTsfn::New(env, "spleen_trt:buildEngine", 0, 1, this,
                           [](Napi::Env, void*, BuildJob* job) { Finalize(job); });
    Napi::Object handle = Napi::Object::New(env);
    handle.Set("promise", deferred_.Promise());
    std::shared_ptr<std::atomic<bool>> cancelled = cancelled_;
    handle.Set("cancel", Napi::Function::New(
                             env, [cancelled](const Napi::CallbackInfo&) { cancelled->store(true); }, "cancel"));
    // Registered after the thread-safe function, so at environment teardown it runs first
    // (hooks run newest first) and joins the thread while the function still exists.
    napi_add_env_cleanup_hook(env, OnEnvTeardown, this);
    hookActive_ = true;
    try {
      thread_ = std::thread([this] { Run(); });
    } catch (const std::exception& error) {
      napi_remove_env_cleanup_hook(env, OnEnvTeardown, this);
      hookActive_ = false;
      error_ = ErrorData::from(error, core::ErrorCode::kBuildFailed);
      Settle(env);
      // The finalizer (deleting this job) runs later on the event loop, not inside Release().
      tsfn_.Release();
    }
    return handle;
  }

  // JS thread.
  void Deliver(Napi::Env env, const BuildMessage& message) {
    if (message.kind == BuildMessage::Kind::kProgress) {
      if (onProgress_.IsEmpty()) return;
      try {
        onProgress_.Call({Napi::String::New(env, message.progress.phase), Napi::Number::New(env, message.progress.current),
                          Napi::Number::New(env, message.progress.total)});
      } catch (const Napi::Error&) {
        // The TS wrapper guards the user's callback; a throw here must not lose the build.
      }
      return;
    }
    if (hookActive_) {
      napi_remove_env_cleanup_hook(env, OnEnvTeardown, this);
      hookActive_ = false;
    }
    // The thread posted kDone as its last message; it only releases the function after it.
    if (thread_.joinable()) thread_.join();
    Settle(env);
  }

 private:
  void Run() {
    auto post = [this](BuildMessage* message) {
      if (tsfn_.NonBlockingCall(message) != napi_ok) delete message;
    };
    try {
      result_ = core::buildEngine(
          request_,
          [&post](const core::BuildProgress& progress) {
            post(new BuildMessage{BuildMessage::Kind::kProgress, progress});
          },
          *cancelled_);
      ok_ = true;
    } catch (const core::NativeError& error) {
      error_ = ErrorData::from(error);
    } catch (const std::exception& error) {
      error_ = ErrorData::from(error, core::ErrorCode::kBuildFailed);
    }
    // The ONNX bytes are no longer needed; free them now rather than when JS collects the job.
    std::vector<std::uint8_t>().swap(request_.onnx);
    std::vector<std::uint8_t>().swap(request_.timingCache);
    try {
      post(new BuildMessage{BuildMessage::Kind::kDone, {}});
    } catch (const std::exception&) {
      // Out of memory for the last message: nothing can reach JS; the finalizer still runs.
    }
    tsfn_.Release();
  }

  static Napi::Uint8Array ToUint8Array(Napi::Env env, const std::vector<std::uint8_t>& bytes) {
    Napi::Uint8Array array = Napi::Uint8Array::New(env, bytes.size());
    if (!bytes.empty()) std::copy(bytes.begin(), bytes.end(), array.Data());
    return array;
  }

  void Settle(Napi::Env env) {
    if (settled_) return;
    settled_ = true;
    if (!ok_) {
      deferred_.Reject(ToJsError(env, error_).Value());
      return;
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("plan", ToUint8Array(env, result_.plan));
    if (!result_.timingCache.empty()) result.Set("timingCache", ToUint8Array(env, result_.timingCache));
    result.Set("tensorrtVersion", result_.tensorrtVersion);
    result.Set("log", ToJsStringArray(env, result_.log));
    result_ = core::BuildResult();
    deferred_.Resolve(result);
  }

  // Environment teardown (worker thread terminated, process exiting): stop the build and wait.
  static void OnEnvTeardown(void* arg) {
    auto* job = static_cast<BuildJob*>(arg);
    job->hookActive_ = false;
    job->cancelled_->store(true);
    if (job->thread_.joinable()) job->thread_.join();
  }

  static void Finalize(BuildJob* job) {
    if (job->thread_.joinable()) job->thread_.join();
    delete job;
  }

  core::BuildRequest request_;
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference onProgress_;
  BuildTsfn tsfn_;
  std::thread thread_;
  bool hookActive_ = false;
  bool settled_ = false;
  // Written by the build thread before it posts kDone; read on the JS thread after.
  bool ok_ = false;
  core::BuildResult result_;
  ErrorData error_;
};

void CallJs(Napi::Env env, Napi::Function /*callback*/, BuildJob* job, BuildMessage* message) {
  std::unique_ptr<BuildMessage> owned(message);
  // env is null when the function is torn down with messages still queued: just free them.
  if (env == nullptr || job == nullptr || !owned) return;
  job->Deliver(env, *owned);
}

core::Precision ParsePrecision(const Napi::Value& value) {
  const std::string text = js_args::String(value, "precision");
  if (text == "fp32") return core::Precision::kFp32;
  if (text == "tf32") return core::Precision::kTf32;
  if (text == "fp16") return core::Precision::kFp16;
  throw Napi::RangeError::New(value.Env(), "Expected \"fp32\", \"tf32\" or \"fp16\" for precision");
}

core::BuildRequest ParseRequest(const Napi::Object& object) {
  using namespace js_args;
  core::BuildRequest request;
  request.onnx = CopyBytes(Bytes(Field(object, "onnx"), "onnx"));
  request.precision = ParsePrecision(Field(object, "precision"));
  request.inputName = String(Field(object, "inputName"), "inputName");
  constexpr int kMaxInt = 0x7fffffff;
  request.batchMin = Int(Field(object, "batchMin"), "batchMin", 1, kMaxInt);
  request.batchOpt = Int(Field(object, "batchOpt"), "batchOpt", request.batchMin, kMaxInt);
  request.batchMax = Int(Field(object, "batchMax"), "batchMax", request.batchOpt, kMaxInt);
  const Napi::Value spatial = Field(object, "spatialShape");
  if (!spatial.IsArray() || spatial.As<Napi::Array>().Length() != 3) {
    throw Napi::TypeError::New(object.Env(), "Expected an array of 3 numbers for spatialShape");
  }
  for (uint32_t k = 0; k < 3; ++k) {
    request.spatial[k] = Int(spatial.As<Napi::Array>().Get(k), "spatialShape", 1, kMaxInt);
  }
  const double workspace = Number(Field(object, "workspaceBytes"), "workspaceBytes");
  if (!(workspace >= 0 && workspace <= 9007199254740991.0)) {
    throw Napi::RangeError::New(object.Env(), "Expected a non-negative safe integer for workspaceBytes");
  }
  request.workspaceBytes = static_cast<std::uint64_t>(workspace);
  request.optimizationLevel = Int(Field(object, "optLevel"), "optLevel", 0, 5);
  request.versionCompatible = Bool(Field(object, "versionCompatible"), "versionCompatible");
  const std::string compat = String(Field(object, "hardwareCompat"), "hardwareCompat");
  if (compat == "none") {
    request.hardwareCompat = core::HardwareCompat::kNone;
  } else if (compat == "ampere+") {
    request.hardwareCompat = core::HardwareCompat::kAmperePlus;
  } else {
    throw Napi::RangeError::New(object.Env(), "Expected \"none\" or \"ampere+\" for hardwareCompat");
  }
  request.device = Int(Field(object, "device"), "device", 0, kMaxInt);
  const Napi::Value cache = Field(object, "timingCache");
  if (!cache.IsUndefined() && !cache.IsNull()) {
    request.timingCache = CopyBytes(Bytes(cache, "timingCache"));
    request.hasTimingCache = true;
  }
  // Optional: keep a cache made for another device or TensorRT (default: refuse it, start fresh).
  const Napi::Value ignoreMismatch = object.Get("timingCacheIgnoreMismatch");
  request.timingCacheIgnoreMismatch =
      !ignoreMismatch.IsUndefined() && Bool(ignoreMismatch, "timingCacheIgnoreMismatch");
  return request;
}

}  // namespace

Napi::Value BuildEngine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "Expected a build request object");
  core::BuildRequest request = ParseRequest(info[0].As<Napi::Object>());
  // Owned by its thread-safe function's finalizer from here on.
  auto* job = new BuildJob(env, std::move(request), info[1]);
  return job->Start(env);
}

}  // namespace spleen_trt
