// The few layers of the oneDNN network that run faster as plain C++ loops than as oneDNN 2.6
// primitives on this kind of CPU (measured: bench/onednn-profile.mjs):
// - depth-to-space of a sub-pixel convolution's 8 parities (the up-sampling layers),
// - a 3x3x3 stride-1 convolution between narrow plain tensors (the UNet's last 2->2 conv at full
//   resolution, where oneDNN takes its GEMM path).
// Tensors are [n][c][d][h][w] in either the plain layout (block 0) or oneDNN's channel-blocked one
// (nCdhw<block>c: [n][c / block][d][h][w][c % block], channels padded to a whole block).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace spleen_trt::core::onednn {

// Runs body(begin, end) over [0, count) split among the worker threads; returns when all are done.
using ParallelFor = std::function<void(std::int64_t count, const std::function<void(std::int64_t, std::int64_t)>& body)>;

struct TensorView {
  int block = 0;  // 0: plain
  std::int64_t n = 1, c = 1, d = 1, h = 1, w = 1;
};

// src: [n][8 * C][d][h][w], channel p * C + o holding output parity p = (pd * 2 + ph) * 2 + pw of
// output channel o; dst: [n][C][2d][2h][2w], dst(o, 2z + pd, 2y + ph, 2x + pw) = src(p * C + o, z, y, x).
void depthToSpace(const float* src, const TensorView& srcView, float* dst, const TensorView& dstView, const ParallelFor& parallel);

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
