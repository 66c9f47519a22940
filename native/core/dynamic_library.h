// RAII handle to a shared library opened at run time (dlopen / LoadLibrary).
//
// CUDA's driver and TensorRT are optional: the addon must load on machines without them, so they
// are never linked, only opened here. Failures never throw; they are kept as text (the loader's
// own message, which names the file and the cause) so getRuntimeInfo() can say why.
#pragma once

#include <string>
#include <vector>

namespace spleen_trt::core {

class DynamicLibrary {
 public:
  enum class Binding {
    kNow,   // resolve every symbol at open: a missing dependency fails here, not mid-call
    kLazy,  // for data-only libraries that are only checked for presence
  };

  DynamicLibrary() = default;
  ~DynamicLibrary();
  DynamicLibrary(DynamicLibrary&& other) noexcept;
  DynamicLibrary& operator=(DynamicLibrary&& other) noexcept;
  DynamicLibrary(const DynamicLibrary&) = delete;
  DynamicLibrary& operator=(const DynamicLibrary&) = delete;

  // `file` is a bare name (searched like the system loader does) or a path. Never throws for a
  // library that cannot be opened: check isLoaded() and error().
  static DynamicLibrary open(const std::string& file, Binding binding = Binding::kNow);

  bool isLoaded() const noexcept { return handle_ != nullptr; }
  // The name or path that was asked for.
  const std::string& file() const noexcept { return file_; }
  // The loader's message when open() failed; empty when loaded.
  const std::string& error() const noexcept { return error_; }
  // The file the loader actually mapped (absolute where the platform says so), else file().
  std::string path() const;

  // Address of `name`, or nullptr with `*error` set (when error is not null).
  void* symbol(const char* name, std::string* error) const;

  template <typename Function>
  Function function(const char* name, std::string* error) const {
    // Object-to-function pointer casts are conditionally supported; POSIX requires them to work.
    return reinterpret_cast<Function>(symbol(name, error));
  }

  // Keeps the library mapped for the rest of the process. Needed for the CUDA driver: once
  // cuInit has run it owns threads and exit handlers, and unmapping it would crash the process.
  void keepLoadedForever() noexcept;

 private:
  void close() noexcept;

  void* handle_ = nullptr;
  bool keepLoaded_ = false;
  std::string file_;
  std::string error_;
};

struct OpenFailure {
  std::string file;
  std::string error;
};

// Opens the first of `candidates` that loads. Every failure before it goes to `failures`
// (cleared first). The result is not loaded when none could be opened.
DynamicLibrary openFirst(const std::vector<std::string>& candidates,
                         DynamicLibrary::Binding binding, std::vector<OpenFailure>* failures);

// "tried a, b: <error a>; <error b>" for a reason string.
std::string describeFailures(const std::vector<OpenFailure>& failures);

// An optional library opened once for the process (libdeflate, ISA-L): unless `offVariable` is
// "1" in the environment, the first of `candidates` that loads, kept mapped for good (a job may
// still run on a pool thread at exit). True with `library` loaded; false with `*reason` saying
// why ("switched off (VAR=1)", or every candidate's failure).
bool openOptionalForever(const char* offVariable, const std::vector<std::string>& candidates, DynamicLibrary* library,
                         std::string* reason);

}  // namespace spleen_trt::core
