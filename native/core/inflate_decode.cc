#include "core/inflate_decode.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>

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
// Slices decoded per step while the inflation runs: the kernels' k tile, so each C-order row gets
// whole 64-byte runs. The last slab (what is left when the inflation ends) goes over all cores.
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

template <typename T>
void decodePlanes(const InflateDecodeJob& job, const std::uint8_t* voxels, std::int64_t begin, std::int64_t end, bool parallel) {
  kernels::fileToCOrderPlanes<T>(reinterpret_cast<const T*>(voxels), job.out, job.dims, job.channels, begin, end,
                                 job.slope, job.inter, parallel);
}

void decode(const InflateDecodeJob& job, const std::uint8_t* voxels, std::int64_t begin, std::int64_t end, bool parallel) {
  switch (job.type) {
    case StoredVoxel::kInt8: return decodePlanes<std::int8_t>(job, voxels, begin, end, parallel);
    case StoredVoxel::kUint8: return decodePlanes<std::uint8_t>(job, voxels, begin, end, parallel);
    case StoredVoxel::kInt16: return decodePlanes<std::int16_t>(job, voxels, begin, end, parallel);
    case StoredVoxel::kUint16: return decodePlanes<std::uint16_t>(job, voxels, begin, end, parallel);
    case StoredVoxel::kInt32: return decodePlanes<std::int32_t>(job, voxels, begin, end, parallel);
    case StoredVoxel::kUint32: return decodePlanes<std::uint32_t>(job, voxels, begin, end, parallel);
    case StoredVoxel::kFloat32: return decodePlanes<float>(job, voxels, begin, end, parallel);
    case StoredVoxel::kFloat64: return decodePlanes<double>(job, voxels, begin, end, parallel);
  }
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
    std::string decodeError;
    try {
      prefault(job.out, static_cast<std::size_t>(planes) * static_cast<std::size_t>(job.dims[0] * job.dims[1]));
      std::int64_t done = 0;
      while (done < planes) {
        const std::int64_t want = std::min(planes, done + kSlabPlanes);
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
          decode(job, voxels, done, planes, true);
          done = planes;
          break;
        }
        // Everything inflated so far, in whole slabs (at least the one waited for).
        const auto ready = static_cast<std::int64_t>((produced - job.voxOffset) / planeBytes);
        const std::int64_t end = std::min(planes, std::max(want, done + (ready - done) / kSlabPlanes * kSlabPlanes));
        decode(job, voxels, done, end, false);
        done = end;
      }
    } catch (const std::exception& e) {
      decodeError = e.what();
    }
    if (!decodeError.empty()) progress.cancel.store(true);
    if (inflater.joinable()) inflater.join();
    if (progress.failed) {
      *error = progress.error;
      return false;
    }
    if (!decodeError.empty()) {
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
