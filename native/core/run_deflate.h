// A DEFLATE encoder for label maps written as NIfTI (the segmentation mask): the stored stream is
// long runs of a few words (a float32 mask is runs of 0.0f and 1.0f), so a word equal to the one
// before it is always the start of a match at distance `wordBytes`, and nothing else needs
// searching. One pass reads the C-order labels, puts them in file order a block of planes at a
// time, and emits the stored words (through a 256-entry table, so the conversion is the writer's
// own) without materialising them; the CRC-32 of the stored bytes is computed per run by GF(2)
// arithmetic (zlib's crc32_combine maths), not by reading them. Output: one raw DEFLATE segment
// that ends byte-aligned with an empty stored block (zlib's sync flush), or with the final block,
// so segments from several threads and zlib's own pieces concatenate into one stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace spleen_trt::core::run_deflate {

// zlib's crc32 (reflected polynomial 0xEDB88320, inverted before and after): crc32Update(0, data)
// is zlib.crc32(data).
std::uint32_t crc32Update(std::uint32_t crc, const std::uint8_t* data, std::size_t size);
// The CRC-32 of `count` copies of the `wordBytes`-byte word appended to a stream whose CRC is `crc`.
std::uint32_t crc32Repeat(std::uint32_t crc, const std::uint8_t* word, int wordBytes, std::uint64_t count);
// zlib's crc32_combine: the CRC-32 of A then B from crc(A), crc(B) and B's length.
std::uint32_t crc32Combine(std::uint32_t crc1, std::uint32_t crc2, std::uint64_t length2);

struct LabelPlanes {
  const std::uint8_t* labels = nullptr;  // C order [c][i][j][k]
  std::int64_t dims[3] = {0, 0, 0};
  std::int64_t channels = 1;
  // File-order planes [planeBegin, planeEnd): plane p is slice p % dims[2] of channel p / dims[2].
  std::int64_t planeBegin = 0;
  std::int64_t planeEnd = 0;
  const std::uint8_t* words = nullptr;  // 256 stored words, wordBytes each: what label v is written as
  int wordBytes = 4;                    // 1, 2, 4 or 8
  bool final = false;                   // end with the final block instead of a sync flush
  std::size_t maxOutput = 0;            // give up once the segment would be longer than this
};

struct Segment {
  std::vector<std::uint8_t> deflated;
  std::uint32_t crc = 0;      // of the stored bytes, from 0
  std::uint64_t length = 0;   // stored bytes
};

// Encodes the planes' stored stream. False (and `out` unspecified) when the segment outgrows
// maxOutput: data without long runs, better left to zlib. Throws std::invalid_argument on a
// wordBytes outside {1, 2, 4, 8} or a plane range outside the volume.
bool deflateLabelPlanes(const LabelPlanes& in, Segment* out);

}  // namespace spleen_trt::core::run_deflate
