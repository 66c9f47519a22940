// loadEngine / engineRun / engineClose: a TensorRT engine behind a Napi::External handle.
//
// Runs go through a FIFO (core::RunQueue) served by one thread per execution context, so a
// context is never shared and a long run never holds a libuv pool thread. Results come back
// through one thread-safe function per engine, referenced (keeping the process alive) only while
// runs or a close are in flight. close() lets every accepted run finish, then frees the contexts,
// the engine and the runtime on a helper thread; an environment cleanup hook and the External's
// finalizer are the safety net when close() is never called.
#include <napi.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/run_queue.h"
#include "core/tensorrt_engine.h"
#include "js_args.h"
#include "js_error.h"
#include "tensorrt_js.h"

namespace spleen_trt {

namespace {

struct Completion {
  enum class Kind { kRun, kClosed };
  Kind kind = Kind::kRun;
  std::uint64_t id = 0;
  bool ok = false;
  core::RunTimings timings;
  ErrorData error;
};

class EngineHandle;
void CallJs(Napi::Env env, Napi::Function callback, EngineHandle* handle, Completion* completion);
using EngineTsfn = Napi::TypedThreadSafeFunction<EngineHandle, Completion, CallJs>;

// What a run keeps alive on the JS side until it settles: its promise, the caller's input (read
// by the context thread) and the output array (written by it).
struct PendingRun {
  Napi::Promise::Deferred deferred;
  Napi::Reference<Napi::Value> input;
  Napi::Reference<Napi::Value> output;
};

void Post(const EngineTsfn& tsfn, Completion* completion) {
  if (tsfn.NonBlockingCall(completion) != napi_ok) delete completion;
}

Napi::Array ToJsShape(Napi::Env env, const std::vector<std::int64_t>& shape) {
  Napi::Array array = Napi::Array::New(env, shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) array.Set(static_cast<uint32_t>(i), static_cast<double>(shape[i]));
  return array;
}

Napi::Object ToJsInfo(Napi::Env env, const core::EngineInfo& info) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("inputName", info.inputName);
  object.Set("outputName", info.outputName);
  object.Set("inputShapeMax", ToJsShape(env, info.inputShapeMax));
  object.Set("outputShapeMax", ToJsShape(env, info.outputShapeMax));
  object.Set("outputChannels", static_cast<double>(info.outputChannels));
  Napi::Object profile = Napi::Object::New(env);
  profile.Set("min", info.profileMin);
  profile.Set("opt", info.profileOpt);
  profile.Set("max", info.profileMax);
  object.Set("profile", profile);
  object.Set("deviceMemoryBytes", static_cast<double>(info.deviceMemoryBytes));
  object.Set("tensorrtVersion", info.tensorrtVersion);
  object.Set("log", ToJsStringArray(env, info.log));
  return object;
}

class EngineHandle {
 public:
  // Marks the Externals this file creates, so a foreign External is rejected, not reinterpreted.
  static constexpr napi_type_tag kTypeTag = {0x5b1e3a7d9c2f4e60ULL, 0x8d41c7a2e9b05f13ULL};

  // JS thread. Returns the External that owns the handle.
  static Napi::External<EngineHandle> Create(Napi::Env env, std::unique_ptr<core::Engine> engine) {
    auto* handle = new EngineHandle(std::move(engine));
    handle->env_ = env;
    std::shared_ptr<core::Engine> shared = handle->engine_;
    try {
      handle->queue_ = std::make_unique<core::RunQueue>(shared->contexts(), [shared](int) { shared->bindThread(); });
    } catch (...) {
      delete handle;
      throw;
    }
    Napi::External<EngineHandle> external =
        Napi::External<EngineHandle>::New(env, handle, [](Napi::Env, EngineHandle* h) { OnFinalize(h); });
    NAPI_THROW_IF_FAILED(env, napi_type_tag_object(env, external, &kTypeTag), external);
    handle->self_ = Napi::Reference<Napi::External<EngineHandle>>::New(external, 0);
    handle->tsfn_ = EngineTsfn::New(env, "spleen_trt:engine", 0, 1, handle);
    // An idle engine must not keep the process alive; MarkBusy references it while work is queued.
    handle->tsfn_.Unref(env);
    // After the thread-safe function, so at teardown this hook runs first (newest first).
    napi_add_env_cleanup_hook(env, OnEnvTeardown, handle);
    handle->hookActive_ = true;
    return external;
  }

  Napi::Value Run(Napi::Env env, const Napi::Value& inputValue, const Napi::Value& batchValue) {
    Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
    if (state_ != State::kOpen) {
      deferred.Reject(ToJsError(env, ErrorData{"ERR_CLOSED", "The TensorRT engine is closed", {}}).Value());
      return deferred.Promise();
    }
    if (!js_args::IsTypedArrayOf(inputValue, napi_float32_array)) {
      throw Napi::TypeError::New(env, "Expected a Float32Array for input");
    }
    const int batch = js_args::Int(batchValue, "batch", profileMin_, profileMax_);
    Napi::Float32Array input = inputValue.As<Napi::Float32Array>();
    if (input.ElementLength() != static_cast<std::size_t>(batch) * inputItemFloats_) {
      throw Napi::RangeError::New(env, "Expected batch * " + std::to_string(inputItemFloats_) + " floats for input");
    }
    Napi::Float32Array output = Napi::Float32Array::New(env, static_cast<std::size_t>(batch) * outputItemFloats_);
    const float* in = input.Data();
    float* out = output.Data();
    const std::uint64_t id = nextId_++;
    pending_.emplace(id, PendingRun{deferred, Napi::Persistent(static_cast<Napi::Value>(input)),
                                    Napi::Persistent(static_cast<Napi::Value>(output))});
    if (pending_.size() == 1) MarkBusy(env);
    std::shared_ptr<core::Engine> engine = engine_;
    EngineTsfn tsfn = tsfn_;
    const bool queued = queue_->submit([engine, tsfn, id, in, out, batch](int slot, const std::exception_ptr& bindFailure) {
      std::unique_ptr<Completion> completion;
      try {
        completion = std::make_unique<Completion>();
        completion->id = id;
        if (bindFailure) std::rethrow_exception(bindFailure);
        completion->timings = engine->run(slot, in, batch, out);
        completion->ok = true;
      } catch (const core::NativeError& error) {
        if (completion) completion->error = ErrorData::from(error);
      } catch (const std::exception& error) {
        if (completion) completion->error = ErrorData::from(error, core::ErrorCode::kInferenceFailed);
      }
      if (completion) Post(tsfn, completion.release());
    });
    if (!queued) {
      // Unreachable while open (only close() stops the queue); settle rather than hang.
      pending_.erase(id);
      if (pending_.empty()) MarkIdle(env);
      deferred.Reject(ToJsError(env, ErrorData{"ERR_CLOSED", "The TensorRT engine is closed", {}}).Value());
    }
    return deferred.Promise();
  }

  Napi::Value Close(Napi::Env env) {
    Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
    switch (state_) {
      case State::kClosed:
      case State::kTornDown:
        deferred.Resolve(env.Undefined());
        break;
      case State::kClosing:
        closeWaiters_.push_back(deferred);
        break;
      case State::kOpen:
        closeWaiters_.push_back(deferred);
        state_ = State::kClosing;
        if (pending_.empty()) {
          MarkBusy(env);
          StartTeardown(env);
        }
        break;
    }
    return deferred.Promise();
  }

  // JS thread: a run finished, or the teardown thread is done.
  void Complete(Napi::Env env, Completion& completion) {
    if (completion.kind == Completion::Kind::kClosed) {
      if (closer_.joinable()) closer_.join();
      FinishClose(env);
      return;
    }
    const auto found = pending_.find(completion.id);
    if (found == pending_.end()) return;
    PendingRun run = std::move(found->second);
    pending_.erase(found);
    if (completion.ok) {
      Napi::Object result = Napi::Object::New(env);
      result.Set("output", run.output.Value());
      result.Set("h2dMs", completion.timings.h2dMs);
      result.Set("computeMs", completion.timings.computeMs);
      result.Set("d2hMs", completion.timings.d2hMs);
      result.Set("usedCudaGraph", completion.timings.usedCudaGraph);
      run.deferred.Resolve(result);
    } else {
      run.deferred.Reject(ToJsError(env, completion.error).Value());
    }
    if (!pending_.empty()) return;
    if (state_ == State::kClosing) {
      StartTeardown(env);
    } else {
      MarkIdle(env);
    }
  }

 private:
  enum class State { kOpen, kClosing, kClosed, kTornDown };

  explicit EngineHandle(std::unique_ptr<core::Engine> engine) : engine_(std::move(engine)) {
    const core::EngineInfo& info = engine_->info();
    profileMin_ = info.profileMin;
    profileMax_ = info.profileMax;
    inputItemFloats_ = engine_->inputItemFloats();
    outputItemFloats_ = engine_->outputItemFloats();
  }

  void MarkBusy(Napi::Env env) {
    self_.Ref();
    tsfn_.Ref(env);
  }

  void MarkIdle(Napi::Env env) {
    tsfn_.Unref(env);
    self_.Unref();
  }

  // JS thread, once nothing is pending: joins the context threads and frees everything on a
  // helper thread (destroying graphs, contexts and buffers synchronises with the GPU).
  void StartTeardown(Napi::Env env) {
    struct Resources {
      std::shared_ptr<core::Engine> engine;
      std::unique_ptr<core::RunQueue> queue;
      void free() {
        if (queue) queue->shutdown(core::RunQueue::Pending::kRun);
        queue.reset();
        engine.reset();  // the last owner: jobs held copies only while they ran
      }
    };
    auto resources = std::make_unique<Resources>(Resources{std::move(engine_), std::move(queue_)});
    Resources* raw = resources.get();
    EngineTsfn tsfn = tsfn_;
    try {
      closer_ = std::thread([raw, tsfn] {
        std::unique_ptr<Resources> owned(raw);
        owned->free();
        owned.reset();
        Post(tsfn, new Completion{Completion::Kind::kClosed, 0, true, {}, {}});
      });
      resources.release();
    } catch (const std::exception&) {
      // No thread to spare: free here (the context threads are idle, so this is quick).
      resources->free();
      FinishClose(env);
    }
  }

  void FinishClose(Napi::Env env) {
    state_ = State::kClosed;
    RemoveHook(env);
    std::vector<Napi::Promise::Deferred> waiters = std::move(closeWaiters_);
    closeWaiters_.clear();
    for (Napi::Promise::Deferred& waiter : waiters) waiter.Resolve(env.Undefined());
    self_.Unref();
    ReleaseTsfn();
  }

  void RemoveHook(napi_env env) {
    if (!hookActive_) return;
    napi_remove_env_cleanup_hook(env, OnEnvTeardown, this);
    hookActive_ = false;
  }

  void ReleaseTsfn() {
    if (tsfnReleased_) return;
    tsfnReleased_ = true;
    tsfn_.Release();
  }

  // Environment teardown: nothing in JS will wait any more. Finish what runs, drop what is queued.
  static void OnEnvTeardown(void* arg) {
    auto* handle = static_cast<EngineHandle*>(arg);
    handle->hookActive_ = false;
    if (handle->closer_.joinable()) handle->closer_.join();
    if (handle->queue_) handle->queue_->shutdown(core::RunQueue::Pending::kDrop);
    handle->queue_.reset();
    handle->engine_.reset();
    // References are deleted while the environment can still do it; the promises stay pending.
    handle->pending_.clear();
    handle->closeWaiters_.clear();
    handle->state_ = State::kTornDown;
    handle->ReleaseTsfn();
    handle->self_.Reset();
  }

  // The External was collected. Busy engines are strongly referenced, so this one is idle and
  // open (never closed), closed, or already torn down.
  static void OnFinalize(EngineHandle* handle) {
    if (handle->state_ == State::kOpen) {
      if (handle->queue_) handle->queue_->shutdown(core::RunQueue::Pending::kDrop);
      handle->queue_.reset();
      handle->engine_.reset();
      if (handle->hookActive_) {
        napi_remove_env_cleanup_hook(handle->env_, OnEnvTeardown, handle);
        handle->hookActive_ = false;
      }
      handle->ReleaseTsfn();
    }
    if (handle->closer_.joinable()) handle->closer_.join();
    delete handle;
  }

  napi_env env_ = nullptr;
  std::shared_ptr<core::Engine> engine_;
  std::unique_ptr<core::RunQueue> queue_;
  EngineTsfn tsfn_;
  bool tsfnReleased_ = false;
  // Weak while idle, strong while runs or a close are in flight, so the finalizer never runs
  // under work in progress.
  Napi::Reference<Napi::External<EngineHandle>> self_;
  bool hookActive_ = false;
  State state_ = State::kOpen;
  std::uint64_t nextId_ = 1;
  std::unordered_map<std::uint64_t, PendingRun> pending_;
  std::vector<Napi::Promise::Deferred> closeWaiters_;
  std::thread closer_;
  int profileMin_ = 0;
  int profileMax_ = 0;
  std::size_t inputItemFloats_ = 0;
  std::size_t outputItemFloats_ = 0;
};

void CallJs(Napi::Env env, Napi::Function /*callback*/, EngineHandle* handle, Completion* completion) {
  std::unique_ptr<Completion> owned(completion);
  // env is null when the function is torn down with completions still queued: just free them.
  if (env == nullptr || handle == nullptr || !owned) return;
  handle->Complete(env, *owned);
}

// Deserialization and context setup take up to seconds: on the libuv pool.
class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, const Napi::Uint8Array& plan, const core::EngineOptions& options)
      : Napi::AsyncWorker(env, "spleen_trt:loadEngine"),
        deferred_(Napi::Promise::Deferred::New(env)),
        plan_(Napi::Persistent(static_cast<Napi::Value>(plan))),
        data_(plan.Data()),
        size_(plan.ByteLength()),
        options_(options) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  // Reads the plan's bytes, which plan_ keeps alive; touches no JS value.
  void Execute() override {
    try {
      engine_ = core::Engine::load(data_, size_, options_);
    } catch (const core::NativeError& error) {
      error_ = ErrorData::from(error);
    } catch (const std::exception& error) {
      error_ = ErrorData::from(error, core::ErrorCode::kEngineIncompatible);
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    plan_.Reset();
    if (!engine_) {
      deferred_.Reject(ToJsError(env, error_).Value());
      return;
    }
    try {
      Napi::Object info = ToJsInfo(env, engine_->info());
      Napi::External<EngineHandle> handle = EngineHandle::Create(env, std::move(engine_));
      Napi::Object result = Napi::Object::New(env);
      result.Set("handle", handle);
      result.Set("info", info);
      deferred_.Resolve(result);
    } catch (const std::exception& error) {
      deferred_.Reject(ToJsError(env, ErrorData::from(error, core::ErrorCode::kInferenceFailed)).Value());
    }
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Value> plan_;
  const std::uint8_t* data_;
  std::size_t size_;
  core::EngineOptions options_;
  std::unique_ptr<core::Engine> engine_;
  ErrorData error_;
};

EngineHandle& HandleOf(const Napi::Value& value) {
  bool tagged = false;
  if (!value.IsExternal() ||
      napi_check_object_type_tag(value.Env(), value, &EngineHandle::kTypeTag, &tagged) != napi_ok || !tagged) {
    throw Napi::TypeError::New(value.Env(), "Expected an engine handle");
  }
  EngineHandle* handle = value.As<Napi::External<EngineHandle>>().Data();
  if (handle == nullptr) throw Napi::TypeError::New(value.Env(), "Expected an engine handle");
  return *handle;
}

}  // namespace

Napi::Value LoadEngine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Uint8Array plan = js_args::Bytes(info[0], "plan");
  core::EngineOptions options;
  options.device = js_args::Int(info[1], "device", 0, 0x7fffffff);
  options.contexts = js_args::Int(info[2], "contexts", 1, 64);
  options.useCudaGraph = js_args::Bool(info[3], "useCudaGraph");
  // Optional: a plan's embedded host code runs only when the caller trusts the plan.
  options.allowHostCode = info.Length() > 4 && !info[4].IsUndefined() && js_args::Bool(info[4], "allowHostCode");
  auto* worker = new LoadWorker(env, plan, options);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value EngineRun(const Napi::CallbackInfo& info) {
  return HandleOf(info[0]).Run(info.Env(), info[1], info[2]);
}

Napi::Value EngineClose(const Napi::CallbackInfo& info) { return HandleOf(info[0]).Close(info.Env()); }

}  // namespace spleen_trt
