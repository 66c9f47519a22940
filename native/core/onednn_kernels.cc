#include "core/onednn_kernels.h"

#include <algorithm>
#include <cstring>

namespace spleen_trt::core::onednn {

namespace {

// Offset of element (n, c, z, y, x) and the distance between neighbours along x.
struct Indexer {
  const TensorView& v;
  std::int64_t blocks() const { return v.block > 0 ? (v.c + v.block - 1) / v.block : v.c; }
  std::int64_t xStride() const { return v.block > 0 ? v.block : 1; }
  std::int64_t at(std::int64_t n, std::int64_t c, std::int64_t z, std::int64_t y, std::int64_t x) const {
    if (v.block == 0) return (((n * v.c + c) * v.d + z) * v.h + y) * v.w + x;
    return ((((n * blocks() + c / v.block) * v.d + z) * v.h + y) * v.w + x) * v.block + c % v.block;
  }
};

// The compiler vectorizes these loops; target_clones builds them for AVX-512 and AVX2 as well and
// picks one at load time, so the addon still runs on any x86-64.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SPLEEN_TRT_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SPLEEN_TRT_VECTOR_CLONES
#endif

// acc[x] += w0 * row[x - 1] + w1 * row[x] + w2 * row[x + 1], zero outside [0, width).
SPLEEN_TRT_VECTOR_CLONES
void addRowTaps(float* __restrict acc, const float* __restrict row, std::int64_t width, float w0, float w1, float w2) {
  if (width == 1) {
    acc[0] += w1 * row[0];
    return;
  }
  acc[0] += w1 * row[0] + w2 * row[1];
  for (std::int64_t x = 1; x < width - 1; ++x) acc[x] += w0 * row[x - 1] + w1 * row[x] + w2 * row[x + 1];
  acc[width - 1] += w0 * row[width - 2] + w1 * row[width - 1];
}

SPLEEN_TRT_VECTOR_CLONES
void finishRow(const float* __restrict acc, const std::vector<DirectPostOp>& postOps, const float* __restrict add, float* __restrict out,
               std::int64_t width) {
  std::memcpy(out, acc, static_cast<std::size_t>(width) * sizeof(float));
  for (const DirectPostOp& p : postOps) {
    if (p.sum) {
      for (std::int64_t x = 0; x < width; ++x) out[x] += add[x];
    } else {
      const float alpha = p.alpha;
      for (std::int64_t x = 0; x < width; ++x) out[x] = out[x] > 0.0f ? out[x] : out[x] * alpha;
    }
  }
}

}  // namespace

void depthToSpace(const std::array<ParitySource, 8>& parities, std::int64_t channels, float* dst, const TensorView& dstView,
                  std::int64_t dstChannel, const ParallelFor& parallel) {
  const Indexer d{dstView};
  const TensorView& srcView = parities[0].view;  // all parities have the same n, d, h, w
  parallel(srcView.n * srcView.d, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t item = begin; item < end; ++item) {
      const std::int64_t n = item / srcView.d;
      const std::int64_t z = item % srcView.d;
      for (int parity = 0; parity < 8; ++parity) {
        const int pd = parity >> 2, ph = (parity >> 1) & 1, pw = parity & 1;
        const ParitySource& p = parities[static_cast<std::size_t>(parity)];
        const Indexer s{p.view};
        const float* src = p.data;
        const int b = dstView.block;
        if (b > 0 && p.view.block == b && channels % b == 0 && p.channel % b == 0 && dstChannel % b == 0) {
          // Whole channel blocks: 16 (or 8) contiguous floats per voxel on both sides.
          for (std::int64_t o = 0; o < channels; o += b) {
            for (std::int64_t y = 0; y < srcView.h; ++y) {
              const float* from = src + s.at(n, p.channel + o, z, y, 0);
              float* to = dst + d.at(n, dstChannel + o, 2 * z + pd, 2 * y + ph, pw);
              for (std::int64_t x = 0; x < srcView.w; ++x) {
                std::memcpy(to + 2 * x * b, from + x * b, static_cast<std::size_t>(b) * sizeof(float));
              }
            }
          }
          continue;
        }
        const std::int64_t sx = s.xStride();
        const std::int64_t dx = 2 * d.xStride();
        for (std::int64_t o = 0; o < channels; ++o) {
          for (std::int64_t y = 0; y < srcView.h; ++y) {
            const float* from = src + s.at(n, p.channel + o, z, y, 0);
            float* to = dst + d.at(n, dstChannel + o, 2 * z + pd, 2 * y + ph, pw);
            for (std::int64_t x = 0; x < srcView.w; ++x) to[x * dx] = from[x * sx];
          }
        }
      }
    }
  });
}

void directConv3(const float* src, const TensorView& srcView, const std::vector<float>& weights, const std::vector<float>& bias,
                 const std::vector<DirectPostOp>& postOps, const float* add, float* dst, const TensorView& dstView,
                 const ParallelFor& parallel) {
  const std::int64_t ci = srcView.c, co = dstView.c, depth = srcView.d, height = srcView.h, width = srcView.w;
  const std::int64_t plane = height * width;
  parallel(srcView.n * depth, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> acc(static_cast<std::size_t>(co * width));
    for (std::int64_t item = begin; item < end; ++item) {
      const std::int64_t n = item / depth;
      const std::int64_t z = item % depth;
      for (std::int64_t y = 0; y < height; ++y) {
        for (std::int64_t o = 0; o < co; ++o) std::fill_n(acc.data() + o * width, width, bias[static_cast<std::size_t>(o)]);
        for (std::int64_t i = 0; i < ci; ++i) {
          for (int kz = 0; kz < 3; ++kz) {
            const std::int64_t zz = z + kz - 1;
            if (zz < 0 || zz >= depth) continue;
            for (int ky = 0; ky < 3; ++ky) {
              const std::int64_t yy = y + ky - 1;
              if (yy < 0 || yy >= height) continue;
              const float* row = src + ((n * ci + i) * depth + zz) * plane + yy * width;
              for (std::int64_t o = 0; o < co; ++o) {
                const float* w = weights.data() + ((o * ci + i) * 27 + kz * 9 + ky * 3);
                addRowTaps(acc.data() + o * width, row, width, w[0], w[1], w[2]);
              }
            }
          }
        }
        for (std::int64_t o = 0; o < co; ++o) {
          const std::int64_t offset = ((n * co + o) * depth + z) * plane + y * width;
          finishRow(acc.data() + o * width, postOps, add != nullptr ? add + offset : nullptr, dst + offset, width);
        }
      }
    }
  });
}

}  // namespace spleen_trt::core::onednn
