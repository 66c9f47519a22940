// The pipeline's hottest CPU loops, in plain C++ (no Node-API): the sliding window's stitching and
// normalisation, the NIfTI file-order <-> C-order conversions and the intensity window.
//
// Each is a transcription of its TypeScript twin (named beside each function) and must give the
// same bits: the TS code fixes the order of float32 operations to match MONAI, so these use the
// same operations in the same order, with floating-point contraction off (this file is compiled
// with -ffp-contract=off: a fused multiply-add would round once where the reference rounds twice).
// They are several times faster than V8's typed-array loops; the package falls back to the TS
// versions where the addon is not built. Callers check bounds (volume_kernels_js.cc does).
#pragma once

#include <cstdint>
#include <functional>

namespace spleen_trt::core::kernels {

// Where one sliding-window output lands in the accumulators: on axis d, local index
// t in [lo[d], hi[d]) of the window (size roi[d]) adds into volume index t + shift[d].
struct WindowPlacement {
  std::int64_t roi[3];
  std::int64_t lo[3];
  std::int64_t hi[3];
  std::int64_t shift[3];
};

// sliding-window.ts gatherWindow: copies one roi-sized window of `image` (dims, C order) into
// `window`, writing padValue where the window leaves the image (outside [lo, hi) on any axis).
void gatherWindow(const float* image, const std::int64_t dims[3], float* window, const WindowPlacement& placement,
                  float padValue);

// sliding-window.ts stitchWindow. `logits` points at the window's first channel (channels
// consecutive roi volumes); acc is [channels][dims] C order. With importance (roi volume),
// acc += fl32(logit * w) and weightSum += w; without, acc += logit.
void accumulateWindow(float* acc, const std::int64_t dims[3], int channels, const float* logits,
                      const WindowPlacement& placement, const float* importance, float* weightSum);

// gatherWindow for the windows of a batch, window q (placements[q], all of the same roi) into
// batch + q * roi volume.
void gatherWindows(const float* image, const std::int64_t dims[3], float* batch, const WindowPlacement* placements,
                   std::int64_t count, float padValue);

// accumulateWindow for windows 0 .. count - 1 of a batch, in that order (window q's channels at
// logits + q * channels * roi volume; all of the same roi), window after window: the previous
// versions' stitch, kept as the A/B reference for stitchWindows (same bits).
void accumulateWindows(float* acc, const std::int64_t dims[3], int channels, const float* logits,
                       const WindowPlacement* placements, std::int64_t count, const float* importance, float* weightSum);

// accumulateWindows in one pass over the rows of the batch's union (each (i, j) row visited once,
// its windows' segments added in window order, so every voxel gets the same float32 additions in
// the same order: the same bits; a batch's 4 windows overlap, so about half the accumulator
// traffic), with threads > 1 the rows split over the idle cores as parallelRanges splits (each
// row on one thread). A single NaN keeps its payload; where two NaNs meet, which payload survives
// is the compiler's operand order, as in accumulateWindow.
// With `covered` (dims[0] * dims[1] int32, zeroes before the first batch), the accumulators need
// no zeroing: covered[i * dims[1] + j] = e says row (i, j)'s [0, e) holds sums, [e, dims[2]) is
// unwritten; a segment beyond e is stored (x + 0.0f, the bits of 0.0f + x) instead of added, a gap
// before it zeroed, and e moved to its end (in all channels and weightSum alike). Without it
// (null) every voxel is added to, as accumulateWindows does.
void stitchWindows(float* acc, const std::int64_t dims[3], int channels, const float* logits,
                   const WindowPlacement* placements, std::int64_t count, const float* importance, float* weightSum,
                   std::int32_t* covered, std::int64_t threads);

// After the last stitchWindows with `covered`: zeroes each row's unwritten tail [covered, dims[2])
// in every channel (and weightSum when given), so the accumulators read as if zeroed first.
void zeroUncovered(float* acc, const std::int64_t dims[3], int channels, const std::int32_t* covered, float* weightSum);

// Faults in the pages of [data, data + bytes) for writing without touching the data (Linux 5.14's
// MADV_POPULATE_WRITE), 2 MiB at a time over `parts` equal consecutive parts in step; huge pages
// advised first when `hugePages` (core/huge_pages.h). False where that is not available.
bool populatePages(std::uint8_t* data, std::size_t bytes, std::int64_t parts, bool hugePages);

// sliding-window.ts normalise, constant mode: acc[c][i][j][k] /= c0[i] * c1[j] * c2[k] (coverage
// counts, indexed on the unpadded grid), the quotient taken in double and rounded to float32.
void divideByCoverage(float* acc, const std::int64_t dims[3], int channels, const double* c0,
                      const double* c1, const double* c2);

// sliding-window.ts normalise, weighted modes: acc[c][v] /= weightSum[v].
void divideByWeights(float* acc, std::int64_t voxels, int channels, const float* weightSum);

// nifti-voxels.ts transposeFileToC: file order (i fastest) -> float32 C order (k fastest), with
// nibabel's scaling: v * slope when slope != 1, + inter when inter != 0, in double.
template <typename T>
void fileToCOrder(const T* src, float* out, const std::int64_t dims[3], std::int64_t channels,
                  double slope, double inter);

// fileToCOrder of one channel's rows j in [jBegin, jEnd) and file slices k in [kBegin, kEnd) only
// (src and out at the channel's start), on the calling thread: the same bits, so a decoder can
// follow an inflation that delivers the file a slice at a time (core/inflate_decode.h).
template <typename T>
void fileToCOrderBlock(const T* src, float* out, const std::int64_t dims[3], std::int64_t jBegin, std::int64_t jEnd,
                       std::int64_t kBegin, std::int64_t kEnd, double slope, double inter);

// Runs body(jBegin, jEnd) over the rows j in [0, rows) as fileToCOrder splits its rows: over
// the idle cores (setKernelThreads' cap) when the work (rowVoxels each) is large enough, each row
// by one thread, exceptions rethrown after every range has ended.
void splitDecodeRows(std::int64_t rows, std::int64_t rowVoxels, const std::function<void(std::int64_t, std::int64_t)>& body);

// nifti-voxels.ts transposeCToFile: slices [kBegin, kEnd) of channel `channel` of a C-order
// volume (float32, or a uint8 label map) into file order, dst[((k - kBegin) * n1 + j) * n0 + i].
// Integer targets are rounded half to even and clamped to [lo, hi], NaN -> 0 (toInteger); float
// targets are converted.
template <typename Source, typename Target>
void cToFileOrder(const Source* src, Target* dst, const std::int64_t dims[3], std::int64_t channel,
                  std::int64_t kBegin, std::int64_t kEnd, bool integer, double lo, double hi);

// intensity.ts applyIntensityWindow, all three branches (see there for why each is exact):
// shiftOnly: out = fl32(x - a) + b (a zero input range);
// otherwise out = fl32(fl32(fl32(x - a) * reciprocal) * scale) + b, the scale step skipped when
// scale == 1, then clamped to [lo, hi] (torch.clamp's order) when clip.
struct IntensityWindow {
  float a;
  float b;
  double reciprocal;
  float scale;
  // float32 values, held as double: a clamp to a double known to come from a float is narrowed
  // by GCC into a form it cannot vectorise.
  double lo;
  double hi;
  bool clip;
  bool shiftOnly;
};
// One axis of trilinear.ts's separable resampling: output index q blends source indices lo[q] and
// hi[q] with weights wLo[q] and wHi[q]; `identity` when the axis maps every index onto itself.
struct AxisTable {
  const std::int32_t* lo;
  const std::int32_t* hi;
  const double* wLo;
  const double* wHi;
  std::int64_t size;
  bool identity;
};

// trilinear.ts resampleSeparable, the same passes in the same order (the order of the float64
// operations decides the last bit): `channels` float32 C-order volumes of inShape onto outShape,
// output voxel (q0, q1, q2) of channel c stored at
// out[c * outCount + base + q0 * strides[0] + q1 * strides[1] + q2 * strides[2]].
// With a window, each stored value is applyIntensityWindow's of the float32 the plain resampling
// stores (the same bits as resampling then windowing, one pass over the output fewer).
void resampleSeparable(const float* src, int channels, const std::int64_t inShape[3], const AxisTable tables[3],
                       float* out, std::int64_t base, const std::int64_t strides[3],
                       const IntensityWindow* window = nullptr);

// trilinear.ts resampleAffine: every output voxel q reads continuous index p = M q + t (xform,
// row-major 4x4), each p_d clamped to [0, n_d - 1], and blends its 8 taps in float64 in the TS
// order; stored as resampleSeparable stores (layout base and strides, the optional window).
void resampleAffine(const float* src, int channels, const std::int64_t inShape[3], const std::int64_t outShape[3],
                    const double xform[16], float* out, std::int64_t base, const std::int64_t strides[3],
                    const IntensityWindow* window = nullptr);

// orientation.ts gather: dst[c][o0][o1][o2] = src[c * count + base + o0 * s0 + o1 * s1 + o2 * s2]
// (count = o0 * o1 * o2 extent), the strided copy that flips and permutes a volume's axes.
void gatherStrided(const float* src, int channels, const std::int64_t outShape[3], const std::int64_t strides[3],
                   std::int64_t base, float* dst);

// mask-summary.ts summarizeMask's scan of a C-order uint8 label map (any non-zero voxel counts):
// into stats = [count, min i, min j, min k, max i, max j, max k, sum i, sum j, sum k] (mins n and
// maxes -1 when empty; the sums are exact integers below 2^53, as the TS doubles are).
void summarizeLabels(const std::uint8_t* mask, const std::int64_t dims[3], double stats[10]);

// decided-region.ts decideVoxels + combineCorners: the state of each voxel of 2-channel float32
// logits on a dims grid (1 background, 2 foreground, 3 undecided: l1 - l0 in double against
// +-margin), then each voxel ORed with its +1 neighbours on every axis (clamped at the far border),
// so state[v] says what the whole 2x2x2 cube at v decides. rowIsBackground[i * n1 + j] = 1 iff
// every cube of row (i, j) is background. Returns the number of undecided cubes, or -1 (and
// leaves the outputs unfinished) when a logit is NaN or infinite.
std::int64_t decideCorners(const float* logits, const std::int64_t dims[3], double margin, std::uint8_t* state,
                           std::uint8_t* rowIsBackground);

// decided-region.ts labelThroughAffine's scan: every output voxel q = (a, b, k) of outShape
// computes its spacing-grid index as resampleAffine does and reads the state of the cube there
// (cube: decideCorners' output on gridDims); labels[base + q . strides] = 1 under foreground cubes
// and 0 under the others (every label is written), undecided ones have their linear index (a * m1 + b) * m2 + k appended to `undecided` (up to
// `capacity`). Returns how many were undecided (more than capacity: call again with room).
std::int64_t affineCubeLabels(const std::uint8_t* cube, const std::int64_t gridDims[3], const double xform[16],
                              const std::int64_t outShape[3], std::uint8_t* labels, std::int64_t base,
                              const std::int64_t strides[3], std::int32_t* undecided, std::int64_t capacity);

// decided-region.ts labelThroughTables' scan, for a separable inverse: output voxel q = (a, b, k)
// of outShape reads the cube at (tables[0].lo[a], tables[1].lo[b], tables[2].lo[k]) (the tables'
// lengths are outShape); labels[base + q . strides] = 1 under foreground cubes and 0 under the
// others (every label is written; rows whose source row is all background in one pass), undecided ones append (a * m1 + b) * m2 + k to `undecided`
// (up to `capacity`). Returns how many were undecided (more than capacity: call again with room).
std::int64_t tableCubeLabels(const std::uint8_t* cube, const std::int64_t gridDims[3], const std::uint8_t* rowIsBackground,
                             const AxisTable tables[3], std::uint8_t* labels, std::int64_t base,
                             const std::int64_t strides[3], std::int32_t* undecided, std::int64_t capacity);

// V8's Math.exp: fdlibm's exp (as V8's src/base/ieee754.cc computes it, exp(1) = E), so that a
// kernel using it gives the TS code's bits; glibc's exp may differ in the last bit.
double jsExp(double x);

// The kernels that split their work over threads use at most `threads` (1-4; 4 by default, and
// never more than the cores), and only where the work is large enough, unless `split`: then each
// splits into `threads` ranges whatever its size or the cores (for tests; the values never change).
void setKernelThreads(std::int64_t threads, bool split);

// decided-region.ts labelListedVoxels for a separable inverse: for each listed output voxel
// undecided[u] (linear index over the tables' lengths), the 2-channel softmax (postprocess.ts
// softmax2, with jsExp) of the 8 spacing-grid voxels of its cube, blended with the tables' weights
// in blendIsForeground's float64 order and rounded to float32; labels[base + q . strides] = 1
// where channel 1 wins (ties to background, a NaN counts as the maximum). logits: [2][gridDims].
void blendTableVoxels(const float* logits, const std::int64_t gridDims[3], const AxisTable tables[3],
                      const std::int32_t* undecided, std::int64_t count, std::uint8_t* labels, std::int64_t base,
                      const std::int64_t strides[3]);

void applyIntensityWindow(const float* in, float* out, std::int64_t count, const IntensityWindow& window);

}  // namespace spleen_trt::core::kernels
