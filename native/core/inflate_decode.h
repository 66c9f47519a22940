// A .nii.gz read as one overlapped job: ISA-L inflates the gzip stream on one thread into a
// scratch buffer, a megabyte at a time, publishing how far it got; the calling thread decodes the
// NIfTI voxels (file order, any stored type -> float32 C order with nibabel's scaling: the
// kernels' fileToCOrderBlock, the same bits as fileToCOrder) a slab of whole slices at a time as
// soon as the slices are inflated (file order keeps k slowest, so an inflated prefix holds whole
// slices). On the project's 2-core VM the decode then hides behind the inflation instead of
// following it (512x512x90 int16: ~74 ms instead of ~91 for libdeflate + decode, in C).
//
// The stream must be exactly what the reader's zlib path accepts without fuss: one or more gzip
// members back to back up to the last input byte, each with its CRC-32 and ISIZE checked,
// inflating to at least the voxels' end and at most `maxInflated` bytes. Anything else (corrupt,
// truncated, too long, trailing bytes) is refused with a message, and the caller reads the file
// through its other path, whose errors are the reader's coded ones.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace spleen_trt::core {

enum class StoredVoxel { kInt8, kUint8, kInt16, kUint16, kInt32, kUint32, kFloat32, kFloat64 };

std::size_t storedVoxelBytes(StoredVoxel type);

struct InflateDecodeJob {
  const std::uint8_t* gz = nullptr;
  std::size_t gzSize = 0;
  std::size_t maxInflated = 0;  // the stream may inflate to at most this many bytes
  std::size_t voxOffset = 0;    // where the voxels start in the inflated stream
  StoredVoxel type = StoredVoxel::kInt16;  // in host byte order
  std::int64_t dims[3] = {0, 0, 0};
  std::int64_t channels = 1;
  double slope = 1.0;
  double inter = 0.0;
  float* out = nullptr;  // dims * channels floats, written in C order ([c][i][j][k])
};

// Runs the job (ISA-L must be available: core/isal_loader.h). True when the whole stream was
// accepted and `out` holds every voxel; false with *error otherwise, and `out` must then be
// discarded (slices decoded before the failure was found are in it). Never throws.
bool inflateAndDecode(const InflateDecodeJob& job, std::string* error);

}  // namespace spleen_trt::core
