#include "run_deflate_js.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/run_deflate.h"
#include "js_args.h"

namespace spleen_trt {

namespace {

namespace rd = core::run_deflate;

constexpr double kMaxSafe = 9007199254740992.0;  // 2^53

std::int64_t Integer(const Napi::Value& value, const char* name, double min, double max) {
  const double number = js_args::Number(value, name);
  if (!(number >= min && number <= max) || number != static_cast<double>(static_cast<std::int64_t>(number))) {
    throw Napi::RangeError::New(value.Env(), std::string("Expected an integer in [") + std::to_string(min) + ", " +
                                                 std::to_string(max) + "] for " + name);
  }
  return static_cast<std::int64_t>(number);
}

// The labels are referenced until the work is done (the caller must not change them meanwhile);
// the 256-word table is copied.
class LabelDeflateWorker : public Napi::AsyncWorker {
 public:
  LabelDeflateWorker(Napi::Env env, Napi::Uint8Array labels, rd::LabelPlanes planes, std::vector<std::uint8_t> words)
      : Napi::AsyncWorker(env, "spleen_trt:deflateLabelPlanes"),
        deferred_(Napi::Promise::Deferred::New(env)),
        labelsRef_(Napi::Persistent(labels.As<Napi::Object>())),
        planes_(planes),
        words_(std::move(words)) {
    planes_.words = words_.data();
  }

  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override { encoded_ = rd::deflateLabelPlanes(planes_, &segment_); }

  void OnOK() override {
    Napi::Env env = Env();
    if (!encoded_) {
      deferred_.Resolve(env.Null());
      return;
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("deflated", Napi::Buffer<std::uint8_t>::Copy(env, segment_.deflated.data(), segment_.deflated.size()));
    result.Set("crc", Napi::Number::New(env, segment_.crc));
    result.Set("length", Napi::Number::New(env, static_cast<double>(segment_.length)));
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference labelsRef_;
  rd::LabelPlanes planes_;
  std::vector<std::uint8_t> words_;
  rd::Segment segment_;
  bool encoded_ = false;
};

Napi::Value DeflateLabelPlanes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array labels = js_args::Bytes(info[0], "labels");
  if (!info[1].IsArray() || info[1].As<Napi::Array>().Length() != 3) {
    throw Napi::TypeError::New(env, "Expected an array of 3 integers for dims");
  }
  rd::LabelPlanes planes;
  Napi::Array dims = info[1].As<Napi::Array>();
  for (std::uint32_t d = 0; d < 3; ++d) planes.dims[d] = Integer(dims.Get(d), "dims", 1, kMaxSafe);
  planes.channels = Integer(info[2], "channels", 1, kMaxSafe);
  const double voxels = static_cast<double>(planes.dims[0]) * static_cast<double>(planes.dims[1]) *
                        static_cast<double>(planes.dims[2]) * static_cast<double>(planes.channels);
  if (static_cast<double>(labels.ElementLength()) < voxels) {
    throw Napi::RangeError::New(env, "labels holds fewer elements than dims x channels");
  }
  const double planeCount = static_cast<double>(planes.dims[2]) * static_cast<double>(planes.channels);
  planes.planeBegin = Integer(info[3], "planeBegin", 0, planeCount);
  planes.planeEnd = Integer(info[4], "planeEnd", static_cast<double>(planes.planeBegin), planeCount);
  Napi::Uint8Array words = js_args::Bytes(info[5], "words");
  planes.wordBytes = js_args::Int(info[6], "wordBytes", 1, 8);
  if (planes.wordBytes != 1 && planes.wordBytes != 2 && planes.wordBytes != 4 && planes.wordBytes != 8) {
    throw Napi::RangeError::New(env, "wordBytes must be 1, 2, 4 or 8");
  }
  if (words.ElementLength() != static_cast<std::size_t>(256 * planes.wordBytes)) {
    throw Napi::RangeError::New(env, "words must hold 256 words of wordBytes bytes");
  }
  planes.final = js_args::Bool(info[7], "final");
  planes.maxOutput = static_cast<std::size_t>(Integer(info[8], "maxOutput", 0, kMaxSafe));
  planes.labels = labels.Data();
  auto* worker = new LabelDeflateWorker(env, labels, planes, js_args::CopyBytes(words));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

std::uint32_t Crc(const Napi::Value& value, const char* name) {
  return static_cast<std::uint32_t>(Integer(value, name, 0, 4294967295.0));
}

Napi::Value Crc32Combine(const Napi::CallbackInfo& info) {
  const std::uint32_t crc1 = Crc(info[0], "crc1");
  const std::uint32_t crc2 = Crc(info[1], "crc2");
  const auto length2 = static_cast<std::uint64_t>(Integer(info[2], "length2", 0, kMaxSafe));
  return Napi::Number::New(info.Env(), rd::crc32Combine(crc1, crc2, length2));
}

}  // namespace

void RegisterRunDeflate(Napi::Env env, Napi::Object exports) {
  Napi::Object runDeflate = Napi::Object::New(env);
  runDeflate.Set("deflateLabelPlanes", Napi::Function::New(env, DeflateLabelPlanes, "deflateLabelPlanes"));
  runDeflate.Set("crc32Combine", Napi::Function::New(env, Crc32Combine, "crc32Combine"));
  exports.Set("runDeflate", runDeflate);
}

}  // namespace spleen_trt
