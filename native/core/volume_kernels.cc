#include "core/volume_kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "core/huge_pages.h"

namespace spleen_trt::core::kernels {

namespace {

// The transposes work in tiles of up to 64 (i) x 32 (k) so that the strided side of each copy
// stays in cache (the loop order only changes which side is strided: the values are the same).
constexpr std::int64_t kTileI = 64;
constexpr std::int64_t kTileK = 32;
// Work (output voxels) below which a kernel stays on one thread: a thread costs tens of
// microseconds to start, a million voxels take milliseconds.
constexpr std::int64_t kParallelVoxels = std::int64_t{1} << 20;
constexpr std::int64_t kMaxThreads = 4;
// Shell voxels (blendTableVoxels: 8 softmax taps each, mostly cached) below which it stays on one thread.
constexpr std::int64_t kParallelShell = std::int64_t{1} << 15;
// setKernelThreads: the cap on threads per kernel, and whether every kernel splits whatever its
// size (tests compare split with unsplit results; an A/B measures the split).
std::atomic<std::int64_t> maxThreads{kMaxThreads};
std::atomic<bool> forceSplit{false};

// nifti-voxels.ts toInteger: round half to even (nearbyint in the default rounding mode), clamp,
// NaN -> 0.
inline double toInteger(double v, double lo, double hi) {
  if (!(v > lo)) return v <= lo ? lo : 0.0;
  if (v >= hi) return hi;
  return std::nearbyint(v);
}

// trilinear.ts resampleAffine's continuous index along `axis`: row `axis` of the row-major 4x4
// map at output voxel (a, b, k), in its order of operations, clamped to [0, n - 1] (clampIndex).
inline double affineIndex(const double* x, int axis, double a, double b, double k, std::int64_t n) {
  const double* r = x + 4 * axis;
  const double p = r[0] * a + r[1] * b + r[2] * k + r[3];
  const double last = static_cast<double>(n - 1);
  return p < 0 ? 0.0 : p > last ? last : p;
}

// intensity.ts applyIntensityWindow's value for one float32 x (the three branches; see there for
// why each step is exact). The scale step multiplies by 1 too (exact for every float32, NaN
// included: x - a already made any NaN quiet), and the clamp is written as two selects, so that a
// loop over it vectorises.
inline float windowValue(float x, const IntensityWindow& w) {
  const float shifted = x - w.a;
  if (w.shiftOnly) return static_cast<float>(static_cast<double>(shifted) + static_cast<double>(w.b));
  const float scaled = static_cast<float>(static_cast<double>(shifted) * w.reciprocal) * w.scale;
  const double v = static_cast<double>(scaled) + static_cast<double>(w.b);
  if (!w.clip) return static_cast<float>(v);
  const double lo = w.lo;
  const double hi = w.hi;
  // torch.clamp's order (max with lo, then min with hi); comparisons keep a NaN.
  const double raised = v < lo ? lo : v;
  return static_cast<float>(raised > hi ? hi : raised);
}

// windowValue over in[0, count) into out (in may be out), the window's branches taken once
// outside the loops so that each loop vectorises (windowValue per element, with its branches,
// does not).
inline void windowRange(const float* in, float* out, std::int64_t count, const IntensityWindow& window) {
  // A copy: a float store could alias the caller's window (or a closure holding it).
  const IntensityWindow w = window;
  if (w.shiftOnly) {
    for (std::int64_t i = 0; i < count; ++i) out[i] = windowValue(in[i], IntensityWindow{w.a, w.b, 0, 1, 0, 0, false, true});
  } else if (w.clip) {
    // windowValue's clipped branch, spelled out (through the call GCC does not if-convert it).
    const float a = w.a, scale = w.scale;
    const double reciprocal = w.reciprocal, b = w.b, lo = w.lo, hi = w.hi;
    for (std::int64_t i = 0; i < count; ++i) {
      const float scaled = static_cast<float>(static_cast<double>(in[i] - a) * reciprocal) * scale;
      const double v = static_cast<double>(scaled) + b;
      const double raised = v < lo ? lo : v;
      const double clamped = raised > hi ? hi : raised;
      out[i] = static_cast<float>(clamped);
    }
  } else {
    for (std::int64_t i = 0; i < count; ++i) out[i] = windowValue(in[i], IntensityWindow{w.a, w.b, w.reciprocal, w.scale, 0, 0, false, false});
  }
}

// How a resampling kernel stores a float64 value: rounded to float32, then (WindowedStore) put
// through the intensity window. The window is a member, a copy: a float store cannot alias it, so
// the compiler keeps it in registers instead of reloading it every voxel. Kernels that write a
// contiguous run (a C-order slab) store it plain and call finish() on it while it is in cache.
struct PlainStore {
  float operator()(double v) const { return static_cast<float>(v); }
  void finish(float*, std::int64_t) const {}
};
struct WindowedStore {
  IntensityWindow window;
  float operator()(double v) const { return windowValue(static_cast<float>(v), window); }
  void finish(float* run, std::int64_t count) const { windowRange(run, run, count, window); }
};

// Runs body(begin, end) over [0, count) in contiguous ranges, on up to 4 threads (this one
// included) when there is at least `minPerThread` work for each: the stages around the network
// run while the inference backend is idle, so the other cores are free. The split never changes
// a value (every output element is computed by one thread, the same way). A thread that cannot be
// started leaves its range to this one; an exception in any range is rethrown here after all end.
template <typename Body>
void parallelRanges(std::int64_t count, std::int64_t minPerThread, const Body& body) {
  const bool forced = forceSplit.load(std::memory_order_relaxed);
  const auto cores = forced ? kMaxThreads : static_cast<std::int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  const std::int64_t byWork = forced ? count : count / std::max<std::int64_t>(minPerThread, 1);
  const std::int64_t threads = std::min({cores, maxThreads.load(std::memory_order_relaxed), byWork});
  if (threads <= 1) {
    body(std::int64_t{0}, count);
    return;
  }
  const std::int64_t step = (count + threads - 1) / threads;
  std::exception_ptr failure;
  std::mutex failureLock;
  const auto guarded = [&](std::int64_t begin, std::int64_t end) {
    try {
      body(begin, end);
    } catch (...) {
      const std::lock_guard<std::mutex> hold(failureLock);
      if (!failure) failure = std::current_exception();
    }
  };
  // Room reserved first: once a thread runs, nothing here may throw before the joins.
  std::vector<std::thread> helpers;
  std::vector<std::pair<std::int64_t, std::int64_t>> here;
  helpers.reserve(static_cast<std::size_t>(threads));
  here.reserve(static_cast<std::size_t>(threads));
  here.emplace_back(0, std::min(step, count));
  for (std::int64_t begin = step; begin < count; begin += step) {
    const std::int64_t end = std::min(begin + step, count);
    try {
      helpers.emplace_back(guarded, begin, end);
    } catch (const std::system_error&) {
      here.emplace_back(begin, end);
    }
  }
  for (const auto& [begin, end] : here) guarded(begin, end);
  for (std::thread& helper : helpers) helper.join();
  if (failure) std::rethrow_exception(failure);
}

// Visits the voxels (a, b, k) of outShape with a in [aBegin, aEnd), in C order, with their place
// o = base + (a, b, k) . strides in an output layout (the coordinates as doubles too, as the TS
// loops use them).
template <typename Visit>
inline void forEachLaidOutVoxel(std::int64_t aBegin, std::int64_t aEnd, const std::int64_t outShape[3],
                                std::int64_t base, const std::int64_t strides[3], Visit visit) {
  for (std::int64_t a = aBegin; a < aEnd; ++a) {
    for (std::int64_t b = 0; b < outShape[1]; ++b) {
      std::int64_t o = base + a * strides[0] + b * strides[1];
      for (std::int64_t k = 0; k < outShape[2]; ++k, o += strides[2]) {
        visit(a, b, k, static_cast<double>(a), static_cast<double>(b), static_cast<double>(k), o);
      }
    }
  }
}

}  // namespace

void gatherWindow(const float* image, const std::int64_t dims[3], float* window, const WindowPlacement& p,
                  float padValue) {
  const std::int64_t rowLength = p.roi[2];
  const std::int64_t sliceLength = p.roi[1] * rowLength;
  const bool rowsHaveData = p.lo[2] < p.hi[2];
  for (std::int64_t a = 0; a < p.roi[0]; ++a) {
    float* slice = window + a * sliceLength;
    if (a < p.lo[0] || a >= p.hi[0]) {
      std::fill(slice, slice + sliceLength, padValue);
      continue;
    }
    const std::int64_t i = a + p.shift[0];
    for (std::int64_t b = 0; b < p.roi[1]; ++b) {
      float* row = slice + b * rowLength;
      if (b < p.lo[1] || b >= p.hi[1] || !rowsHaveData) {
        std::fill(row, row + rowLength, padValue);
        continue;
      }
      const float* source = image + ((i * dims[1] + b + p.shift[1]) * dims[2]) + p.shift[2];
      std::fill(row, row + p.lo[2], padValue);
      std::copy(source + p.lo[2], source + p.hi[2], row + p.lo[2]);
      std::fill(row + p.hi[2], row + rowLength, padValue);
    }
  }
}

void accumulateWindow(float* acc, const std::int64_t dims[3], int channels, const float* logits,
                      const WindowPlacement& p, const float* importance, float* weightSum) {
  const std::int64_t voxels = dims[0] * dims[1] * dims[2];
  const std::int64_t roiVolume = p.roi[0] * p.roi[1] * p.roi[2];
  const std::int64_t rowLength = p.hi[2] - p.lo[2];
  if (rowLength <= 0) return;
  for (int c = 0; c < channels; ++c) {
    const float* channelLogits = logits + c * roiVolume;
    float* channelAcc = acc + c * voxels;
    for (std::int64_t a = p.lo[0]; a < p.hi[0]; ++a) {
      const std::int64_t i = a + p.shift[0];
      for (std::int64_t b = p.lo[1]; b < p.hi[1]; ++b) {
        const std::int64_t j = b + p.shift[1];
        const std::int64_t local = (a * p.roi[1] + b) * p.roi[2] + p.lo[2];
        const float* in = channelLogits + local;
        float* out = channelAcc + (i * dims[1] + j) * dims[2] + p.lo[2] + p.shift[2];
        if (importance == nullptr) {
          for (std::int64_t k = 0; k < rowLength; ++k) out[k] += in[k];
        } else {
          const float* w = importance + local;
          for (std::int64_t k = 0; k < rowLength; ++k) {
            const float weighted = in[k] * w[k];  // rounded to float32 before the add
            out[k] += weighted;
          }
        }
      }
    }
  }
  if (importance == nullptr || weightSum == nullptr) return;
  for (std::int64_t a = p.lo[0]; a < p.hi[0]; ++a) {
    const std::int64_t i = a + p.shift[0];
    for (std::int64_t b = p.lo[1]; b < p.hi[1]; ++b) {
      const std::int64_t j = b + p.shift[1];
      const float* w = importance + (a * p.roi[1] + b) * p.roi[2] + p.lo[2];
      float* out = weightSum + (i * dims[1] + j) * dims[2] + p.lo[2] + p.shift[2];
      for (std::int64_t k = 0; k < rowLength; ++k) out[k] += w[k];
    }
  }
}

void gatherWindows(const float* image, const std::int64_t dims[3], float* batch, const WindowPlacement* placements,
                   std::int64_t count, float padValue) {
  if (count <= 0) return;
  const WindowPlacement& first = placements[0];
  const std::int64_t roiVolume = first.roi[0] * first.roi[1] * first.roi[2];
  for (std::int64_t q = 0; q < count; ++q) gatherWindow(image, dims, batch + q * roiVolume, placements[q], padValue);
}

void accumulateWindows(float* acc, const std::int64_t dims[3], int channels, const float* logits,
                       const WindowPlacement* placements, std::int64_t count, const float* importance, float* weightSum) {
  if (count <= 0) return;
  const std::int64_t roiVolume = placements[0].roi[0] * placements[0].roi[1] * placements[0].roi[2];
  for (std::int64_t q = 0; q < count; ++q) {
    accumulateWindow(acc, dims, channels, logits + q * channels * roiVolume, placements[q], importance, weightSum);
  }
}

namespace {

// Whether every coverage count is an integer in [1, 256] (so every divisor c0[i] * c1[j] * c2[k]
// is an integer in [1, 2^24]): divideByCoverage then multiplies by reciprocals, exactly.
bool smallIntegerCounts(const double* counts, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    if (!(counts[i] >= 1 && counts[i] <= 256 && counts[i] == std::floor(counts[i]))) return false;
  }
  return true;
}

// One row of divideByCoverage: out[k] = fl32(fl64(out[k] / (cij * c2[k]))), by the reciprocals
// inverseIj = 1 / cij and inverse2[k] = 1 / c2[k] where `products` and no nonzero |x| < 2^-100 is
// in the row (see divideByCoverage), else by division. Plain loops over restrict pointers, so each
// vectorises.
inline void divideRow(float* __restrict out, std::int64_t n, double cij, double inverseIj, const double* __restrict c2,
                      const double* __restrict inverse2, bool products) {
  if (products) {
    // Nonzero and below 2^-100 (bits 0x0D800000): (|bits| - 1) < 0x0D7FFFFF, NaN and 0 excluded.
    std::uint32_t tiny = 0;
    for (std::int64_t k = 0; k < n; ++k) {
      std::uint32_t bits;
      std::memcpy(&bits, out + k, sizeof bits);
      tiny |= static_cast<std::uint32_t>(((bits & 0x7fffffffu) - 1u) < 0x0D7FFFFFu);
    }
    if (tiny == 0) {
      for (std::int64_t k = 0; k < n; ++k) out[k] = static_cast<float>((static_cast<double>(out[k]) * inverseIj) * inverse2[k]);
      return;
    }
  }
  for (std::int64_t k = 0; k < n; ++k) out[k] = static_cast<float>(static_cast<double>(out[k]) / (cij * c2[k]));
}

}  // namespace

void divideByCoverage(float* acc, const std::int64_t dims[3], int channels, const double* c0,
                      const double* c1, const double* c2) {
  const std::int64_t n0 = dims[0], n1 = dims[1], n2 = dims[2];
  const std::int64_t voxels = n0 * n1 * n2;
  // The quotient is fl32(fl64(x / d)) with d = (c0[i] * c1[j]) * c2[k]. Where d is an integer in
  // [1, 2^24] and x a float32 whose quotient is a normal float32 (|x| >= 2^-100, or x = 0, or x
  // not finite), fl32((x * (1 / (c0[i] * c1[j]))) * (1 / c2[k])) is the same float32, without a
  // division (the pass was division-bound: 47 M divisions for the large phantom):
  //  - x / d is never a float32 rounding midpoint m (d * m would need more than x's 24
  //    significant bits: m's odd part has 25), and when x != d * m both lie on a grid of spacing
  //    2^-(24 + 25) relative to x (d's odd part has at most 24 bits), so |x / d - m| >= 2^-50 |x / d|;
  //  - both the double quotient and the product of reciprocals (4 roundings) are within 2^-51
  //    of x / d (relative): neither crosses a midpoint, both round to the float32 nearest x / d;
  //  - 0, -0, infinities and NaN (its payload kept) come out of a product as out of a quotient.
  // Subnormal quotients (tiny x: midpoints on an absolute grid) take the division, row by row.
  const bool exactProducts = smallIntegerCounts(c0, n0) && smallIntegerCounts(c1, n1) && smallIntegerCounts(c2, n2);
  std::vector<double> inverse2(static_cast<std::size_t>(exactProducts ? n2 : 0));
  for (std::int64_t k = 0; k < static_cast<std::int64_t>(inverse2.size()); ++k) inverse2[k] = 1.0 / c2[k];
  // Element-wise: slabs i in ranges over the idle cores change no value.
  const std::int64_t minSlabs = kParallelVoxels / std::max<std::int64_t>(n1 * n2 * channels, 1);
  parallelRanges(n0, minSlabs, [&](std::int64_t iBegin, std::int64_t iEnd) {
    for (std::int64_t i = iBegin; i < iEnd; ++i) {
      for (std::int64_t j = 0; j < n1; ++j) {
        const double cij = c0[i] * c1[j];
        const double inverseIj = 1.0 / cij;
        float* const row = acc + (i * n1 + j) * n2;
        for (int c = 0; c < channels; ++c) divideRow(row + c * voxels, n2, cij, inverseIj, c2, inverse2.data(), exactProducts);
      }
    }
  });
}

void divideByWeights(float* acc, std::int64_t voxels, int channels, const float* weightSum) {
  for (int c = 0; c < channels; ++c) {
    float* out = acc + c * voxels;
    for (std::int64_t v = 0; v < voxels; ++v) out[v] /= weightSum[v];
  }
}

// One file-order row segment to float: v * slope (if multiply) + inter (if add) in double, one
// rounding to float. Contiguous in and out, so the compiler vectorises it.
template <typename T, bool kMultiply, bool kAdd>
void convertRow(const T* s, float* t, std::int64_t count, double slope, double inter) {
  for (std::int64_t x = 0; x < count; ++x) {
    double v = static_cast<double>(s[x]);
    if constexpr (kMultiply) v *= slope;
    if constexpr (kAdd) v += inter;
    t[x] = static_cast<float>(v);
  }
}

// Rows j in [jBegin, jEnd) of file slices k in [kBegin, kEnd) (the whole image: [0, n2)).
template <typename T, bool kMultiply, bool kAdd>
void fileToCOrderRows(const T* in, float* dst, std::int64_t n0, std::int64_t n1, std::int64_t n2, std::int64_t jBegin,
                      std::int64_t jEnd, std::int64_t kBegin, std::int64_t kEnd, double slope, double inter) {
  const std::int64_t n12 = n1 * n2;
  const std::int64_t n01 = n0 * n1;
  // A 16 x 16 tile: 16 file rows (k) of 16 voxels (i) converted in contiguous runs, then written
  // as 16 C-order row segments (i) of 16 floats (k), one cache line each.
  constexpr std::int64_t kTile = 16;
  float tile[kTile * kTile];
  for (std::int64_t j = jBegin; j < jEnd; ++j) {
    for (std::int64_t k0 = kBegin; k0 < kEnd; k0 += kTile) {
      const std::int64_t tk = std::min(kTile, kEnd - k0);
      for (std::int64_t i0 = 0; i0 < n0; i0 += kTile) {
        const std::int64_t ti = std::min(kTile, n0 - i0);
        for (std::int64_t kk = 0; kk < tk; ++kk) {
          convertRow<T, kMultiply, kAdd>(in + (k0 + kk) * n01 + j * n0 + i0, tile + kk * kTile, ti, slope, inter);
        }
#if defined(__GNUC__)
        // The next tile's 16 output rows lie n12 floats apart: one cache-line miss each, which
        // the hardware prefetchers do not foresee (measured: the decode 15-20 % faster).
        if (i0 + kTile < n0) {
          for (std::int64_t ii = 0; ii < std::min(kTile, n0 - i0 - kTile); ++ii) {
            const float* next = dst + (i0 + kTile + ii) * n12 + j * n2 + k0;
            __builtin_prefetch(next, 1);
            __builtin_prefetch(next + tk - 1, 1);
          }
        }
#endif
        for (std::int64_t ii = 0; ii < ti; ++ii) {
          float* o = dst + (i0 + ii) * n12 + j * n2 + k0;
          for (std::int64_t kk = 0; kk < tk; ++kk) o[kk] = tile[kk * kTile + ii];
        }
      }
    }
  }
}

// fileToCOrderRows with the scaling mode (nibabel skips a multiply by 1 and an add of 0) as a
// template parameter.
template <typename T>
void fileToCOrderRowsAnyMode(const T* in, float* dst, std::int64_t n0, std::int64_t n1, std::int64_t n2,
                             std::int64_t jBegin, std::int64_t jEnd, std::int64_t kBegin, std::int64_t kEnd,
                             double slope, double inter) {
  const bool multiply = slope != 1.0;
  const bool add = inter != 0.0;
  if (multiply && add) fileToCOrderRows<T, true, true>(in, dst, n0, n1, n2, jBegin, jEnd, kBegin, kEnd, slope, inter);
  else if (multiply) fileToCOrderRows<T, true, false>(in, dst, n0, n1, n2, jBegin, jEnd, kBegin, kEnd, slope, inter);
  else if (add) fileToCOrderRows<T, false, true>(in, dst, n0, n1, n2, jBegin, jEnd, kBegin, kEnd, slope, inter);
  else fileToCOrderRows<T, false, false>(in, dst, n0, n1, n2, jBegin, jEnd, kBegin, kEnd, slope, inter);
}

template <typename T>
void fileToCOrder(const T* src, float* out, const std::int64_t dims[3], std::int64_t channels,
                  double slope, double inter) {
  const std::int64_t n0 = dims[0], n1 = dims[1], n2 = dims[2];
  const std::int64_t volume = n0 * n1 * n2;
  for (std::int64_t c = 0; c < channels; ++c) {
    const T* in = src + c * volume;
    float* dst = out + c * volume;
    // Rows j are independent: split them over the idle cores for large images.
    splitDecodeRows(n1, n0 * n2, [&](std::int64_t jBegin, std::int64_t jEnd) {
      fileToCOrderRowsAnyMode(in, dst, n0, n1, n2, jBegin, jEnd, 0, n2, slope, inter);
    });
  }
}

void splitDecodeRows(std::int64_t rows, std::int64_t rowVoxels, const std::function<void(std::int64_t, std::int64_t)>& body) {
  parallelRanges(rows, kParallelVoxels / std::max<std::int64_t>(rowVoxels, 1), body);
}

template <typename T>
void fileToCOrderBlock(const T* src, float* out, const std::int64_t dims[3], std::int64_t jBegin, std::int64_t jEnd,
                       std::int64_t kBegin, std::int64_t kEnd, double slope, double inter) {
  fileToCOrderRowsAnyMode(src, out, dims[0], dims[1], dims[2], jBegin, jEnd, kBegin, kEnd, slope, inter);
}

template <typename Source, typename Target>
void cToFileOrder(const Source* src, Target* dst, const std::int64_t dims[3], std::int64_t channel,
                  std::int64_t kBegin, std::int64_t kEnd, bool integer, double lo, double hi) {
  const std::int64_t n0 = dims[0], n1 = dims[1], n2 = dims[2];
  const std::int64_t n12 = n1 * n2;
  const std::int64_t n01 = n0 * n1;
  const Source* in = src + channel * n01 * n2;
  for (std::int64_t k0 = kBegin; k0 < kEnd; k0 += kTileK) {
    const std::int64_t k1 = std::min(k0 + kTileK, kEnd);
    for (std::int64_t i0 = 0; i0 < n0; i0 += kTileI) {
      const std::int64_t i1 = std::min(i0 + kTileI, n0);
      for (std::int64_t j = 0; j < n1; ++j) {
        for (std::int64_t k = k0; k < k1; ++k) {
          Target* d = dst + (k - kBegin) * n01 + j * n0;
          const Source* s = in + j * n2 + k;
          for (std::int64_t i = i0; i < i1; ++i) {
            const double v = static_cast<double>(s[i * n12]);
            d[i] = static_cast<Target>(integer ? toInteger(v, lo, hi) : v);
          }
        }
      }
    }
  }
}

namespace {

// trilinear.ts linearPass32/linearPass64: interpolation along the middle axis of a
// [outer][n][inner] array into float64 [outer][m][inner]. The inner == 1 branch keeps both taps
// even when wHi is 0 (as the TS code does: a NaN or infinite neighbour then shows).
template <typename Source>
void linearPass(const Source* src, double* dst, std::int64_t outer, std::int64_t n, std::int64_t inner,
                const AxisTable& t) {
  const std::int64_t m = t.size;
  if (inner == 1) {
    for (std::int64_t o = 0; o < outer; ++o) {
      const Source* s = src + o * n;
      double* d = dst + o * m;
      for (std::int64_t q = 0; q < m; ++q) {
        d[q] = static_cast<double>(s[t.lo[q]]) * t.wLo[q] + static_cast<double>(s[t.hi[q]]) * t.wHi[q];
      }
    }
    return;
  }
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t q = 0; q < m; ++q) {
      const Source* s0 = src + (o * n + t.lo[q]) * inner;
      const Source* s1 = src + (o * n + t.hi[q]) * inner;
      double* d = dst + (o * m + q) * inner;
      const double w0 = t.wLo[q];
      const double w1 = t.wHi[q];
      if (w1 == 0) {
        for (std::int64_t x = 0; x < inner; ++x) d[x] = static_cast<double>(s0[x]) * w0;
      } else {
        for (std::int64_t x = 0; x < inner; ++x) {
          d[x] = static_cast<double>(s0[x]) * w0 + static_cast<double>(s1[x]) * w1;
        }
      }
    }
  }
}

// trilinear.ts resampleSlice: one [n1][n2] slice onto float64 [m1][m2], the cheaper axis first.
template <typename Source>
void resampleSlice(const Source* src, double* dst, std::int64_t n1, std::int64_t n2, const AxisTable& t1,
                   const AxisTable& t2, double* tmp) {
  const std::int64_t m1 = t1.size;
  const std::int64_t m2 = t2.size;
  if (t1.identity && t2.identity) {
    for (std::int64_t x = 0; x < m1 * m2; ++x) dst[x] = static_cast<double>(src[x]);
  } else if (t1.identity) {
    linearPass(src, dst, n1, n2, 1, t2);
  } else if (t2.identity) {
    linearPass(src, dst, 1, n1, n2, t1);
  } else if (m1 * n2 <= n1 * m2) {
    linearPass(src, tmp, 1, n1, n2, t1);
    linearPass(tmp, dst, m1, n2, 1, t2);
  } else {
    linearPass(src, tmp, n1, n2, 1, t2);
    linearPass(tmp, dst, 1, n1, m2, t1);
  }
}

// trilinear.ts blendSlabs: out slab = store(r0 * w0 (+ r1 * w1)).
template <typename Store>
void blendSlabs(float* out, std::int64_t rowBase, std::int64_t m1, std::int64_t m2, std::int64_t s1, std::int64_t s2,
                bool contiguous, const double* r0, double w0, const double* r1, double w1, Store store) {
  if (contiguous) {
    // Stored plain (a loop that vectorises), then finished (windowed) while the slab is in cache.
    float* o = out + rowBase;
    const std::int64_t n = m1 * m2;
    if (r1 != nullptr) {
      for (std::int64_t x = 0; x < n; ++x) o[x] = static_cast<float>(r0[x] * w0 + r1[x] * w1);
    } else {
      for (std::int64_t x = 0; x < n; ++x) o[x] = static_cast<float>(r0[x] * w0);
    }
    store.finish(o, n);
    return;
  }
  std::int64_t x = 0;
  for (std::int64_t b = 0; b < m1; ++b) {
    std::int64_t o = rowBase + b * s1;
    for (std::int64_t k = 0; k < m2; ++k, o += s2, ++x) {
      out[o] = store(r1 != nullptr ? r0[x] * w0 + r1[x] * w1 : r0[x] * w0);
    }
  }
}

template <typename Store>
void resampleSeparableWith(const float* src, int channels, const std::int64_t inShape[3], const AxisTable tables[3],
                           float* out, std::int64_t base, const std::int64_t strides[3], Store store) {
  const std::int64_t n0 = inShape[0], n1 = inShape[1], n2 = inShape[2];
  const AxisTable& t0 = tables[0];
  const AxisTable& t1 = tables[1];
  const AxisTable& t2 = tables[2];
  const std::int64_t m0 = t0.size, m1 = t1.size, m2 = t2.size;
  const std::int64_t inSlab = n1 * n2;
  const std::int64_t outSlab = m1 * m2;
  const std::int64_t inCount = n0 * inSlab;
  const std::int64_t outCount = m0 * outSlab;
  const auto tmpSize = static_cast<std::size_t>(std::max(m1 * n2, n1 * m2));
  // trilinear.ts sliceCost and the blend-first choice, in double as there.
  const double perSlice = static_cast<double>((t1.identity || t2.identity) ? 0 : std::min(m1 * n2, n1 * m2)) +
                          static_cast<double>(m1 * m2);
  double used = 0;
  for (std::int64_t q = 0; q < m0; ++q) used += t0.wHi[q] == 0 ? 1 : 2;
  const bool blendFirst =
      t0.identity || static_cast<double>(m0) * (static_cast<double>(inSlab) + perSlice) <=
                         std::min(used, static_cast<double>(n0)) * perSlice + static_cast<double>(m0 * outSlab);
  const bool contiguous = base == 0 && strides[0] == outSlab && strides[1] == m2 && strides[2] == 1;
  // Output slabs q are independent: ranges of them go to the idle cores, each range with its own
  // scratch (and its own slab cache, which only saves work: a slab computed twice is the same).
  const std::int64_t minSlabs = kParallelVoxels / std::max<std::int64_t>(outSlab * channels, 1);

  if (blendFirst) {
    parallelRanges(m0, minSlabs, [&](std::int64_t qBegin, std::int64_t qEnd) {
      std::vector<double> tmp(tmpSize);
      std::vector<double> slab(static_cast<std::size_t>(inSlab));
      std::vector<double> finished(static_cast<std::size_t>(outSlab));
      for (int c = 0; c < channels; ++c) {
        const float* channelIn = src + c * inCount;
        for (std::int64_t q = qBegin; q < qEnd; ++q) {
          const float* s0 = channelIn + t0.lo[q] * inSlab;
          const double w1 = t0.wHi[q];
          if (w1 == 0) {
            resampleSlice(s0, finished.data(), n1, n2, t1, t2, tmp.data());
          } else {
            // trilinear.ts blendSource.
            const float* s1 = channelIn + t0.hi[q] * inSlab;
            const double w0 = t0.wLo[q];
            for (std::int64_t x = 0; x < inSlab; ++x) {
              slab[x] = static_cast<double>(s0[x]) * w0 + static_cast<double>(s1[x]) * w1;
            }
            resampleSlice(slab.data(), finished.data(), n1, n2, t1, t2, tmp.data());
          }
          blendSlabs(out, c * outCount + base + q * strides[0], m1, m2, strides[1], strides[2], contiguous,
                     finished.data(), 1, nullptr, 0, store);
        }
      }
    });
    return;
  }

  parallelRanges(m0, minSlabs, [&](std::int64_t qBegin, std::int64_t qEnd) {
    std::vector<double> tmp(tmpSize);
    // trilinear.ts SlabCache: the last two source slabs resampled in 2-D, least recently used out.
    std::vector<double> slabs[2] = {std::vector<double>(static_cast<std::size_t>(outSlab)),
                                    std::vector<double>(static_cast<std::size_t>(outSlab))};
    std::int64_t keys[2];
    std::int64_t lastUse[2] = {0, 0};
    std::int64_t clock = 0;
    auto get = [&](std::int64_t offset, std::int64_t i) -> const double* {
      const std::int64_t key = offset + i * inSlab;
      int slot = keys[0] == key ? 0 : keys[1] == key ? 1 : -1;
      if (slot < 0) {
        slot = lastUse[0] <= lastUse[1] ? 0 : 1;
        keys[slot] = key;
        resampleSlice(src + key, slabs[slot].data(), n1, n2, t1, t2, tmp.data());
      }
      lastUse[slot] = ++clock;
      return slabs[slot].data();
    };
    for (int c = 0; c < channels; ++c) {
      const std::int64_t channelIn = c * inCount;
      keys[0] = keys[1] = -1;
      for (std::int64_t q = qBegin; q < qEnd; ++q) {
        const double w1 = t0.wHi[q];
        const double* r0 = get(channelIn, t0.lo[q]);
        const double* r1 = w1 == 0 ? nullptr : get(channelIn, t0.hi[q]);
        blendSlabs(out, c * outCount + base + q * strides[0], m1, m2, strides[1], strides[2], contiguous, r0,
                   t0.wLo[q], r1, w1, store);
      }
    }
  });
}

template <typename Store>
void resampleAffineWith(const float* src, int channels, const std::int64_t inShape[3], const std::int64_t outShape[3],
                        const double xform[16], float* out, std::int64_t base, const std::int64_t strides[3], Store store) {
  const std::int64_t n0 = inShape[0], n1 = inShape[1], n2 = inShape[2];
  const std::int64_t inCount = n0 * n1 * n2;
  const std::int64_t outCount = outShape[0] * outShape[1] * outShape[2];
  const std::int64_t s0 = n1 * n2;
  const std::int64_t s1 = n2;
  const auto visit = [&](std::int64_t, std::int64_t, std::int64_t, double da, double db, double dk, std::int64_t o) {
    const double p0 = affineIndex(xform, 0, da, db, dk, n0);
    const double p1 = affineIndex(xform, 1, da, db, dk, n1);
    const double p2 = affineIndex(xform, 2, da, db, dk, n2);
    // floor of a clamped (non-negative) index without a libm call: truncation, with the sign of a
    // -0.0 kept as Math.floor keeps it (it reaches the weights below).
    const auto i0 = static_cast<std::int64_t>(p0);
    const auto j0 = static_cast<std::int64_t>(p1);
    const auto k0 = static_cast<std::int64_t>(p2);
    const double f0 = std::copysign(static_cast<double>(i0), p0);
    const double f1 = std::copysign(static_cast<double>(j0), p1);
    const double f2 = std::copysign(static_cast<double>(k0), p2);
    const std::int64_t di = i0 < n0 - 1 ? s0 : 0;
    const std::int64_t dj = j0 < n1 - 1 ? s1 : 0;
    const std::int64_t dk0 = k0 < n2 - 1 ? 1 : 0;
    const double wi1 = p0 - f0;
    const double wi0 = f0 + 1 - p0;
    const double wj1 = p1 - f1;
    const double wj0 = f1 + 1 - p1;
    const double wk1 = p2 - f2;
    const double wk0 = f2 + 1 - p2;
    const std::int64_t tap = i0 * s0 + j0 * s1 + k0;
    for (int c = 0; c < channels; ++c) {
      const float* v = src + c * inCount + tap;
      const double v00 = static_cast<double>(v[0]) * wk0 + static_cast<double>(v[dk0]) * wk1;
      const double v01 = static_cast<double>(v[dj]) * wk0 + static_cast<double>(v[dj + dk0]) * wk1;
      const double v10 = static_cast<double>(v[di]) * wk0 + static_cast<double>(v[di + dk0]) * wk1;
      const double v11 = static_cast<double>(v[di + dj]) * wk0 + static_cast<double>(v[di + dj + dk0]) * wk1;
      out[c * outCount + o] = store((v00 * wj0 + v01 * wj1) * wi0 + (v10 * wj0 + v11 * wj1) * wi1);
    }
  };
  // Slabs a are independent: ranges of them go to the idle cores.
  const std::int64_t slab = std::max<std::int64_t>(outShape[1] * outShape[2] * channels, 1);
  parallelRanges(outShape[0], kParallelVoxels / slab, [&](std::int64_t aBegin, std::int64_t aEnd) {
    forEachLaidOutVoxel(aBegin, aEnd, outShape, base, strides, visit);
  });
}

}  // namespace

void resampleSeparable(const float* src, int channels, const std::int64_t inShape[3], const AxisTable tables[3],
                       float* out, std::int64_t base, const std::int64_t strides[3], const IntensityWindow* window) {
  if (window != nullptr) {
    resampleSeparableWith(src, channels, inShape, tables, out, base, strides, WindowedStore{*window});
  } else {
    resampleSeparableWith(src, channels, inShape, tables, out, base, strides, PlainStore{});
  }
}

void resampleAffine(const float* src, int channels, const std::int64_t inShape[3], const std::int64_t outShape[3],
                    const double xform[16], float* out, std::int64_t base, const std::int64_t strides[3],
                    const IntensityWindow* window) {
  if (window != nullptr) {
    resampleAffineWith(src, channels, inShape, outShape, xform, out, base, strides, WindowedStore{*window});
  } else {
    resampleAffineWith(src, channels, inShape, outShape, xform, out, base, strides, PlainStore{});
  }
}

void gatherStrided(const float* src, int channels, const std::int64_t outShape[3], const std::int64_t strides[3],
                   std::int64_t base, float* dst) {
  const std::int64_t m0 = outShape[0], m1 = outShape[1], m2 = outShape[2];
  const std::int64_t count = m0 * m1 * m2;
  // 16^3 blocks: whichever output axis the source runs along contiguously, a block's reads stay
  // within a few hundred cache lines (a permutation makes the innermost source stride large).
  constexpr std::int64_t kBlock = 16;
  for (int c = 0; c < channels; ++c) {
    const float* in = src + c * count + base;
    float* out = dst + c * count;
    for (std::int64_t a0 = 0; a0 < m0; a0 += kBlock) {
      const std::int64_t a1 = std::min(a0 + kBlock, m0);
      for (std::int64_t b0 = 0; b0 < m1; b0 += kBlock) {
        const std::int64_t b1 = std::min(b0 + kBlock, m1);
        for (std::int64_t k0 = 0; k0 < m2; k0 += kBlock) {
          const std::int64_t k1 = std::min(k0 + kBlock, m2);
          for (std::int64_t a = a0; a < a1; ++a) {
            for (std::int64_t b = b0; b < b1; ++b) {
              const float* row = in + a * strides[0] + b * strides[1];
              float* o = out + (a * m1 + b) * m2;
              for (std::int64_t k = k0; k < k1; ++k) o[k] = row[k * strides[2]];
            }
          }
        }
      }
    }
  }
}

void summarizeLabels(const std::uint8_t* mask, const std::int64_t dims[3], double stats[10]) {
  const std::int64_t n0 = dims[0], n1 = dims[1], n2 = dims[2];
  std::int64_t count = 0;
  std::int64_t lo[3] = {n0, n1, n2};
  std::int64_t hi[3] = {-1, -1, -1};
  std::int64_t sum[3] = {0, 0, 0};
  for (std::int64_t i = 0; i < n0; ++i) {
    for (std::int64_t j = 0; j < n1; ++j) {
      const std::uint8_t* row = mask + (i * n1 + j) * n2;
      std::int64_t rowCount = 0;
      std::int64_t rowSum = 0;
      std::int64_t first = -1;
      std::int64_t last = -1;
      std::int64_t k = 0;
      while (k < n2) {
        // Masks are mostly background: skip it eight voxels at a time.
        if (k + 8 <= n2) {
          std::uint64_t word;
          std::memcpy(&word, row + k, sizeof word);
          if (word == 0) {
            k += 8;
            continue;
          }
        }
        const std::int64_t end = std::min(k + 8, n2);
        for (; k < end; ++k) {
          if (row[k] == 0) continue;
          if (first < 0) first = k;
          last = k;
          ++rowCount;
          rowSum += k;
        }
      }
      if (rowCount == 0) continue;
      count += rowCount;
      sum[0] += i * rowCount;
      sum[1] += j * rowCount;
      sum[2] += rowSum;
      lo[0] = std::min(lo[0], i);
      hi[0] = std::max(hi[0], i);
      lo[1] = std::min(lo[1], j);
      hi[1] = std::max(hi[1], j);
      lo[2] = std::min(lo[2], first);
      hi[2] = std::max(hi[2], last);
    }
  }
  stats[0] = static_cast<double>(count);
  for (int d = 0; d < 3; ++d) {
    stats[1 + d] = static_cast<double>(lo[d]);
    stats[4 + d] = static_cast<double>(hi[d]);
    stats[7 + d] = static_cast<double>(sum[d]);
  }
}

std::int64_t decideCorners(const float* logits, const std::int64_t dims[3], double margin, std::uint8_t* state,
                           std::uint8_t* rowIsBackground) {
  constexpr std::uint8_t kBackground = 1, kForeground = 2, kUndecided = 3;
  const std::int64_t n0 = dims[0], n1 = dims[1], n2 = dims[2];
  const std::int64_t voxels = n0 * n1 * n2;
  bool finite = true;
  for (std::int64_t v = 0; v < voxels; ++v) {
    const double d = static_cast<double>(logits[voxels + v]) - static_cast<double>(logits[v]);
    state[v] = d < -margin ? kBackground : d > margin ? kForeground : kUndecided;
    finite = finite && d > -HUGE_VAL && d < HUGE_VAL;
  }
  if (!finite) return -1;
  for (std::int64_t row = 0; row < n0 * n1; ++row) {
    std::uint8_t* s = state + row * n2;
    for (std::int64_t k = 0; k < n2 - 1; ++k) s[k] |= s[k + 1];
  }
  for (std::int64_t i = 0; i < n0; ++i) {
    for (std::int64_t j = 0; j < n1 - 1; ++j) {
      std::uint8_t* s = state + (i * n1 + j) * n2;
      for (std::int64_t k = 0; k < n2; ++k) s[k] |= s[n2 + k];
    }
  }
  const std::int64_t slab = n1 * n2;
  std::int64_t undecided = 0;
  for (std::int64_t i = 0; i < n0; ++i) {
    const std::int64_t next = i < n0 - 1 ? slab : 0;
    for (std::int64_t j = 0; j < n1; ++j) {
      std::uint8_t* s = state + i * slab + j * n2;
      std::uint8_t any = 0;
      std::int64_t rowUndecided = 0;
      for (std::int64_t k = 0; k < n2; ++k) {
        const std::uint8_t value = static_cast<std::uint8_t>(s[k] | s[next + k]);
        s[k] = value;
        any |= value;
        rowUndecided += value == kUndecided;
      }
      undecided += rowUndecided;
      rowIsBackground[i * n1 + j] = any == kBackground ? 1 : 0;
    }
  }
  return undecided;
}

std::int64_t affineCubeLabels(const std::uint8_t* cube, const std::int64_t gridDims[3], const double xform[16],
                              const std::int64_t outShape[3], std::uint8_t* labels, std::int64_t base,
                              const std::int64_t strides[3], std::int32_t* undecided, std::int64_t capacity) {
  constexpr std::uint8_t kBackground = 1, kForeground = 2;
  // Everything the scan reads is copied into locals first (as tableCubeLabels does): its uint8
  // label stores may alias anything reached through a pointer or a reference (the map, the
  // shapes, a closure's members), which would make the compiler reload those every voxel.
  double x[12];
  for (int e = 0; e < 12; ++e) x[e] = xform[e];
  const std::int64_t n0 = gridDims[0], n1 = gridDims[1], n2 = gridDims[2];
  const std::int64_t m0 = outShape[0], m1 = outShape[1], m2 = outShape[2];
  const std::int64_t s0 = strides[0], s1 = strides[1], s2 = strides[2];
  const std::uint8_t* const cubes = cube;
  std::uint8_t* const out = labels;
  std::int32_t* const list = undecided;
  const std::int64_t room = capacity;
  std::int64_t count = 0;
  // One thread: the count and the list are shared (the undecided voxels are few anyway).
  for (std::int64_t a = 0; a < m0; ++a) {
    const double da = static_cast<double>(a);
    for (std::int64_t b = 0; b < m1; ++b) {
      const double db = static_cast<double>(b);
      std::int64_t o = base + a * s0 + b * s1;
      for (std::int64_t k = 0; k < m2; ++k, o += s2) {
        const double dk = static_cast<double>(k);
        // resampleAffine's index and clamp, so the cube is the one whose taps it reads (the
        // clamped index is non-negative: truncation is its floor).
        const auto i0 = static_cast<std::int64_t>(affineIndex(x, 0, da, db, dk, n0));
        const auto j0 = static_cast<std::int64_t>(affineIndex(x, 1, da, db, dk, n1));
        const auto k0 = static_cast<std::int64_t>(affineIndex(x, 2, da, db, dk, n2));
        const std::uint8_t state = cubes[(i0 * n1 + j0) * n2 + k0];
        // Every label is written (the caller need not zero them): 1 only under foreground cubes.
        out[o] = state == kForeground ? 1 : 0;
        if (state == kBackground || state == kForeground) continue;
        if (count < room) list[count] = static_cast<std::int32_t>((a * m1 + b) * m2 + k);
        ++count;
      }
    }
  }
  return count;
}

std::int64_t tableCubeLabels(const std::uint8_t* cube, const std::int64_t gridDims[3], const std::uint8_t* rowIsBackground,
                             const AxisTable tables[3], std::uint8_t* labels, std::int64_t base,
                             const std::int64_t strides[3], std::int32_t* undecided, std::int64_t capacity) {
  constexpr std::uint8_t kBackground = 1, kForeground = 2;
  const std::int64_t n1 = gridDims[1], n2 = gridDims[2];
  const std::int64_t m0 = tables[0].size, m1 = tables[1].size, m2 = tables[2].size;
  const std::int32_t* lo2 = tables[2].lo;
  // Output slabs [aBegin, aEnd); lists the undecided voxels in scan order into list[0, room).
  // (Everything it reads is copied into locals first: the uint8 label stores may alias anything
  // reached through a reference, which would make the compiler reload it every voxel: 3x slower.)
  const std::int32_t* const lo0 = tables[0].lo;
  const std::int32_t* const lo1 = tables[1].lo;
  const std::int64_t s0 = strides[0], s1 = strides[1], s2 = strides[2];
  const auto scan = [=](std::int64_t aBegin, std::int64_t aEnd, std::int32_t* list, std::int64_t room) {
    // The closure's members too (they are reached through its pointer).
    std::uint8_t* const out = labels;
    const std::uint8_t* const cubes = cube;
    const std::uint8_t* const background = rowIsBackground;
    const std::int32_t* const t0 = lo0;
    const std::int32_t* const t1 = lo1;
    const std::int32_t* const t2 = lo2;
    const std::int64_t r1 = m1, r2 = m2, g1 = n1, g2 = n2, first = base, d0 = s0, d1 = s1, d2 = s2;
    std::int64_t count = 0;
    for (std::int64_t a = aBegin; a < aEnd; ++a) {
      const std::int64_t i = t0[a];
      for (std::int64_t b = 0; b < r1; ++b) {
        const std::int64_t j = t1[b];
        std::int64_t o = first + a * d0 + b * d1;
        // Every label is written (the caller need not zero them): 1 only under foreground cubes.
        if (background[i * g1 + j]) {
          for (std::int64_t k = 0; k < r2; ++k, o += d2) out[o] = 0;
          continue;
        }
        const std::uint8_t* row = cubes + (i * g1 + j) * g2;
        for (std::int64_t k = 0; k < r2; ++k, o += d2) {
          const std::uint8_t state = row[t2[k]];
          out[o] = state == kForeground ? 1 : 0;
          if (state == kBackground || state == kForeground) continue;
          if (count < room) list[count] = static_cast<std::int32_t>((a * r1 + b) * r2 + k);
          ++count;
        }
      }
    }
    return count;
  };
  // One thread: split over 2 by output slabs it was no faster (the label stores' page faults and
  // memory bound it), measured on the large phantom.
  return scan(0, m0, undecided, capacity);
}

namespace {

// One window's part of one accumulator row: values in[0 .. k1 - k0) (weighted by w when given)
// land on row[k0 .. k1), of which row[0 .. end) already holds a sum: added there, stored (as
// x + 0.0f, the bits of 0.0f + x: -0 -> +0, NaN kept) beyond. A gap [end, k0) is zeroed first.
inline void stitchRowSegment(float* __restrict row, const float* __restrict in, const float* __restrict w,
                             std::int64_t k0, std::int64_t k1, std::int64_t end) {
  if (end < k0) {
    std::fill(row + end, row + k0, 0.0f);
    end = k0;
  }
  const std::int64_t addEnd = std::min(k1, end);
  float* out = row + k0;
  const std::int64_t adds = addEnd - k0;
  const std::int64_t length = k1 - k0;
  if (w == nullptr) {
    for (std::int64_t k = 0; k < adds; ++k) out[k] += in[k];
    for (std::int64_t k = std::max<std::int64_t>(adds, 0); k < length; ++k) out[k] = in[k] + 0.0f;
  } else {
    for (std::int64_t k = 0; k < adds; ++k) {
      const float weighted = in[k] * w[k];  // rounded to float32 before the add
      out[k] += weighted;
    }
    for (std::int64_t k = std::max<std::int64_t>(adds, 0); k < length; ++k) {
      const float weighted = in[k] * w[k];
      out[k] = weighted + 0.0f;
    }
  }
}

}  // namespace

void stitchWindows(float* acc, const std::int64_t dims[3], int channels, const float* logits,
                   const WindowPlacement* placements, std::int64_t count, const float* importance, float* weightSum,
                   std::int32_t* covered, std::int64_t threads) {
  if (count <= 0) return;
  const WindowPlacement* p = placements;
  const std::int64_t roiVolume = p[0].roi[0] * p[0].roi[1] * p[0].roi[2];
  const std::int64_t voxels = dims[0] * dims[1] * dims[2];
  // The union's bounding box in (i, j); windows with no voxel in the volume take no part.
  std::int64_t iBegin = dims[0], iEnd = 0, jBegin = dims[1], jEnd = 0;
  for (std::int64_t q = 0; q < count; ++q) {
    if (p[q].lo[0] >= p[q].hi[0] || p[q].lo[1] >= p[q].hi[1] || p[q].lo[2] >= p[q].hi[2]) continue;
    iBegin = std::min(iBegin, p[q].lo[0] + p[q].shift[0]);
    iEnd = std::max(iEnd, p[q].hi[0] + p[q].shift[0]);
    jBegin = std::min(jBegin, p[q].lo[1] + p[q].shift[1]);
    jEnd = std::max(jEnd, p[q].hi[1] + p[q].shift[1]);
  }
  if (iBegin >= iEnd || jBegin >= jEnd) return;
  const bool weighted = importance != nullptr;
  const auto rows = [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = iBegin + begin; i < iBegin + end; ++i) {
      for (std::int64_t j = jBegin; j < jEnd; ++j) {
        const std::int64_t rowIndex = i * dims[1] + j;
        // Without state every voxel already holds a sum: all adds.
        std::int64_t filled = covered != nullptr ? std::clamp<std::int64_t>(covered[rowIndex], 0, dims[2]) : dims[2];
        const std::int64_t before = filled;
        for (std::int64_t q = 0; q < count; ++q) {
          const WindowPlacement& w = p[q];
          const std::int64_t a = i - w.shift[0];
          const std::int64_t b = j - w.shift[1];
          if (a < w.lo[0] || a >= w.hi[0] || b < w.lo[1] || b >= w.hi[1] || w.lo[2] >= w.hi[2]) continue;
          const std::int64_t local = (a * w.roi[1] + b) * w.roi[2] + w.lo[2];
          const std::int64_t k0 = w.lo[2] + w.shift[2];
          const std::int64_t k1 = w.hi[2] + w.shift[2];
          const float* weights = weighted ? importance + local : nullptr;
          for (int c = 0; c < channels; ++c) {
            stitchRowSegment(acc + c * voxels + rowIndex * dims[2], logits + (q * channels + c) * roiVolume + local,
                             weights, k0, k1, filled);
          }
          // The weights' sum: the same segment rule with the weights as the values.
          if (weighted && weightSum != nullptr) stitchRowSegment(weightSum + rowIndex * dims[2], weights, nullptr, k0, k1, filled);
          filled = std::max(filled, k1);
        }
        if (covered != nullptr && filled != before) covered[rowIndex] = static_cast<std::int32_t>(filled);
      }
    }
  };
  const std::int64_t rowVoxels = (jEnd - jBegin) * dims[2] * channels;
  if (threads <= 1) {
    rows(0, iEnd - iBegin);
    return;
  }
  parallelRanges(iEnd - iBegin, std::max<std::int64_t>(kParallelVoxels / std::max<std::int64_t>(rowVoxels, 1), 1), rows);
}

bool populatePages(std::uint8_t* data, std::size_t bytes, std::int64_t parts, bool hugePages) {
#if defined(__linux__)
  constexpr int kPopulateWrite = 23;  // MADV_POPULATE_WRITE, absent from older headers
  constexpr std::uintptr_t kPage = 4096;
  constexpr std::size_t kStep = std::size_t{2} << 20;
  if (hugePages) adviseHugePages(data, bytes);
  const std::int64_t count = std::max<std::int64_t>(parts, 1);
  const std::size_t part = bytes / static_cast<std::size_t>(count);
  for (std::size_t offset = 0;; offset += kStep) {
    bool any = false;
    for (std::int64_t p = 0; p < count; ++p) {
      const std::size_t partBegin = static_cast<std::size_t>(p) * part;
      const std::size_t partEnd = p == count - 1 ? bytes : partBegin + part;
      const std::size_t from = partBegin + offset;
      if (from >= partEnd) continue;
      any = true;
      // madvise takes page-aligned starts: from the page holding `from` (populating the bytes
      // before it, ours or the allocator's, changes nothing).
      const auto begin = reinterpret_cast<std::uintptr_t>(data + from) & ~(kPage - 1);
      const auto end = reinterpret_cast<std::uintptr_t>(data + std::min(from + kStep, partEnd));
      if (madvise(reinterpret_cast<void*>(begin), end - begin, kPopulateWrite) != 0) return false;
    }
    if (!any) break;
  }
  return true;
#else
  (void)data;
  (void)bytes;
  (void)parts;
  (void)hugePages;
  return false;
#endif
}

void zeroUncovered(float* acc, const std::int64_t dims[3], int channels, const std::int32_t* covered, float* weightSum) {
  const std::int64_t voxels = dims[0] * dims[1] * dims[2];
  const std::int64_t rowCount = dims[0] * dims[1];
  for (std::int64_t r = 0; r < rowCount; ++r) {
    const std::int64_t from = std::clamp<std::int64_t>(covered[r], 0, dims[2]);
    if (from == dims[2]) continue;
    for (int c = 0; c < channels; ++c) {
      float* row = acc + c * voxels + r * dims[2];
      std::fill(row + from, row + dims[2], 0.0f);
    }
    if (weightSum != nullptr) std::fill(weightSum + r * dims[2] + from, weightSum + (r + 1) * dims[2], 0.0f);
  }
}

void setKernelThreads(std::int64_t threads, bool split) {
  maxThreads.store(std::clamp<std::int64_t>(threads, 1, kMaxThreads), std::memory_order_relaxed);
  forceSplit.store(split, std::memory_order_relaxed);
}

// fdlibm's __ieee754_exp (Sun Microsystems, 1993: "Permission to use, copy, modify, and
// distribute this software is freely granted, provided that this notice is preserved"), the
// algorithm V8 runs for Math.exp: x = k ln2 + r with |r| <= ln2 / 2, exp(r) from a degree-5
// rational approximation, scaled by 2^k. V8 returns E for exp(1) exactly; so does this.
double jsExp(double x) {
  constexpr double kLn2Hi[2] = {6.93147180369123816490e-01, -6.93147180369123816490e-01};
  constexpr double kLn2Lo[2] = {1.90821492927058770002e-10, -1.90821492927058770002e-10};
  constexpr double kHalf[2] = {0.5, -0.5};
  constexpr double kInvLn2 = 1.44269504088896338700e+00;
  constexpr double kP1 = 1.66666666666666019037e-01, kP2 = -2.77777777770155933842e-03, kP3 = 6.61375632143793436117e-05,
                   kP4 = -1.65339022054652515390e-06, kP5 = 4.13813679705723846039e-08;
  constexpr double kOverflow = 7.09782712893383973096e+02, kUnderflow = -7.45133219101941108420e+02;
  constexpr double kTwoM1000 = 9.33263618503218878990e-302;  // 2^-1000
  constexpr double kTwo1023 = 8.988465674311579539e307;      // 2^1023
  std::uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const auto high = static_cast<std::uint32_t>(bits >> 32);
  const int sign = static_cast<int>(high >> 31);
  const std::uint32_t magnitude = high & 0x7fffffffu;
  if (magnitude >= 0x40862E42u) {  // |x| >= 709.78..., or not finite
    if (magnitude >= 0x7ff00000u) {
      if (((magnitude & 0xfffffu) | static_cast<std::uint32_t>(bits)) != 0) return x + x;  // NaN
      return sign == 0 ? x : 0.0;
    }
    if (x > kOverflow) return HUGE_VAL;
    if (x < kUnderflow) return 0.0;
  }
  double hi = 0.0, lo = 0.0;
  int k = 0;
  if (magnitude > 0x3FD62E42u) {    // |x| > ln2 / 2
    if (magnitude < 0x3FF0A2B2u) {  // and |x| < 1.5 ln2
      if (x == 1.0) return 2.718281828459045;
      hi = x - kLn2Hi[sign];
      lo = kLn2Lo[sign];
      k = 1 - sign - sign;
    } else {
      k = static_cast<int>(kInvLn2 * x + kHalf[sign]);
      const double t = k;
      hi = x - t * kLn2Hi[0];
      lo = t * kLn2Lo[0];
    }
    x = hi - lo;
  } else if (magnitude < 0x3E300000u) {  // |x| < 2^-28
    return 1.0 + x;
  }
  const double t = x * x;
  const double c = x - t * (kP1 + t * (kP2 + t * (kP3 + t * (kP4 + t * kP5))));
  if (k == 0) return 1.0 - ((x * c) / (c - 2.0) - x);
  const double y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi);
  if (k >= -1021) {
    if (k == 1024) return y * 2.0 * kTwo1023;
    const std::uint64_t scale = static_cast<std::uint64_t>(0x3ff + k) << 52;
    double twopk;
    std::memcpy(&twopk, &scale, sizeof twopk);
    return y * twopk;
  }
  const std::uint64_t scale = static_cast<std::uint64_t>(0x3ff + k + 1000) << 52;
  double twopk;
  std::memcpy(&twopk, &scale, sizeof twopk);
  return y * twopk * kTwoM1000;
}

namespace {

// postprocess.ts softmax2 of spacing-grid voxel v ([2][n] logits), in its float32 steps.
inline void softmax2(const float* logits, std::int64_t n, std::int64_t v, float& p0, float& p1) {
  const float x0 = logits[v];
  const float x1 = logits[n + v];
  const float m = (x1 > x0 || std::isnan(x1)) ? x1 : x0;
  const auto e0 = static_cast<float>(jsExp(static_cast<double>(static_cast<float>(static_cast<double>(x0) - static_cast<double>(m)))));
  const auto e1 = static_cast<float>(jsExp(static_cast<double>(static_cast<float>(static_cast<double>(x1) - static_cast<double>(m)))));
  const auto s = static_cast<float>(static_cast<double>(e0) + static_cast<double>(e1));
  p0 = static_cast<float>(static_cast<double>(e0) / static_cast<double>(s));
  p1 = static_cast<float>(static_cast<double>(e1) / static_cast<double>(s));
}

// The softmax of recently used grid voxels: neighbouring shell voxels share most of their taps.
// A direct-mapped cache; the values are those softmax2 gives, cached or not. Its arrays are
// reached through pointers copied out of the vectors once (the label stores may alias anything,
// vectors' internals included, which would reload them at every tap).
class SoftmaxCache {
 public:
  SoftmaxCache(const float* logits, std::int64_t n)
      : logits_(logits), n_(n), keyStore_(kSize, -1), valueStore_(2 * kSize), keys_(keyStore_.data()),
        values_(valueStore_.data()) {}
  void at(std::int64_t v, float& p0, float& p1) {
    const std::size_t slot = static_cast<std::size_t>(v) & (kSize - 1);
    std::int64_t* const keys = keys_;
    float* const values = values_;
    if (keys[slot] != v) {
      softmax2(logits_, n_, v, values[2 * slot], values[2 * slot + 1]);
      keys[slot] = v;
    }
    p0 = values[2 * slot];
    p1 = values[2 * slot + 1];
  }

 private:
  static constexpr std::size_t kSize = std::size_t{1} << 16;
  const float* logits_;
  std::int64_t n_;
  std::vector<std::int64_t> keyStore_;
  std::vector<float> valueStore_;
  std::int64_t* keys_;
  float* values_;
};

}  // namespace

void blendTableVoxels(const float* logits, const std::int64_t gridDims[3], const AxisTable tables[3],
                      const std::int32_t* undecided, std::int64_t count, std::uint8_t* labels, std::int64_t base,
                      const std::int64_t strides[3]) {
  const std::int64_t n1 = gridDims[1], n2 = gridDims[2];
  const std::int64_t voxels = gridDims[0] * n1 * n2;
  // Ranges of the list over the idle cores, each with its own cache (which only saves work: the
  // values are softmax2's either way); each listed voxel is its own output label.
  parallelRanges(count, kParallelShell, [&](std::int64_t uBegin, std::int64_t uEnd) {
    // Everything the loop reads copied into locals first (as tableCubeLabels does): a uint8 label
    // store may alias anything reached through a pointer, a reference or the closure.
    const std::int32_t* const lo0 = tables[0].lo;
    const std::int32_t* const lo1 = tables[1].lo;
    const std::int32_t* const lo2 = tables[2].lo;
    const std::int32_t* const hi0 = tables[0].hi;
    const std::int32_t* const hi1 = tables[1].hi;
    const std::int32_t* const hi2 = tables[2].hi;
    const double* const wLo0 = tables[0].wLo;
    const double* const wLo1 = tables[1].wLo;
    const double* const wLo2 = tables[2].wLo;
    const double* const wHi0 = tables[0].wHi;
    const double* const wHi1 = tables[1].wHi;
    const double* const wHi2 = tables[2].wHi;
    const std::int64_t m1 = tables[1].size, m2 = tables[2].size, g1 = n1, g2 = n2;
    const std::int64_t s0 = strides[0], s1 = strides[1], s2 = strides[2], first = base;
    const std::int32_t* const list = undecided;
    std::uint8_t* const out = labels;
    SoftmaxCache softmax(logits, voxels);
    for (std::int64_t u = uBegin; u < uEnd; ++u) {
      const std::int64_t q = list[u];
      const std::int64_t q0 = q / (m1 * m2);
      const std::int64_t q1 = q / m2 - q0 * m1;
      const std::int64_t q2 = q - (q0 * m1 + q1) * m2;
      const std::int64_t i = lo0[q0], j = lo1[q1], k = lo2[q2];
      const std::int64_t di = (hi0[q0] - i) * g1 * g2;
      const std::int64_t dj = (hi1[q1] - j) * g2;
      const std::int64_t dk = hi2[q2] - k;
      const std::int64_t v = (i * g1 + j) * g2 + k;
      // The cube's taps in blendIsForeground's order.
      const std::int64_t taps[8] = {v, v + dk, v + dj, v + dj + dk, v + di, v + di + dk, v + di + dj, v + di + dj + dk};
      float p[2][8];
      for (int tap = 0; tap < 8; ++tap) softmax.at(taps[tap], p[0][tap], p[1][tap]);
      const double wi0 = wLo0[q0], wi1 = wHi0[q0], wj0 = wLo1[q1], wj1 = wHi1[q1], wk0 = wLo2[q2], wk1 = wHi2[q2];
      float value[2];
      for (int c = 0; c < 2; ++c) {
        const float* a = p[c];
        const double v00 = static_cast<double>(a[0]) * wk0 + static_cast<double>(a[1]) * wk1;
        const double v01 = static_cast<double>(a[2]) * wk0 + static_cast<double>(a[3]) * wk1;
        const double v10 = static_cast<double>(a[4]) * wk0 + static_cast<double>(a[5]) * wk1;
        const double v11 = static_cast<double>(a[6]) * wk0 + static_cast<double>(a[7]) * wk1;
        value[c] = static_cast<float>((v00 * wj0 + v01 * wj1) * wi0 + (v10 * wj0 + v11 * wj1) * wi1);
      }
      if (value[1] > value[0] || (std::isnan(value[1]) && !std::isnan(value[0]))) {
        out[first + q0 * s0 + q1 * s1 + q2 * s2] = 1;
      }
    }
  });
}

void applyIntensityWindow(const float* in, float* out, std::int64_t count, const IntensityWindow& window) {
  // Element-wise (in may be out): ranges over the idle cores change no value.
  parallelRanges(count, kParallelVoxels, [&](std::int64_t begin, std::int64_t end) {
    windowRange(in + begin, out + begin, end - begin, window);
  });
}

// The element types a NIfTI file's voxels come in (int64 arrives as float64, see nifti-voxels.ts),
// and those the writer produces.
template void fileToCOrder<std::int8_t>(const std::int8_t*, float*, const std::int64_t*, std::int64_t, double, double);
template void fileToCOrder<std::uint8_t>(const std::uint8_t*, float*, const std::int64_t*, std::int64_t, double, double);
template void fileToCOrder<std::int16_t>(const std::int16_t*, float*, const std::int64_t*, std::int64_t, double, double);
template void fileToCOrder<std::uint16_t>(const std::uint16_t*, float*, const std::int64_t*, std::int64_t, double, double);
template void fileToCOrder<std::int32_t>(const std::int32_t*, float*, const std::int64_t*, std::int64_t, double, double);
template void fileToCOrder<std::uint32_t>(const std::uint32_t*, float*, const std::int64_t*, std::int64_t, double, double);
template void fileToCOrder<float>(const float*, float*, const std::int64_t*, std::int64_t, double, double);
template void fileToCOrder<double>(const double*, float*, const std::int64_t*, std::int64_t, double, double);
template void fileToCOrderBlock<std::int8_t>(const std::int8_t*, float*, const std::int64_t*, std::int64_t, std::int64_t, std::int64_t,
                                       std::int64_t, double, double);
template void fileToCOrderBlock<std::uint8_t>(const std::uint8_t*, float*, const std::int64_t*, std::int64_t, std::int64_t, std::int64_t,
                                       std::int64_t, double, double);
template void fileToCOrderBlock<std::int16_t>(const std::int16_t*, float*, const std::int64_t*, std::int64_t, std::int64_t, std::int64_t,
                                       std::int64_t, double, double);
template void fileToCOrderBlock<std::uint16_t>(const std::uint16_t*, float*, const std::int64_t*, std::int64_t, std::int64_t, std::int64_t,
                                       std::int64_t, double, double);
template void fileToCOrderBlock<std::int32_t>(const std::int32_t*, float*, const std::int64_t*, std::int64_t, std::int64_t, std::int64_t,
                                       std::int64_t, double, double);
template void fileToCOrderBlock<std::uint32_t>(const std::uint32_t*, float*, const std::int64_t*, std::int64_t, std::int64_t, std::int64_t,
                                       std::int64_t, double, double);
template void fileToCOrderBlock<float>(const float*, float*, const std::int64_t*, std::int64_t, std::int64_t, std::int64_t,
                                       std::int64_t, double, double);
template void fileToCOrderBlock<double>(const double*, float*, const std::int64_t*, std::int64_t, std::int64_t, std::int64_t,
                                       std::int64_t, double, double);

#define SPLEEN_TRT_C_TO_FILE(Source, Target)                                                      \
  template void cToFileOrder<Source, Target>(const Source*, Target*, const std::int64_t*, std::int64_t, \
                                             std::int64_t, std::int64_t, bool, double, double);
#define SPLEEN_TRT_C_TO_FILE_ALL(Source)        \
  SPLEEN_TRT_C_TO_FILE(Source, std::uint8_t)    \
  SPLEEN_TRT_C_TO_FILE(Source, std::int16_t)    \
  SPLEEN_TRT_C_TO_FILE(Source, std::int32_t)    \
  SPLEEN_TRT_C_TO_FILE(Source, float)           \
  SPLEEN_TRT_C_TO_FILE(Source, double)
SPLEEN_TRT_C_TO_FILE_ALL(float)
SPLEEN_TRT_C_TO_FILE_ALL(std::uint8_t)
#undef SPLEEN_TRT_C_TO_FILE_ALL
#undef SPLEEN_TRT_C_TO_FILE

}  // namespace spleen_trt::core::kernels
