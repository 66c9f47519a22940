// A FIFO of jobs served by a fixed set of threads, one per "slot" (an execution context and its
// stream and buffers). A job runs on exactly one slot's thread, so no two jobs ever share a
// context, and jobs start in the order they were submitted. Plain C++: testable without CUDA.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace spleen_trt::core {

class RunQueue {
 public:
  // `bindFailure` is null when the slot's thread is bound; otherwise the job must fail with it
  // (rethrow it) instead of touching the GPU: an unbound thread would run on whatever device
  // happens to be current.
  using Job = std::function<void(int slot, const std::exception_ptr& bindFailure)>;

  // Starts `slots` threads. Each calls `bindThread(slot)` before its first job: CUDA's current
  // context is per thread, so this is where a thread binds to its GPU. A bind that throws is
  // retried before the slot's next job, and the job gets the exception while it keeps failing.
  RunQueue(int slots, std::function<void(int slot)> bindThread);
  ~RunQueue();
  RunQueue(const RunQueue&) = delete;
  RunQueue& operator=(const RunQueue&) = delete;

  // Queues `job`; false (job untouched) once shutdown() has begun.
  bool submit(Job job);

  enum class Pending {
    kRun,   // queued jobs still run (close(): every accepted run completes)
    kDrop,  // queued jobs are destroyed unrun (environment teardown)
  };

  // Stops accepting jobs, runs or drops the queued ones, waits for those running and joins the
  // threads. Idempotent. Must not be called from one of the queue's own threads. Returns how
  // many queued jobs were dropped.
  std::size_t shutdown(Pending pending);

  int slots() const noexcept { return static_cast<int>(threads_.size()); }

 private:
  void serve(int slot, const std::function<void(int)>& onThreadStart);

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  bool joined_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace spleen_trt::core
