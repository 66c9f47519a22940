#include "onednn_js.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/onednn_network.h"
#include "js_args.h"

namespace spleen_trt {

namespace {

namespace dnn = core::onednn;

// A JS Error with the package's `code`; src/native/onednn.ts turns it into a SpleenTrtError.
Napi::Error codedError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

std::vector<float> Floats(const Napi::Value& value, const char* name) {
  if (!js_args::IsTypedArrayOf(value, napi_float32_array)) {
    throw Napi::TypeError::New(value.Env(), std::string("Expected a Float32Array for ") + name);
  }
  Napi::Float32Array array = value.As<Napi::Float32Array>();
  return std::vector<float>(array.Data(), array.Data() + array.ElementLength());
}

constexpr int kMaxInt = 1 << 30;

dnn::NetworkSpec ReadSpec(const Napi::Object& spec) {
  dnn::NetworkSpec out;
  out.inputChannels = js_args::Int(spec.Get("inputChannels"), "spec.inputChannels", 1, kMaxInt);
  out.tensorCount = js_args::Int(spec.Get("tensorCount"), "spec.tensorCount", 1, kMaxInt);
  out.outputTensor = js_args::Int(spec.Get("outputTensor"), "spec.outputTensor", 0, kMaxInt);
  if (!spec.Get("threads").IsUndefined()) out.threads = js_args::Int(spec.Get("threads"), "spec.threads", 0, 1024);
  if (!spec.Get("directConv").IsUndefined()) out.directConv = js_args::Bool(spec.Get("directConv"), "spec.directConv");
  if (!spec.Get("channelsLast").IsUndefined()) out.channelsLast = js_args::Bool(spec.Get("channelsLast"), "spec.channelsLast");
  if (!spec.Get("subpixelSplit").IsUndefined()) out.subpixelSplit = js_args::Bool(spec.Get("subpixelSplit"), "spec.subpixelSplit");
  Napi::Value opsValue = spec.Get("ops");
  if (!opsValue.IsArray()) throw Napi::TypeError::New(spec.Env(), "Expected an array for spec.ops");
  Napi::Array ops = opsValue.As<Napi::Array>();
  for (std::uint32_t i = 0; i < ops.Length(); ++i) {
    if (!ops.Get(i).IsObject()) throw Napi::TypeError::New(spec.Env(), "Expected an object for spec.ops[i]");
    Napi::Object o = ops.Get(i).As<Napi::Object>();
    dnn::Op op;
    const std::string kind = js_args::String(o.Get("kind"), "op.kind");
    if (kind == "concat") {
      op.kind = dnn::Op::Kind::kConcat;
      Napi::Value inputs = o.Get("inputs");
      if (!inputs.IsArray()) throw Napi::TypeError::New(spec.Env(), "Expected an array for op.inputs");
      for (std::uint32_t k = 0; k < inputs.As<Napi::Array>().Length(); ++k) {
        op.concat.inputs.push_back(js_args::Int(inputs.As<Napi::Array>().Get(k), "op.inputs[k]", 0, kMaxInt));
      }
      op.concat.output = js_args::Int(o.Get("output"), "op.output", 0, kMaxInt);
    } else if (kind == "conv") {
      dnn::ConvOp& c = op.conv;
      c.transposed = js_args::Bool(o.Get("transposed"), "op.transposed");
      c.input = js_args::Int(o.Get("input"), "op.input", 0, kMaxInt);
      c.output = js_args::Int(o.Get("output"), "op.output", 0, kMaxInt);
      c.inChannels = js_args::Int(o.Get("inChannels"), "op.inChannels", 1, kMaxInt);
      c.outChannels = js_args::Int(o.Get("outChannels"), "op.outChannels", 1, kMaxInt);
      c.kernel = js_args::Int(o.Get("kernel"), "op.kernel", 1, 64);
      c.stride = js_args::Int(o.Get("stride"), "op.stride", 1, 64);
      c.padBegin = js_args::Int(o.Get("padBegin"), "op.padBegin", 0, 64);
      c.padEnd = js_args::Int(o.Get("padEnd"), "op.padEnd", -64, 64);
      c.weights = Floats(o.Get("weights"), "op.weights");
      c.bias = Floats(o.Get("bias"), "op.bias");
      c.addTensor = js_args::Int(o.Get("addTensor"), "op.addTensor", -1, kMaxInt);
      if (!o.Get("subpixel").IsUndefined()) c.subpixel = js_args::Bool(o.Get("subpixel"), "op.subpixel");
      Napi::Value post = o.Get("postOps");
      if (!post.IsArray()) throw Napi::TypeError::New(spec.Env(), "Expected an array for op.postOps");
      for (std::uint32_t k = 0; k < post.As<Napi::Array>().Length(); ++k) {
        Napi::Object p = post.As<Napi::Array>().Get(k).As<Napi::Object>();
        dnn::PostOp postOp;
        const std::string pk = js_args::String(p.Get("kind"), "postOp.kind");
        if (pk == "relu") {
          postOp.kind = dnn::PostOp::Kind::kRelu;
          postOp.alpha = static_cast<float>(js_args::Number(p.Get("alpha"), "postOp.alpha"));
        } else if (pk == "sum") {
          postOp.kind = dnn::PostOp::Kind::kSum;
        } else {
          throw Napi::TypeError::New(spec.Env(), "Unknown post-op kind " + pk);
        }
        c.postOps.push_back(postOp);
      }
    } else {
      throw Napi::TypeError::New(spec.Env(), "Unknown op kind " + kind);
    }
    out.ops.push_back(std::move(op));
  }
  return out;
}

// Float buffers for the runs' inputs and logits, reused: a fresh 7 MB buffer per 96^3 window costs
// about 2-3 ms of page faults and zeroing (measured), on a path of ~60 ms. Logits buffers come back
// when JS drops them (their ArrayBuffers' finalizers), input copies when their run ends. A few are
// kept; a buffer of another size is resized on reuse.
class BufferPool {
 public:
  std::unique_ptr<std::vector<float>> take() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.empty()) return std::make_unique<std::vector<float>>();
    auto buffer = std::move(free_.back());
    free_.pop_back();
    return buffer;
  }
  void give(std::unique_ptr<std::vector<float>> buffer) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (buffer && free_.size() < kKept) free_.push_back(std::move(buffer));
  }

 private:
  static constexpr std::size_t kKept = 3;  // the sliding window keeps two batches queued, one stitching
  std::mutex mutex_;
  std::vector<std::unique_ptr<std::vector<float>>> free_;
};

struct Shared {
  std::mutex mutex;  // one run at a time: a plan's buffers are shared
  std::unique_ptr<dnn::Network> network;
  int inputChannels = 1;
  std::shared_ptr<BufferPool> inputs = std::make_shared<BufferPool>();
  std::shared_ptr<BufferPool> outputs = std::make_shared<BufferPool>();  // outlives the network: finalizers
};

// What a logits ArrayBuffer's finalizer needs: the buffer and the pool it goes back to.
struct ReturnedBuffer {
  std::shared_ptr<BufferPool> pool;
  std::unique_ptr<std::vector<float>> buffer;
};

class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, std::shared_ptr<Shared> shared, std::unique_ptr<std::vector<float>> input, int batch,
            const std::int64_t dims[3])
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), shared_(std::move(shared)),
        input_(std::move(input)), output_(shared_->outputs->take()), batch_(batch) {
    for (int d = 0; d < 3; ++d) dims_[d] = dims[d];
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      std::lock_guard<std::mutex> lock(shared_->mutex);
      if (!shared_->network) throw dnn::Error("ERR_CLOSED", "The oneDNN network is closed");
      // Timed here, not in JS: a queued run waits for the running one on the mutex above.
      const auto start = std::chrono::steady_clock::now();
      shared_->network->run(input_->data(), batch_, dims_, output_.get(), outDims_);
      computeMs_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    } catch (const dnn::Error& error) {
      code_ = error.code;
      SetError(error.what());
    } catch (const std::exception& error) {
      code_ = "ERR_INFERENCE_FAILED";
      SetError(error.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    shared_->inputs->give(std::move(input_));
    // The logits buffer is handed to JS as is (7 MB per 96^3 window); the ArrayBuffer's finalizer
    // puts it back in the pool. Where external buffers are not allowed (a V8 sandbox), a copy.
    const std::size_t count = output_->size();
    float* data = output_->data();
    auto* returned = new ReturnedBuffer{shared_->outputs, std::move(output_)};
    napi_value buffer = nullptr;
    const napi_status status = napi_create_external_arraybuffer(
        env, data, count * sizeof(float),
        [](napi_env, void*, void* hint) {
          auto* r = static_cast<ReturnedBuffer*>(hint);
          r->pool->give(std::move(r->buffer));
          delete r;
        },
        returned, &buffer);
    Napi::Float32Array logits;
    if (status == napi_ok) {
      logits = Napi::Float32Array::New(env, count, Napi::ArrayBuffer(env, buffer), 0);
    } else {
      logits = Napi::Float32Array::New(env, count);
      std::copy(data, data + count, logits.Data());
      returned->pool->give(std::move(returned->buffer));
      delete returned;
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("logits", logits);
    Napi::Array dims = Napi::Array::New(env, 3);
    for (std::uint32_t d = 0; d < 3; ++d) dims.Set(d, Napi::Number::New(env, static_cast<double>(outDims_[d])));
    result.Set("dims", dims);
    result.Set("computeMs", Napi::Number::New(env, computeMs_));
    deferred_.Resolve(result);
  }
  void OnError(const Napi::Error& error) override {
    shared_->inputs->give(std::move(input_));
    shared_->outputs->give(std::move(output_));
    deferred_.Reject(codedError(Env(), code_, error.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<std::vector<float>> input_;
  std::unique_ptr<std::vector<float>> output_;
  int batch_;
  std::int64_t dims_[3] = {0, 0, 0};
  std::int64_t outDims_[3] = {0, 0, 0};
  double computeMs_ = 0;
  std::string code_;
};

Napi::Value OnednnInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dnn::Availability& a = dnn::availability();
  Napi::Object out = Napi::Object::New(env);
  out.Set("available", Napi::Boolean::New(env, a.available));
  out.Set("version", a.version.empty() ? env.Null() : Napi::String::New(env, a.version));
  out.Set("path", a.path.empty() ? env.Null() : Napi::String::New(env, a.path));
  out.Set("reason", a.reason.empty() ? env.Null() : Napi::String::New(env, a.reason));
  out.Set("isa", a.isa.empty() ? env.Null() : Napi::String::New(env, a.isa));
  return out;
}

Napi::Value CreateNetwork(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "Expected a network spec object");
  auto shared = std::make_shared<Shared>();
  try {
    dnn::NetworkSpec spec = ReadSpec(info[0].As<Napi::Object>());
    shared->inputChannels = spec.inputChannels;
    shared->network = std::make_unique<dnn::Network>(std::move(spec));
  } catch (const dnn::Error& error) {
    throw codedError(env, error.code, error.what());
  }
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("outputChannels", Napi::Number::New(env, shared->network->outputChannels()));
  handle.Set("run", Napi::Function::New(env, [shared](const Napi::CallbackInfo& call) -> Napi::Value {
    Napi::Env e = call.Env();
    if (call.Length() < 3) throw Napi::TypeError::New(e, "Expected (input, batch, dims)");
    if (!js_args::IsTypedArrayOf(call[0], napi_float32_array)) throw Napi::TypeError::New(e, "Expected a Float32Array for input");
    const Napi::Float32Array array = call[0].As<Napi::Float32Array>();
    const int batch = js_args::Int(call[1], "batch", 1, 4096);
    if (!call[2].IsArray() || call[2].As<Napi::Array>().Length() != 3) throw Napi::TypeError::New(e, "Expected 3 dims");
    std::int64_t dims[3];
    double count = batch;
    for (std::uint32_t d = 0; d < 3; ++d) {
      dims[d] = js_args::Int(call[2].As<Napi::Array>().Get(d), "dims[d]", 1, 1 << 16);
      count *= static_cast<double>(dims[d]);
    }
    const int channels = shared->inputChannels;
    if (static_cast<double>(array.ElementLength()) != count * channels) {
      throw codedError(e, "ERR_INVALID_ARG_VALUE", "input length does not match batch x channels x dims");
    }
    // Copied: JS may reuse its array while the run is queued or running.
    auto input = shared->inputs->take();
    input->assign(array.Data(), array.Data() + array.ElementLength());
    auto* worker = new RunWorker(e, shared, std::move(input), batch, dims);
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  }, "run"));
  handle.Set("close", Napi::Function::New(env, [shared](const Napi::CallbackInfo& call) -> Napi::Value {
    // Waits for a run in flight (runs are short), then frees the primitives and buffers.
    std::lock_guard<std::mutex> lock(shared->mutex);
    shared->network.reset();
    return call.Env().Undefined();
  }, "close"));
  return handle;
}

}  // namespace

void RegisterOnednn(Napi::Env env, Napi::Object exports) {
  exports.Set("onednnInfo", Napi::Function::New(env, OnednnInfo, "onednnInfo"));
  exports.Set("createOnednnNetwork", Napi::Function::New(env, CreateNetwork, "createOnednnNetwork"));
}

}  // namespace spleen_trt
