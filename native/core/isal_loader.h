// Intel ISA-L's inflate (igzip) opened at run time (dlopen), as libdeflate is: the addon builds
// without its headers and loads without the library; .nii.gz then goes through libdeflate or
// zlib as before. Debian/Ubuntu ship it as libisal2 (libisal.so.2). Unlike libdeflate it inflates
// a stream piece by piece at the speed of a one-shot call (62 ms for the 47 MB of a 512x512x90 CT
// either way, libdeflate 66-70 ms one-shot), which lets the voxel decode follow the inflation on
// another core (core/inflate_decode.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace spleen_trt::core::isal {

// ISA-L's `struct inflate_state` (isa-l/igzip_lib.h). The caller allocates it and isal_inflate
// works in it in place, so its layout is part of libisal.so.2's ABI. Rather than needing the
// header to build (it is in libisal-dev, which a user's machine compiling this addon from source
// may lack), the fields used here are declared at their 2.x offsets (checked against the real
// header by static_asserts in isal_loader.cc wherever the header is installed, as in CI), the
// rest is opaque, and the whole is allocated much larger than 2.30's 87,368 bytes, so a later 2.x
// that appends fields still has room. A layout that moved a field we use is caught at load time:
// api() inflates a known gzip member, and a damaged copy of it, through this declaration and
// refuses the library unless both give the expected results (see selfTest in isal_loader.cc).
struct alignas(64) InflateState {
  std::uint8_t* nextOut;
  std::uint32_t availOut;
  std::uint32_t totalOut;
  const std::uint8_t* nextIn;  // uint8_t* in igzip_lib.h; the library only reads through it
  std::uint64_t readIn;
  std::uint32_t availIn;
  std::int32_t readInLength;
  // struct inflate_huff_code_large lit_huff_code; struct inflate_huff_code_small dist_huff_code
  std::uint8_t huffmanTables[21120];
  std::int32_t blockState;  // enum isal_block_state
  std::uint32_t dictLength;
  std::uint32_t bfinal;
  std::uint32_t crcFlag;
  std::uint32_t crc;
  // hist_bits, the overflow counters, tmp_in_buffer, tmp_out_buffer (2 x 32 KiB + look-ahead)...
  std::uint8_t rest[(192 << 10) - 21180];
};

constexpr std::int32_t kBlockFinish = 5;  // ISAL_BLOCK_FINISH: the member and its trailer are done
constexpr std::uint32_t kGzip = 1;        // ISAL_GZIP: parse the gzip header, check CRC-32 and ISIZE
constexpr int kDecompOk = 0;              // ISAL_DECOMP_OK; negative values are errors

struct Api {
  bool available = false;
  std::string path;    // the file the loader mapped
  std::string reason;  // why it is unavailable (empty when available)

  void (*inflateInit)(InflateState*) = nullptr;
  void (*inflateReset)(InflateState*) = nullptr;
  int (*inflate)(InflateState*) = nullptr;
};

// Opened (and self-tested) once per process, thread-safe. SPLEEN_TRT_NO_ISAL=1 leaves it unopened,
// so the other inflaters can be tested on a machine that has the library.
const Api& api();

// ISA-L's error code as text, e.g. "ISAL_INCORRECT_CHECKSUM (-6)".
std::string describeStatus(int status);

}  // namespace spleen_trt::core::isal
