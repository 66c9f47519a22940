// Finds TensorRT at run time: libnvinfer.so.<major> and libnvonnxparser.so.<major> are opened
// with dlopen and only their C entry points are resolved. Every other TensorRT call is a virtual
// call through header-inline wrappers, so these few symbols are all a program needs, and the
// addon loads on machines without TensorRT.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/dynamic_library.h"

namespace spleen_trt::core {

struct TensorRtVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;
};

// Decodes getInferLibVersion(): (major * 100 + minor) * 100 + patch since TensorRT 10
// (NV_TENSORRT_VERSION_INT); major * 1000 + minor * 100 + patch before it.
TensorRtVersion decodeTensorRtVersion(std::int32_t encoded);

// "10.13.0".
std::string formatTensorRtVersion(const TensorRtVersion& version);

// A compute capability, {major, minor}.
using ComputeCapability = std::pair<int, int>;

// File names, per platform.
std::string inferLibraryName(int major);
std::string onnxParserLibraryName(int major);
// Names the builder may dlopen for its kernels: the one-file resource library, then the per-GPU
// split some releases ship (one per SM, plus a PTX fallback).
std::vector<std::string> builderResourceNames(const TensorRtVersion& version,
                                              const std::vector<ComputeCapability>& gpus);

class TensorRtLibraries {
 public:
  // Majors tried in order: the one whose headers the addon was compiled against, or (built
  // without headers, when it can only report) the newest installed.
  static std::vector<int> defaultMajors();

  // Opens libnvinfer for the first of `majors` that loads, then the ONNX parser of the same major.
  // A non-empty `directory` looks only there (tests); empty uses the loader's search path.
  static std::unique_ptr<TensorRtLibraries> load(const std::vector<int>& majors,
                                                 const std::string& directory = "");

  // Process-wide, loaded on first use and never unloaded (TensorRT objects may outlive any
  // single caller, and its static destructors must not run before theirs). Thread-safe.
  static const TensorRtLibraries& shared();

  // libnvinfer loaded with getInferLibVersion and both factory symbols, and its reported major
  // matches the file's.
  bool available() const noexcept { return available_; }
  const std::string& reason() const noexcept { return reason_; }
  const std::string& inferPath() const noexcept { return inferPath_; }
  int fileMajor() const noexcept { return fileMajor_; }
  std::int32_t encodedVersion() const noexcept { return encodedVersion_; }
  TensorRtVersion version() const noexcept { return decodeTensorRtVersion(encodedVersion_); }

  bool parserAvailable() const noexcept { return parserAvailable_; }
  const std::string& parserReason() const noexcept { return parserReason_; }
  const std::string& parserPath() const noexcept { return parserPath_; }

  // Factory entry points, typed by the code that includes the TensorRT headers.
  void* createInferBuilder() const noexcept { return createInferBuilder_; }
  void* createInferRuntime() const noexcept { return createInferRuntime_; }
  void* createOnnxParser() const noexcept { return createOnnxParser_; }

  // The directory searched when load() was given one; empty otherwise.
  const std::string& directory() const noexcept { return directory_; }

 private:
  TensorRtLibraries() = default;
  void keepLoadedForever() noexcept;

  DynamicLibrary infer_;
  DynamicLibrary parser_;
  std::string directory_;
  bool available_ = false;
  std::string reason_;
  std::string inferPath_;
  int fileMajor_ = 0;
  std::int32_t encodedVersion_ = 0;
  void* createInferBuilder_ = nullptr;
  void* createInferRuntime_ = nullptr;
  bool parserAvailable_ = false;
  std::string parserReason_;
  std::string parserPath_;
  void* createOnnxParser_ = nullptr;
};

struct BuilderResourceInfo {
  bool available = false;
  std::string path;
  std::string reason;
};

// Whether the builder will find its resource library. TensorRT dlopens it by bare name, so only
// what the loader finds by name counts; a copy merely sitting next to libnvinfer is reported as
// the likely fix instead. Opens and closes the library; loads nothing for good.
BuilderResourceInfo probeBuilderResource(const TensorRtLibraries& libraries,
                                         const std::vector<ComputeCapability>& gpus);

}  // namespace spleen_trt::core
