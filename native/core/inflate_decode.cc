#include "core/inflate_decode.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

#include "core/huge_pages.h"
#include "core/isal_loader.h"
#include "core/volume_kernels.h"

namespace spleen_trt::core {

namespace {

// Output handed to ISA-L per call: small enough that the decoder hears of progress every ~1.5 ms,
// large enough that the calls cost nothing (ISA-L streams at its one-shot speed in 1 MiB pieces).
constexpr std::size_t kOutputStep = std::size_t{1} << 20;
// Input handed to ISA-L per call at most (its avail_in is 32-bit).
constexpr std::size_t kInputStep = std::size_t{1} << 30;
// New slices the decoder waits for before a step while the inflation runs: a cache line of each
// C-order row (RowSchedule). What is left when the inflation ends is decoded on two threads.
constexpr std::int64_t kSlabPlanes = 16;

// What the inflating thread publishes to the decoding one.
struct Progress {
  std::mutex lock;
  std::condition_variable changed;
  std::size_t produced = 0;  // bytes of the stream inflated so far (readable below this)
  bool finished = false;     // the inflation ended (see failed)
  bool failed = false;
  std::string error;
  std::atomic<bool> cancel{false};  // the decoder gave up: stop inflating
};

// Inflates every member of job.gz into `base` (capacity bytes), publishing progress.
void inflateAll(const InflateDecodeJob& job, std::uint8_t* base, std::size_t capacity, Progress* progress) {
  const isal::Api& lib = isal::api();
  std::string error;
  std::size_t produced = 0;
  try {
    auto state = std::make_unique<isal::InflateState>();
    lib.inflateInit(state.get());
    state->crcFlag = isal::kGzip;
    const std::uint8_t* const end = job.gz + job.gzSize;
    const std::uint8_t* next = job.gz;  // input not yet handed to ISA-L
    state->nextIn = next;
    state->availIn = 0;
    while (error.empty()) {
      if (progress->cancel.load(std::memory_order_relaxed)) {
        error = "cancelled";
        break;
      }
      if (state->availIn == 0 && next < end) {
        const std::size_t step = std::min<std::size_t>(kInputStep, static_cast<std::size_t>(end - next));
        state->nextIn = next;
        state->availIn = static_cast<std::uint32_t>(step);
        next += step;
      }
      const std::size_t room = capacity - produced;
      if (room == 0) {
        error = "the stream inflates to more than " + std::to_string(job.maxInflated) + " bytes";
        break;
      }
      const std::uint8_t* inBefore = state->nextIn;
      state->nextOut = base + produced;
      state->availOut = static_cast<std::uint32_t>(std::min(kOutputStep, room));
      const int status = lib.inflate(state.get());
      const auto made = static_cast<std::size_t>(state->nextOut - (base + produced));
      produced += made;
      {
        const std::lock_guard<std::mutex> hold(progress->lock);
        progress->produced = produced;
      }
      progress->changed.notify_one();
      if (status < 0) {
        error = "ISA-L: " + isal::describeStatus(status) + " after " + std::to_string(produced) + " bytes";
        break;
      }
      const std::size_t unread = state->availIn + static_cast<std::size_t>(end - next);
      if (state->blockState == isal::kBlockFinish) {
        if (unread == 0) break;  // the last member ended with the input: done
        // Another member (pigz, bgzip, `cat a.gz b.gz`): the same state, reset, where this one ended.
        const std::uint8_t* resume = state->nextIn;
        const std::uint32_t resumeAvail = state->availIn;
        lib.inflateReset(state.get());
        state->crcFlag = isal::kGzip;
        state->nextIn = resume;
        state->availIn = resumeAvail;
        continue;
      }
      if (unread == 0 && made == 0) {
        error = "truncated gzip stream (" + std::to_string(produced) + " bytes inflated)";
        break;
      }
      if (made == 0 && state->nextIn == inBefore && state->availIn != 0) {
        error = "ISA-L made no progress (status " + isal::describeStatus(status) + ")";
      }
    }
    if (error.empty() && produced > job.maxInflated) {
      error = "the stream inflates to more than " + std::to_string(job.maxInflated) + " bytes";
    }
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown exception";
  }
  {
    const std::lock_guard<std::mutex> hold(progress->lock);
    progress->produced = produced;
    progress->finished = true;
    progress->failed = !error.empty();
    progress->error = error;
  }
  progress->changed.notify_one();
}

// Which slices of each output row (c, j) the decoder has written, and where the row's 64-byte cache
// lines begin. A slab of slices cut at the same k for every row would leave each row's first and
// last line half written, to be read back from memory and finished by the next slab: cutting each
// row where a line of it starts writes every line once (the decode ~15 % cheaper, measured in C).
// All rows i of one (c, j) share the phase when a row plane (n1 * n2 floats) is a whole number of
// lines; otherwise every row is cut at multiples of 16.
class RowSchedule {
 public:
  explicit RowSchedule(const InflateDecodeJob& job)
      : job_(job), rows_(static_cast<std::size_t>(job.channels * job.dims[1])), next_(rows_, 0), phase_(rows_, 0) {
    const std::int64_t n1 = job.dims[1], n2 = job.dims[2];
    const std::int64_t volume = job.dims[0] * n1 * n2;
    if ((n1 * n2 * static_cast<std::int64_t>(sizeof(float))) % kLine != 0) return;
    for (std::int64_t c = 0; c < job.channels; ++c) {
      for (std::int64_t j = 0; j < n1; ++j) {
        const auto address = reinterpret_cast<std::uintptr_t>(job.out + c * volume + j * n2);
        phase_[static_cast<std::size_t>(c * n1 + j)] = static_cast<std::int64_t>((kLine - address % kLine) % kLine / sizeof(float));
      }
    }
  }

  // Decodes, in rows j in [jBegin, jEnd) of every channel, the slices below `ready` file planes
  // (all inflated) up to the last line start (the whole row once its channel is complete).
  void decode(const std::uint8_t* voxels, std::int64_t ready, std::int64_t jBegin, std::int64_t jEnd) {
    switch (job_.type) {
      case StoredVoxel::kInt8: return decodeAs<std::int8_t>(voxels, ready, jBegin, jEnd);
      case StoredVoxel::kUint8: return decodeAs<std::uint8_t>(voxels, ready, jBegin, jEnd);
      case StoredVoxel::kInt16: return decodeAs<std::int16_t>(voxels, ready, jBegin, jEnd);
      case StoredVoxel::kUint16: return decodeAs<std::uint16_t>(voxels, ready, jBegin, jEnd);
      case StoredVoxel::kInt32: return decodeAs<std::int32_t>(voxels, ready, jBegin, jEnd);
      case StoredVoxel::kUint32: return decodeAs<std::uint32_t>(voxels, ready, jBegin, jEnd);
      case StoredVoxel::kFloat32: return decodeAs<float>(voxels, ready, jBegin, jEnd);
      case StoredVoxel::kFloat64: return decodeAs<double>(voxels, ready, jBegin, jEnd);
    }
  }

 private:
  static constexpr std::uintptr_t kLine = 64;
  static constexpr std::int64_t kLineFloats = 16;

  template <typename T>
  void decodeAs(const std::uint8_t* voxels, std::int64_t ready, std::int64_t jBegin, std::int64_t jEnd) {
    const std::int64_t n1 = job_.dims[1], n2 = job_.dims[2];
    const std::int64_t volume = job_.dims[0] * n1 * n2;
    for (std::int64_t c = 0; c < job_.channels; ++c) {
      const std::int64_t inChannel = std::min(std::max<std::int64_t>(ready - c * n2, 0), n2);
      if (inChannel == 0) break;
      const T* src = reinterpret_cast<const T*>(voxels) + c * volume;
      float* out = job_.out + c * volume;
      for (std::int64_t j = jBegin; j < jEnd; ++j) {
        const auto row = static_cast<std::size_t>(c * n1 + j);
        const std::int64_t phase = phase_[row];
        std::int64_t cut = n2;
        if (inChannel < n2) cut = inChannel < phase ? 0 : phase + (inChannel - phase) / kLineFloats * kLineFloats;
        if (cut <= next_[row]) continue;
        kernels::fileToCOrderBlock<T>(src, out, job_.dims, j, j + 1, next_[row], cut, job_.slope, job_.inter);
        next_[row] = cut;
      }
    }
  }

  const InflateDecodeJob& job_;
  std::size_t rows_;
  std::vector<std::int64_t> next_;
  std::vector<std::int64_t> phase_;
};

// The rest of the volume once everything is inflated: rows split over the cores as the one-shot
// decode splits them (each row written by one thread).
void decodeRest(RowSchedule* schedule, const std::uint8_t* voxels, std::int64_t planes, const InflateDecodeJob& job) {
  kernels::splitDecodeRows(job.dims[1], job.dims[0] * job.dims[2] * job.channels,
                           [&](std::int64_t jBegin, std::int64_t jEnd) { schedule->decode(voxels, planes, jBegin, jEnd); });
}

// This thread's CPU time in ms, or -1 where the platform does not say.
double threadCpuMs() {
#if defined(CLOCK_THREAD_CPUTIME_ID)
  timespec now{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now) == 0) return static_cast<double>(now.tv_sec) * 1e3 + static_cast<double>(now.tv_nsec) / 1e6;
#endif
  return -1;
}

// Faults the output's pages in (one store per 4 KiB, into memory every voxel of which is written
// later) while the first slab is still inflating: otherwise the first slab's decode pays them.
void prefault(float* out, std::size_t count) {
  volatile float* touch = out;
  for (std::size_t v = 0; v < count; v += 1024) touch[v] = 0.0f;
}

}  // namespace

std::size_t storedVoxelBytes(StoredVoxel type) {
  switch (type) {
    case StoredVoxel::kInt8:
    case StoredVoxel::kUint8: return 1;
    case StoredVoxel::kInt16:
    case StoredVoxel::kUint16: return 2;
    case StoredVoxel::kInt32:
    case StoredVoxel::kUint32:
    case StoredVoxel::kFloat32: return 4;
    case StoredVoxel::kFloat64: return 8;
  }
  return 1;
}

bool inflateAndDecode(const InflateDecodeJob& job, std::string* error) {
  const isal::Api& lib = isal::api();
  if (!lib.available) {
    *error = "ISA-L is unavailable: " + lib.reason;
    return false;
  }
  const std::size_t width = storedVoxelBytes(job.type);
  const std::int64_t planes = job.dims[2] * job.channels;
  const std::size_t planeBytes = static_cast<std::size_t>(job.dims[0] * job.dims[1]) * width;
  const std::size_t needed = job.voxOffset + static_cast<std::size_t>(planes) * planeBytes;
  if (needed > job.maxInflated) {
    *error = "the image needs more bytes than maxInflated";
    return false;
  }
  try {
    // One byte of slack: a stream of exactly maxInflated bytes ends inside the buffer; one that
    // fills it is too long. The stream starts so that the voxels are aligned for their type.
    const std::size_t shift = (width - job.voxOffset % width) % width;
    const std::size_t capacity = job.maxInflated + 1;
    ScratchBuffer scratch(capacity + shift);
    std::uint8_t* const base = scratch.data() + shift;
    const std::uint8_t* const voxels = base + job.voxOffset;
    Progress progress;
    std::thread inflater;
    try {
      inflater = std::thread(inflateAll, std::cref(job), base, capacity, &progress);
    } catch (const std::system_error&) {
      inflateAll(job, base, capacity, &progress);  // no second thread: inflate, then decode
    }
    // Nothing may leave this block before the inflater is joined (a joinable thread's destructor
    // would end the process).
    bool decodeFailed = false;
    std::string decodeError;
    try {
      prefault(job.out, static_cast<std::size_t>(planes) * static_cast<std::size_t>(job.dims[0] * job.dims[1]));
      RowSchedule schedule(job);
      std::int64_t decodedTo = 0;  // planes inflated at the last decode step
      bool behind = false;         // the decoder fell behind: wait for the end (see below)
      while (decodedTo < planes) {
        const std::int64_t want = behind ? planes + 1 : std::min(planes, decodedTo + kSlabPlanes);
        std::size_t produced = 0;
        bool finished = false;
        {
          std::unique_lock<std::mutex> hold(progress.lock);
          progress.changed.wait(hold, [&] {
            return progress.finished || progress.produced >= job.voxOffset + static_cast<std::size_t>(want) * planeBytes;
          });
          produced = progress.produced;
          finished = progress.finished;
          if (progress.failed) break;
        }
        if (finished) {
          if (produced < needed) break;  // reported below from the final state
          decodeRest(&schedule, voxels, planes, job);
          decodedTo = planes;
          break;
        }
        const std::int64_t ready = std::min(planes, static_cast<std::int64_t>((produced - job.voxOffset) / planeBytes));
        // With a core of its own the decoder is faster than the inflation and never finds more
        // than one step waiting. More means it shares a core (a busy machine, or a slow first
        // touch of the output's pages): slab steps then only take time from the inflation and
        // cost about twice the memory traffic of decoding each row's rest in one go at the end.
        if (ready < planes && ready - decodedTo >= 2 * kSlabPlanes) {
          behind = true;
          continue;
        }
        decodedTo = ready;
        const double cpuBefore = threadCpuMs();
        const auto wallBefore = std::chrono::steady_clock::now();
        schedule.decode(voxels, decodedTo, 0, job.dims[1]);
        // The same sign, measured: a step that took more than twice its CPU time waited for a core.
        const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wallBefore).count();
        if (cpuBefore >= 0 && wall > 2 * (threadCpuMs() - cpuBefore) + 1) behind = true;
      }
    } catch (const std::exception& e) {
      decodeFailed = true;
      decodeError = std::string("decode: ") + e.what();
    } catch (...) {
      decodeFailed = true;
      decodeError = "decode: unknown exception";
    }
    if (decodeFailed) progress.cancel.store(true);
    if (inflater.joinable()) inflater.join();
    if (progress.failed) {
      *error = progress.error;
      return false;
    }
    if (decodeFailed) {
      *error = decodeError;
      return false;
    }
    if (progress.produced < needed) {
      *error = "the stream inflates to " + std::to_string(progress.produced) + " bytes, the image needs " + std::to_string(needed);
      return false;
    }
    return true;
  } catch (const std::bad_alloc&) {
    *error = "out of memory for the inflated stream";
  } catch (const std::exception& e) {
    *error = e.what();
  }
  return false;
}

}  // namespace spleen_trt::core
