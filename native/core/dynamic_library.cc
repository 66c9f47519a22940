#include "core/dynamic_library.h"

#include <cstdlib>
#include <cstring>
#include <utility>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <dlfcn.h>
#if defined(__linux__)
#include <link.h>
#endif
#endif

namespace spleen_trt::core {

namespace {

#ifdef _WIN32
std::string lastWindowsError() {
  const DWORD code = GetLastError();
  char* text = nullptr;
  const DWORD length = FormatMessageA(
      FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
      nullptr, code, 0, reinterpret_cast<LPSTR>(&text), 0, nullptr);
  std::string message = length > 0 ? std::string(text, length) : std::string();
  if (text != nullptr) LocalFree(text);
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) message.pop_back();
  return message + " (error " + std::to_string(code) + ")";
}
#else
// dlerror() is per thread and cleared by reading it, so it must be read right after the call
// that failed, on the same thread.
std::string takeDlError(const char* fallback) {
  const char* text = dlerror();
  return text != nullptr ? std::string(text) : std::string(fallback);
}
#endif

}  // namespace

DynamicLibrary::~DynamicLibrary() { close(); }

DynamicLibrary::DynamicLibrary(DynamicLibrary&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      keepLoaded_(other.keepLoaded_),
      file_(std::move(other.file_)),
      error_(std::move(other.error_)) {}

DynamicLibrary& DynamicLibrary::operator=(DynamicLibrary&& other) noexcept {
  if (this != &other) {
    close();
    handle_ = std::exchange(other.handle_, nullptr);
    keepLoaded_ = other.keepLoaded_;
    file_ = std::move(other.file_);
    error_ = std::move(other.error_);
  }
  return *this;
}

DynamicLibrary DynamicLibrary::open(const std::string& file, Binding binding) {
  DynamicLibrary library;
  library.file_ = file;
#ifdef _WIN32
  (void)binding;
  library.handle_ = reinterpret_cast<void*>(LoadLibraryA(file.c_str()));
  if (library.handle_ == nullptr) library.error_ = file + ": " + lastWindowsError();
#else
  // RTLD_LOCAL: CUDA and TensorRT symbols must not leak into the global namespace, where they
  // could interpose on another addon's copy (onnxruntime's CUDA provider, for one).
  const int flags = (binding == Binding::kNow ? RTLD_NOW : RTLD_LAZY) | RTLD_LOCAL;
  dlerror();
  library.handle_ = dlopen(file.c_str(), flags);
  if (library.handle_ == nullptr) library.error_ = takeDlError("dlopen failed without a message");
#endif
  return library;
}

std::string DynamicLibrary::path() const {
  if (handle_ == nullptr) return file_;
#if defined(_WIN32)
  char buffer[MAX_PATH * 2];
  const DWORD length =
      GetModuleFileNameA(reinterpret_cast<HMODULE>(handle_), buffer, sizeof(buffer));
  if (length > 0 && length < sizeof(buffer)) return std::string(buffer, length);
#elif defined(__linux__)
  const link_map* map = nullptr;
  if (dlinfo(handle_, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr && map->l_name != nullptr &&
      map->l_name[0] != '\0') {
    return map->l_name;
  }
#endif
  return file_;
}

void* DynamicLibrary::symbol(const char* name, std::string* error) const {
  if (handle_ == nullptr) {
    if (error != nullptr) *error = std::string(name) + ": library " + file_ + " is not loaded";
    return nullptr;
  }
#ifdef _WIN32
  void* address = reinterpret_cast<void*>(GetProcAddress(reinterpret_cast<HMODULE>(handle_), name));
  if (address == nullptr && error != nullptr) {
    *error = std::string(name) + " not found in " + file_ + ": " + lastWindowsError();
  }
  return address;
#else
  dlerror();
  void* address = dlsym(handle_, name);
  if (address == nullptr && error != nullptr) {
    *error = takeDlError("symbol resolved to a null address");
  }
  return address;
#endif
}

void DynamicLibrary::keepLoadedForever() noexcept { keepLoaded_ = true; }

void DynamicLibrary::close() noexcept {
  if (handle_ == nullptr || keepLoaded_) {
    handle_ = nullptr;
    return;
  }
#ifdef _WIN32
  FreeLibrary(reinterpret_cast<HMODULE>(handle_));
#else
  dlclose(handle_);
#endif
  handle_ = nullptr;
}

DynamicLibrary openFirst(const std::vector<std::string>& candidates,
                         DynamicLibrary::Binding binding, std::vector<OpenFailure>* failures) {
  if (failures != nullptr) failures->clear();
  for (const std::string& candidate : candidates) {
    DynamicLibrary library = DynamicLibrary::open(candidate, binding);
    if (library.isLoaded()) return library;
    if (failures != nullptr) failures->push_back({candidate, library.error()});
  }
  return DynamicLibrary();
}

std::string describeFailures(const std::vector<OpenFailure>& failures) {
  std::string names;
  std::string errors;
  for (const OpenFailure& failure : failures) {
    if (!names.empty()) {
      names += ", ";
      errors += "; ";
    }
    names += failure.file;
    errors += failure.error;
  }
  return "tried " + names + ": " + errors;
}

bool openOptionalForever(const char* offVariable, const std::vector<std::string>& candidates, DynamicLibrary* library,
                         std::string* reason) {
  const char* off = std::getenv(offVariable);
  if (off != nullptr && std::strcmp(off, "1") == 0) {
    *reason = std::string("switched off (") + offVariable + "=1)";
    return false;
  }
  std::vector<OpenFailure> failures;
  *library = openFirst(candidates, DynamicLibrary::Binding::kNow, &failures);
  if (!library->isLoaded()) {
    *reason = describeFailures(failures);
    return false;
  }
  library->keepLoadedForever();
  return true;
}

}  // namespace spleen_trt::core
