#include "core/volume_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace spleen_trt::core::kernels {

namespace {

// The transposes work in tiles of 64 (i) x 32 (k) per row j, as the TS ones do, so that the
// strided side of each copy stays in cache.
constexpr std::int64_t kTileI = 64;
constexpr std::int64_t kTileK = 32;

// nifti-voxels.ts toInteger: round half to even (nearbyint in the default rounding mode), clamp,
// NaN -> 0.
inline double toInteger(double v, double lo, double hi) {
  if (!(v > lo)) return v <= lo ? lo : 0.0;
  if (v >= hi) return hi;
  return std::nearbyint(v);
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

void divideByCoverage(float* acc, const std::int64_t dims[3], int channels, const double* c0,
                      const double* c1, const double* c2) {
  const std::int64_t voxels = dims[0] * dims[1] * dims[2];
  for (std::int64_t i = 0; i < dims[0]; ++i) {
    for (std::int64_t j = 0; j < dims[1]; ++j) {
      const double cij = c0[i] * c1[j];
      const std::int64_t row = (i * dims[1] + j) * dims[2];
      for (int c = 0; c < channels; ++c) {
        float* out = acc + c * voxels + row;
        for (std::int64_t k = 0; k < dims[2]; ++k) {
          out[k] = static_cast<float>(static_cast<double>(out[k]) / (cij * c2[k]));
        }
      }
    }
  }
}

void divideByWeights(float* acc, std::int64_t voxels, int channels, const float* weightSum) {
  for (int c = 0; c < channels; ++c) {
    float* out = acc + c * voxels;
    for (std::int64_t v = 0; v < voxels; ++v) out[v] /= weightSum[v];
  }
}

template <typename T>
void fileToCOrder(const T* src, float* out, const std::int64_t dims[3], std::int64_t channels,
                  double slope, double inter) {
  const std::int64_t n0 = dims[0], n1 = dims[1], n2 = dims[2];
  const std::int64_t n12 = n1 * n2;
  const std::int64_t n01 = n0 * n1;
  const std::int64_t volume = n01 * n2;
  const bool multiply = slope != 1.0;
  const bool add = inter != 0.0;
  for (std::int64_t c = 0; c < channels; ++c) {
    const T* in = src + c * volume;
    float* dst = out + c * volume;
    for (std::int64_t k0 = 0; k0 < n2; k0 += kTileK) {
      const std::int64_t k1 = std::min(k0 + kTileK, n2);
      for (std::int64_t i0 = 0; i0 < n0; i0 += kTileI) {
        const std::int64_t i1 = std::min(i0 + kTileI, n0);
        for (std::int64_t j = 0; j < n1; ++j) {
          for (std::int64_t k = k0; k < k1; ++k) {
            const T* s = in + k * n01 + j * n0;
            float* o = dst + j * n2 + k;
            for (std::int64_t i = i0; i < i1; ++i) {
              double v = static_cast<double>(s[i]);
              if (multiply) v *= slope;
              if (add) v += inter;
              o[i * n12] = static_cast<float>(v);
            }
          }
        }
      }
    }
  }
}

template <typename Source, typename Target>
void cToFileOrder(const Source* src, Target* dst, const std::int64_t dims[3], std::int64_t channels,
                  bool integer, double lo, double hi) {
  const std::int64_t n0 = dims[0], n1 = dims[1], n2 = dims[2];
  const std::int64_t n12 = n1 * n2;
  const std::int64_t n01 = n0 * n1;
  const std::int64_t volume = n01 * n2;
  for (std::int64_t c = 0; c < channels; ++c) {
    const Source* in = src + c * volume;
    Target* out = dst + c * volume;
    for (std::int64_t k0 = 0; k0 < n2; k0 += kTileK) {
      const std::int64_t k1 = std::min(k0 + kTileK, n2);
      for (std::int64_t i0 = 0; i0 < n0; i0 += kTileI) {
        const std::int64_t i1 = std::min(i0 + kTileI, n0);
        for (std::int64_t j = 0; j < n1; ++j) {
          for (std::int64_t k = k0; k < k1; ++k) {
            Target* d = out + k * n01 + j * n0;
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
}

void applyIntensityWindow(const float* in, float* out, std::int64_t count, const IntensityWindow& w) {
  if (w.shiftOnly) {
    for (std::int64_t i = 0; i < count; ++i) {
      const float shifted = in[i] - w.a;
      out[i] = static_cast<float>(static_cast<double>(shifted) + static_cast<double>(w.b));
    }
    return;
  }
  const double lo = w.lo;
  const double hi = w.hi;
  for (std::int64_t i = 0; i < count; ++i) {
    const float shifted = in[i] - w.a;
    float scaled = static_cast<float>(static_cast<double>(shifted) * w.reciprocal);
    if (w.scale != 1.0f) scaled = scaled * w.scale;
    double v = static_cast<double>(scaled) + static_cast<double>(w.b);
    if (w.clip) {
      v = v < lo ? lo : v;
      v = v > hi ? hi : v;
    }
    out[i] = static_cast<float>(v);
  }
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

#define SPLEEN_TRT_C_TO_FILE(Source, Target)                                                      \
  template void cToFileOrder<Source, Target>(const Source*, Target*, const std::int64_t*, std::int64_t, bool, \
                                             double, double);
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
