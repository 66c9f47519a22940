// The CPU kernels' exports (typed and wrapped by src/native/volume-kernels.ts), synchronous on
// the calling thread but for the *Async ones, on the callers' own typed arrays (no copies):
//   gatherWindow(image, dims, window, windowOffset, roi, lo, hi, shift, padValue)
//   accumulateWindow(acc, dims, channels, logits, logitOffset, roi, lo, hi, shift, importance|null, weightSum|null)
//   divideByCoverage(acc, dims, channels, c0, c1, c2)         (Float64Array coverages)
//   divideByWeights(acc, channels, weightSum)
//   fileToCOrder(src, out, dims, channels, slope, inter)      (src: any numeric TypedArray but 64-bit ints)
//   fileToCOrderAsync(...the same): Promise<void>, run on the libuv pool (the event loop stays free)
//   cToFileOrder(src, dst, dims, channel, kBegin, kEnd, integer, lo, hi)
//                                                             (src: Float32/Uint8Array; dst: Uint8/Int16/Int32/Float32/Float64Array)
//   resampleSeparable(src, channels, inShape, tables, out, base, strides)   (tables: {lo, hi, wLo, wHi, identity} x 3)
//   resampleSeparableAsync(...the same): Promise<void>, on the libuv pool
//   gatherStrided(src, channels, outShape, strides, base, dst)   (orientation flips and permutations)
//   resampleAffine(src, channels, inShape, outShape, xform, out, base, strides)   (xform: Float64Array(16), finite)
//   summarizeLabels(mask, dims, stats)   (stats: Float64Array(10): count, min ijk, max ijk, sum ijk)
//   decideCorners(logits, dims, margin, state, rowIsBackground) -> undecided cubes, -1 for a NaN/infinite logit
//   affineCubeLabels(cube, gridDims, xform, outShape, labels, base, strides, undecided) -> undecided count
//   tableCubeLabels(cube, gridDims, rowIsBackground, tables, labels, base, strides, undecided) -> undecided count
//   applyIntensityWindow(data, out, a, b, reciprocal, scale, lo, hi, clip, shiftOnly)
//   applyIntensityWindowAsync(...the same): Promise<void>, on the libuv pool
//   gatherWindowsAsync(image, dims, batch, placements, padValue)        (placements: Int32Array, 12 per window)
//   accumulateWindowsAsync(acc, dims, channels, logits, placements, importance|null, weightSum|null,
//                          covered?: Int32Array|null, threads?)   (one pass over the batch's union;
//                          covered: first values stored; threads 0: window after window)
//   zeroUncovered(acc, dims, channels, covered, weightSum|null)   (after the last stitch with covered)
//   populatePagesAsync(view, parts, hugePages): Promise<number>   (pages faulted in, data untouched)
//   blendTableVoxels(logits, gridDims, tables, undecided, count, labels, base, strides)   (the decided-region shell)
//   jsExp(x)                                                  (the kernels' exp: V8's Math.exp, for tests)
//   copyFloatsAsync(src, dst): Promise<void>                  (a copy on the pool)
//   divideByCoverageAsync, divideByWeightsAsync, gatherStridedAsync, resampleAffineAsync,
//   summarizeLabelsAsync, blendTableVoxelsAsync: Promise<void>; decideCornersAsync,
//   affineCubeLabelsAsync, tableCubeLabelsAsync: Promise<number> (the same arguments as their
//   synchronous twins), on the libuv pool. Every async kernel checks its arguments on the calling
//   thread (a bad call throws there) and holds its arrays until it has run.
// dims, roi, lo, hi, shift, shapes and strides are arrays of 3 integers. TS validates; the checks
// here (types, lengths, every index in bounds) keep a wrong call from reading or writing outside
// an array.
#pragma once

#include <napi.h>

namespace spleen_trt {

void RegisterVolumeKernels(Napi::Env env, Napi::Object exports);

}  // namespace spleen_trt
