// Where TensorRT's log goes. TensorRT takes one logger for the whole process and calls it from
// whichever thread does the work (sometimes its own). The logger (tensorrt_common.h) forwards
// every line here; a LogCapture collects the lines of one call (a build, a load, a run) so they
// can travel with that call's result or error. Nothing here calls Node-API: lines are plain
// strings handed back to the JS thread with the result.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace spleen_trt::core {

// Numbered as nvinfer1::ILogger::Severity (kINTERNAL_ERROR = 0 ... kVERBOSE = 4).
enum class LogSeverity : int {
  kInternalError = 0,
  kError = 1,
  kWarning = 2,
  kInfo = 3,
  kVerbose = 4,
};

// "[E] message", with trtexec's one-letter tags (F for TensorRT's internal errors).
std::string formatLogLine(LogSeverity severity, const char* message);

// Whether a capture also takes lines from threads that have no capture of their own (TensorRT's
// helper threads, which work for some caller the logger cannot name).
enum class ForeignLines {
  kIgnore,  // runs and loads: their lines come from the calling thread
  kAccept,  // builds: TensorRT's builder logs from its own threads too
};

// Collects lines logged while it is alive: those from the thread that created it and, for
// captures that accept them, lines from threads without a capture. Such a line cannot be
// attributed when several accepting captures are alive (concurrent builds): each then gets it
// marked "(from a TensorRT thread; N builds running)", so no error quotes another call's line as
// its own. Captures nest per thread; destroy them on the thread that created them, in reverse order.
class LogCapture {
 public:
  // Lines above `maxSeverity` (more verbose) are dropped. Informational and verbose lines are
  // capped at `maxLines`; warnings and errors are always kept.
  explicit LogCapture(LogSeverity maxSeverity = LogSeverity::kInfo, std::size_t maxLines = 2000,
                      ForeignLines foreign = ForeignLines::kIgnore);
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // Everything collected so far, with a final "... N lines dropped" note if the cap was hit.
  std::vector<std::string> lines() const;
  // Only the lines at kWarning or more severe.
  std::vector<std::string> problems() const;

 private:
  friend void logLine(LogSeverity severity, const char* message) noexcept;
  void append(LogSeverity severity, const char* message, const char* prefix = nullptr);

  LogSeverity maxSeverity_;
  ForeignLines foreign_;
  std::size_t maxLines_;
  LogCapture* previous_;
  mutable std::mutex mutex_;
  std::vector<std::pair<LogSeverity, std::string>> lines_;
  std::size_t chattyLines_ = 0;
  std::size_t dropped_ = 0;
};

// Routes one line to the captures that want it (see LogCapture). Thread-safe, never throws; a
// line nobody captures is dropped.
void logLine(LogSeverity severity, const char* message) noexcept;

}  // namespace spleen_trt::core
