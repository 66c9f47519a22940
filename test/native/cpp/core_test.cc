// Tests of native/core without Node: run by ctest with the directory of the fake libraries that
// CMakeLists.txt builds from test/native/fixtures (argv[1]). Expected values come from the fakes'
// documented behaviour, not from the code under test.
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "core/cuda_driver.h"
#include "core/dynamic_library.h"
#include "core/runtime_info.h"
#include "core/tensorrt_loader.h"

namespace {

int failures = 0;

void check(bool condition, const char* expression, const char* file, int line) {
  if (!condition) {
    std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expression);
    ++failures;
  }
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

#define CHECK(condition) check((condition), #condition, __FILE__, __LINE__)
#define CHECK_EQ(actual, expected)                                                         \
  do {                                                                                     \
    const auto actualValue = (actual);                                                     \
    const auto expectedValue = (expected);                                                 \
    if (!(actualValue == expectedValue)) {                                                 \
      std::fprintf(stderr, "%s:%d: CHECK_EQ failed: %s\n", __FILE__, __LINE__, #actual);    \
      ++failures;                                                                          \
    }                                                                                      \
  } while (false)

using namespace spleen_trt::core;

void testDynamicLibrary(const std::string& fakes) {
  DynamicLibrary missing = DynamicLibrary::open("libspleen_trt_absent.so.7");
  CHECK(!missing.isLoaded());
  CHECK(contains(missing.error(), "libspleen_trt_absent.so.7"));
  CHECK(contains(missing.error(), "No such file"));
  std::string error;
  CHECK(missing.symbol("anything", &error) == nullptr);
  CHECK(contains(error, "not loaded"));

  const std::string inferPath = fakes + "/trt/libnvinfer.so.10";
  DynamicLibrary infer = DynamicLibrary::open(inferPath);
  CHECK(infer.isLoaded());
  CHECK(infer.error().empty());
  CHECK_EQ(infer.path(), inferPath);
  CHECK(infer.symbol("getInferLibVersion", nullptr) != nullptr);
  error.clear();
  CHECK(infer.symbol("noSuchSymbol", &error) == nullptr);
  CHECK(contains(error, "noSuchSymbol"));

  DynamicLibrary moved = std::move(infer);
  CHECK(moved.isLoaded());
  CHECK(!infer.isLoaded());  // NOLINT(bugprone-use-after-move): the moved-from state is the point

  std::vector<OpenFailure> failed;
  DynamicLibrary first =
      openFirst({fakes + "/trt/libnvinfer.so.11", inferPath}, DynamicLibrary::Binding::kNow, &failed);
  CHECK(first.isLoaded());
  CHECK_EQ(first.file(), inferPath);
  CHECK_EQ(failed.size(), std::size_t{1});
  const std::string described = describeFailures(failed);
  CHECK(contains(described, "tried " + fakes + "/trt/libnvinfer.so.11: "));
}

void testVersions() {
  const TensorRtVersion v10 = decodeTensorRtVersion(101300);
  CHECK_EQ(v10.major, 10);
  CHECK_EQ(v10.minor, 13);
  CHECK_EQ(v10.patch, 0);
  CHECK_EQ(formatTensorRtVersion(decodeTensorRtVersion(110102)), std::string("11.1.2"));
  CHECK_EQ(formatTensorRtVersion(decodeTensorRtVersion(8601)), std::string("8.6.1"));
  CHECK_EQ(formatCudaVersion(12040), std::string("12.4"));
  CHECK_EQ(formatCudaVersion(13000), std::string("13.0"));

  const std::vector<std::string> names = builderResourceNames({10, 13, 0}, {{9, 0}, {8, 6}, {9, 0}});
  const std::vector<std::string> expected = {
      "libnvinfer_builder_resource.so.10.13.0", "libnvinfer_builder_resource_sm90.so.10.13.0",
      "libnvinfer_builder_resource_sm86.so.10.13.0", "libnvinfer_builder_resource_ptx.so.10.13.0"};
  CHECK(names == expected);
  CHECK(builderResourceNames({10, 13, 0}, {}) ==
        std::vector<std::string>{"libnvinfer_builder_resource.so.10.13.0"});
}

void testCudaDriver(const std::string& fakes) {
  {
    const auto api = CudaDriverApi::load({fakes + "/cuda-ok/libcuda.so.1"});
    CHECK(api->loaded());
    const CudaDriverInfo info = probeCudaDriver(*api);
    CHECK(info.driverAvailable);
    CHECK_EQ(info.driverVersion, 12040);
    CHECK(info.reason.empty());
    CHECK_EQ(info.libraryPath, fakes + "/cuda-ok/libcuda.so.1");
    CHECK_EQ(info.devices.size(), std::size_t{2});
    if (info.devices.size() == 2) {
      CHECK_EQ(info.devices[0].name, std::string("Fake GPU 0"));
      CHECK_EQ(info.devices[0].totalMemoryBytes, std::uint64_t{85899345920});  // 80 GiB
      CHECK_EQ(info.devices[0].computeCapabilityMajor, 9);
      CHECK_EQ(info.devices[0].computeCapabilityMinor, 0);
      CHECK_EQ(info.devices[0].pciBusId, std::string("0000:3B:00.0"));
      CHECK_EQ(info.devices[1].index, 1);
      CHECK_EQ(info.devices[1].totalMemoryBytes, std::uint64_t{85899345920 + 1048576});
      CHECK_EQ(info.devices[1].computeCapabilityMinor, 1);
      CHECK_EQ(info.devices[1].pciBusId, std::string("0000:3C:00.0"));
    }
  }
  {
    const auto api = CudaDriverApi::load({fakes + "/cuda-init-fails/libcuda.so.1"});
    const CudaDriverInfo info = probeCudaDriver(*api);
    CHECK(!info.driverAvailable);
    CHECK_EQ(info.driverVersion, 12040);
    CHECK(contains(info.reason, "cuInit(0) failed: CUDA_ERROR_NO_DEVICE (100)"));
    CHECK(info.devices.empty());
  }
  {
    const auto api = CudaDriverApi::load({fakes + "/absent/libcuda.so.1"});
    CHECK(!api->loaded());
    const CudaDriverInfo info = probeCudaDriver(*api);
    CHECK(!info.driverAvailable);
    CHECK(contains(info.reason, "CUDA driver library not found"));
    CHECK(contains(info.reason, fakes + "/absent/libcuda.so.1"));
  }
}

void testTensorRt(const std::string& fakes) {
  {
    const auto trt = TensorRtLibraries::load({11, 10}, fakes + "/trt");
    CHECK(trt->available());
    CHECK(trt->reason().empty());
    CHECK_EQ(trt->fileMajor(), 10);
    CHECK_EQ(trt->encodedVersion(), 101300);
    CHECK_EQ(trt->inferPath(), fakes + "/trt/libnvinfer.so.10");
    CHECK(trt->createInferBuilder() != nullptr);
    CHECK(trt->createInferRuntime() != nullptr);
    CHECK(trt->parserAvailable());
    CHECK(trt->createOnnxParser() != nullptr);
    const TensorRtInfo info = describeTensorRt(*trt, {{9, 0}});
    CHECK_EQ(info.version, std::string("10.13.0"));
    CHECK_EQ(info.major, 10);
    CHECK(info.builderResource.available);
    CHECK_EQ(info.builderResource.path, fakes + "/trt/libnvinfer_builder_resource.so.10.13.0");
  }
  {
    const auto trt = TensorRtLibraries::load({11, 10}, fakes + "/absent");
    CHECK(!trt->available());
    CHECK(contains(trt->reason(), "libnvinfer.so.11"));
    CHECK(contains(trt->reason(), "libnvinfer.so.10"));
    CHECK(!trt->parserAvailable());
    const TensorRtInfo info = describeTensorRt(*trt, {});
    CHECK(info.version.empty());
    CHECK(!info.builderResource.available);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <directory of the fake libraries>\n", argv[0]);
    return 2;
  }
  const std::string fakes = argv[1];
  testDynamicLibrary(fakes);
  testVersions();
  testCudaDriver(fakes);
  testTensorRt(fakes);
  if (failures != 0) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return EXIT_FAILURE;
  }
  std::printf("core tests passed\n");
  return EXIT_SUCCESS;
}
