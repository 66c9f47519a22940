#include "core/run_deflate.h"

#include "core/huge_pages.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

namespace spleen_trt::core::run_deflate {

namespace {

// ---- CRC-32 ---------------------------------------------------------------------------------
// Polynomials are in zlib's reflected form: bit 31 is x^0.
constexpr std::uint32_t kPoly = 0xedb88320u;
constexpr std::uint32_t kOne = 1u << 31;

struct CrcTables {
  std::uint32_t slice[8][256];
  std::uint32_t x2n[32];  // x^(2^n) mod P
};

std::uint32_t multmodp(std::uint32_t a, std::uint32_t b) {
  std::uint32_t product = 0;
  for (std::uint32_t m = kOne; m != 0; m >>= 1) {
    if (a & m) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kPoly : b >> 1;
  }
  return product;
}

CrcTables makeTables() {
  CrcTables t{};
  for (std::uint32_t n = 0; n < 256; ++n) {
    std::uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t.slice[0][n] = c;
  }
  for (std::uint32_t n = 0; n < 256; ++n) {
    std::uint32_t c = t.slice[0][n];
    for (int k = 1; k < 8; ++k) {
      c = t.slice[0][c & 0xff] ^ (c >> 8);
      t.slice[k][n] = c;
    }
  }
  std::uint32_t p = kOne >> 1;  // x^1
  t.x2n[0] = p;
  for (int n = 1; n < 32; ++n) t.x2n[n] = p = multmodp(p, p);
  return t;
}

const CrcTables& tables() {
  static const CrcTables t = makeTables();
  return t;
}

inline std::uint32_t load32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 | static_cast<std::uint32_t>(p[2]) << 16 |
         static_cast<std::uint32_t>(p[3]) << 24;
}

// The CRC register without zlib's inversions (linear in both the register and the data).
std::uint32_t rawUpdate(std::uint32_t raw, const std::uint8_t* p, std::size_t n) {
  const CrcTables& t = tables();
  while (n >= 8) {
    raw ^= load32(p);
    const std::uint32_t hi = load32(p + 4);
    raw = t.slice[7][raw & 0xff] ^ t.slice[6][(raw >> 8) & 0xff] ^ t.slice[5][(raw >> 16) & 0xff] ^ t.slice[4][raw >> 24] ^
          t.slice[3][hi & 0xff] ^ t.slice[2][(hi >> 8) & 0xff] ^ t.slice[1][(hi >> 16) & 0xff] ^ t.slice[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) raw = t.slice[0][(raw ^ *p++) & 0xff] ^ (raw >> 8);
  return raw;
}

// x^(n * 2^k) mod P, as zlib's x2nmodp (its table repeats with period 32 in k).
std::uint32_t x2nmodp(std::uint64_t n, unsigned k) {
  const CrcTables& t = tables();
  std::uint32_t p = kOne;
  while (n != 0) {
    if (n & 1) p = multmodp(t.x2n[k & 31], p);
    n >>= 1;
    ++k;
  }
  return p;
}

// ---- DEFLATE ----------------------------------------------------------------------------------
// One dynamic-Huffman code for every segment, tuned for runs: the 258-byte match (symbol 285)
// takes 1 bit and the distance 1 bit, so a long run costs 2 bits per 258 bytes; literals and the
// other lengths take 9 or 10 bits. The code is complete (Kraft sum 1), as zlib's inflate requires:
// 1 symbol of 1 bit, 227 of 9 bits, 58 of 10 bits.
constexpr int kLitLenCodes = 286;
constexpr int kLengthBase[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35,
                                 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr int kLengthExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr int kCodeLengthOrder[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

int litLenBits(int symbol) {
  if (symbol == 285) return 1;
  if (symbol <= 198 || (symbol >= 257 && symbol <= 284)) return 9;
  return 10;  // literals 199..255 and end-of-block
}

std::uint32_t reverseBits(std::uint32_t code, int bits) {
  std::uint32_t r = 0;
  for (int b = 0; b < bits; ++b) r |= ((code >> b) & 1u) << (bits - 1 - b);
  return r;
}

// RFC 1951 section 3.2.2: canonical codes from lengths, bit-reversed for the LSB-first stream.
template <std::size_t N>
void canonicalCodes(const std::array<int, N>& lengths, std::array<std::uint32_t, N>* codes) {
  int count[16] = {0};
  for (int length : lengths) ++count[length];
  count[0] = 0;
  std::uint32_t next[16] = {0};
  std::uint32_t code = 0;
  for (int bits = 1; bits < 16; ++bits) {
    code = (code + static_cast<std::uint32_t>(count[bits - 1])) << 1;
    next[bits] = code;
  }
  for (std::size_t s = 0; s < N; ++s) {
    (*codes)[s] = lengths[s] == 0 ? 0 : reverseBits(next[lengths[s]]++, lengths[s]);
  }
}

class BitWriter {
 public:
  explicit BitWriter(std::vector<std::uint8_t>* out) : out_(out) {}
  // count <= 32
  void put(std::uint64_t bits, int count) {
    acc_ |= bits << filled_;
    filled_ += count;
    if (filled_ >= 32) {
      const std::uint8_t bytes[4] = {static_cast<std::uint8_t>(acc_), static_cast<std::uint8_t>(acc_ >> 8),
                                     static_cast<std::uint8_t>(acc_ >> 16), static_cast<std::uint8_t>(acc_ >> 24)};
      out_->insert(out_->end(), bytes, bytes + 4);
      acc_ >>= 32;
      filled_ -= 32;
    }
  }
  void alignToByte() {
    while (filled_ > 0) {
      out_->push_back(static_cast<std::uint8_t>(acc_));
      acc_ >>= 8;
      filled_ = std::max(filled_ - 8, 0);
    }
    acc_ = 0;
  }
  std::size_t bytes() const { return out_->size() + static_cast<std::size_t>((filled_ + 7) / 8); }

 private:
  std::vector<std::uint8_t>* out_;
  std::uint64_t acc_ = 0;
  int filled_ = 0;
};

class RunEncoder {
 public:
  RunEncoder(int wordBytes, bool final, std::vector<std::uint8_t>* out) : bits_(out), wordBytes_(wordBytes), final_(final) {
    std::array<int, kLitLenCodes> litLengths{};
    for (int s = 0; s < kLitLenCodes; ++s) litLengths[s] = litLenBits(s);
    canonicalCodes(litLengths, &litCodes_);
    // Distance code of `wordBytes` (1 -> 0, 2 -> 1, 4 -> 3, 8 -> 5 with extra bit 1), plus one
    // more 1-bit code so the distance code is complete too.
    const int distanceSymbol = wordBytes == 1 ? 0 : wordBytes == 2 ? 1 : wordBytes == 4 ? 3 : 5;
    const int otherSymbol = distanceSymbol == 0 ? 1 : 0;
    const int distanceCodes = std::max(distanceSymbol, otherSymbol) + 1;
    const std::uint32_t distanceCode = distanceSymbol < otherSymbol ? 0 : 1;
    std::uint64_t distanceBits = distanceCode;
    int distanceCount = 1;
    if (wordBytes == 8) {
      distanceBits |= 1u << 1;  // distance 8 = code 5 (7..8) + extra bit 1
      distanceCount = 2;
    }
    for (int length = 3; length <= 258; ++length) {
      int code = 0;
      while (code < 28 && kLengthBase[code + 1] <= length) ++code;
      const int symbol = 257 + code;
      std::uint64_t bits = litCodes_[symbol];
      int count = litLengths[symbol];
      bits |= static_cast<std::uint64_t>(length - kLengthBase[code]) << count;
      count += kLengthExtra[code];
      bits |= distanceBits << count;
      count += distanceCount;
      matchBits_[length] = bits;
      matchCount_[length] = count;
    }
    // Block header: BFINAL, BTYPE 2 (dynamic), HLIT, HDIST, HCLEN.
    bits_.put(final ? 1 : 0, 1);
    bits_.put(2, 2);
    bits_.put(kLitLenCodes - 257, 5);
    bits_.put(static_cast<std::uint64_t>(distanceCodes - 1), 5);
    // Code lengths 0, 1, 9 and 10 are sent with 2-bit codes (a complete code of 4 symbols); the
    // last of them in the transmission order is symbol 1, at position 17: 18 entries.
    std::array<int, 19> clLengths{};
    clLengths[0] = clLengths[1] = clLengths[9] = clLengths[10] = 2;
    std::array<std::uint32_t, 19> clCodes{};
    canonicalCodes(clLengths, &clCodes);
    bits_.put(18 - 4, 4);
    for (int i = 0; i < 18; ++i) bits_.put(static_cast<std::uint64_t>(clLengths[kCodeLengthOrder[i]]), 3);
    for (int s = 0; s < kLitLenCodes; ++s) bits_.put(clCodes[litLengths[s]], 2);
    for (int d = 0; d < distanceCodes; ++d) bits_.put(clCodes[d == distanceSymbol || d == otherSymbol ? 1 : 0], 2);
  }

  void literal(std::uint8_t byte) { bits_.put(litCodes_[byte], litLenBits(byte)); }

  // `bytes` more bytes repeating the stream's last `wordBytes` bytes (the word `word`).
  void copies(std::uint64_t bytes, const std::uint8_t* word) {
    std::uint64_t full = bytes / 258;
    std::uint64_t rest = bytes % 258;
    // A match is 3..258 bytes long: 259 or 260 become (256 or 257) + 3.
    if (rest > 0 && rest < 3 && full > 0) {
      --full;
      rest += 258;
    }
    const std::uint64_t one = matchBits_[258];
    const int oneCount = matchCount_[258];
    // Long runs: 8 matches of 2 or 3 bits per put.
    std::uint64_t eight = 0;
    for (int i = 0; i < 8; ++i) eight |= one << (i * oneCount);
    for (; full >= 8; full -= 8) bits_.put(eight, 8 * oneCount);
    for (; full > 0; --full) bits_.put(one, oneCount);
    if (rest >= 259) {
      match(static_cast<int>(rest - 3));
      match(3);
    } else if (rest >= 3) {
      match(static_cast<int>(rest));
    } else {
      // Only a run shorter than 3 bytes: its bytes continue the word's pattern.
      for (std::uint64_t t = bytes - rest; t < bytes; ++t) literal(word[t % static_cast<std::uint64_t>(wordBytes_)]);
    }
  }

  void finish() {
    bits_.put(litCodes_[256], litLenBits(256));
    if (final_) {
      bits_.alignToByte();
      return;
    }
    // zlib's sync flush: an empty stored block, byte-aligned: no BFINAL, BTYPE 0, LEN 0, NLEN ~0.
    bits_.put(0, 3);
    bits_.alignToByte();
    bits_.put(0xffff0000u, 32);
  }

  std::size_t bytes() const { return bits_.bytes(); }

 private:
  void match(int length) { bits_.put(matchBits_[length], matchCount_[length]); }

  BitWriter bits_;
  int wordBytes_;
  bool final_;
  std::array<std::uint32_t, kLitLenCodes> litCodes_{};
  std::uint64_t matchBits_[259] = {0};
  int matchCount_[259] = {0};
};

// First index >= x in [x, end) whose byte is not v.
std::size_t skipEqual(const std::uint8_t* s, std::size_t x, std::size_t end, std::uint8_t v) {
  const std::uint64_t pattern = 0x0101010101010101ull * v;
  while (x + 8 <= end) {
    std::uint64_t q;
    std::memcpy(&q, s + x, 8);
    const std::uint64_t diff = q ^ pattern;
    if (diff != 0) {
      for (int b = 0; b < 8; ++b) {
        if (s[x + static_cast<std::size_t>(b)] != v) return x + static_cast<std::size_t>(b);
      }
    }
    x += 8;
  }
  while (x < end && s[x] == v) ++x;
  return x;
}

// The stored stream as runs of equal words, fed one file-order plane at a time.
class LabelStream {
 public:
  LabelStream(const LabelPlanes& in, Segment* out) : in_(in), out_(out), encoder_(in.wordBytes, in.final, &out->deflated) {
    for (int v = 0; v < 256; ++v) {
      std::uint64_t key = 0;
      std::memcpy(&key, in.words + v * in.wordBytes, static_cast<std::size_t>(in.wordBytes));
      key_[v] = key;
    }
  }

  // False once the output is over budget.
  bool plane(const std::uint8_t* s, std::size_t n) {
    std::size_t x = 0;
    while (x < n) {
      const std::uint8_t v = s[x];
      if (have_ && key_[v] == key_[label_]) {
        const std::size_t end = skipEqual(s, x + 1, n, v);
        run_ += end - x;
        label_ = v;
        x = end;
        continue;
      }
      if (!closeRun()) return false;
      const std::uint8_t* word = in_.words + v * in_.wordBytes;
      for (int b = 0; b < in_.wordBytes; ++b) encoder_.literal(word[b]);
      have_ = true;
      label_ = v;
      run_ = 1;
      ++x;
    }
    return true;
  }

  bool finish() {
    if (!closeRun()) return false;
    encoder_.finish();
    return encoder_.bytes() <= in_.maxOutput;
  }

 private:
  bool closeRun() {
    if (!have_) return true;
    const std::uint8_t* word = in_.words + label_ * in_.wordBytes;
    const auto wordBytes = static_cast<std::uint64_t>(in_.wordBytes);
    out_->crc = crc32Repeat(out_->crc, word, in_.wordBytes, run_);
    out_->length += run_ * wordBytes;
    encoder_.copies((run_ - 1) * wordBytes, word);
    have_ = false;
    return encoder_.bytes() <= in_.maxOutput;
  }

  const LabelPlanes& in_;
  Segment* out_;
  RunEncoder encoder_;
  std::uint64_t key_[256] = {0};
  bool have_ = false;
  std::uint8_t label_ = 0;
  std::uint64_t run_ = 0;
};

// Planes per transposed block: up to 16 MiB of labels, at most 64 planes. Each block reads its
// slice of every source row, so fewer blocks mean fewer sweeps over the labels (a part of a
// 512x512x90 mask is one block).
constexpr std::int64_t kBlockBytes = std::int64_t{16} << 20;
constexpr std::int64_t kMaxBlockPlanes = 64;
constexpr std::int64_t kTileI = 64;

}  // namespace

std::uint32_t crc32Update(std::uint32_t crc, const std::uint8_t* data, std::size_t size) {
  return ~rawUpdate(~crc, data, size);
}

std::uint32_t crc32Combine(std::uint32_t crc1, std::uint32_t crc2, std::uint64_t length2) {
  return multmodp(x2nmodp(length2, 3), crc1) ^ crc2;
}

std::uint32_t crc32Repeat(std::uint32_t crc, const std::uint8_t* word, int wordBytes, std::uint64_t count) {
  if (count == 0) return crc;
  const auto width = static_cast<std::uint64_t>(wordBytes);
  bool zero = true;
  for (int b = 0; b < wordBytes; ++b) zero = zero && word[b] == 0;
  // Appending zeros multiplies the register by x^(8 n).
  if (zero) return ~multmodp(x2nmodp(count * width, 3), ~crc);
  if (count * width <= 256) {
    std::uint8_t bytes[256];
    for (std::uint64_t i = 0; i < count; ++i) std::memcpy(bytes + i * width, word, width);
    return crc32Update(crc, bytes, static_cast<std::size_t>(count * width));
  }
  // One word maps the register r to r X + c (X = x^(8 w), c the word's own contribution), so
  // `count` words map it to r X^count + c (1 + X + ... + X^(count-1)): power and sum by doubling.
  const std::uint32_t c = rawUpdate(0, word, width);
  const std::uint32_t x = x2nmodp(width, 3);
  std::uint32_t power = kOne;
  std::uint32_t sum = 0;
  int top = 63;
  while (((count >> top) & 1) == 0) --top;
  for (int bit = top; bit >= 0; --bit) {
    sum = multmodp(sum, power ^ kOne);
    power = multmodp(power, power);
    if ((count >> bit) & 1) {
      sum = multmodp(sum, x) ^ kOne;
      power = multmodp(power, x);
    }
  }
  return ~(multmodp(power, ~crc) ^ multmodp(sum, c));
}

bool deflateLabelPlanes(const LabelPlanes& in, Segment* out) {
  if (in.wordBytes != 1 && in.wordBytes != 2 && in.wordBytes != 4 && in.wordBytes != 8) {
    throw std::invalid_argument("wordBytes must be 1, 2, 4 or 8");
  }
  const std::int64_t n0 = in.dims[0], n1 = in.dims[1], n2 = in.dims[2];
  if (n0 < 1 || n1 < 1 || n2 < 1 || in.channels < 1 || in.planeBegin < 0 || in.planeBegin > in.planeEnd ||
      in.planeEnd > in.channels * n2) {
    throw std::invalid_argument("planes [" + std::to_string(in.planeBegin) + ", " + std::to_string(in.planeEnd) +
                                ") outside the volume");
  }
  out->deflated.clear();
  out->crc = 0;
  out->length = 0;
  const std::int64_t n01 = n0 * n1;
  const std::int64_t n12 = n1 * n2;
  const std::int64_t volume = n01 * n2;
  const std::int64_t blockPlanes = std::clamp<std::int64_t>(kBlockBytes / n01, 1, kMaxBlockPlanes);
  // Every byte of a block is written before it is read.
  ScratchBuffer block(static_cast<std::size_t>(std::min(blockPlanes, in.planeEnd - in.planeBegin) * n01));
  std::uint8_t tile[kMaxBlockPlanes * kTileI];
  LabelStream stream(in, out);
  for (std::int64_t p = in.planeBegin; p < in.planeEnd;) {
    const std::int64_t c = p / n2;
    const std::int64_t k0 = p - c * n2;
    const std::int64_t planes = std::min({blockPlanes, n2 - k0, in.planeEnd - p});
    const std::uint8_t* base = in.labels + c * volume + k0;
    // File order for the block: block[kk][j][i] = labels[c][i][j][k0 + kk]. Each source row
    // (i, j) gives `planes` contiguous bytes; the rows of one j stay in cache for the next j.
    // The planes lie a power of two apart for the usual sizes, so single-byte stores into all of
    // them would evict each other: 64 voxels of each plane are gathered in a tile first.
    for (std::int64_t j = 0; j < n1; ++j) {
      for (std::int64_t i0 = 0; i0 < n0; i0 += kTileI) {
        const std::int64_t width = std::min(kTileI, n0 - i0);
        for (std::int64_t ii = 0; ii < width; ++ii) {
          const std::uint8_t* row = base + (i0 + ii) * n12 + j * n2;
          for (std::int64_t kk = 0; kk < planes; ++kk) tile[kk * kTileI + ii] = row[kk];
        }
        for (std::int64_t kk = 0; kk < planes; ++kk) {
          std::memcpy(block.data() + kk * n01 + j * n0 + i0, tile + kk * kTileI, static_cast<std::size_t>(width));
        }
      }
    }
    for (std::int64_t kk = 0; kk < planes; ++kk) {
      if (!stream.plane(block.data() + kk * n01, static_cast<std::size_t>(n01))) return false;
    }
    p += planes;
  }
  return stream.finish();
}

}  // namespace spleen_trt::core::run_deflate
