#include "volume_kernels_js.h"

#include <array>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/volume_kernels.h"
#include "js_args.h"

namespace spleen_trt {

namespace {

namespace kernels = core::kernels;

// Sizes are checked in double first: a product of three int64 values could overflow, while any
// array that exists is far below 2^53 elements.
constexpr double kMaxElements = 9007199254740992.0;  // 2^53

Napi::RangeError rangeError(Napi::Env env, const std::string& message) { return Napi::RangeError::New(env, message); }

struct Triple {
  std::int64_t v[3];
  double product() const { return static_cast<double>(v[0]) * static_cast<double>(v[1]) * static_cast<double>(v[2]); }
};

Triple Integers3(const Napi::Value& value, const char* name, double min) {
  Napi::Env env = value.Env();
  if (!value.IsArray() || value.As<Napi::Array>().Length() != 3) {
    throw Napi::TypeError::New(env, std::string("Expected an array of 3 integers for ") + name);
  }
  Napi::Array array = value.As<Napi::Array>();
  Triple triple{};
  for (std::uint32_t d = 0; d < 3; ++d) {
    const double number = js_args::Number(array.Get(d), name);
    if (!(number >= min && number <= kMaxElements) || number != static_cast<double>(static_cast<std::int64_t>(number))) {
      throw rangeError(env, std::string("Expected integers >= ") + std::to_string(static_cast<long long>(min)) + " in " + name);
    }
    triple.v[d] = static_cast<std::int64_t>(number);
  }
  return triple;
}

std::int64_t Count(const Napi::Value& value, const char* name, double min) {
  const double number = js_args::Number(value, name);
  if (!(number >= min && number <= kMaxElements) || number != static_cast<double>(static_cast<std::int64_t>(number))) {
    throw rangeError(value.Env(), std::string("Expected an integer >= ") + std::to_string(static_cast<long long>(min)) +
                                      " for " + name);
  }
  return static_cast<std::int64_t>(number);
}

template <typename T>
Napi::TypedArrayOf<T> Typed(const Napi::Value& value, napi_typedarray_type type, const char* what, const char* name) {
  if (!js_args::IsTypedArrayOf(value, type)) {
    throw Napi::TypeError::New(value.Env(), std::string("Expected a ") + what + " for " + name);
  }
  return value.As<Napi::TypedArrayOf<T>>();
}

Napi::Float32Array Floats(const Napi::Value& value, const char* name) {
  return Typed<float>(value, napi_float32_array, "Float32Array", name);
}

Napi::Float64Array Doubles(const Napi::Value& value, const char* name) {
  return Typed<double>(value, napi_float64_array, "Float64Array", name);
}

// Null, or a Float32Array of at least `needed` elements.
float* OptionalFloats(const Napi::Value& value, double needed, const char* name) {
  if (value.IsNull() || value.IsUndefined()) return nullptr;
  Napi::Float32Array array = Floats(value, name);
  if (static_cast<double>(array.ElementLength()) < needed) {
    throw rangeError(value.Env(), std::string(name) + " is shorter than the window or volume it must cover");
  }
  return array.Data();
}

void NeedLength(Napi::Env env, std::size_t length, double needed, const char* name) {
  if (static_cast<double>(length) < needed) {
    throw rangeError(env, std::string(name) + " holds " + std::to_string(length) + " elements; the call needs " +
                              std::to_string(static_cast<long long>(needed)));
  }
}

// Reads roi, lo, hi and shift (arguments first .. first + 3) and checks that the window's valid part
// lies inside the volume; `empty` when it has no valid voxel.
kernels::WindowPlacement Placement(const Napi::CallbackInfo& info, std::size_t first, const Triple& dims, bool& empty) {
  Napi::Env env = info.Env();
  const Triple roi = Integers3(info[first], "roi", 1);
  const Triple lo = Integers3(info[first + 1], "lo", 0);
  const Triple hi = Integers3(info[first + 2], "hi", 0);
  const Triple shift = Integers3(info[first + 3], "shift", -kMaxElements);
  kernels::WindowPlacement placement{};
  empty = false;
  for (int d = 0; d < 3; ++d) {
    if (lo.v[d] > hi.v[d] || hi.v[d] > roi.v[d]) throw rangeError(env, "Expected 0 <= lo <= hi <= roi on every axis");
    empty = empty || lo.v[d] == hi.v[d];
    placement.roi[d] = roi.v[d];
    placement.lo[d] = lo.v[d];
    placement.hi[d] = hi.v[d];
    placement.shift[d] = shift.v[d];
  }
  if (empty) return placement;
  for (int d = 0; d < 3; ++d) {
    if (lo.v[d] + shift.v[d] < 0 || hi.v[d] + shift.v[d] > dims.v[d]) {
      throw rangeError(env, "The window's placement leaves the volume");
    }
  }
  return placement;
}

double RoiVolume(const kernels::WindowPlacement& p) {
  return static_cast<double>(p.roi[0]) * static_cast<double>(p.roi[1]) * static_cast<double>(p.roi[2]);
}

// A kernel job run on the libuv pool; the JS arrays it reads and writes are referenced until it
// is done, so none can be collected meanwhile. The caller must not touch them before the promise
// settles. A counting job's result (undecided voxels and the like) resolves the promise.
class KernelWorker : public Napi::AsyncWorker {
 public:
  KernelWorker(Napi::Env env, std::function<double()> job, bool numeric, std::vector<Napi::Value> arrays)
      : Napi::AsyncWorker(env, "spleen_trt:kernel"),
        deferred_(Napi::Promise::Deferred::New(env)),
        job_(std::move(job)),
        numeric_(numeric) {
    for (const Napi::Value& array : arrays) {
      if (array.IsObject()) refs_.push_back(Napi::Persistent(array.As<Napi::Object>()));
    }
  }
  Napi::Promise promise() const { return deferred_.Promise(); }
  void Execute() override { result_ = job_(); }
  void OnOK() override {
    deferred_.Resolve(numeric_ ? Napi::Number::New(Env(), result_).As<Napi::Value>() : Env().Undefined());
  }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<double()> job_;
  bool numeric_;
  double result_ = 0;
  std::vector<Napi::ObjectReference> refs_;
};

// Queues a checked job on the libuv pool, holding the arguments at `held` (null ones skipped); the
// promise resolves with the job's count where `numeric`, else with undefined.
Napi::Value QueueJob(const Napi::CallbackInfo& info, std::function<double()> job, bool numeric, std::initializer_list<std::size_t> held) {
  std::vector<Napi::Value> arrays;
  for (std::size_t index : held) arrays.push_back(info[index]);
  auto* worker = new KernelWorker(info.Env(), std::move(job), numeric, std::move(arrays));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value QueueKernel(const Napi::CallbackInfo& info, std::function<void()> job, std::initializer_list<std::size_t> held) {
  return QueueJob(info, [job = std::move(job)]() { job(); return 0.0; }, false, held);
}

Napi::Value QueueCountingKernel(const Napi::CallbackInfo& info, std::function<double()> job, std::initializer_list<std::size_t> held) {
  return QueueJob(info, std::move(job), true, held);
}

Napi::Value GatherWindow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array image = Floats(info[0], "image");
  const Triple dims = Integers3(info[1], "dims", 1);
  Napi::Float32Array window = Floats(info[2], "window");
  const std::int64_t windowOffset = Count(info[3], "windowOffset", 0);
  bool empty = false;
  const kernels::WindowPlacement placement = Placement(info, 4, dims, empty);
  const double padValue = js_args::Number(info[8], "padValue");
  NeedLength(env, image.ElementLength(), dims.product(), "image");
  NeedLength(env, window.ElementLength(), static_cast<double>(windowOffset) + RoiVolume(placement), "window");
  // An empty placement reads nothing: the kernel pads the whole window.
  kernels::gatherWindow(image.Data(), dims.v, window.Data() + windowOffset, placement, static_cast<float>(padValue));
  return env.Undefined();
}

// The (acc, dims, channels) arguments the stitching and normalising kernels start with.
struct Accumulators {
  Napi::Float32Array acc;
  Triple dims;
  int channels;
};

Accumulators AccumulatorArgs(const Napi::CallbackInfo& info) {
  return Accumulators{Floats(info[0], "acc"), Integers3(info[1], "dims", 1), js_args::Int(info[2], "channels", 1, 1 << 20)};
}

Napi::Value AccumulateWindow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto [acc, dims, channels] = AccumulatorArgs(info);
  Napi::Float32Array logits = Floats(info[3], "logits");
  const std::int64_t logitOffset = Count(info[4], "logitOffset", 0);
  bool empty = false;
  const kernels::WindowPlacement placement = Placement(info, 5, dims, empty);
  const double voxels = dims.product();
  const double roiVolume = RoiVolume(placement);
  NeedLength(env, acc.ElementLength(), voxels * channels, "acc");
  NeedLength(env, logits.ElementLength(), static_cast<double>(logitOffset) + roiVolume * channels, "logits");
  const float* importance = OptionalFloats(info[9], roiVolume, "importance");
  float* weightSum = OptionalFloats(info[10], voxels, "weightSum");
  if (empty) return env.Undefined();
  kernels::accumulateWindow(acc.Data(), dims.v, channels, logits.Data() + logitOffset, placement, importance, weightSum);
  return env.Undefined();
}

// A batch's window placements: an Int32Array of 12 integers per window (roi, lo, hi, shift, 3
// each), every window of the same roi, each checked as Placement checks one; `roiVolume` set.
std::vector<kernels::WindowPlacement> Placements(const Napi::Value& value, const Triple& dims, double& roiVolume) {
  Napi::Env env = value.Env();
  Napi::Int32Array flat = Typed<std::int32_t>(value, napi_int32_array, "Int32Array", "placements");
  const std::size_t length = flat.ElementLength();
  if (length == 0 || length % 12 != 0) throw rangeError(env, "placements must hold 12 integers per window, at least one window");
  std::vector<kernels::WindowPlacement> placements(length / 12);
  for (std::size_t q = 0; q < placements.size(); ++q) {
    kernels::WindowPlacement& p = placements[q];
    const std::int32_t* v = flat.Data() + 12 * q;
    bool empty = false;
    for (int d = 0; d < 3; ++d) {
      p.roi[d] = v[d];
      p.lo[d] = v[3 + d];
      p.hi[d] = v[6 + d];
      p.shift[d] = v[9 + d];
      if (p.roi[d] < 1 || p.roi[d] != placements[0].roi[d]) throw rangeError(env, "Every window of placements needs the same positive roi");
      if (p.lo[d] < 0 || p.lo[d] > p.hi[d] || p.hi[d] > p.roi[d]) throw rangeError(env, "Expected 0 <= lo <= hi <= roi on every axis");
      empty = empty || p.lo[d] == p.hi[d];
    }
    if (empty) {
      // Nothing of it lands in the volume: an empty range the kernels skip (and pad when gathering).
      p.lo[0] = p.hi[0] = 0;
      continue;
    }
    for (int d = 0; d < 3; ++d) {
      if (p.lo[d] + p.shift[d] < 0 || p.hi[d] + p.shift[d] > dims.v[d]) throw rangeError(env, "The window's placement leaves the volume");
    }
  }
  roiVolume = RoiVolume(placements[0]);
  return placements;
}

// Null, or an Int32Array with one entry per accumulator row (dims[0] * dims[1]): stitchWindows' state.
std::int32_t* OptionalCovered(const Napi::Value& value, const Triple& dims) {
  if (value.IsEmpty() || value.IsNull() || value.IsUndefined()) return nullptr;
  Napi::Int32Array rows = Typed<std::int32_t>(value, napi_int32_array, "Int32Array", "covered");
  NeedLength(value.Env(), rows.ElementLength(), static_cast<double>(dims.v[0]) * static_cast<double>(dims.v[1]), "covered");
  return rows.Data();
}

// gatherWindowsAsync(image, dims, batch, placements, padValue): Promise<void>; image and batch held.
Napi::Value GatherWindowsAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array image = Floats(info[0], "image");
  const Triple dims = Integers3(info[1], "dims", 1);
  Napi::Float32Array batch = Floats(info[2], "batch");
  double roiVolume = 0;
  std::vector<kernels::WindowPlacement> placements = Placements(info[3], dims, roiVolume);
  const auto padValue = static_cast<float>(js_args::Number(info[4], "padValue"));
  NeedLength(env, image.ElementLength(), dims.product(), "image");
  NeedLength(env, batch.ElementLength(), roiVolume * static_cast<double>(placements.size()), "batch");
  const float* in = image.Data();
  float* out = batch.Data();
  const Triple d = dims;
  return QueueKernel(info, [=, placements = std::move(placements)]() {
    kernels::gatherWindows(in, d.v, out, placements.data(), static_cast<std::int64_t>(placements.size()), padValue);
  }, {0, 2});
}

// accumulateWindowsAsync(acc, dims, channels, logits, placements, importance|null, weightSum|null):
// Promise<void>; window q's channels at logits[q * channels * roi volume]; the arrays held.
Napi::Value AccumulateWindowsAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto [acc, dims, channels] = AccumulatorArgs(info);
  Napi::Float32Array logits = Floats(info[3], "logits");
  double roiVolume = 0;
  std::vector<kernels::WindowPlacement> placements = Placements(info[4], dims, roiVolume);
  const double voxels = dims.product();
  NeedLength(env, acc.ElementLength(), voxels * channels, "acc");
  NeedLength(env, logits.ElementLength(), roiVolume * channels * static_cast<double>(placements.size()), "logits");
  const float* importance = OptionalFloats(info[5], roiVolume, "importance");
  float* weightSum = OptionalFloats(info[6], voxels, "weightSum");
  std::int32_t* covered = OptionalCovered(info[7], dims);
  const double mode = info.Length() > 8 && !info[8].IsUndefined() ? js_args::Number(info[8], "mode") : 1;
  float* target = acc.Data();
  const float* in = logits.Data();
  const Triple d = dims;
  const int c = channels;
  return QueueKernel(info, [=, placements = std::move(placements)]() {
    if (mode == 0 && covered == nullptr) {
      kernels::accumulateWindows(target, d.v, c, in, placements.data(), static_cast<std::int64_t>(placements.size()),
                                 importance, weightSum);
      return;
    }
    kernels::stitchWindows(target, d.v, c, in, placements.data(), static_cast<std::int64_t>(placements.size()),
                           importance, weightSum, covered, static_cast<std::int64_t>(mode));
  }, {0, 3, 5, 6, 7});
}

// populatePagesAsync(view, parts, hugePages): Promise<number>; view held. Faults the view's pages in
// for writing (madvise MADV_POPULATE_WRITE, no data touched, so it may run beside a writer of the
// same memory), 2 MiB at a time over `parts` equal consecutive parts in step (the channels of an
// accumulator, as a C-order writer reaches them); huge pages advised first when asked. Resolves 1,
// or 0 where the kernel cannot (not Linux, Linux < 5.14): the writer's own page faults then do it.
Napi::Value PopulatePagesAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "Expected a TypedArray for view");
  Napi::TypedArray view = info[0].As<Napi::TypedArray>();
  const std::int64_t parts = Count(info[1], "parts", 1);
  const bool huge = js_args::Bool(info[2], "hugePages");
  auto* data = static_cast<std::uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
  const std::size_t bytes = view.ByteLength();
  return QueueCountingKernel(info, [=]() { return kernels::populatePages(data, bytes, parts, huge) ? 1.0 : 0.0; }, {0});
}

// zeroUncovered(acc, dims, channels, covered, weightSum|null): kernels::zeroUncovered.
Napi::Value ZeroUncovered(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto [acc, dims, channels] = AccumulatorArgs(info);
  const double voxels = dims.product();
  NeedLength(env, acc.ElementLength(), voxels * channels, "acc");
  std::int32_t* covered = OptionalCovered(info[3], dims);
  if (covered == nullptr) throw Napi::TypeError::New(env, "Expected an Int32Array for covered");
  float* weightSum = OptionalFloats(info[4], voxels, "weightSum");
  kernels::zeroUncovered(acc.Data(), dims.v, channels, covered, weightSum);
  return env.Undefined();
}

std::function<void()> DivideByCoverageJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto [acc, dims, channels] = AccumulatorArgs(info);
  const char* names[3] = {"c0", "c1", "c2"};
  std::array<const double*, 3> coverage{};
  for (int d = 0; d < 3; ++d) {
    Napi::Float64Array counts = Doubles(info[3 + d], names[d]);
    NeedLength(env, counts.ElementLength(), static_cast<double>(dims.v[d]), names[d]);
    coverage[d] = counts.Data();
  }
  NeedLength(env, acc.ElementLength(), dims.product() * channels, "acc");
  float* target = acc.Data();
  const Triple d = dims;
  const int c = channels;
  return [=]() { kernels::divideByCoverage(target, d.v, c, coverage[0], coverage[1], coverage[2]); };
}

Napi::Value DivideByCoverage(const Napi::CallbackInfo& info) {
  DivideByCoverageJob(info)();
  return info.Env().Undefined();
}

// divideByCoverageAsync(...the same): Promise<void>; acc and the coverages held.
Napi::Value DivideByCoverageAsync(const Napi::CallbackInfo& info) { return QueueKernel(info, DivideByCoverageJob(info), {0, 3, 4, 5}); }

std::function<void()> DivideByWeightsJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array acc = Floats(info[0], "acc");
  const int channels = js_args::Int(info[1], "channels", 1, 1 << 20);
  Napi::Float32Array weightSum = Floats(info[2], "weightSum");
  const auto voxels = static_cast<std::int64_t>(weightSum.ElementLength());
  NeedLength(env, acc.ElementLength(), static_cast<double>(voxels) * channels, "acc");
  float* target = acc.Data();
  const float* weights = weightSum.Data();
  return [=]() { kernels::divideByWeights(target, voxels, channels, weights); };
}

Napi::Value DivideByWeights(const Napi::CallbackInfo& info) {
  DivideByWeightsJob(info)();
  return info.Env().Undefined();
}

// divideByWeightsAsync(...the same): Promise<void>; acc and weightSum held.
Napi::Value DivideByWeightsAsync(const Napi::CallbackInfo& info) { return QueueKernel(info, DivideByWeightsJob(info), {0, 2}); }

// The conversion as a job over the caller's arrays, checked here on the JS thread; run at once
// (fileToCOrder) or on the libuv pool (fileToCOrderAsync, the arrays held by KernelWorker).
template <typename T>
std::function<void()> FileToC(const Napi::Value& source, float* out, const std::int64_t* dims, std::int64_t channels,
                              double needed, double slope, double inter) {
  Napi::TypedArray typed = source.As<Napi::TypedArray>();
  NeedLength(source.Env(), typed.ElementLength(), needed, "src");
  const auto* src = reinterpret_cast<const T*>(static_cast<const std::uint8_t*>(typed.ArrayBuffer().Data()) + typed.ByteOffset());
  const std::array<std::int64_t, 3> d{dims[0], dims[1], dims[2]};
  return [=]() { kernels::fileToCOrder<T>(src, out, d.data(), channels, slope, inter); };
}

std::function<void()> FileToCJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array out = Floats(info[1], "out");
  const Triple dims = Integers3(info[2], "dims", 1);
  const std::int64_t channels = Count(info[3], "channels", 1);
  const double slope = js_args::Number(info[4], "slope");
  const double inter = js_args::Number(info[5], "inter");
  const double needed = dims.product() * static_cast<double>(channels);
  NeedLength(env, out.ElementLength(), needed, "out");
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "Expected a TypedArray for src");
  switch (info[0].As<Napi::TypedArray>().TypedArrayType()) {
    case napi_int8_array: return FileToC<std::int8_t>(info[0], out.Data(), dims.v, channels, needed, slope, inter);
    case napi_uint8_array: return FileToC<std::uint8_t>(info[0], out.Data(), dims.v, channels, needed, slope, inter);
    case napi_int16_array: return FileToC<std::int16_t>(info[0], out.Data(), dims.v, channels, needed, slope, inter);
    case napi_uint16_array: return FileToC<std::uint16_t>(info[0], out.Data(), dims.v, channels, needed, slope, inter);
    case napi_int32_array: return FileToC<std::int32_t>(info[0], out.Data(), dims.v, channels, needed, slope, inter);
    case napi_uint32_array: return FileToC<std::uint32_t>(info[0], out.Data(), dims.v, channels, needed, slope, inter);
    case napi_float32_array: return FileToC<float>(info[0], out.Data(), dims.v, channels, needed, slope, inter);
    case napi_float64_array: return FileToC<double>(info[0], out.Data(), dims.v, channels, needed, slope, inter);
    default: throw Napi::TypeError::New(env, "src must be an 8-, 16- or 32-bit integer or a float TypedArray");
  }
}

Napi::Value FileToCOrder(const Napi::CallbackInfo& info) {
  FileToCJob(info)();
  return info.Env().Undefined();
}

// fileToCOrderAsync(src, out, dims, channels, slope, inter): Promise<void>, the same checks.
Napi::Value FileToCOrderAsync(const Napi::CallbackInfo& info) { return QueueKernel(info, FileToCJob(info), {0, 1}); }

// Slices [kBegin, kEnd) of one channel, as cToFileOrder reads and writes them.
struct SliceRange {
  std::int64_t channel;
  std::int64_t kBegin;
  std::int64_t kEnd;
};

template <typename Source, typename Target>
void CToFile(const Source* src, const Napi::Value& target, const std::int64_t* dims, const SliceRange& range,
             bool integer, double lo, double hi) {
  Napi::TypedArray typed = target.As<Napi::TypedArray>();
  const double planes = static_cast<double>(range.kEnd - range.kBegin);
  NeedLength(target.Env(), typed.ElementLength(), planes * static_cast<double>(dims[0]) * static_cast<double>(dims[1]), "dst");
  if constexpr (std::is_integral_v<Target>) {
    // Only an in-range integer may be cast to an integer type (anything else is undefined behaviour).
    if (!integer || !(lo >= static_cast<double>(std::numeric_limits<Target>::min()) && lo <= hi &&
                      hi <= static_cast<double>(std::numeric_limits<Target>::max()))) {
      throw rangeError(target.Env(), "An integer dst needs integer = true and [lo, hi] within its type's range");
    }
  }
  auto* dst = reinterpret_cast<Target*>(static_cast<std::uint8_t*>(typed.ArrayBuffer().Data()) + typed.ByteOffset());
  kernels::cToFileOrder<Source, Target>(src, dst, dims, range.channel, range.kBegin, range.kEnd, integer, lo, hi);
}

template <typename Source>
void CToFileFrom(const Source* src, const Napi::Value& target, const std::int64_t* dims, const SliceRange& range,
                 bool integer, double lo, double hi) {
  if (!target.IsTypedArray()) throw Napi::TypeError::New(target.Env(), "Expected a TypedArray for dst");
  switch (target.As<Napi::TypedArray>().TypedArrayType()) {
    case napi_uint8_array: CToFile<Source, std::uint8_t>(src, target, dims, range, integer, lo, hi); break;
    case napi_int16_array: CToFile<Source, std::int16_t>(src, target, dims, range, integer, lo, hi); break;
    case napi_int32_array: CToFile<Source, std::int32_t>(src, target, dims, range, integer, lo, hi); break;
    case napi_float32_array: CToFile<Source, float>(src, target, dims, range, integer, lo, hi); break;
    case napi_float64_array: CToFile<Source, double>(src, target, dims, range, integer, lo, hi); break;
    default: throw Napi::TypeError::New(target.Env(), "dst must be a Uint8, Int16, Int32, Float32 or Float64 array");
  }
}

Napi::Value CToFileOrder(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Triple dims = Integers3(info[2], "dims", 1);
  SliceRange range{};
  range.channel = Count(info[3], "channel", 0);
  range.kBegin = Count(info[4], "kBegin", 0);
  range.kEnd = Count(info[5], "kEnd", 0);
  const bool integer = js_args::Bool(info[6], "integer");
  const double lo = js_args::Number(info[7], "lo");
  const double hi = js_args::Number(info[8], "hi");
  if (range.kBegin > range.kEnd || range.kEnd > dims.v[2]) throw rangeError(env, "Expected 0 <= kBegin <= kEnd <= dims[2]");
  // The source must hold the whole channel.
  const double needed = dims.product() * static_cast<double>(range.channel + 1);
  if (js_args::IsTypedArrayOf(info[0], napi_uint8_array)) {
    Napi::Uint8Array src = info[0].As<Napi::Uint8Array>();
    NeedLength(env, src.ElementLength(), needed, "src");
    CToFileFrom<std::uint8_t>(src.Data(), info[1], dims.v, range, integer, lo, hi);
  } else {
    Napi::Float32Array src = Floats(info[0], "src");
    NeedLength(env, src.ElementLength(), needed, "src");
    CToFileFrom<float>(src.Data(), info[1], dims.v, range, integer, lo, hi);
  }
  return env.Undefined();
}

// One axis table {lo, hi, wLo, wHi, identity} whose source indices all lie in [0, n).
kernels::AxisTable Table(const Napi::Value& value, std::int64_t n, const char* name) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw Napi::TypeError::New(env, std::string("Expected an axis table for ") + name);
  Napi::Object object = value.As<Napi::Object>();
  Napi::Int32Array lo = Typed<std::int32_t>(object.Get("lo"), napi_int32_array, "Int32Array", "table.lo");
  Napi::Int32Array hi = Typed<std::int32_t>(object.Get("hi"), napi_int32_array, "Int32Array", "table.hi");
  Napi::Float64Array wLo = Doubles(object.Get("wLo"), "table.wLo");
  Napi::Float64Array wHi = Doubles(object.Get("wHi"), "table.wHi");
  const std::size_t size = lo.ElementLength();
  if (size == 0 || hi.ElementLength() != size || wLo.ElementLength() != size || wHi.ElementLength() != size) {
    throw rangeError(env, std::string(name) + ": lo, hi, wLo and wHi must have the same, non-zero length");
  }
  const bool identity = js_args::Bool(object.Get("identity"), "table.identity");
  if (identity && static_cast<std::int64_t>(size) != n) {
    throw rangeError(env, std::string(name) + " is marked identity but does not keep the axis length");
  }
  for (std::size_t q = 0; q < size; ++q) {
    if (lo[q] < 0 || lo[q] >= n || hi[q] < 0 || hi[q] >= n) {
      throw rangeError(env, std::string(name) + " reads outside the source axis");
    }
  }
  return kernels::AxisTable{lo.Data(), hi.Data(), wLo.Data(), wHi.Data(), static_cast<std::int64_t>(size), identity};
}

// Every output index c * outCount + base + sum q_d * strides[d] (q_d < outShape[d]) must lie
// inside an array of `length` elements, and base must be an integer.
void CheckOutputLayout(Napi::Env env, std::size_t length, const Triple& outShape, int channels, double base,
                       const Triple& strides, const char* name = "out") {
  double lowest = base;
  double highest = base;
  for (int d = 0; d < 3; ++d) {
    const double reach = static_cast<double>(outShape.v[d] - 1) * static_cast<double>(strides.v[d]);
    (reach < 0 ? lowest : highest) += reach;
  }
  highest += (channels - 1) * outShape.product();
  if (!(lowest >= 0 && highest < static_cast<double>(length) && base == static_cast<double>(static_cast<std::int64_t>(base)))) {
    throw rangeError(env, std::string("The layout reaches outside ") + name);
  }
}

std::function<void()> GatherStridedJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array src = Floats(info[0], "src");
  const int channels = js_args::Int(info[1], "channels", 1, 1 << 20);
  const Triple outShape = Integers3(info[2], "outShape", 1);
  const Triple strides = Integers3(info[3], "strides", -kMaxElements);
  const double base = js_args::Number(info[4], "base");
  Napi::Float32Array dst = Floats(info[5], "dst");
  NeedLength(env, dst.ElementLength(), outShape.product() * channels, "dst");
  // The reads, like a layout's writes, must stay inside src (channel c reads at c * count + ...).
  CheckOutputLayout(env, src.ElementLength(), outShape, channels, base, strides, "src");
  const float* in = src.Data();
  float* out = dst.Data();
  const Triple shape = outShape;
  const Triple stride = strides;
  const auto offset = static_cast<std::int64_t>(base);
  return [=]() { kernels::gatherStrided(in, channels, shape.v, stride.v, offset, out); };
}

Napi::Value GatherStrided(const Napi::CallbackInfo& info) {
  GatherStridedJob(info)();
  return info.Env().Undefined();
}

// gatherStridedAsync(...the same): Promise<void>; src and dst held.
Napi::Value GatherStridedAsync(const Napi::CallbackInfo& info) { return QueueKernel(info, GatherStridedJob(info), {0, 5}); }

// An optional intensity window for a resampling's stores: undefined or null (none), or an object
// { a, b, reciprocal, scale, lo, hi, clip, shiftOnly } (intensity.ts intensityWindowKernel).
std::optional<kernels::IntensityWindow> OptionalWindow(const Napi::Value& value) {
  if (value.IsUndefined() || value.IsNull()) return std::nullopt;
  if (!value.IsObject() || value.IsArray()) {
    throw Napi::TypeError::New(value.Env(), "Expected an intensity window object (or null) for window");
  }
  Napi::Object object = value.As<Napi::Object>();
  kernels::IntensityWindow window{};
  window.a = static_cast<float>(js_args::Number(object.Get("a"), "window.a"));
  window.b = static_cast<float>(js_args::Number(object.Get("b"), "window.b"));
  window.reciprocal = js_args::Number(object.Get("reciprocal"), "window.reciprocal");
  window.scale = static_cast<float>(js_args::Number(object.Get("scale"), "window.scale"));
  window.lo = static_cast<float>(js_args::Number(object.Get("lo"), "window.lo"));
  window.hi = static_cast<float>(js_args::Number(object.Get("hi"), "window.hi"));
  window.clip = js_args::Bool(object.Get("clip"), "window.clip");
  window.shiftOnly = js_args::Bool(object.Get("shiftOnly"), "window.shiftOnly");
  return window;
}

std::function<void()> ResampleAffineJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array src = Floats(info[0], "src");
  const int channels = js_args::Int(info[1], "channels", 1, 1 << 20);
  const Triple inShape = Integers3(info[2], "inShape", 1);
  const Triple outShape = Integers3(info[3], "outShape", 1);
  Napi::Float64Array xform = Doubles(info[4], "xform");
  Napi::Float32Array out = Floats(info[5], "out");
  const double base = js_args::Number(info[6], "base");
  const Triple strides = Integers3(info[7], "strides", -kMaxElements);
  const std::optional<kernels::IntensityWindow> window = OptionalWindow(info[8]);
  NeedLength(env, src.ElementLength(), inShape.product() * channels, "src");
  NeedLength(env, xform.ElementLength(), 16, "xform");
  // A NaN or infinite coefficient would make a NaN index: refused (the clamp only bounds numbers).
  for (std::size_t i = 0; i < 16; ++i) {
    if (!std::isfinite(xform[i])) throw rangeError(env, "xform must be finite");
  }
  CheckOutputLayout(env, out.ElementLength(), outShape, channels, base, strides);
  const float* in = src.Data();
  float* target = out.Data();
  std::array<double, 16> x{};
  for (std::size_t i = 0; i < 16; ++i) x[i] = xform[i];
  const Triple inDims = inShape;
  const Triple outDims = outShape;
  const Triple stride = strides;
  const auto offset = static_cast<std::int64_t>(base);
  return [=]() {
    kernels::resampleAffine(in, channels, inDims.v, outDims.v, x.data(), target, offset, stride.v,
                            window ? &*window : nullptr);
  };
}

Napi::Value ResampleAffine(const Napi::CallbackInfo& info) {
  ResampleAffineJob(info)();
  return info.Env().Undefined();
}

// resampleAffineAsync(...the same): Promise<void>; src and out held (xform copied).
Napi::Value ResampleAffineAsync(const Napi::CallbackInfo& info) { return QueueKernel(info, ResampleAffineJob(info), {0, 5}); }

std::function<void()> ResampleSeparableJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array src = Floats(info[0], "src");
  const int channels = js_args::Int(info[1], "channels", 1, 1 << 20);
  const Triple inShape = Integers3(info[2], "inShape", 1);
  if (!info[3].IsArray() || info[3].As<Napi::Array>().Length() != 3) {
    throw Napi::TypeError::New(env, "Expected an array of 3 axis tables for tables");
  }
  Napi::Array tableArray = info[3].As<Napi::Array>();
  const char* names[3] = {"tables[0]", "tables[1]", "tables[2]"};
  kernels::AxisTable tables[3];
  for (std::uint32_t d = 0; d < 3; ++d) tables[d] = Table(tableArray.Get(d), inShape.v[d], names[d]);
  Napi::Float32Array out = Floats(info[4], "out");
  const double base = js_args::Number(info[5], "base");
  const Triple strides = Integers3(info[6], "strides", -kMaxElements);
  const std::optional<kernels::IntensityWindow> window = OptionalWindow(info[7]);
  NeedLength(env, src.ElementLength(), inShape.product() * channels, "src");
  const Triple outShape{{tables[0].size, tables[1].size, tables[2].size}};
  CheckOutputLayout(env, out.ElementLength(), outShape, channels, base, strides);
  const float* in = src.Data();
  float* target = out.Data();
  const Triple shape = inShape;
  const Triple stride = strides;
  const std::array<kernels::AxisTable, 3> axes{tables[0], tables[1], tables[2]};
  const auto offset = static_cast<std::int64_t>(base);
  return [=]() {
    kernels::resampleSeparable(in, channels, shape.v, axes.data(), target, offset, stride.v, window ? &*window : nullptr);
  };
}

Napi::Value ResampleSeparable(const Napi::CallbackInfo& info) {
  ResampleSeparableJob(info)();
  return info.Env().Undefined();
}

// resampleSeparableAsync(...the same): Promise<void>; src, the tables and out are held meanwhile.
Napi::Value ResampleSeparableAsync(const Napi::CallbackInfo& info) { return QueueKernel(info, ResampleSeparableJob(info), {0, 3, 4}); }

std::function<void()> SummarizeLabelsJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array mask = js_args::Bytes(info[0], "mask");
  const Triple dims = Integers3(info[1], "dims", 1);
  Napi::Float64Array stats = Doubles(info[2], "stats");
  NeedLength(env, mask.ElementLength(), dims.product(), "mask");
  NeedLength(env, stats.ElementLength(), 10, "stats");
  const std::uint8_t* in = mask.Data();
  double* out = stats.Data();
  const Triple d = dims;
  return [=]() { kernels::summarizeLabels(in, d.v, out); };
}

Napi::Value SummarizeLabels(const Napi::CallbackInfo& info) {
  SummarizeLabelsJob(info)();
  return info.Env().Undefined();
}

// summarizeLabelsAsync(...the same): Promise<void>; mask and stats held.
Napi::Value SummarizeLabelsAsync(const Napi::CallbackInfo& info) { return QueueKernel(info, SummarizeLabelsJob(info), {0, 2}); }

std::function<double()> DecideCornersJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array logits = Floats(info[0], "logits");
  const Triple dims = Integers3(info[1], "dims", 1);
  const double margin = js_args::Number(info[2], "margin");
  Napi::Uint8Array state = js_args::Bytes(info[3], "state");
  Napi::Uint8Array rowIsBackground = js_args::Bytes(info[4], "rowIsBackground");
  const double voxels = dims.product();
  NeedLength(env, logits.ElementLength(), 2 * voxels, "logits");
  NeedLength(env, state.ElementLength(), voxels, "state");
  NeedLength(env, rowIsBackground.ElementLength(), static_cast<double>(dims.v[0]) * static_cast<double>(dims.v[1]),
             "rowIsBackground");
  const float* in = logits.Data();
  std::uint8_t* cubes = state.Data();
  std::uint8_t* rows = rowIsBackground.Data();
  const Triple d = dims;
  return [=]() { return static_cast<double>(kernels::decideCorners(in, d.v, margin, cubes, rows)); };
}

Napi::Value DecideCorners(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), DecideCornersJob(info)()); }

// decideCornersAsync(...the same): Promise<number>; logits, state and rowIsBackground held.
Napi::Value DecideCornersAsync(const Napi::CallbackInfo& info) {
  return QueueCountingKernel(info, DecideCornersJob(info), {0, 3, 4});
}

// The output side of a cube scan (arguments 4-7: labels, base, strides, undecided): labels laid out
// over outShape, and the list the undecided voxels' linear indices go to.
struct ScanOutput {
  std::uint8_t* labels;
  std::int64_t base;
  Triple strides;
  std::int32_t* undecided;
  std::int64_t capacity;
};

ScanOutput ScanOutputArgs(const Napi::CallbackInfo& info, const Triple& outShape) {
  Napi::Env env = info.Env();
  Napi::Uint8Array labels = js_args::Bytes(info[4], "labels");
  const double base = js_args::Number(info[5], "base");
  const Triple strides = Integers3(info[6], "strides", -kMaxElements);
  Napi::Int32Array undecided = Typed<std::int32_t>(info[7], napi_int32_array, "Int32Array", "undecided");
  // The linear output index must fit an Int32Array entry.
  if (!(outShape.product() <= 2147483647.0)) throw rangeError(env, "the output grid has more voxels than an Int32Array index holds");
  CheckOutputLayout(env, labels.ElementLength(), outShape, 1, base, strides, "labels");
  return ScanOutput{labels.Data(), static_cast<std::int64_t>(base), strides, undecided.Data(),
                    static_cast<std::int64_t>(undecided.ElementLength())};
}

std::function<double()> AffineCubeLabelsJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array cube = js_args::Bytes(info[0], "cube");
  const Triple gridDims = Integers3(info[1], "gridDims", 1);
  Napi::Float64Array xform = Doubles(info[2], "xform");
  const Triple outShape = Integers3(info[3], "outShape", 1);
  const ScanOutput o = ScanOutputArgs(info, outShape);
  NeedLength(env, cube.ElementLength(), gridDims.product(), "cube");
  NeedLength(env, xform.ElementLength(), 16, "xform");
  std::array<double, 16> x{};
  for (std::size_t i = 0; i < 16; ++i) {
    if (!std::isfinite(xform[i])) throw rangeError(env, "xform must be finite");
    x[i] = xform[i];
  }
  const std::uint8_t* cubes = cube.Data();
  return [=]() {
    return static_cast<double>(
        kernels::affineCubeLabels(cubes, gridDims.v, x.data(), outShape.v, o.labels, o.base, o.strides.v, o.undecided, o.capacity));
  };
}

Napi::Value AffineCubeLabels(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), AffineCubeLabelsJob(info)()); }

// affineCubeLabelsAsync(...the same): Promise<number>; cube, labels and undecided held (xform copied).
Napi::Value AffineCubeLabelsAsync(const Napi::CallbackInfo& info) {
  return QueueCountingKernel(info, AffineCubeLabelsJob(info), {0, 4, 7});
}

// tableCubeLabels(cube, gridDims, rowIsBackground, tables, labels, base, strides, undecided) -> count
std::function<double()> TableCubeLabelsJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array cube = js_args::Bytes(info[0], "cube");
  const Triple gridDims = Integers3(info[1], "gridDims", 1);
  Napi::Uint8Array rowIsBackground = js_args::Bytes(info[2], "rowIsBackground");
  if (!info[3].IsArray() || info[3].As<Napi::Array>().Length() != 3) throw Napi::TypeError::New(env, "Expected 3 axis tables");
  Napi::Array tableArray = info[3].As<Napi::Array>();
  std::array<kernels::AxisTable, 3> tables{};
  for (std::uint32_t d = 0; d < 3; ++d) tables[d] = Table(tableArray.Get(d), gridDims.v[d], "tables");
  const ScanOutput o = ScanOutputArgs(info, Triple{{tables[0].size, tables[1].size, tables[2].size}});
  NeedLength(env, cube.ElementLength(), gridDims.product(), "cube");
  NeedLength(env, rowIsBackground.ElementLength(), static_cast<double>(gridDims.v[0]) * static_cast<double>(gridDims.v[1]), "rowIsBackground");
  const std::uint8_t* cubes = cube.Data();
  const std::uint8_t* rows = rowIsBackground.Data();
  return [=]() {
    return static_cast<double>(
        kernels::tableCubeLabels(cubes, gridDims.v, rows, tables.data(), o.labels, o.base, o.strides.v, o.undecided, o.capacity));
  };
}

Napi::Value TableCubeLabels(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), TableCubeLabelsJob(info)()); }

// tableCubeLabelsAsync(...the same): Promise<number>; cube, rowIsBackground, the tables, labels
// and undecided held.
Napi::Value TableCubeLabelsAsync(const Napi::CallbackInfo& info) {
  return QueueCountingKernel(info, TableCubeLabelsJob(info), {0, 2, 3, 4, 7});
}

// blendTableVoxels(logits, gridDims, tables, undecided, count, labels, base, strides)
std::function<void()> BlendTableVoxelsJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array logits = Floats(info[0], "logits");
  const Triple gridDims = Integers3(info[1], "gridDims", 1);
  if (!info[2].IsArray() || info[2].As<Napi::Array>().Length() != 3) throw Napi::TypeError::New(env, "Expected 3 axis tables");
  Napi::Array tableArray = info[2].As<Napi::Array>();
  std::array<kernels::AxisTable, 3> tables{};
  for (std::uint32_t d = 0; d < 3; ++d) {
    tables[d] = Table(tableArray.Get(d), gridDims.v[d], "tables");
    // The blend reads index hi as well as lo: both inside the axis (Table checks), and hi >= lo.
  }
  Napi::Int32Array undecided = Typed<std::int32_t>(info[3], napi_int32_array, "Int32Array", "undecided");
  const std::int64_t count = Count(info[4], "count", 0);
  Napi::Uint8Array labels = js_args::Bytes(info[5], "labels");
  const double base = js_args::Number(info[6], "base");
  const Triple strides = Integers3(info[7], "strides", -kMaxElements);
  NeedLength(env, logits.ElementLength(), 2 * gridDims.product(), "logits");
  NeedLength(env, undecided.ElementLength(), static_cast<double>(count), "undecided");
  const Triple outShape{{tables[0].size, tables[1].size, tables[2].size}};
  CheckOutputLayout(env, labels.ElementLength(), outShape, 1, base, strides, "labels");
  const double outVoxels = outShape.product();
  const std::int32_t* list = undecided.Data();
  for (std::int64_t u = 0; u < count; ++u) {
    if (list[u] < 0 || static_cast<double>(list[u]) >= outVoxels) throw rangeError(env, "undecided lists a voxel outside the tables' grid");
  }
  const float* in = logits.Data();
  const Triple grid = gridDims;
  const Triple stride = strides;
  std::uint8_t* out = labels.Data();
  const auto offset = static_cast<std::int64_t>(base);
  return [=]() { kernels::blendTableVoxels(in, grid.v, tables.data(), list, count, out, offset, stride.v); };
}

Napi::Value BlendTableVoxels(const Napi::CallbackInfo& info) {
  BlendTableVoxelsJob(info)();
  return info.Env().Undefined();
}

// blendTableVoxelsAsync(...the same): Promise<void>; logits, the tables, undecided and labels held.
Napi::Value BlendTableVoxelsAsync(const Napi::CallbackInfo& info) { return QueueKernel(info, BlendTableVoxelsJob(info), {0, 2, 3, 5}); }

// copyFloatsAsync(src, dst): Promise<void>; dst[0, src.length) = src, bit for bit, on the pool (an
// input handed to a worker thread is copied there instead of on the JS thread: 14 MB a batch).
Napi::Value CopyFloatsAsync(const Napi::CallbackInfo& info) {
  Napi::Float32Array src = Floats(info[0], "src");
  Napi::Float32Array dst = Floats(info[1], "dst");
  NeedLength(info.Env(), dst.ElementLength(), static_cast<double>(src.ElementLength()), "dst");
  const float* in = src.Data();
  float* out = dst.Data();
  const std::size_t bytes = src.ByteLength();
  return QueueKernel(info, [=]() { std::memcpy(out, in, bytes); }, {0, 1});
}

// jsExp(x): the kernels' exp, for the test that it is V8's Math.exp to the bit.
Napi::Value JsExp(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), kernels::jsExp(js_args::Number(info[0], "x")));
}

// setKernelThreads(threads, split): kernels::setKernelThreads, for tests and A/B benches.
Napi::Value SetKernelThreads(const Napi::CallbackInfo& info) {
  const double threads = js_args::Number(info[0], "threads");
  if (!(threads >= 1 && threads <= 64) || threads != std::floor(threads)) {
    throw Napi::RangeError::New(info.Env(), "threads must be an integer from 1 to 64");
  }
  kernels::setKernelThreads(static_cast<std::int64_t>(threads), js_args::Bool(info[1], "split"));
  return info.Env().Undefined();
}

std::function<void()> ApplyIntensityWindowJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array data = Floats(info[0], "data");
  Napi::Float32Array out = Floats(info[1], "out");
  NeedLength(env, out.ElementLength(), static_cast<double>(data.ElementLength()), "out");
  kernels::IntensityWindow window{};
  window.a = static_cast<float>(js_args::Number(info[2], "a"));
  window.b = static_cast<float>(js_args::Number(info[3], "b"));
  window.reciprocal = js_args::Number(info[4], "reciprocal");
  window.scale = static_cast<float>(js_args::Number(info[5], "scale"));
  window.lo = static_cast<float>(js_args::Number(info[6], "lo"));
  window.hi = static_cast<float>(js_args::Number(info[7], "hi"));
  window.clip = js_args::Bool(info[8], "clip");
  window.shiftOnly = js_args::Bool(info[9], "shiftOnly");
  const float* in = data.Data();
  float* target = out.Data();
  const auto count = static_cast<std::int64_t>(data.ElementLength());
  return [=]() { kernels::applyIntensityWindow(in, target, count, window); };
}

Napi::Value ApplyIntensityWindow(const Napi::CallbackInfo& info) {
  ApplyIntensityWindowJob(info)();
  return info.Env().Undefined();
}

// applyIntensityWindowAsync(...the same): Promise<void>; data and out are held meanwhile.
Napi::Value ApplyIntensityWindowAsync(const Napi::CallbackInfo& info) { return QueueKernel(info, ApplyIntensityWindowJob(info), {0, 1}); }

}  // namespace

void RegisterVolumeKernels(Napi::Env env, Napi::Object exports) {
  Napi::Object kernels = Napi::Object::New(env);
  // What this build's kernels can do beyond their names (an older addon would silently ignore an
  // argument it does not know): "resampleWindow" = the resampling kernels take an intensity window.
  Napi::Array features = Napi::Array::New(env);
  features.Set(0u, Napi::String::New(env, "resampleWindow"));
  kernels.Set("features", features);
  kernels.Set("gatherWindow", Napi::Function::New(env, GatherWindow, "gatherWindow"));
  kernels.Set("accumulateWindow", Napi::Function::New(env, AccumulateWindow, "accumulateWindow"));
  kernels.Set("divideByCoverage", Napi::Function::New(env, DivideByCoverage, "divideByCoverage"));
  kernels.Set("divideByWeights", Napi::Function::New(env, DivideByWeights, "divideByWeights"));
  kernels.Set("fileToCOrder", Napi::Function::New(env, FileToCOrder, "fileToCOrder"));
  kernels.Set("fileToCOrderAsync", Napi::Function::New(env, FileToCOrderAsync, "fileToCOrderAsync"));
  kernels.Set("cToFileOrder", Napi::Function::New(env, CToFileOrder, "cToFileOrder"));
  kernels.Set("resampleSeparable", Napi::Function::New(env, ResampleSeparable, "resampleSeparable"));
  kernels.Set("resampleSeparableAsync", Napi::Function::New(env, ResampleSeparableAsync, "resampleSeparableAsync"));
  kernels.Set("gatherStrided", Napi::Function::New(env, GatherStrided, "gatherStrided"));
  kernels.Set("resampleAffine", Napi::Function::New(env, ResampleAffine, "resampleAffine"));
  kernels.Set("summarizeLabels", Napi::Function::New(env, SummarizeLabels, "summarizeLabels"));
  kernels.Set("decideCorners", Napi::Function::New(env, DecideCorners, "decideCorners"));
  kernels.Set("affineCubeLabels", Napi::Function::New(env, AffineCubeLabels, "affineCubeLabels"));
  kernels.Set("tableCubeLabels", Napi::Function::New(env, TableCubeLabels, "tableCubeLabels"));
  kernels.Set("applyIntensityWindow", Napi::Function::New(env, ApplyIntensityWindow, "applyIntensityWindow"));
  kernels.Set("applyIntensityWindowAsync", Napi::Function::New(env, ApplyIntensityWindowAsync, "applyIntensityWindowAsync"));
  kernels.Set("blendTableVoxels", Napi::Function::New(env, BlendTableVoxels, "blendTableVoxels"));
  kernels.Set("setKernelThreads", Napi::Function::New(env, SetKernelThreads, "setKernelThreads"));
  kernels.Set("blendTableVoxelsAsync", Napi::Function::New(env, BlendTableVoxelsAsync, "blendTableVoxelsAsync"));
  kernels.Set("jsExp", Napi::Function::New(env, JsExp, "jsExp"));
  kernels.Set("copyFloatsAsync", Napi::Function::New(env, CopyFloatsAsync, "copyFloatsAsync"));
  kernels.Set("gatherWindowsAsync", Napi::Function::New(env, GatherWindowsAsync, "gatherWindowsAsync"));
  kernels.Set("accumulateWindowsAsync", Napi::Function::New(env, AccumulateWindowsAsync, "accumulateWindowsAsync"));
  kernels.Set("zeroUncovered", Napi::Function::New(env, ZeroUncovered, "zeroUncovered"));
  kernels.Set("populatePagesAsync", Napi::Function::New(env, PopulatePagesAsync, "populatePagesAsync"));
  kernels.Set("divideByCoverageAsync", Napi::Function::New(env, DivideByCoverageAsync, "divideByCoverageAsync"));
  kernels.Set("divideByWeightsAsync", Napi::Function::New(env, DivideByWeightsAsync, "divideByWeightsAsync"));
  kernels.Set("gatherStridedAsync", Napi::Function::New(env, GatherStridedAsync, "gatherStridedAsync"));
  kernels.Set("resampleAffineAsync", Napi::Function::New(env, ResampleAffineAsync, "resampleAffineAsync"));
  kernels.Set("summarizeLabelsAsync", Napi::Function::New(env, SummarizeLabelsAsync, "summarizeLabelsAsync"));
  kernels.Set("decideCornersAsync", Napi::Function::New(env, DecideCornersAsync, "decideCornersAsync"));
  kernels.Set("affineCubeLabelsAsync", Napi::Function::New(env, AffineCubeLabelsAsync, "affineCubeLabelsAsync"));
  kernels.Set("tableCubeLabelsAsync", Napi::Function::New(env, TableCubeLabelsAsync, "tableCubeLabelsAsync"));
  exports.Set("volumeKernels", kernels);
}

}  // namespace spleen_trt
