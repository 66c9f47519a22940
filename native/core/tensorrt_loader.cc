#include "core/tensorrt_loader.h"

#include <algorithm>
#include <cstdio>

#include "core/tensorrt_status.h"

namespace spleen_trt::core {

namespace {

using GetInferLibVersionFn = std::int32_t (*)();

std::string joinPath(const std::string& directory, const std::string& name) {
  if (directory.empty()) return name;
#ifdef _WIN32
  return directory + "\\" + name;
#else
  return directory + "/" + name;
#endif
}

std::string directoryOf(const std::string& path) {
  const std::size_t slash = path.find_last_of("/\\");
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

bool fileExists(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return false;
  std::fclose(file);
  return true;
}

}  // namespace

TensorRtVersion decodeTensorRtVersion(std::int32_t encoded) {
  TensorRtVersion version;
  if (encoded >= 100000) {
    version.major = encoded / 10000;
    version.minor = (encoded / 100) % 100;
    version.patch = encoded % 100;
  } else {
    version.major = encoded / 1000;
    version.minor = (encoded / 100) % 10;
    version.patch = encoded % 100;
  }
  return version;
}

std::string formatTensorRtVersion(const TensorRtVersion& version) {
  return std::to_string(version.major) + "." + std::to_string(version.minor) + "." +
         std::to_string(version.patch);
}

std::string inferLibraryName(int major) {
#ifdef _WIN32
  return "nvinfer_" + std::to_string(major) + ".dll";
#else
  return "libnvinfer.so." + std::to_string(major);
#endif
}

std::string onnxParserLibraryName(int major) {
#ifdef _WIN32
  return "nvonnxparser_" + std::to_string(major) + ".dll";
#else
  return "libnvonnxparser.so." + std::to_string(major);
#endif
}

std::vector<std::string> builderResourceNames(const TensorRtVersion& version,
                                              const std::vector<ComputeCapability>& gpus) {
  std::vector<std::string> names;
  auto add = [&names](std::string name) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
  };
#ifdef _WIN32
  const std::string major = std::to_string(version.major);
  add("nvinfer_builder_resource_" + major + ".dll");
  for (const ComputeCapability& gpu : gpus) {
    add("nvinfer_builder_resource_sm" + std::to_string(gpu.first) + std::to_string(gpu.second) +
        "_" + major + ".dll");
  }
  if (!gpus.empty()) add("nvinfer_builder_resource_ptx_" + major + ".dll");
#else
  // The Linux builder asks for the full version (libnvinfer_builder_resource.so.10.13.0). The
  // per-SM names mirror the Windows split layout; harmless to try where they do not exist.
  const std::string full = formatTensorRtVersion(version);
  add("libnvinfer_builder_resource.so." + full);
  for (const ComputeCapability& gpu : gpus) {
    add("libnvinfer_builder_resource_sm" + std::to_string(gpu.first) + std::to_string(gpu.second) +
        ".so." + full);
  }
  if (!gpus.empty()) add("libnvinfer_builder_resource_ptx.so." + full);
#endif
  return names;
}

std::vector<int> TensorRtLibraries::defaultMajors() {
  // A binary compiled against TensorRT headers calls into the library through that major's ABI.
  const CompiledTensorRt compiled = compiledTensorRt();
  if (compiled.headers) return {compiled.version.major};
  return {11, 10};
}

std::unique_ptr<TensorRtLibraries> TensorRtLibraries::load(const std::vector<int>& majors,
                                                           const std::string& directory) {
  std::unique_ptr<TensorRtLibraries> libraries(new TensorRtLibraries());
  TensorRtLibraries& self = *libraries;
  self.directory_ = directory;

  std::vector<std::string> candidates;
  for (int major : majors) candidates.push_back(joinPath(directory, inferLibraryName(major)));
  std::vector<OpenFailure> failures;
  self.infer_ = openFirst(candidates, DynamicLibrary::Binding::kNow, &failures);
  if (!self.infer_.isLoaded()) {
    self.reason_ = "TensorRT library not found (" + describeFailures(failures) + ")";
    self.parserReason_ = "the ONNX parser is only looked for once libnvinfer loads";
    return libraries;
  }
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i] == self.infer_.file()) self.fileMajor_ = majors[i];
  }
  self.inferPath_ = self.infer_.path();

  std::string missing;
  auto resolve = [&](const char* name) -> void* {
    std::string error;
    void* address = self.infer_.symbol(name, &error);
    if (address == nullptr) missing += (missing.empty() ? "" : "; ") + error;
    return address;
  };
  const auto getVersion =
      reinterpret_cast<GetInferLibVersionFn>(resolve("getInferLibVersion"));
  self.createInferBuilder_ = resolve("createInferBuilder_INTERNAL");
  self.createInferRuntime_ = resolve("createInferRuntime_INTERNAL");
  if (getVersion != nullptr) self.encodedVersion_ = getVersion();
  if (!missing.empty()) {
    self.reason_ = self.inferPath_ + " is not a usable TensorRT library: " + missing;
  } else if (self.version().major != self.fileMajor_) {
    self.reason_ = self.inferPath_ + " reports version " + formatTensorRtVersion(self.version()) +
                   ", not the major its file name promises (" + std::to_string(self.fileMajor_) + ")";
  } else {
    self.available_ = true;
  }

  // The parser must match libnvinfer's major: it calls into it through the same ABI.
  DynamicLibrary parser =
      DynamicLibrary::open(joinPath(directory, onnxParserLibraryName(self.fileMajor_)));
  if (!parser.isLoaded()) {
    self.parserReason_ = "ONNX parser library not found (" +
                         describeFailures({{parser.file(), parser.error()}}) + ")";
    return libraries;
  }
  self.parserPath_ = parser.path();
  std::string error;
  self.createOnnxParser_ = parser.symbol("createNvOnnxParser_INTERNAL", &error);
  if (self.createOnnxParser_ == nullptr) {
    self.parserReason_ = self.parserPath_ + " is not a usable ONNX parser: " + error;
    return libraries;
  }
  self.parser_ = std::move(parser);
  self.parserAvailable_ = true;
  return libraries;
}

const TensorRtLibraries& TensorRtLibraries::shared() {
  static const TensorRtLibraries* const instance = [] {
    std::unique_ptr<TensorRtLibraries> libraries = load(defaultMajors());
    libraries->keepLoadedForever();
    return libraries.release();
  }();
  return *instance;
}

void TensorRtLibraries::keepLoadedForever() noexcept {
  infer_.keepLoadedForever();
  parser_.keepLoadedForever();
}

BuilderResourceInfo probeBuilderResource(const TensorRtLibraries& libraries,
                                         const std::vector<ComputeCapability>& gpus) {
  BuilderResourceInfo info;
  if (libraries.encodedVersion() == 0) {
    info.reason = "the builder resource library is only looked for once libnvinfer loads";
    return info;
  }
  const std::vector<std::string> names = builderResourceNames(libraries.version(), gpus);
  std::vector<std::string> candidates;
  for (const std::string& name : names) candidates.push_back(joinPath(libraries.directory(), name));

  std::vector<OpenFailure> failures;
  // Lazy binding: it is mostly kernel images, and nothing in it is called from here.
  const DynamicLibrary resource = openFirst(candidates, DynamicLibrary::Binding::kLazy, &failures);
  if (resource.isLoaded()) {
    info.available = true;
    info.path = resource.path();
    return info;
  }
  info.reason = "TensorRT's builder cannot load its resource library (" +
                describeFailures(failures) + ")";
  const std::string besideInfer = directoryOf(libraries.inferPath());
  if (libraries.directory().empty() && !besideInfer.empty()) {
    for (const std::string& name : names) {
      const std::string path = joinPath(besideInfer, name);
      if (fileExists(path)) {
#ifdef _WIN32
        const char* searchPath = "PATH";
#else
        const char* searchPath = "LD_LIBRARY_PATH";
#endif
        info.reason += "; " + path + " exists but is not on the library search path: add " +
                       besideInfer + " to " + searchPath;
        break;
      }
    }
  }
  info.reason += "; engines can still be deserialized and run, but not built";
  return info;
}

}  // namespace spleen_trt::core
