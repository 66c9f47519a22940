#include "gzip_js.h"

#include <cstdint>
#include <string>
#include <utility>

#include "core/huge_pages.h"
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

}  // namespace

void RegisterGzipCodec(Napi::Env env, Napi::Object exports) {
  const libdeflate::Api& lib = libdeflate::api();
  Napi::Object codec = Napi::Object::New(env);
  codec.Set("available", Napi::Boolean::New(env, lib.available));
  codec.Set("library", lib.available ? Napi::String::New(env, lib.path) : env.Null());
  codec.Set("reason", lib.available ? env.Null() : Napi::String::New(env, lib.reason));
  codec.Set("gunzip", Napi::Function::New(env, Gunzip, "gunzip"));
  codec.Set("crc32", Napi::Function::New(env, Crc32, "crc32"));
  exports.Set("gzipCodec", codec);
}

}  // namespace spleen_trt
