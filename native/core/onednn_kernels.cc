#include "core/onednn_kernels.h"

#include <algorithm>
#include <cstring>

namespace spleen_trt::core::onednn {

namespace {

// Offset of element (n, c, z, y, x) and the distance between neighbours along x.
struct Indexer {
  const TensorView& v;
  std::int64_t blocks() const { return v.block > 0 ? (v.c + v.block - 1) / v.block : v.c; }
  std::int64_t xStride() const { return v.block > 0 ? v.block : v.block == kChannelsLast ? v.c : 1; }
  std::int64_t at(std::int64_t n, std::int64_t c, std::int64_t z, std::int64_t y, std::int64_t x) const {
    if (v.block == 0) return (((n * v.c + c) * v.d + z) * v.h + y) * v.w + x;
    if (v.block == kChannelsLast) return (((n * v.d + z) * v.h + y) * v.w + x) * v.c + c;
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

constexpr std::int64_t kChunk = 16;  // one AVX-512 register of floats
// GCC/Clang vector extension: one zmm register with AVX-512, two ymm with AVX2, four xmm else
// (plain loops over float[16] were vectorized badly: measured 4x slower).
typedef float Chunk __attribute__((vector_size(kChunk * sizeof(float))));


// out[x] = bias + sum over r of taps[3r] * rows[r][x - 1] + taps[3r + 1] * rows[r][x] +
// taps[3r + 2] * rows[r][x + 1], zero outside [0, width). Chunks of kChunk outputs whose inputs
// lie inside the row (x from 1; the last chunk overlaps the one before) keep their accumulator in a
// register across all rows; x = 0 and x = width - 1 (and rows narrower than a chunk) go scalar.
SPLEEN_TRT_VECTOR_CLONES
void convRow(float* __restrict out, const float* const* rows, const float* __restrict taps, int rowCount, std::int64_t width, float bias) {
  std::int64_t scalarFrom = 0;  // outputs [scalarFrom, width) and 0 are computed scalar
  if (width >= kChunk + 2) {
    // Chunk starts 1, 1 + kChunk, ... and width - 1 - kChunk last, three at a time (three
    // independent accumulator chains; a group past the end repeats the last start).
    const std::int64_t lastStart = width - 1 - kChunk;
    const std::int64_t chunks = (lastStart - 1 + kChunk - 1) / kChunk + 1;
    for (std::int64_t c = 0; c < chunks; c += 3) {
      std::int64_t x[3];
      for (std::int64_t k = 0; k < 3; ++k) x[k] = std::min(1 + (c + k) * kChunk, lastStart);
      Chunk a0 = Chunk{} + bias, a1 = a0, a2 = a0;
      for (int r = 0; r < rowCount; ++r) {
        const float* p = rows[r] - 1;
        const float w0 = taps[3 * r], w1 = taps[3 * r + 1], w2 = taps[3 * r + 2];
        Chunk v[9];  // (no helper returning a Chunk: a vector crossing a call changes the ABI)
        for (int k = 0; k < 9; ++k) std::memcpy(&v[k], p + x[k / 3] + k % 3, sizeof(Chunk));
        a0 += w0 * v[0] + w1 * v[1] + w2 * v[2];
        a1 += w0 * v[3] + w1 * v[4] + w2 * v[5];
        a2 += w0 * v[6] + w1 * v[7] + w2 * v[8];
      }
      std::memcpy(out + x[0], &a0, sizeof a0);
      std::memcpy(out + x[1], &a1, sizeof a1);
      std::memcpy(out + x[2], &a2, sizeof a2);
    }
    scalarFrom = width - 1;
  }
  for (std::int64_t x = 0; x < width; x = (x == 0 && scalarFrom > 1) ? scalarFrom : x + 1) {
    float a = bias;
    for (int r = 0; r < rowCount; ++r) {
      const float* p = rows[r];
      if (x > 0) a += taps[3 * r] * p[x - 1];
      a += taps[3 * r + 1] * p[x];
      if (x + 1 < width) a += taps[3 * r + 2] * p[x + 1];
    }
    out[x] = a;
  }
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
        if (b == kChannelsLast && p.view.block == b) {
          // Each voxel's channels are contiguous on both sides.
          for (std::int64_t y = 0; y < srcView.h; ++y) {
            const float* from = src + s.at(n, p.channel, z, y, 0);
            float* to = dst + d.at(n, dstChannel, 2 * z + pd, 2 * y + ph, pw);
            for (std::int64_t x = 0; x < srcView.w; ++x) {
              std::memcpy(to + 2 * x * dstView.c, from + x * p.view.c, static_cast<std::size_t>(channels) * sizeof(float));
            }
          }
          continue;
        }
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
    std::vector<const float*> rows(static_cast<std::size_t>(ci * 9));
    std::vector<float> taps(static_cast<std::size_t>(ci * 27));
    std::vector<float> acc(static_cast<std::size_t>(width));
    std::vector<std::int64_t> tapOf(static_cast<std::size_t>(ci * 9));  // row -> its weights' offset
    for (std::int64_t item = begin; item < end; ++item) {
      const std::int64_t n = item / depth;
      const std::int64_t z = item % depth;
      for (std::int64_t y = 0; y < height; ++y) {
        // The input rows in reach (rows past the volume's faces are skipped: zero padding).
        int rowCount = 0;
        for (std::int64_t i = 0; i < ci; ++i) {
          for (int kz = 0; kz < 3; ++kz) {
            const std::int64_t zz = z + kz - 1;
            if (zz < 0 || zz >= depth) continue;
            for (int ky = 0; ky < 3; ++ky) {
              const std::int64_t yy = y + ky - 1;
              if (yy < 0 || yy >= height) continue;
              rows[static_cast<std::size_t>(rowCount)] = src + ((n * ci + i) * depth + zz) * plane + yy * width;
              tapOf[static_cast<std::size_t>(rowCount)] = i * 27 + kz * 9 + ky * 3;
              ++rowCount;
            }
          }
        }
        for (std::int64_t o = 0; o < co; ++o) {
          for (int r = 0; r < rowCount; ++r) {
            const float* w = weights.data() + o * ci * 27 + tapOf[static_cast<std::size_t>(r)];
            taps[static_cast<std::size_t>(3 * r)] = w[0];
            taps[static_cast<std::size_t>(3 * r + 1)] = w[1];
            taps[static_cast<std::size_t>(3 * r + 2)] = w[2];
          }
          convRow(acc.data(), rows.data(), taps.data(), rowCount, width, bias[static_cast<std::size_t>(o)]);
          const std::int64_t offset = ((n * co + o) * depth + z) * plane + y * width;
          finishRow(acc.data(), postOps, add != nullptr ? add + offset : nullptr, dst + offset, width);
        }
      }
    }
  });
}

}  // namespace spleen_trt::core::onednn
