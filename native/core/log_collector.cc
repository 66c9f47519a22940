#include "core/log_collector.h"

#include <algorithm>
#include <exception>

namespace spleen_trt::core {

namespace {

// Captures alive in the process, for lines from threads that have none. A plain vector: there
// are as many entries as concurrent builds/loads, a handful at most.
std::mutex& registryMutex() {
  static std::mutex* const mutex = new std::mutex();  // never destroyed: logging may outlive main
  return *mutex;
}

std::vector<LogCapture*>& registry() {
  static std::vector<LogCapture*>* const captures = new std::vector<LogCapture*>();
  return *captures;
}

thread_local LogCapture* currentCapture = nullptr;

const char* tag(LogSeverity severity) {
  switch (severity) {
    case LogSeverity::kInternalError: return "[F] ";
    case LogSeverity::kError: return "[E] ";
    case LogSeverity::kWarning: return "[W] ";
    case LogSeverity::kInfo: return "[I] ";
    case LogSeverity::kVerbose: return "[V] ";
  }
  return "[?] ";
}

}  // namespace

std::string formatLogLine(LogSeverity severity, const char* message) {
  std::string line = tag(severity);
  line += message != nullptr ? message : "(null)";
  // TensorRT ends some messages with a newline; one line per entry reads better in `details`.
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  return line;
}

LogCapture::LogCapture(LogSeverity maxSeverity, std::size_t maxLines, ForeignLines foreign)
    : maxSeverity_(maxSeverity), foreign_(foreign), maxLines_(maxLines), previous_(currentCapture) {
  currentCapture = this;
  std::lock_guard<std::mutex> lock(registryMutex());
  registry().push_back(this);
}

LogCapture::~LogCapture() {
  {
    std::lock_guard<std::mutex> lock(registryMutex());
    auto& captures = registry();
    captures.erase(std::remove(captures.begin(), captures.end(), this), captures.end());
  }
  if (currentCapture == this) currentCapture = previous_;
}

void LogCapture::append(LogSeverity severity, const char* message, const char* prefix) {
  if (static_cast<int>(severity) > static_cast<int>(maxSeverity_)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (severity == LogSeverity::kInfo || severity == LogSeverity::kVerbose) {
    if (chattyLines_ >= maxLines_) {
      ++dropped_;
      return;
    }
    ++chattyLines_;
  }
  if (prefix == nullptr) {
    lines_.emplace_back(severity, formatLogLine(severity, message));
  } else {
    lines_.emplace_back(severity, formatLogLine(severity, (std::string(prefix) + (message != nullptr ? message : "(null)")).c_str()));
  }
}

std::vector<std::string> LogCapture::lines() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> result;
  result.reserve(lines_.size() + 1);
  for (const auto& entry : lines_) result.push_back(entry.second);
  if (dropped_ > 0) {
    result.push_back("... " + std::to_string(dropped_) + " informational lines dropped");
  }
  return result;
}

std::vector<std::string> LogCapture::problems() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> result;
  for (const auto& entry : lines_) {
    if (static_cast<int>(entry.first) <= static_cast<int>(LogSeverity::kWarning)) {
      result.push_back(entry.second);
    }
  }
  return result;
}

void logLine(LogSeverity severity, const char* message) noexcept {
  try {
    if (currentCapture != nullptr) {
      currentCapture->append(severity, message);
      return;
    }
    // A thread with no capture: TensorRT's own workers. Only captures that accept such lines
    // (builds) get it; with one build at a time (the usual case) that is exactly its owner.
    std::lock_guard<std::mutex> lock(registryMutex());
    std::size_t accepting = 0;
    for (LogCapture* capture : registry()) accepting += capture->foreign_ == ForeignLines::kAccept ? 1 : 0;
    if (accepting == 0) return;
    const std::string prefix =
        accepting == 1 ? std::string() : "(from a TensorRT thread; " + std::to_string(accepting) + " builds running) ";
    for (LogCapture* capture : registry()) {
      if (capture->foreign_ == ForeignLines::kAccept) capture->append(severity, message, accepting == 1 ? nullptr : prefix.c_str());
    }
  } catch (const std::exception&) {
    // Out of memory while logging: losing a line beats terminating inside TensorRT's noexcept
    // callback.
  }
}

}  // namespace spleen_trt::core
