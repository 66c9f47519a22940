// The few layers of the oneDNN network that run faster as plain C++ loops than as oneDNN 2.6
// primitives on this kind of CPU (measured: bench/onednn-profile.mjs):
// - depth-to-space of a sub-pixel convolution's 8 parities (the up-sampling layers),
// - a 3x3x3 stride-1 convolution between narrow plain tensors (the UNet's last 2->2 conv at full
//   resolution, where oneDNN takes its GEMM path).
// Tensors are [n][c][d][h][w] in either the plain layout (block 0) or oneDNN's channel-blocked one
// (nCdhw<block>c: [n][c / block][d][h][w][c % block], channels padded to a whole block).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

namespace spleen_trt::core::onednn {

// Runs body(begin, end) over [0, count) split among the worker threads; returns when all are done.
using ParallelFor = std::function<void(std::int64_t count, const std::function<void(std::int64_t, std::int64_t)>& body)>;

constexpr int kChannelsLast = -1;

struct TensorView {
  int block = 0;  // 0: plain, kChannelsLast: [n][d][h][w][c]
  std::int64_t n = 1, c = 1, d = 1, h = 1, w = 1;
};

// Where output parity p = (pd * 2 + ph) * 2 + pw of a sub-pixel layer is: channels
// [channel, channel + C) of `data`, a tensor viewed as `view` ([n][..][d][h][w]).
struct ParitySource {
  const float* data = nullptr;
  TensorView view;
  std::int64_t channel = 0;
};

// dst(o + dstChannel, 2z + pd, 2y + ph, 2x + pw) = parity p's (o, z, y, x) for o < channels:
// the depth-to-space of a sub-pixel conv's outputs into its 2x-resolution output (dst may be a
// concatenation's buffer, hence the channel offset).
void depthToSpace(const std::array<ParitySource, 8>& parities, std::int64_t channels, float* dst, const TensorView& dstView,
                  std::int64_t dstChannel, const ParallelFor& parallel);

// A post-op of directConv3, applied in order: leaky ReLU (alpha) or + add (same view as dst).
struct DirectPostOp {
  bool sum = false;
  float alpha = 0.0f;
};

// dst = conv(src, weights [co][ci][3][3][3], bias [co]) with stride 1 and padding 1 on every
// side, then the post-ops; src, dst (and add) plain, same spatial size.
void directConv3(const float* src, const TensorView& srcView, const std::vector<float>& weights, const std::vector<float>& bias,
                 const std::vector<DirectPostOp>& postOps, const float* add, float* dst, const TensorView& dstView,
                 const ParallelFor& parallel);

}  // namespace spleen_trt::core::onednn
