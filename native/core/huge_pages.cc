#include "core/huge_pages.h"

#include <atomic>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace spleen_trt::core {

namespace {
constexpr std::uintptr_t kHugePage = std::uintptr_t{2} << 20;
std::atomic<bool> adviceOn{true};
}  // namespace

void setHugePageAdvice(bool on) { adviceOn.store(on); }

void adviseHugePages(void* data, std::size_t size) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (data == nullptr || size < kHugePageAdviceMin || !adviceOn.load()) return;
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1);
  const std::uintptr_t last = (begin + size) & ~(kHugePage - 1);
  if (last > first) (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)data;
  (void)size;
#endif
}

ScratchBuffer::ScratchBuffer(std::size_t size) : size_(size) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (size >= kHugePageAdviceMin) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      data_ = static_cast<std::uint8_t*>(p);
      mapped_ = true;
      adviseHugePages(p, size);
      return;
    }
  }
#endif
  data_ = new std::uint8_t[size == 0 ? 1 : size];
}

ScratchBuffer::~ScratchBuffer() {
#if defined(__linux__)
  if (mapped_) {
    munmap(data_, size_);
    return;
  }
#endif
  delete[] data_;
}

}  // namespace spleen_trt::core
