// Tests of native/core without Node: run by ctest with the directory of the fake libraries that
// CMakeLists.txt builds from test/native/fixtures (argv[1]). Expected values come from the fakes'
// documented behaviour, not from the code under test.
#include <algorithm>
#include <cmath>
#include <exception>
#include <map>
#include <memory>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/cuda_driver.h"
#include "core/build_objects.h"
#include "core/cuda_resources.h"
#include "core/dynamic_library.h"
#include "core/engine_slot.h"
#include "core/log_collector.h"
#include "core/native_error.h"
#include "core/plan_header.h"
#include "core/run_queue.h"
#include "core/runtime_info.h"
#include "core/tensorrt_loader.h"
#include "core/tensorrt_status.h"

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
namespace core = spleen_trt::core;

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

void testPlanHeader() {
  // A made-up header: "ftrt" little-endian at 0, TensorRT 10.13.0.26 at bytes 24..27.
  std::vector<std::uint8_t> bytes(64, 0);
  bytes[0] = 'f';
  bytes[1] = 't';
  bytes[2] = 'r';
  bytes[3] = 't';
  bytes[24] = 10;
  bytes[25] = 13;
  bytes[26] = 0;
  bytes[27] = 26;
  const PlanHeader header = parsePlanHeader(bytes.data(), bytes.size());
  CHECK(header.isPlan);
  CHECK_EQ(header.major, 10);
  CHECK_EQ(header.minor, 13);
  CHECK_EQ(header.patch, 0);
  CHECK_EQ(header.build, 26);
  CHECK_EQ(formatPlanVersion(header), std::string("10.13.0.26"));
  CHECK(header.versionKnown);
  CHECK_EQ(header.serializationVersion, 0u);
  // Finding 4: another serialization version keeps the version elsewhere (or not at all): bytes
  // 24..27 must not be read as one.
  std::vector<std::uint8_t> other = bytes;
  other[4] = 3;
  const PlanHeader otherHeader = parsePlanHeader(other.data(), other.size());
  CHECK(otherHeader.isPlan);
  CHECK(!otherHeader.versionKnown);
  CHECK_EQ(otherHeader.serializationVersion, 3u);
  CHECK_EQ(otherHeader.major, 0);
  CHECK_EQ(formatPlanVersion(otherHeader), std::string("unknown (serialization version 3)"));
  other[4] = 0;
  other[7] = 1;  // the high byte counts too
  CHECK(!parsePlanHeader(other.data(), other.size()).versionKnown);
  CHECK(!parsePlanHeader(bytes.data(), 27).isPlan);  // shorter than the version field
  CHECK(!parsePlanHeader(nullptr, 0).isPlan);
  bytes[3] = 'T';
  CHECK(!parsePlanHeader(bytes.data(), bytes.size()).isPlan);
}

void testErrorCodes() {
  // The names src/errors.ts declares.
  CHECK_EQ(std::string(errorCodeName(ErrorCode::kTensorRtUnavailable)), std::string("ERR_TENSORRT_UNAVAILABLE"));
  CHECK_EQ(std::string(errorCodeName(ErrorCode::kNoGpu)), std::string("ERR_NO_GPU"));
  CHECK_EQ(std::string(errorCodeName(ErrorCode::kOnnxParse)), std::string("ERR_ONNX_PARSE"));
  CHECK_EQ(std::string(errorCodeName(ErrorCode::kBuildFailed)), std::string("ERR_BUILD_FAILED"));
  CHECK_EQ(std::string(errorCodeName(ErrorCode::kEngineIncompatible)), std::string("ERR_ENGINE_INCOMPATIBLE"));
  CHECK_EQ(std::string(errorCodeName(ErrorCode::kOutOfMemory)), std::string("ERR_OUT_OF_MEMORY"));
  CHECK_EQ(std::string(errorCodeName(ErrorCode::kInferenceFailed)), std::string("ERR_INFERENCE_FAILED"));
  CHECK_EQ(std::string(errorCodeName(ErrorCode::kAborted)), std::string("ERR_ABORTED"));
  CHECK_EQ(std::string(errorCodeName(ErrorCode::kClosed)), std::string("ERR_CLOSED"));
  const NativeError error(ErrorCode::kOnnxParse, "bad model", {"node 1 (Conv_0, op Conv): x"});
  CHECK_EQ(std::string(error.what()), std::string("bad model"));
  CHECK_EQ(error.details().size(), std::size_t{1});
}

void testLogCapture() {
  logLine(LogSeverity::kError, "nobody listens");  // dropped, not a crash
  CHECK_EQ(formatLogLine(LogSeverity::kWarning, "trailing newline\n"), std::string("[W] trailing newline"));
  CHECK_EQ(formatLogLine(LogSeverity::kInternalError, "x"), std::string("[F] x"));
  {
    LogCapture outer(LogSeverity::kInfo, 2, ForeignLines::kAccept);
    logLine(LogSeverity::kVerbose, "too chatty");
    logLine(LogSeverity::kInfo, "info 1");
    logLine(LogSeverity::kWarning, "warning 1");
    logLine(LogSeverity::kInfo, "info 2");
    logLine(LogSeverity::kInfo, "info 3 (over the cap)");
    logLine(LogSeverity::kError, "error 1 (kept despite the cap)");
    {
      LogCapture inner(LogSeverity::kVerbose);
      logLine(LogSeverity::kVerbose, "inner verbose");
      CHECK(inner.lines() == std::vector<std::string>{"[V] inner verbose"});
    }
    // A thread without a capture of its own (as TensorRT's workers) logs to the live build capture.
    std::thread([] { logLine(LogSeverity::kWarning, "from another thread"); }).join();
    const std::vector<std::string> expected = {"[I] info 1",
                                               "[W] warning 1",
                                               "[I] info 2",
                                               "[E] error 1 (kept despite the cap)",
                                               "[W] from another thread",
                                               "... 1 informational lines dropped"};
    CHECK(outer.lines() == expected);
    const std::vector<std::string> problems = {"[W] warning 1", "[E] error 1 (kept despite the cap)",
                                               "[W] from another thread"};
    CHECK(outer.problems() == problems);
  }
  {
    // Another thread's own capture does not see this thread's lines.
    LogCapture mine(LogSeverity::kInfo);
    std::vector<std::string> theirs;
    std::thread([&theirs] {
      LogCapture capture(LogSeverity::kInfo);
      logLine(LogSeverity::kInfo, "theirs");
      theirs = capture.lines();
    }).join();
    logLine(LogSeverity::kInfo, "mine");
    CHECK(theirs == std::vector<std::string>{"[I] theirs"});
    CHECK(mine.lines() == std::vector<std::string>{"[I] mine"});
  }
}

void testForeignLogLines() {
  // Finding 9: a run's (or load's) capture never gets lines from threads it does not own, even
  // while a build is running; that build does.
  std::promise<void> buildStarted;
  std::promise<void> runDone;
  std::vector<std::string> buildLines;
  std::thread build([&] {
    LogCapture capture(LogSeverity::kInfo);  // the build thread's own capture
    buildStarted.set_value();
    runDone.get_future().wait();
    buildLines = capture.lines();
  });
  buildStarted.get_future().wait();
  {
    LogCapture run(LogSeverity::kWarning);  // default: ignores foreign lines
    std::thread([] { logLine(LogSeverity::kError, "a TensorRT worker's error"); }).join();
    CHECK(run.lines().empty());
    logLine(LogSeverity::kError, "the run's own error");
    CHECK(run.lines() == std::vector<std::string>{"[E] the run's own error"});
  }
  runDone.set_value();
  build.join();
  CHECK(buildLines.empty());  // not the run's line either

  // Two builds at once: a worker's line cannot be attributed, and says so.
  {
    LogCapture first(LogSeverity::kInfo, 100, ForeignLines::kAccept);
    std::vector<std::string> secondLines;
    std::promise<void> ready;
    std::promise<void> logged;
    std::thread second([&] {
      LogCapture capture(LogSeverity::kInfo, 100, ForeignLines::kAccept);
      ready.set_value();
      logged.get_future().wait();
      secondLines = capture.lines();
    });
    ready.get_future().wait();
    std::thread([] { logLine(LogSeverity::kWarning, "tactic skipped"); }).join();
    logged.set_value();
    second.join();
    const std::vector<std::string> marked = {"[W] (from a TensorRT thread; 2 builds running) tactic skipped"};
    CHECK(first.lines() == marked);
    CHECK(secondLines == marked);
  }
}

void testRunQueue() {
  {
    // One slot: jobs run one at a time, in submission order, all on that slot's thread.
    std::vector<int> order;
    std::set<std::thread::id> threads;
    std::atomic<int> started{0};
    core::RunQueue queue(1, [&started](int slot) {
      CHECK_EQ(slot, 0);
      ++started;
    });
    for (int i = 0; i < 20; ++i) {
      CHECK(queue.submit([&order, &threads, i](int slot, const std::exception_ptr&) {
        CHECK_EQ(slot, 0);
        order.push_back(i);
        threads.insert(std::this_thread::get_id());
      }));
    }
    CHECK_EQ(queue.shutdown(core::RunQueue::Pending::kRun), std::size_t{0});
    CHECK_EQ(started.load(), 1);
    std::vector<int> expected;
    for (int i = 0; i < 20; ++i) expected.push_back(i);
    CHECK(order == expected);
    CHECK_EQ(threads.size(), std::size_t{1});
    CHECK(!queue.submit([](int, const std::exception_ptr&) {}));
    CHECK_EQ(queue.shutdown(core::RunQueue::Pending::kRun), std::size_t{0});  // idempotent
  }
  {
    // Three slots: never more than three jobs at once, never two on one slot, all jobs run.
    std::mutex mutex;
    int active = 0;
    int maxActive = 0;
    std::set<int> busySlots;
    bool slotShared = false;
    int ran = 0;
    core::RunQueue queue(3, nullptr);
    for (int i = 0; i < 30; ++i) {
      queue.submit([&](int slot, const std::exception_ptr&) {
        {
          std::lock_guard<std::mutex> lock(mutex);
          ++active;
          maxActive = std::max(maxActive, active);
          if (!busySlots.insert(slot).second) slotShared = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        std::lock_guard<std::mutex> lock(mutex);
        busySlots.erase(slot);
        --active;
        ++ran;
      });
    }
    queue.shutdown(core::RunQueue::Pending::kRun);
    CHECK_EQ(ran, 30);
    CHECK(maxActive <= 3);
    CHECK(maxActive >= 1);
    CHECK(!slotShared);
  }
  {
    // kDrop: the running job finishes, queued ones are destroyed unrun.
    std::promise<void> gate;
    std::shared_future<void> opened = gate.get_future().share();
    std::atomic<int> ran{0};
    auto token = std::make_shared<int>(0);
    std::promise<void> started;
    core::RunQueue queue(1, nullptr);
    queue.submit([opened, &ran, &started](int, const std::exception_ptr&) {
      started.set_value();
      opened.wait();
      ++ran;
    });
    started.get_future().wait();  // the first job is running, not queued
    for (int i = 0; i < 5; ++i) queue.submit([token, &ran](int, const std::exception_ptr&) { ++ran; });
    std::size_t dropped = 0;
    std::thread stopper([&queue, &dropped] { dropped = queue.shutdown(core::RunQueue::Pending::kDrop); });
    // Once submit() fails, shutdown() has emptied the queue; only then let the first job end.
    std::size_t extra = 0;
    while (queue.submit([token](int, const std::exception_ptr&) {})) ++extra;
    gate.set_value();
    stopper.join();
    CHECK_EQ(ran.load(), 1);
    CHECK_EQ(dropped, 5 + extra);
    CHECK_EQ(token.use_count(), 1L);  // the dropped jobs' captures were released
  }
}

void testTensorRtStatus(const std::string& fakes) {
  const auto trt = TensorRtLibraries::load({10}, fakes + "/trt");  // the fake reports 10.13.0
  const TensorRtStatus status = tensorRtStatus(*trt);
  CHECK_EQ(status.version, std::string("10.13.0"));
  const CompiledTensorRt compiled = compiledTensorRt();
  if (!compiled.headers) {
    CHECK(!status.available);
    CHECK(contains(status.reason, "built without TensorRT headers"));
    CHECK(TensorRtLibraries::defaultMajors() == (std::vector<int>{11, 10}));
  } else {
    CHECK(TensorRtLibraries::defaultMajors() == std::vector<int>{compiled.version.major});
    // Usable only by a binary compiled against 10.x headers no newer than the library (10.13).
    const bool usable = compiled.version.major == 10 && compiled.version.minor <= 13;
    CHECK_EQ(status.available, usable);
    CHECK_EQ(status.reason.empty(), usable);
    if (compiled.version.major == 10 && compiled.version.minor > 13) CHECK(contains(status.reason, "older than"));
    if (compiled.version.major != 10) CHECK(contains(status.reason, "one binary serves one major version"));
  }
  const auto absent = TensorRtLibraries::load({10}, fakes + "/absent");
  const TensorRtStatus missing = tensorRtStatus(*absent);
  CHECK(!missing.available);
  CHECK(missing.version.empty());
}



// ---- the engine's run loop (engine_slot.h) against the fake libcuda.so.1 ------------------------

// A stand-in for one TensorRT execution context that keeps TensorRT's documented contract:
// setInputShape takes effect host-side at once (the output shape is known), but the work a shape
// change implies is deferred to the next enqueueV3 (NvInferRuntime.h), which a CUDA graph launch
// never performs. Its "kernel" (a host function on the stream, so CUDA graphs capture it)
// computes out[i] = 2 * in[i] + 1 for the items of the shape it was enqueued with, and, when
// replayed while the context has an un-enqueued shape change, writes NaN and counts a violation:
// that is the silently wrong output of NVIDIA/TensorRT issue 3798.
struct FakeTrt {
  using LaunchHostFn = int (*)(void* stream, void (*fn)(void*), void* data);
  LaunchHostFn launchHostFunc = nullptr;
  std::size_t inItem = 0;
  std::size_t outItem = 0;
  int contextsCreated = 0;
  int violations = 0;
  std::set<void*> activations;
  std::set<int> badOutputShapeOnce;  // batches whose first output-shape check fails
};

class FakeContext final : public core::ExecutionContext {
 public:
  explicit FakeContext(FakeTrt& trt) : trt_(trt) {}

  void setBatch(int batch) override {
    // TensorRT accepted the shape (it is the context's shape from now on) ...
    if (batch != pending_) {
      pending_ = batch;
      dirty_ = true;
    }
    // ... but the caller's check of the output shape may still fail.
    if (trt_.badOutputShapeOnce.erase(batch) > 0) {
      throw NativeError(ErrorCode::kInferenceFailed, "Unexpected output shape for batch " + std::to_string(batch));
    }
  }
  void setAddresses(void* input, void* output) override {
    input_ = static_cast<const float*>(input);
    output_ = static_cast<float*>(output);
  }
  bool enqueue(cuda::Stream stream) override {
    // The deferred shape work, done by enqueueV3 on the host.
    shape_ = pending_;
    dirty_ = false;
    kernels_.push_back(std::make_unique<Kernel>(Kernel{this, shape_}));
    return trt_.launchHostFunc(stream, &FakeContext::kernel, kernels_.back().get()) == 0;
  }

 private:
  struct Kernel {
    FakeContext* context;
    int batch;
  };
  static void kernel(void* data) {
    const Kernel& k = *static_cast<Kernel*>(data);
    FakeContext& self = *k.context;
    const bool stale = self.dirty_ || self.shape_ != k.batch;
    if (stale) ++self.trt_.violations;
    for (std::size_t i = 0; i < static_cast<std::size_t>(k.batch) * self.trt_.outItem; ++i) {
      const std::size_t item = i / self.trt_.outItem;
      const float in = self.input_[item * self.trt_.inItem + (i % self.trt_.outItem) % self.trt_.inItem];
      self.output_[i] = stale ? std::nanf("") : 2.0f * in + 1.0f;
    }
  }

  FakeTrt& trt_;
  int pending_ = 0;
  int shape_ = 0;
  bool dirty_ = false;
  const float* input_ = nullptr;
  float* output_ = nullptr;
  std::vector<std::unique_ptr<Kernel>> kernels_;
};

struct FakeCudaControls {
  void (*injectError)(int result, int sticky) = nullptr;
  void (*clearErrors)() = nullptr;
  void (*counters)(long* out) = nullptr;
};

// What the fake kernel must produce for `batch` items of `input`.
std::vector<float> expectedOutput(const std::vector<float>& input, int batch, std::size_t inItem, std::size_t outItem) {
  std::vector<float> out(static_cast<std::size_t>(batch) * outItem);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = 2.0f * input[(i / outItem) * inItem + (i % outItem) % inItem] + 1.0f;
  }
  return out;
}

std::vector<float> inputFor(int batch, std::size_t inItem, int seed) {
  std::vector<float> input(static_cast<std::size_t>(batch) * inItem);
  for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<float>(seed * 1000 + static_cast<int>(i));
  return input;
}

void testEngineSlot(const std::string& fakes) {
  const std::string path = fakes + "/cuda-ok/libcuda.so.1";
  const auto api = CudaDriverApi::load({path});
  CHECK(api->loaded());
  CHECK(api->executionReady());
  if (!api->executionReady()) return;
  DynamicLibrary controlLibrary = DynamicLibrary::open(path);
  FakeCudaControls controls;
  controls.injectError = controlLibrary.function<void (*)(int, int)>("fake_cuda_inject_error", nullptr);
  controls.clearErrors = controlLibrary.function<void (*)()>("fake_cuda_clear_errors", nullptr);
  controls.counters = controlLibrary.function<void (*)(long*)>("fake_cuda_counters", nullptr);
  FakeTrt::LaunchHostFn launch = controlLibrary.function<FakeTrt::LaunchHostFn>("cuLaunchHostFunc", nullptr);
  CHECK(controls.injectError != nullptr && controls.clearErrors != nullptr && controls.counters != nullptr && launch != nullptr);
  if (controls.injectError == nullptr || controls.clearErrors == nullptr || controls.counters == nullptr || launch == nullptr) return;

  gpu::PrimaryContext primary(*api, 1);  // device 1: not whatever happens to be the default
  primary.makeCurrent();
  {
    // Waits for the GPU sleep: the primary context (whose scheduling nobody chose) now blocks on
    // an OS primitive instead of spinning a core that the CPU stages need.
    unsigned flags = 0;
    int active = 0;
    CHECK(api->devicePrimaryCtxGetState != nullptr);
    if (api->devicePrimaryCtxGetState != nullptr) {
      CHECK_EQ(api->devicePrimaryCtxGetState(1, &flags, &active), 0);
      CHECK_EQ(flags & cuda::kCtxSchedMask, cuda::kCtxSchedBlockingSync);
      CHECK_EQ(active, 1);
    }
  }

  const std::size_t inItem = 3;
  const std::size_t outItem = 6;  // two output channels per input channel
  auto makeSlot = [&](FakeTrt& trt, bool graphs, std::atomic<bool>& faulted) {
    trt.launchHostFunc = launch;
    trt.inItem = inItem;
    trt.outItem = outItem;
    SlotConfig config;
    config.inputItemFloats = inItem;
    config.outputItemFloats = outItem;
    config.minBatch = 1;
    config.maxBatch = 4;
    config.activationBytes = 4096;
    config.useCudaGraph = graphs;
    return std::make_unique<EngineSlot>(*api, config,
                                        [&trt](void* activation, cuda::Stream) -> std::unique_ptr<ExecutionContext> {
                                          ++trt.contextsCreated;
                                          trt.activations.insert(activation);
                                          return std::make_unique<FakeContext>(trt);
                                        },
                                        faulted);
  };
  // Runs `batch` items and checks every output value; returns whether a CUDA graph ran.
  auto runAndCheck = [&](EngineSlot& slot, int batch, int seed, const char* label) {
    const std::vector<float> input = inputFor(batch, inItem, seed);
    std::vector<float> output(static_cast<std::size_t>(batch) * outItem, -1.0f);
    const RunTimings timings = slot.run(input.data(), batch, output.data());
    const bool exact = output == expectedOutput(input, batch, inItem, outItem);
    if (!exact) std::fprintf(stderr, "  wrong output: %s (batch %d)\n", label, batch);
    CHECK(exact);
    CHECK(timings.computeMs > 0);
    return timings.usedCudaGraph;
  };
  long before[7] = {};
  controls.counters(before);

  {
    // Finding 1: batch sizes alternate (a sliding window's last, partial chunk does this), with
    // CUDA graphs. No graph may ever replay on a context whose shape changed since its capture.
    FakeTrt trt;
    std::atomic<bool> faulted{false};
    auto slot = makeSlot(trt, true, faulted);
    const int batches[] = {4, 1, 4, 1, 4, 2, 4, 2, 1};
    int graphRuns = 0;
    int seed = 0;
    for (int batch : batches) graphRuns += runAndCheck(*slot, batch, ++seed, "alternating batches with CUDA graphs") ? 1 : 0;
    CHECK_EQ(trt.violations, 0);
    CHECK_EQ(graphRuns, 6);  // every repeat of a batch size (6 of the 9 runs) replays its graph
    CHECK_EQ(slot->contextCount(), 3);
    // The contexts share the slot's one activation buffer (they never run at once).
    CHECK_EQ(trt.activations.size(), std::size_t{1});
    CHECK(*trt.activations.begin() != nullptr);
  }
  {
    // Finding 5: TensorRT accepted the shape but the output-shape check failed. Nothing of that
    // context may survive: later runs of either batch size must compute with their own shape.
    FakeTrt trt;
    std::atomic<bool> faulted{false};
    auto slot = makeSlot(trt, false, faulted);
    runAndCheck(*slot, 4, 1, "batch 4 before the failure");
    trt.badOutputShapeOnce.insert(2);
    const std::vector<float> input = inputFor(2, inItem, 2);
    std::vector<float> output(2 * outItem);
    bool threw = false;
    try {
      slot->run(input.data(), 2, output.data());
    } catch (const NativeError& error) {
      threw = error.code() == ErrorCode::kInferenceFailed;
    }
    CHECK(threw);
    runAndCheck(*slot, 4, 3, "batch 4 after a failed shape check of batch 2");
    runAndCheck(*slot, 2, 4, "batch 2 retried");
    CHECK_EQ(trt.violations, 0);
  }
  {
    // Finding 8: a non-sticky error fails one run; a sticky one (illegal address) marks the
    // engine unusable: ERR_GPU_FAULT now and for every later run, without touching the GPU.
    FakeTrt trt;
    std::atomic<bool> faulted{false};
    auto slot = makeSlot(trt, true, faulted);
    runAndCheck(*slot, 4, 1, "before any error");
    const std::vector<float> input = inputFor(4, inItem, 2);
    std::vector<float> output(4 * outItem);
    auto codeOf = [&]() -> std::string {
      try {
        slot->run(input.data(), 4, output.data());
      } catch (const NativeError& error) {
        return errorCodeName(error.code());
      }
      return "ok";
    };
    controls.injectError(999, 0);
    CHECK_EQ(codeOf(), std::string("ERR_INFERENCE_FAILED"));
    CHECK(!faulted.load());
    runAndCheck(*slot, 4, 3, "after a non-sticky error");
    controls.injectError(700, 1);
    std::string message;
    try {
      slot->run(input.data(), 4, output.data());
    } catch (const NativeError& error) {
      CHECK_EQ(std::string(errorCodeName(error.code())), std::string("ERR_GPU_FAULT"));
      message = error.what();
    }
    CHECK(contains(message, "CUDA_ERROR_ILLEGAL_ADDRESS (700)"));
    CHECK(faulted.load());
    controls.clearErrors();  // even were the GPU back, the engine stays marked
    CHECK_EQ(codeOf(), std::string("ERR_GPU_FAULT"));
  }
  controls.clearErrors();

  long after[7] = {};
  controls.counters(after);
  CHECK_EQ(after[0], before[0]);  // every device buffer freed with its slot
  CHECK(after[1] > before[1]);    // CUDA graphs did replay
  // Finding 11: events sleep instead of spinning a core; streams never sync with the default one;
  // captures are thread-local (trtexec's mode).
  CHECK_EQ(after[3], before[3]);
  CHECK_EQ(after[4], before[4]);
  CHECK_EQ(after[5], before[5]);
  // No wait kept a core busy: slot set-up, runs, failed runs and teardown all slept.
  CHECK_EQ(after[6], before[6]);
}

// A scheduling mode the process chose itself (here: spinning, set before any retain) is kept;
// a driver without the primary-context flag entry points still runs engines (events still block).
void testContextScheduling(const std::string& fakes) {
  const std::string path = fakes + "/cuda-ok/libcuda.so.1";
  const auto api = CudaDriverApi::load({path});
  CHECK(api->executionReady());
  if (!api->executionReady() || api->devicePrimaryCtxSetFlags == nullptr || api->devicePrimaryCtxGetState == nullptr) {
    CHECK(false);
    return;
  }
  CHECK_EQ(api->init(0), 0);
  CHECK_EQ(api->devicePrimaryCtxSetFlags(0, 0x01 | 0x08), 0);  // CU_CTX_SCHED_SPIN | CU_CTX_MAP_HOST
  unsigned flags = 0;
  int active = 0;
  {
    gpu::PrimaryContext chosen(*api, 0);
    CHECK_EQ(api->devicePrimaryCtxGetState(0, &flags, &active), 0);
    CHECK_EQ(flags, 0x09u);
  }
  CHECK_EQ(api->devicePrimaryCtxSetFlags(0, 0x08), 0);  // AUTO, another flag kept beside it
  {
    gpu::PrimaryContext automatic(*api, 0);
    CHECK_EQ(api->devicePrimaryCtxGetState(0, &flags, &active), 0);
    CHECK_EQ(flags, 0x08u | cuda::kCtxSchedBlockingSync);
  }
  CHECK_EQ(api->devicePrimaryCtxSetFlags(0, 0), 0);
  // Without the optional entry points the context is retained as it is.
  const auto bare = CudaDriverApi::load({path});
  bare->devicePrimaryCtxSetFlags = nullptr;
  {
    gpu::PrimaryContext plain(*bare, 0);
    CHECK_EQ(api->devicePrimaryCtxGetState(0, &flags, &active), 0);
    CHECK_EQ(flags, 0u);
  }
}

void testGpuErrors(const std::string& fakes) {
  const auto api = CudaDriverApi::load({fakes + "/cuda-ok/libcuda.so.1"});
  CHECK(gpu::classify(700, ErrorCode::kInferenceFailed) == ErrorCode::kGpuFault);
  CHECK(gpu::classify(719, ErrorCode::kInferenceFailed) == ErrorCode::kGpuFault);
  CHECK(gpu::classify(2, ErrorCode::kInferenceFailed) == ErrorCode::kOutOfMemory);
  CHECK(gpu::classify(100, ErrorCode::kInferenceFailed) == ErrorCode::kNoGpu);
  CHECK(gpu::classify(999, ErrorCode::kInferenceFailed) == ErrorCode::kInferenceFailed);
  bool threw = false;
  try {
    gpu::PrimaryContext missing(*api, 2);  // the fake has devices 0 and 1
  } catch (const NativeError& error) {
    threw = error.code() == ErrorCode::kNoGpu && contains(error.what(), "CUDA device 2 does not exist (2 device(s) visible)");
  }
  CHECK(threw);

  const DriverSufficiency old = judgeDriverForTensorRt(11040, 10);
  CHECK(!old.sufficient);
  CHECK_EQ(old.requiredVersion, 11080);
  CHECK(contains(old.note, "CUDA 11.4"));
  const DriverSufficiency r535 = judgeDriverForTensorRt(12020, 10);
  CHECK(r535.sufficient);
  CHECK(contains(r535.note, "not those for CUDA 13.x"));
  CHECK(judgeDriverForTensorRt(13000, 11).sufficient);
  CHECK(!judgeDriverForTensorRt(11080, 11).sufficient);
  CHECK(!judgeDriverForTensorRt(0, 10).sufficient);
}

// Finding 2: the timing cache must outlive the builder that uses it (NvInfer.h), and the config,
// parser and network die before the builder. BuildObjects is what buildEngine declares.
std::vector<std::string> destroyed;
template <int N>
struct Recorder {
  ~Recorder() {
    static const char* const names[] = {"timing cache", "builder", "network", "parser", "config"};
    destroyed.push_back(names[N]);
  }
};

void testBuildObjectsOrder() {
  destroyed.clear();
  {
    BuildObjects<Recorder<0>, Recorder<1>, Recorder<2>, Recorder<3>, Recorder<4>> objects;
    // Created in buildEngine's order: builder, network, parser, config, then the cache.
    objects.builder = std::make_unique<Recorder<1>>();
    objects.network = std::make_unique<Recorder<2>>();
    objects.parser = std::make_unique<Recorder<3>>();
    objects.config = std::make_unique<Recorder<4>>();
    objects.timingCache = std::make_unique<Recorder<0>>();
  }
  const std::vector<std::string> expected = {"config", "parser", "network", "builder", "timing cache"};
  CHECK(destroyed == expected);
}

void testRunQueueBindFailure() {
  // Finding 6: a failed device bind reaches the jobs (which must fail with it), and is retried
  // before the next job instead of being forgotten.
  std::atomic<int> attempts{0};
  core::RunQueue queue(1, [&attempts](int) {
    if (++attempts <= 2) throw NativeError(ErrorCode::kNoGpu, "cuCtxSetCurrent failed");
  });
  std::vector<std::string> seen;
  std::mutex mutex;
  for (int i = 0; i < 3; ++i) {
    queue.submit([&seen, &mutex](int, const std::exception_ptr& bindFailure) {
      std::string outcome = "bound";
      if (bindFailure) {
        try {
          std::rethrow_exception(bindFailure);
        } catch (const NativeError& error) {
          outcome = std::string(errorCodeName(error.code())) + ": " + error.what();
        }
      }
      std::lock_guard<std::mutex> lock(mutex);
      seen.push_back(outcome);
    });
  }
  queue.shutdown(core::RunQueue::Pending::kRun);
  // Bind at start fails (1), retried before job 1 fails (2), retried before job 2 succeeds (3).
  const std::vector<std::string> expected = {"ERR_NO_GPU: cuCtxSetCurrent failed", "bound", "bound"};
  CHECK(seen == expected);
  CHECK_EQ(attempts.load(), 3);
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
  testPlanHeader();
  testErrorCodes();
  testLogCapture();
  testForeignLogLines();
  testRunQueue();
  testTensorRtStatus(fakes);
  testRunQueueBindFailure();
  testBuildObjectsOrder();
  testGpuErrors(fakes);
  testEngineSlot(fakes);
  testContextScheduling(fakes);
  if (failures != 0) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return EXIT_FAILURE;
  }
  std::printf("core tests passed\n");
  return EXIT_SUCCESS;
}
