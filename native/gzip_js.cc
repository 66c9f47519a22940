#include "gzip_js.h"

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "core/huge_pages.h"
#include "core/inflate_decode.h"
#include "core/isal_loader.h"
#include "core/libdeflate_loader.h"
#include "js_args.h"

namespace spleen_trt {

namespace {

namespace libdeflate = core::libdeflate;

// Inflates into a Buffer allocated on the JS thread; both buffers are held by references until
// the work is done, so neither can be collected while a pool thread uses it.
class GunzipWorker : public Napi::AsyncWorker {
 public:
  GunzipWorker(Napi::Env env, Napi::Uint8Array input, Napi::Buffer<std::uint8_t> output)
      : Napi::AsyncWorker(env, "spleen_trt:gunzip"),
        deferred_(Napi::Promise::Deferred::New(env)),
        inputRef_(Napi::Persistent(input.As<Napi::Object>())),
        outputRef_(Napi::Persistent(output.As<Napi::Object>())),
        in_(input.Data()),
        inSize_(input.ByteLength()),
        out_(output.Data()),
        outSize_(output.Length()) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    std::string error;
    if (!libdeflate::gunzipExact(in_, inSize_, out_, outSize_, &error)) SetError(error);
  }
  void OnOK() override { deferred_.Resolve(outputRef_.Value()); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference inputRef_;
  Napi::ObjectReference outputRef_;
  const std::uint8_t* in_;
  std::size_t inSize_;
  std::uint8_t* out_;
  std::size_t outSize_;
};

// The CRC-32 of a piece, continuing `crc`, on the pool (the writer's pieces, gzip-pieces.ts).
class Crc32Worker : public Napi::AsyncWorker {
 public:
  Crc32Worker(Napi::Env env, Napi::Uint8Array input, std::uint32_t crc)
      : Napi::AsyncWorker(env, "spleen_trt:crc32"),
        deferred_(Napi::Promise::Deferred::New(env)),
        inputRef_(Napi::Persistent(input.As<Napi::Object>())),
        in_(input.Data()),
        inSize_(input.ByteLength()),
        crc_(crc) {}

  Napi::Promise promise() const { return deferred_.Promise(); }
  void Execute() override { crc_ = libdeflate::api().crc32(crc_, in_, inSize_); }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), crc_)); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference inputRef_;
  const std::uint8_t* in_;
  std::size_t inSize_;
  std::uint32_t crc_;
};

// crc32(crc: number, input: Uint8Array): Promise<number>, as zlib.crc32(input, crc).
Napi::Value Crc32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double crc = js_args::Number(info[0], "crc");
  if (!(crc >= 0 && crc <= 4294967295.0) || crc != static_cast<double>(static_cast<std::uint32_t>(crc))) {
    throw Napi::RangeError::New(env, "Expected an unsigned 32-bit integer for crc");
  }
  Napi::Uint8Array input = js_args::Bytes(info[1], "input");
  if (!libdeflate::api().available) throw Napi::Error::New(env, "libdeflate is unavailable: " + libdeflate::api().reason);
  auto* worker = new Crc32Worker(env, input, static_cast<std::uint32_t>(crc));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// gunzip(input: Uint8Array, size: number): Promise<Buffer> of exactly `size` bytes.
Napi::Value Gunzip(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array input = js_args::Bytes(info[0], "input");
  const double size = js_args::Number(info[1], "size");
  if (!(size >= 0 && size <= 9007199254740992.0) || size != static_cast<double>(static_cast<std::int64_t>(size))) {
    throw Napi::RangeError::New(env, "Expected a non-negative integer for size");
  }
  Napi::Buffer<std::uint8_t> output = Napi::Buffer<std::uint8_t>::New(env, static_cast<std::size_t>(size));
  // The inflation is the buffer's first touch: in 2 MiB pages where the kernel allows.
  core::adviseHugePages(output.Data(), output.Length());
  auto* worker = new GunzipWorker(env, input, output);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// The gzip stream and the volume, held until the job is done; the decode reads the job's copy of
// the shape and scaling, fixed on the JS thread.
class InflateDecodeWorker : public Napi::AsyncWorker {
 public:
  InflateDecodeWorker(Napi::Env env, Napi::Uint8Array input, Napi::Float32Array out, const core::InflateDecodeJob& job)
      : Napi::AsyncWorker(env, "spleen_trt:inflateDecode"),
        deferred_(Napi::Promise::Deferred::New(env)),
        inputRef_(Napi::Persistent(input.As<Napi::Object>())),
        outRef_(Napi::Persistent(out.As<Napi::Object>())),
        job_(job) {}

  Napi::Promise promise() const { return deferred_.Promise(); }
  void Execute() override {
    std::string error;
    if (!core::inflateAndDecode(job_, &error)) SetError(error);
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference inputRef_;
  Napi::ObjectReference outRef_;
  core::InflateDecodeJob job_;
};

double SafeCount(const Napi::Value& value, const char* name, double min) {
  const double number = js_args::Number(value, name);
  if (!(number >= min && number <= 9007199254740991.0) || number != std::floor(number)) {
    throw Napi::RangeError::New(value.Env(), std::string("Expected an integer >= ") + std::to_string(static_cast<int>(min)) + " for " + name);
  }
  return number;
}

core::StoredVoxel VoxelType(const Napi::Value& value) {
  const std::string name = js_args::String(value, "type");
  static const std::array<std::pair<const char*, core::StoredVoxel>, 8> kTypes{{
      {"int8", core::StoredVoxel::kInt8}, {"uint8", core::StoredVoxel::kUint8},
      {"int16", core::StoredVoxel::kInt16}, {"uint16", core::StoredVoxel::kUint16},
      {"int32", core::StoredVoxel::kInt32}, {"uint32", core::StoredVoxel::kUint32},
      {"float32", core::StoredVoxel::kFloat32}, {"float64", core::StoredVoxel::kFloat64},
  }};
  for (const auto& [typeName, type] : kTypes) {
    if (name == typeName) return type;
  }
  throw Napi::RangeError::New(value.Env(), "Expected int8, uint8, int16, uint16, int32, uint32, float32 or float64 for type");
}

// inflateDecode(input, maxInflated, voxOffset, type, dims, channels, slope, inter, out):
// Promise<void>; see core/inflate_decode.h. Rejects (out then holds garbage) for anything but a
// clean stream; the caller reads such files through its other path.
Napi::Value InflateDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  core::InflateDecodeJob job;
  Napi::Uint8Array input = js_args::Bytes(info[0], "input");
  job.maxInflated = static_cast<std::size_t>(SafeCount(info[1], "maxInflated", 0));
  job.voxOffset = static_cast<std::size_t>(SafeCount(info[2], "voxOffset", 0));
  job.type = VoxelType(info[3]);
  if (!info[4].IsArray() || info[4].As<Napi::Array>().Length() != 3) throw Napi::TypeError::New(env, "Expected an array of 3 integers for dims");
  double voxels = 1;
  for (std::uint32_t d = 0; d < 3; ++d) {
    job.dims[d] = static_cast<std::int64_t>(SafeCount(info[4].As<Napi::Array>().Get(d), "dims", 1));
    voxels *= static_cast<double>(job.dims[d]);
  }
  job.channels = static_cast<std::int64_t>(SafeCount(info[5], "channels", 1));
  voxels *= static_cast<double>(job.channels);
  job.slope = js_args::Number(info[6], "slope");
  job.inter = js_args::Number(info[7], "inter");
  if (!js_args::IsTypedArrayOf(info[8], napi_float32_array)) throw Napi::TypeError::New(env, "Expected a Float32Array for out");
  Napi::Float32Array out = info[8].As<Napi::Float32Array>();
  if (static_cast<double>(out.ElementLength()) != voxels) throw Napi::RangeError::New(env, "out must hold dims * channels floats");
  if (!(static_cast<double>(job.voxOffset) + voxels * static_cast<double>(core::storedVoxelBytes(job.type)) <= static_cast<double>(job.maxInflated))) {
    throw Napi::RangeError::New(env, "maxInflated must cover voxOffset and the voxels");
  }
  if (!core::isal::api().available) throw Napi::Error::New(env, "ISA-L is unavailable: " + core::isal::api().reason);
  job.gz = input.Data();
  job.gzSize = input.ByteLength();
  job.out = out.Data();
  auto* worker = new InflateDecodeWorker(env, input, out, job);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void RegisterGzipCodec(Napi::Env env, Napi::Object exports) {
  const libdeflate::Api& lib = libdeflate::api();
  Napi::Object codec = Napi::Object::New(env);
  codec.Set("available", Napi::Boolean::New(env, lib.available));
  codec.Set("library", lib.available ? Napi::String::New(env, lib.path) : env.Null());
  codec.Set("reason", lib.available ? env.Null() : Napi::String::New(env, lib.reason));
  codec.Set("gunzip", Napi::Function::New(env, Gunzip, "gunzip"));
  codec.Set("crc32", Napi::Function::New(env, Crc32, "crc32"));
  const core::isal::Api& isal = core::isal::api();
  Napi::Object streaming = Napi::Object::New(env);
  streaming.Set("available", Napi::Boolean::New(env, isal.available));
  streaming.Set("library", isal.available ? Napi::String::New(env, isal.path) : env.Null());
  streaming.Set("reason", isal.available ? env.Null() : Napi::String::New(env, isal.reason));
  streaming.Set("inflateDecode", Napi::Function::New(env, InflateDecode, "inflateDecode"));
  codec.Set("isal", streaming);
  exports.Set("gzipCodec", codec);
}

}  // namespace spleen_trt
