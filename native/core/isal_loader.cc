#include "core/isal_loader.h"

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "core/dynamic_library.h"

// Where libisal-dev is installed (CI installs it), the declaration in isal_loader.h is proven
// against the real one: every field used at the real offset, and room for the whole struct.
#if defined(__has_include)
#if __has_include(<isa-l/igzip_lib.h>)
#include <isa-l/igzip_lib.h>
#define SPLEEN_TRT_HAVE_ISAL_H 1
#endif
#endif

namespace spleen_trt::core::isal {

#ifdef SPLEEN_TRT_HAVE_ISAL_H
static_assert(offsetof(InflateState, nextOut) == offsetof(inflate_state, next_out), "next_out");
static_assert(offsetof(InflateState, availOut) == offsetof(inflate_state, avail_out), "avail_out");
static_assert(offsetof(InflateState, totalOut) == offsetof(inflate_state, total_out), "total_out");
static_assert(offsetof(InflateState, nextIn) == offsetof(inflate_state, next_in), "next_in");
static_assert(offsetof(InflateState, availIn) == offsetof(inflate_state, avail_in), "avail_in");
static_assert(offsetof(InflateState, blockState) == offsetof(inflate_state, block_state), "block_state");
static_assert(offsetof(InflateState, crcFlag) == offsetof(inflate_state, crc_flag), "crc_flag");
static_assert(offsetof(InflateState, crc) == offsetof(inflate_state, crc), "crc");
static_assert(sizeof(InflateState) >= sizeof(inflate_state), "room for ISA-L's inflate_state");
static_assert(alignof(InflateState) >= alignof(inflate_state), "alignment of inflate_state");
static_assert(kBlockFinish == ISAL_BLOCK_FINISH && kGzip == ISAL_GZIP && kDecompOk == ISAL_DECOMP_OK, "constants");
#endif

namespace {

// gzip -9 of 600 bytes b[i] = 0x40 | ((i * i) >> 3 & 0x3f): one member, a dynamic Huffman block.
constexpr std::uint8_t kSelfTestMember[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xed, 0xcf, 0x61, 0x82, 0x41, 0x21, 0x14, 0x40,
    0xe1, 0xad, 0x25, 0x19, 0x17, 0x0f, 0x49, 0x08, 0xe1, 0x4a, 0x08, 0x21, 0x79, 0x08, 0x0f, 0x5b, 0x9f, 0x99,
    0x45, 0xcc, 0xbf, 0x39, 0x67, 0x05, 0x1f, 0x21, 0xa4, 0x44, 0xcb, 0xec, 0x0b, 0xea, 0x59, 0x5b, 0xf4, 0x94,
    0x46, 0xeb, 0xf6, 0xf1, 0x56, 0x50, 0x68, 0xc9, 0xb1, 0xd9, 0x84, 0x44, 0x80, 0x0f, 0xcd, 0x2e, 0x7f, 0x83,
    0xd0, 0xeb, 0xf8, 0x02, 0x89, 0x3e, 0x55, 0xc4, 0xcc, 0x3f, 0xa0, 0x6f, 0xcf, 0xb4, 0x83, 0x81, 0x70, 0x3c,
    0xd1, 0xae, 0xbd, 0xc2, 0xc8, 0x7f, 0xc4, 0x32, 0x65, 0x98, 0xc3, 0x24, 0x56, 0x75, 0x84, 0x69, 0xde, 0x30,
    0x77, 0xee, 0x88, 0x0a, 0x35, 0xf3, 0x94, 0x07, 0x30, 0xc5, 0x20, 0x36, 0x1d, 0xc3, 0x42, 0x5d, 0xc4, 0x31,
    0xdb, 0xc2, 0x8a, 0x2d, 0xe8, 0x9c, 0xe0, 0xcf, 0x73, 0xba, 0x60, 0x2b, 0xd8, 0x66, 0x47, 0x71, 0x51, 0x05,
    0x32, 0xd7, 0x8c, 0x83, 0xc2, 0xc0, 0x41, 0x3e, 0x4d, 0x2d, 0x28, 0xe2, 0xf8, 0xdd, 0x34, 0xf2, 0x29, 0x44,
    0x5d, 0x8d, 0x13, 0xc8, 0x31, 0x4b, 0x4b, 0xf1, 0xf1, 0x23, 0xb8, 0xda, 0x2e, 0x3d, 0x21, 0x27, 0x01, 0x3b,
    0xf4, 0x6c, 0xfb, 0xf0, 0xf0, 0x33, 0x51, 0x49, 0x1e, 0x25, 0xbc, 0xe2, 0x5a, 0x0b, 0x78, 0xe7, 0x3b, 0x33,
    0xe4, 0x40, 0x52, 0xd8, 0x98, 0xb1, 0x6c, 0x01, 0x2d, 0x6e, 0x71, 0xef, 0x2c, 0x6a, 0xd5, 0x13, 0xed, 0xac,
    0x0e, 0x5f, 0xac, 0x4c, 0x4b, 0xe4, 0xb7, 0x7f, 0xff, 0x1f, 0xf8, 0xbf, 0x01, 0x04, 0x69, 0x39, 0x9c, 0x58,
    0x02, 0x00, 0x00};
constexpr std::size_t kSelfTestSize = 600;

// Inflates `member` through our InflateState in one call; the status, with the output and the
// state's block state and total.
struct SelfTestRun {
  int status;
  std::int32_t blockState;
  std::uint32_t totalOut;
  std::uint32_t availIn;
};

SelfTestRun inflateOnce(const Api& lib, const std::uint8_t* member, std::size_t size, std::uint8_t* out, std::size_t outSize) {
  auto state = std::make_unique<InflateState>();
  lib.inflateInit(state.get());
  state->crcFlag = kGzip;
  state->nextIn = member;
  state->availIn = static_cast<std::uint32_t>(size);
  state->nextOut = out;
  state->availOut = static_cast<std::uint32_t>(outSize);
  const int status = lib.inflate(state.get());
  return {status, state->blockState, state->totalOut, state->availIn};
}

// True when the library, driven through isal_loader.h's declaration, decodes the known member
// (its gzip wrapper parsed, so crc_flag is where we write it; the state finished, so block_state
// is where we read it; counts where we read them) and refuses it with a damaged CRC-32.
bool selfTest(const Api& lib, std::string* why) {
  std::vector<std::uint8_t> out(kSelfTestSize + 64, 0);
  SelfTestRun run = inflateOnce(lib, kSelfTestMember, sizeof(kSelfTestMember), out.data(), out.size());
  bool same = true;
  for (std::size_t i = 0; i < kSelfTestSize; ++i) {
    same = same && out[i] == static_cast<std::uint8_t>(0x40 | (((i * i) >> 3) & 0x3f));
  }
  if (run.status != kDecompOk || run.blockState != kBlockFinish || run.totalOut != kSelfTestSize || run.availIn != 0 || !same) {
    *why = "status " + std::to_string(run.status) + ", block state " + std::to_string(run.blockState) + ", " +
           std::to_string(run.totalOut) + " bytes out" + (same ? "" : " (wrong bytes)");
    return false;
  }
  std::vector<std::uint8_t> damaged(kSelfTestMember, kSelfTestMember + sizeof(kSelfTestMember));
  damaged[damaged.size() - 8] ^= 0x01;  // first byte of the CRC-32 in the trailer
  run = inflateOnce(lib, damaged.data(), damaged.size(), out.data(), out.size());
  if (run.status >= 0) {
    *why = "a damaged CRC-32 gave status " + std::to_string(run.status);
    return false;
  }
  return true;
}

Api load() {
  Api result;
  // The library stays mapped for the process: an inflation may still run on a pool thread at exit.
  static DynamicLibrary library;
  if (!openOptionalForever("SPLEEN_TRT_NO_ISAL", {"libisal.so.2", "libisal.2.dylib", "isal.dll"}, &library, &result.reason)) return result;
  std::string error;
  result.inflateInit = library.function<decltype(result.inflateInit)>("isal_inflate_init", &error);
  result.inflateReset = library.function<decltype(result.inflateReset)>("isal_inflate_reset", &error);
  result.inflate = library.function<decltype(result.inflate)>("isal_inflate", &error);
  if (!result.inflateInit || !result.inflateReset || !result.inflate) {
    result.reason = library.path() + ": " + error;
    return result;
  }
  std::string why;
  if (!selfTest(result, &why)) {
    result.reason = library.path() + ": its inflate_state layout is not the 2.x one this addon declares (self-test: " + why + ")";
    return result;
  }
  result.path = library.path();
  result.available = true;
  return result;
}

}  // namespace

const Api& api() {
  static std::once_flag once;
  static Api loaded;
  std::call_once(once, [] { loaded = load(); });
  return loaded;
}

std::string describeStatus(int status) {
  const char* name = "unknown status";
  switch (status) {
    case 0: name = "ISAL_DECOMP_OK"; break;
    case 1: name = "ISAL_END_INPUT"; break;
    case 2: name = "ISAL_OUT_OVERFLOW"; break;
    case 6: name = "ISAL_NEED_DICT"; break;
    case -1: name = "ISAL_INVALID_BLOCK"; break;
    case -2: name = "ISAL_INVALID_SYMBOL"; break;
    case -3: name = "ISAL_INVALID_LOOKBACK"; break;
    case -4: name = "ISAL_INVALID_WRAPPER"; break;
    case -5: name = "ISAL_UNSUPPORTED_METHOD"; break;
    case -6: name = "ISAL_INCORRECT_CHECKSUM"; break;
    default: break;
  }
  return std::string(name) + " (" + std::to_string(status) + ")";
}

}  // namespace spleen_trt::core::isal
