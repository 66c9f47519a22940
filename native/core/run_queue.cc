#include "core/run_queue.h"

#include <utility>

namespace spleen_trt::core {

RunQueue::RunQueue(int slots, std::function<void(int slot)> bindThread) {
  threads_.reserve(static_cast<std::size_t>(slots));
  try {
    for (int slot = 0; slot < slots; ++slot) {
      threads_.emplace_back([this, slot, bindThread] { serve(slot, bindThread); });
    }
  } catch (...) {
    // Could not start every thread (resource limits): stop the ones that did start.
    shutdown(Pending::kDrop);
    throw;
  }
}

RunQueue::~RunQueue() { shutdown(Pending::kDrop); }

bool RunQueue::submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return false;
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

std::size_t RunQueue::shutdown(Pending pending) {
  std::deque<Job> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    if (pending == Pending::kDrop) dropped.swap(jobs_);
    if (joined_) return dropped.size();
    joined_ = true;
  }
  wake_.notify_all();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  // Destroyed here, outside the lock: a job's captures may release resources.
  return dropped.size();
}

void RunQueue::serve(int slot, const std::function<void(int)>& bindThread) {
  std::exception_ptr bindFailure;
  bool bound = false;
  auto bind = [&] {
    if (bound || !bindThread) {
      bound = true;
      return;
    }
    try {
      bindThread(slot);
      bound = true;
      bindFailure = nullptr;
    } catch (...) {
      bindFailure = std::current_exception();
    }
  };
  bind();
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      // Queued jobs are served even while stopping (kRun); kDrop has emptied the queue.
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    bind();
    try {
      job(slot, bindFailure);
    } catch (...) {
      // Jobs report their own failures; one escaping must not terminate the process.
    }
  }
}

}  // namespace spleen_trt::core
