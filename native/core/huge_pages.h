// Large buffers backed by transparent huge pages where the kernel offers them (Linux, THP in
// "always" or "madvise" mode). Faulting memory in 4 KiB pages is slow on virtual machines: on the
// project's 2-core VM, first touching 94 MiB took ~40 ms in 4 KiB pages and ~8 ms in 2 MiB pages.
#pragma once

#include <cstddef>
#include <cstdint>

namespace spleen_trt::core {

// Advises huge pages for the 2 MiB-aligned part of [data, data + size) (memory from malloc or
// elsewhere, not yet touched): only advice, which the kernel may ignore; never fails. Below
// kHugePageAdviceMin bytes it does nothing.
void adviseHugePages(void* data, std::size_t size);

constexpr std::size_t kHugePageAdviceMin = std::size_t{4} << 20;

// Switches the advice off (and back on) process-wide, for A/B measurements.
void setHugePageAdvice(bool on);

// An uninitialised scratch buffer of `size` bytes (huge pages advised); freed on destruction.
class ScratchBuffer {
 public:
  explicit ScratchBuffer(std::size_t size);
  ~ScratchBuffer();
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  std::uint8_t* data() const { return data_; }

 private:
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
};

}  // namespace spleen_trt::core
