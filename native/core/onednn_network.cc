#include "core/onednn_network.h"

#include <cstdlib>
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <mutex>
#include <thread>
#include <utility>

#include "core/dynamic_library.h"
#include "core/onednn_kernels.h"

#if defined(SPLEEN_TRT_HAVE_DNNL_H)
#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>
#endif

namespace spleen_trt::core::onednn {

#if defined(SPLEEN_TRT_HAVE_DNNL_H)

namespace {

void check(bool ok, const char* code, const std::string& message) {
  if (!ok) throw Error(code, message);
}

std::string libraryName() {
  const char* env = std::getenv("SPLEEN_TRT_ONEDNN_LIBRARY");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string("libdnnl.so.2");
}

}  // namespace

namespace {

// The C API functions used, resolved with dlsym. decltype keeps each pointer's type equal to the
// header's declaration, so a signature mismatch fails to compile instead of crashing.
struct Api {
#define SPLEEN_TRT_DNNL_FUNCTIONS(X)                                                              \
  X(dnnl_version) X(dnnl_get_effective_cpu_isa) X(dnnl_engine_create) X(dnnl_engine_destroy)     \
  X(dnnl_stream_create) X(dnnl_stream_destroy) X(dnnl_stream_wait) X(dnnl_memory_desc_init_by_tag) \
  X(dnnl_memory_desc_get_size) X(dnnl_memory_desc_equal) X(dnnl_memory_create) X(dnnl_memory_destroy) \
  X(dnnl_convolution_forward_desc_init) X(dnnl_deconvolution_forward_desc_init)                   \
  X(dnnl_primitive_attr_create) X(dnnl_primitive_attr_destroy) X(dnnl_primitive_attr_set_post_ops) \
  X(dnnl_post_ops_create) X(dnnl_post_ops_destroy) X(dnnl_post_ops_append_eltwise)                 \
  X(dnnl_post_ops_append_sum) X(dnnl_primitive_desc_create) X(dnnl_primitive_desc_destroy)         \
  X(dnnl_primitive_desc_query_md) X(dnnl_concat_primitive_desc_create) X(dnnl_sum_primitive_desc_create)                             \
  X(dnnl_reorder_primitive_desc_create) X(dnnl_primitive_create) X(dnnl_primitive_destroy)          \
  X(dnnl_primitive_execute) X(dnnl_memory_set_data_handle) X(dnnl_memory_get_data_handle) X(dnnl_primitive_attr_set_scratchpad_mode)
#define SPLEEN_TRT_DNNL_MEMBER(name) decltype(&::name) name = nullptr;
  SPLEEN_TRT_DNNL_FUNCTIONS(SPLEEN_TRT_DNNL_MEMBER)
#undef SPLEEN_TRT_DNNL_MEMBER
};

struct Loaded {
  DynamicLibrary library;
  Api api;
  Availability info;
  dnnl_engine_t engine = nullptr;
  int block = 8;  // channel block of the activations' layout: 16 with AVX-512, else 8
  void (*ompSetNumThreads)(int) = nullptr;  // from the OpenMP runtime libdnnl brought in, if any
  // libgomp's entry point of `#pragma omp parallel` and the team queries: the C++ kernels
  // (onednn_kernels.h) run on oneDNN's own OpenMP team instead of competing threads.
  void (*gompParallel)(void (*)(void*), void*, unsigned, unsigned) = nullptr;
  int (*ompGetThreadNum)() = nullptr;
  int (*ompGetNumThreads)() = nullptr;
};

// An OpenMP runtime function: from libdnnl's dependencies (dlsym on its handle searches them),
// else from the process.
template <typename Function>
Function ompFunction(const DynamicLibrary& library, const char* name) {
  void* symbol = library.symbol(name, nullptr);
  if (symbol == nullptr) symbol = dlsym(RTLD_DEFAULT, name);
  return reinterpret_cast<Function>(symbol);
}

Loaded& loaded() {
  static Loaded* state = [] {
    auto* s = new Loaded();  // kept for the process: oneDNN's OpenMP threads outlive any unload
    const std::string file = libraryName();
    s->library = DynamicLibrary::open(file, DynamicLibrary::Binding::kNow);
    if (!s->library.isLoaded()) {
      s->info.reason = "oneDNN not found: " + s->library.error();
      return s;
    }
    s->library.keepLoadedForever();
    s->info.path = s->library.path();
    std::string error;
#define SPLEEN_TRT_DNNL_RESOLVE(name)                                            \
  if (error.empty()) {                                                           \
    s->api.name = s->library.function<decltype(&::name)>(#name, &error);        \
  }
    SPLEEN_TRT_DNNL_FUNCTIONS(SPLEEN_TRT_DNNL_RESOLVE)
#undef SPLEEN_TRT_DNNL_RESOLVE
    if (!error.empty()) {
      s->info.reason = "oneDNN at " + s->info.path + " lacks the 2.x C API (" + error +
                       "); oneDNN 3.x is not supported (it removed the *_desc_init functions)";
      return s;
    }
    const dnnl_version_t* v = s->api.dnnl_version();
    s->info.version = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
    if (v->major != 2) {
      s->info.reason = "oneDNN " + s->info.version + " at " + s->info.path + " is not 2.x, the only API supported";
      return s;
    }
    if (s->api.dnnl_engine_create(&s->engine, dnnl_cpu, 0) != dnnl_success) {
      s->info.reason = "oneDNN " + s->info.version + " could not create a CPU engine";
      return s;
    }
    const dnnl_cpu_isa_t isa = s->api.dnnl_get_effective_cpu_isa();
    s->block = (static_cast<unsigned>(isa) & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core ? 16 : 8;
    s->info.isa = s->block == 16 ? "avx512_core" : "below avx512_core";
    // libdnnl2's OpenMP runtime (libgomp) is loaded with it: its omp_set_num_threads sets a run's
    // thread count. Absent (a TBB or sequential build): oneDNN's own default applies.
    s->ompSetNumThreads = ompFunction<void (*)(int)>(s->library, "omp_set_num_threads");
    s->gompParallel = ompFunction<void (*)(void (*)(void*), void*, unsigned, unsigned)>(s->library, "GOMP_parallel");
    s->ompGetThreadNum = ompFunction<int (*)()>(s->library, "omp_get_thread_num");
    s->ompGetNumThreads = ompFunction<int (*)()>(s->library, "omp_get_num_threads");
    if (s->ompGetThreadNum == nullptr || s->ompGetNumThreads == nullptr) s->gompParallel = nullptr;
    s->info.available = true;
    return s;
  }();
  return *state;
}

void dnnl(dnnl_status_t status, const char* what) {
  check(status == dnnl_success, "ERR_INFERENCE_FAILED",
        std::string("oneDNN ") + what + " failed (status " + std::to_string(static_cast<int>(status)) + ")");
}

}  // namespace

const Availability& availability() { return loaded().info; }

namespace {

// DNNL_VERBOSE as oneDNN reads it: 1 or more prints each primitive's execution.
bool verbose() {
  static const bool on = [] {
    const char* v = std::getenv("DNNL_VERBOSE");
    return v != nullptr && std::atoi(v) >= 1;
  }();
  return on;
}

std::string shapeName(const TensorView& v) {
  return std::to_string(v.n) + "x" + std::to_string(v.c) + "x" + std::to_string(v.d) + "x" + std::to_string(v.h) + "x" + std::to_string(v.w);
}

// The kernels' thread split: on libgomp's team when libdnnl brought libgomp (Debian's build),
// else on std::threads. `threads` 0: OpenMP's default (the calling thread's count).
ParallelFor parallelFor(int threads) {
  Loaded& l = loaded();
  if (l.gompParallel != nullptr) {
    return [&l, threads](std::int64_t count, const std::function<void(std::int64_t, std::int64_t)>& body) {
      struct Context {
        Loaded* l;
        std::int64_t count;
        const std::function<void(std::int64_t, std::int64_t)>* body;
      } context{&l, count, &body};
      l.gompParallel(
          [](void* data) {
            auto* c = static_cast<Context*>(data);
            const std::int64_t t = c->l->ompGetThreadNum();
            const std::int64_t nt = c->l->ompGetNumThreads();
            const std::int64_t begin = c->count * t / nt;
            const std::int64_t end = c->count * (t + 1) / nt;
            if (begin < end) (*c->body)(begin, end);
          },
          &context, static_cast<unsigned>(std::max(threads, 0)), 0);
    };
  }
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return [n](std::int64_t count, const std::function<void(std::int64_t, std::int64_t)>& body) {
    std::vector<std::thread> workers;
    for (int t = 1; t < n; ++t) {
      const std::int64_t begin = count * t / n, end = count * (t + 1) / n;
      if (begin < end) workers.emplace_back([&body, begin, end] { body(begin, end); });
    }
    if (count / n > 0) body(0, count / n);
    for (auto& w : workers) w.join();
  };
}

}  // namespace

struct Step {
  std::function<void()> custom;  // a C++ kernel (onednn_kernels.h) instead of a primitive
  std::string label;             // the kernel's kind and shape, for the verbose line
  dnnl_primitive_t primitive = nullptr;
  std::vector<dnnl_exec_arg_t> args;
  int copyFrom = -1;  // tensor copied into this step's destination first (sum post-op)
  int copyTo = -1;
};

struct Network::Plan {
  Api* api = nullptr;
  int batch = 0;
  std::int64_t dims[3] = {0, 0, 0};
  std::vector<dnnl_memory_desc_t> descs;  // per tensor
  std::vector<dnnl_memory_t> memories;    // per tensor (oneDNN-owned buffers)
  std::vector<int> blockOf;               // per tensor: its layout's channel block, 0 for plain
  ParallelFor parallel;
  std::vector<dnnl_memory_t> extra;       // weights, biases
  std::vector<Step> steps;
  dnnl_memory_t userInput = nullptr;
  dnnl_memory_t userOutput = nullptr;
  dnnl_primitive_t inputReorder = nullptr;
  dnnl_primitive_t outputReorder = nullptr;
  std::int64_t outDims[3] = {0, 0, 0};
  std::vector<dnnl_primitive_t> primitives;
  // Scratchpads are the caller's (user mode): oneDNN's own are per thread, and runs move
  // between libuv pool threads. One buffer, the largest any primitive asks for, serves all.
  std::vector<std::pair<dnnl_primitive_t, dnnl_memory_desc_t>> scratchpads;
  std::vector<std::pair<dnnl_primitive_t, dnnl_memory_t>> scratchMemories;
  std::unique_ptr<std::uint8_t[]> scratchBuffer;

  void addScratchpad(dnnl_primitive_t p, std::vector<dnnl_exec_arg_t>* args) const {
    for (const auto& sm : scratchMemories) {
      if (sm.first == p) args->push_back({DNNL_ARG_SCRATCHPAD, sm.second});
    }
  }

  ~Plan() {
    for (auto p : primitives) api->dnnl_primitive_destroy(p);
    for (auto m : memories) if (m) api->dnnl_memory_destroy(m);
    for (auto m : extra) api->dnnl_memory_destroy(m);
    for (auto& sm : scratchMemories) api->dnnl_memory_destroy(sm.second);
    if (userInput) api->dnnl_memory_destroy(userInput);
    if (userOutput) api->dnnl_memory_destroy(userOutput);
  }
};

namespace {

dnnl_primitive_t makePrimitive(Network::Plan& plan, dnnl_primitive_desc_t pd) {
  const dnnl_memory_desc_t* scratch = plan.api->dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  const dnnl_memory_desc_t scratchMd = scratch != nullptr ? *scratch : dnnl_memory_desc_t{};
  const bool needsScratch = scratch != nullptr && plan.api->dnnl_memory_desc_get_size(scratch) > 0;
  dnnl_primitive_t p = nullptr;
  const dnnl_status_t status = plan.api->dnnl_primitive_create(&p, pd);
  plan.api->dnnl_primitive_desc_destroy(pd);
  dnnl(status, "primitive_create");
  plan.primitives.push_back(p);
  if (needsScratch) plan.scratchpads.emplace_back(p, scratchMd);
  return p;
}

// Attributes every plan primitive gets: user-managed scratchpad (see Plan::scratchpads).
dnnl_primitive_attr_t userScratchpadAttr(Api& api) {
  dnnl_primitive_attr_t attr = nullptr;
  dnnl(api.dnnl_primitive_attr_create(&attr), "primitive_attr_create");
  const dnnl_status_t status = api.dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
  if (status != dnnl_success) api.dnnl_primitive_attr_destroy(attr);
  dnnl(status, "primitive_attr_set_scratchpad_mode");
  return attr;
}

// RAII for an attribute passed to a *_primitive_desc_create.
struct Attr {
  Api& api;
  dnnl_primitive_attr_t attr;
  explicit Attr(Api& a) : api(a), attr(userScratchpadAttr(a)) {}
  ~Attr() { api.dnnl_primitive_attr_destroy(attr); }
  Attr(const Attr&) = delete;
  Attr& operator=(const Attr&) = delete;
};

dnnl_memory_desc_t plainDesc(Api& api, int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag) {
  dnnl_memory_desc_t md;
  dnnl(api.dnnl_memory_desc_init_by_tag(&md, ndims, dims, dnnl_f32, tag), "memory_desc_init_by_tag");
  return md;
}

// Copies `data` (in `from` layout) into a new oneDNN memory of layout `to` with a reorder.
dnnl_memory_t reorderedConstant(Network::Plan& plan, dnnl_stream_t stream, const dnnl_memory_desc_t& from,
                                const dnnl_memory_desc_t& to, const float* data) {
  Api& api = *plan.api;
  Loaded& l = loaded();
  dnnl_memory_t src = nullptr;
  dnnl(api.dnnl_memory_create(&src, &from, l.engine, const_cast<float*>(data)), "memory_create");
  dnnl_memory_t dst = nullptr;
  dnnl(api.dnnl_memory_create(&dst, &to, l.engine, DNNL_MEMORY_ALLOCATE), "memory_create");
  plan.extra.push_back(dst);
  dnnl_primitive_desc_t pd = nullptr;
  dnnl_status_t status = api.dnnl_reorder_primitive_desc_create(&pd, &from, l.engine, &to, l.engine, nullptr);
  if (status != dnnl_success) api.dnnl_memory_destroy(src);
  dnnl(status, "reorder_primitive_desc_create");
  dnnl_primitive_t p = nullptr;
  status = api.dnnl_primitive_create(&p, pd);
  api.dnnl_primitive_desc_destroy(pd);
  if (status == dnnl_success) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
    status = api.dnnl_primitive_execute(p, stream, 2, args);
    if (status == dnnl_success) status = api.dnnl_stream_wait(stream);
    api.dnnl_primitive_destroy(p);
  }
  api.dnnl_memory_destroy(src);
  dnnl(status, "weight reorder");
  return dst;
}

}  // namespace

Network::Network(NetworkSpec spec) : spec_(std::move(spec)) {
  const char* bad = "ERR_INVALID_ARG_VALUE";
  check(spec_.inputChannels >= 1 && spec_.tensorCount >= 1, bad, "oneDNN network: bad input channels or tensor count");
  std::vector<int> channels(static_cast<std::size_t>(spec_.tensorCount), 0);
  channels[0] = spec_.inputChannels;
  for (std::size_t i = 0; i < spec_.ops.size(); ++i) {
    const Op& op = spec_.ops[i];
    const std::string where = "oneDNN network op " + std::to_string(i) + ": ";
    auto tensor = [&](int t, bool defined) {
      check(t >= 0 && t < spec_.tensorCount, bad, where + "tensor " + std::to_string(t) + " out of range");
      check((channels[static_cast<std::size_t>(t)] > 0) == defined, bad,
            where + "tensor " + std::to_string(t) + (defined ? " used before it is computed" : " computed twice"));
    };
    if (op.kind == Op::Kind::kConv) {
      const ConvOp& c = op.conv;
      tensor(c.input, true);
      tensor(c.output, false);
      check(c.inChannels == channels[static_cast<std::size_t>(c.input)], bad,
            where + "input has " + std::to_string(channels[static_cast<std::size_t>(c.input)]) + " channels, the weights expect " +
                std::to_string(c.inChannels));
      check(c.outChannels >= 1 && c.kernel >= 1 && c.stride >= 1 && c.padBegin >= 0 && c.padEnd >= -c.padBegin, bad,
            where + "bad kernel, stride or padding");
      check(!c.subpixel || (!c.transposed && c.kernel == 2 && c.stride == 1 && c.padBegin == 0 && c.padEnd == 1 && c.addTensor < 0),
            bad, where + "a sub-pixel conv has kernel 2, stride 1, padding (0, 1) and no sum");
      const std::size_t k3 = static_cast<std::size_t>(c.kernel) * c.kernel * c.kernel;
      const std::size_t convOut = static_cast<std::size_t>(c.outChannels) * (c.subpixel ? 8 : 1);
      check(c.weights.size() == k3 * c.inChannels * convOut, bad,
            where + "weights have " + std::to_string(c.weights.size()) + " values, expected " +
                std::to_string(k3 * c.inChannels * convOut));
      check(c.bias.size() == convOut, bad, where + "bias length differs from the output channels");
      int sums = 0;
      for (const PostOp& p : c.postOps) sums += p.kind == PostOp::Kind::kSum ? 1 : 0;
      check(sums <= 1 && (sums == 1) == (c.addTensor >= 0), bad, where + "a sum post-op needs exactly one added tensor");
      if (c.addTensor >= 0) {
        tensor(c.addTensor, true);
        check(channels[static_cast<std::size_t>(c.addTensor)] == c.outChannels, bad, where + "added tensor's channels differ");
      }
      channels[static_cast<std::size_t>(c.output)] = c.outChannels;
    } else {
      const ConcatOp& c = op.concat;
      check(c.inputs.size() >= 2, bad, where + "concat needs two inputs");
      int total = 0;
      for (int t : c.inputs) {
        tensor(t, true);
        total += channels[static_cast<std::size_t>(t)];
      }
      tensor(c.output, false);
      channels[static_cast<std::size_t>(c.output)] = total;
    }
  }
  check(spec_.outputTensor >= 0 && spec_.outputTensor < spec_.tensorCount && channels[static_cast<std::size_t>(spec_.outputTensor)] > 0,
        bad, "oneDNN network: the output tensor is never computed");
  outputChannels_ = channels[static_cast<std::size_t>(spec_.outputTensor)];
  const Availability& info = availability();
  check(info.available, "ERR_BACKEND_UNAVAILABLE", info.reason);
}

Network::~Network() = default;

void Network::run(const float* input, int batch, const std::int64_t dims[3], std::vector<float>* output,
                  std::int64_t outDims[3]) {
  Loaded& l = loaded();
  Api& api = l.api;
  if (spec_.threads > 0 && l.ompSetNumThreads != nullptr) {
    // The count is per calling thread in OpenMP, and runs move between libuv pool threads.
    l.ompSetNumThreads(spec_.threads);
  }
  check(batch >= 1 && dims[0] >= 1 && dims[1] >= 1 && dims[2] >= 1, "ERR_INVALID_ARG_VALUE", "oneDNN network: bad batch or shape");
  dnnl_stream_t stream = nullptr;
  dnnl(api.dnnl_stream_create(&stream, l.engine, dnnl_stream_default_flags), "stream_create");
  struct StreamGuard {
    Api& api;
    dnnl_stream_t s;
    ~StreamGuard() { api.dnnl_stream_destroy(s); }
  } guard{api, stream};

  if (!plan_ || plan_->batch != batch || plan_->dims[0] != dims[0] || plan_->dims[1] != dims[1] || plan_->dims[2] != dims[2]) {
    plan_.reset();
    auto plan = std::make_unique<Plan>();
    plan->api = &api;
    plan->batch = batch;
    for (int d = 0; d < 3; ++d) plan->dims[d] = dims[d];
    const std::size_t n = static_cast<std::size_t>(spec_.tensorCount);
    plan->descs.resize(n);
    plan->memories.assign(n, nullptr);
    plan->parallel = parallelFor(spec_.threads);
    Plan* self = plan.get();
    std::vector<std::array<std::int64_t, 4>> shapes(n);  // channels, d0, d1, d2
    // Blocked layout where the channels allow it (reorders only at the input and output).
    auto layoutDesc = [&](int t) {
      const auto& s = shapes[static_cast<std::size_t>(t)];
      dnnl_dims_t md = {batch, s[0], s[1], s[2], s[3]};
      // Blocked where the channels fill blocks. A narrower tensor (the input, the 2 logits) is
      // plain: oneDNN 2.x runs few channels fast only plain (JIT or GEMM); on zero-padded blocks
      // it takes the reference kernel or computes the padding (measured: 260 ms instead of 60 for
      // the last 32->2 deconvolution of a 96^3 window).
      // Channels-last: a 1-channel tensor too (the same bytes as plain; oneDNN 2.6 takes its
      // reference kernel for a plain-to-channels-last convolution).
      const bool plain = s[0] % l.block != 0 && !(spec_.channelsLast && s[0] == 1);
      const dnnl_format_tag_t tag = plain ? dnnl_ncdhw : spec_.channelsLast ? dnnl_ndhwc : (l.block == 16 ? dnnl_nCdhw16c : dnnl_nCdhw8c);
      plan->descs[static_cast<std::size_t>(t)] = plainDesc(api, 5, md, tag);
      if (plan->blockOf.size() <= static_cast<std::size_t>(t)) plan->blockOf.resize(static_cast<std::size_t>(t) + 1, 0);
      plan->blockOf[static_cast<std::size_t>(t)] = plain ? 0 : spec_.channelsLast ? kChannelsLast : l.block;
      dnnl(api.dnnl_memory_create(&plan->memories[static_cast<std::size_t>(t)], &plan->descs[static_cast<std::size_t>(t)], l.engine,
                                  DNNL_MEMORY_ALLOCATE),
           "memory_create");
    };
    // A blocked tensor read by a convolution with a plain (narrow) output goes through a plain
    // copy: oneDNN 2.x's fast paths for such convolutions (GEMM) take plain layouts on both sides.
    std::vector<int> shadowOf(n, -1);
    auto plainCopy = [&](int t) -> int {
      const std::size_t ti = static_cast<std::size_t>(t);
      if (shapes[ti][0] % l.block != 0) return t;
      if (shadowOf[ti] >= 0) return shadowOf[ti];
      const auto& s = shapes[ti];
      dnnl_dims_t md = {batch, s[0], s[1], s[2], s[3]};
      plan->descs.push_back(plainDesc(api, 5, md, dnnl_ncdhw));
      plan->memories.push_back(nullptr);
      const int shadow = static_cast<int>(plan->memories.size()) - 1;
      dnnl(api.dnnl_memory_create(&plan->memories.back(), &plan->descs.back(), l.engine, DNNL_MEMORY_ALLOCATE), "memory_create");
      shapes.push_back(s);
      plan->blockOf.resize(plan->descs.size(), 0);
      dnnl_primitive_desc_t pd = nullptr;
      Attr attr(api);
      dnnl(api.dnnl_reorder_primitive_desc_create(&pd, &plan->descs[ti], l.engine, &plan->descs.back(), l.engine, attr.attr),
           "reorder_primitive_desc_create");
      Step copy;
      copy.primitive = makePrimitive(*plan, pd);
      copy.args = {{DNNL_ARG_FROM, plan->memories[ti]}, {DNNL_ARG_TO, plan->memories[static_cast<std::size_t>(shadow)]}};
      plan->steps.push_back(std::move(copy));
      shadowOf[ti] = shadow;
      return shadow;
    };
    shapes[0] = {spec_.inputChannels, dims[0], dims[1], dims[2]};
    layoutDesc(0);
    {
      dnnl_dims_t md = {batch, spec_.inputChannels, dims[0], dims[1], dims[2]};
      dnnl_memory_desc_t user = plainDesc(api, 5, md, dnnl_ncdhw);
      dnnl(api.dnnl_memory_create(&plan->userInput, &user, l.engine, DNNL_MEMORY_NONE), "memory_create");
      dnnl_primitive_desc_t pd = nullptr;
      Attr attr(api);
      dnnl(api.dnnl_reorder_primitive_desc_create(&pd, &user, l.engine, &plan->descs[0], l.engine, attr.attr), "input reorder");
      plan->inputReorder = makePrimitive(*plan, pd);
    }
    for (std::size_t i = 0; i < spec_.ops.size(); ++i) {
      const Op& op = spec_.ops[i];
      Step step;
      if (op.kind == Op::Kind::kConcat) {
        const ConcatOp& c = op.concat;
        std::int64_t total = 0;
        const auto& first = shapes[static_cast<std::size_t>(c.inputs[0])];
        std::vector<dnnl_memory_desc_t> srcs;
        for (int t : c.inputs) {
          const auto& s = shapes[static_cast<std::size_t>(t)];
          check(s[1] == first[1] && s[2] == first[2] && s[3] == first[3], "ERR_INVALID_ARG_VALUE",
                "oneDNN network op " + std::to_string(i) + ": concatenated tensors differ in size (window not divisible by the strides?)");
          total += s[0];
          srcs.push_back(plan->descs[static_cast<std::size_t>(t)]);
        }
        shapes[static_cast<std::size_t>(c.output)] = {total, first[1], first[2], first[3]};
        layoutDesc(c.output);
        dnnl_primitive_desc_t pd = nullptr;
        dnnl(api.dnnl_concat_primitive_desc_create(&pd, &plan->descs[static_cast<std::size_t>(c.output)], static_cast<int>(srcs.size()), 1,
                                                   srcs.data(), Attr(api).attr, l.engine),
             "concat_primitive_desc_create");
        step.primitive = makePrimitive(*plan, pd);
        for (std::size_t k = 0; k < c.inputs.size(); ++k) {
          step.args.push_back({static_cast<int>(DNNL_ARG_MULTIPLE_SRC + k), plan->memories[static_cast<std::size_t>(c.inputs[k])]});
        }
        step.args.push_back({DNNL_ARG_DST, plan->memories[static_cast<std::size_t>(c.output)]});
        plan->steps.push_back(std::move(step));
        continue;
      }
      const ConvOp& c = op.conv;
      // Measured (bench/onednn-profile.mjs): oneDNN 2.6 runs the UNet's last 2->2 conv at full
      // resolution with GEMM, ~6x slower than the direct loop.
      const bool direct = spec_.directConv && !c.transposed && !c.subpixel && c.kernel == 3 && c.stride == 1 && c.padBegin == 1 &&
                          c.padEnd == 1 && c.inChannels % l.block != 0 && c.outChannels % l.block != 0;
      // Measured: only the transposed ones gain from a plain input (the 32->2 deconvolution).
      const int input = c.transposed && c.outChannels % l.block != 0 ? plainCopy(c.input) : c.input;
      const int addTensor = c.addTensor;
      const auto in = shapes[static_cast<std::size_t>(input)];
      const std::int64_t convChannels = static_cast<std::int64_t>(c.outChannels) * (c.subpixel ? 8 : 1);
      std::array<std::int64_t, 4> convOut{convChannels, 0, 0, 0};
      for (int d = 0; d < 3; ++d) {
        convOut[static_cast<std::size_t>(d + 1)] =
            c.transposed ? (in[static_cast<std::size_t>(d + 1)] - 1) * c.stride + c.kernel - c.padBegin - c.padEnd
                         : (in[static_cast<std::size_t>(d + 1)] + c.padBegin + c.padEnd - c.kernel) / c.stride + 1;
        check(convOut[static_cast<std::size_t>(d + 1)] >= 1, "ERR_INVALID_ARG_VALUE",
              "oneDNN network op " + std::to_string(i) + ": the window is too small for this convolution");
      }
      std::array<std::int64_t, 4> out = convOut;
      if (c.subpixel) {
        out[0] = c.outChannels;
        for (std::size_t d = 1; d < 4; ++d) out[d] = 2 * convOut[d];
      }
      shapes[static_cast<std::size_t>(c.output)] = out;
      layoutDesc(c.output);
      auto dataOf = [&](int t) {
        void* data = nullptr;
        dnnl(api.dnnl_memory_get_data_handle(plan->memories[static_cast<std::size_t>(t)], &data), "memory_get_data_handle");
        return static_cast<float*>(data);
      };
      auto viewOf = [&](int t) {
        const auto& sh = shapes[static_cast<std::size_t>(t)];
        return TensorView{plan->blockOf[static_cast<std::size_t>(t)], batch, sh[0], sh[1], sh[2], sh[3]};
      };
      if (direct) {
        if (addTensor >= 0) {
          check(shapes[static_cast<std::size_t>(addTensor)] == out, "ERR_INVALID_ARG_VALUE",
                "oneDNN network op " + std::to_string(i) + ": the added tensor's shape differs");
        }
        std::vector<DirectPostOp> postOps;
        for (const PostOp& p : c.postOps) postOps.push_back({p.kind == PostOp::Kind::kSum, p.alpha});
        const float* from = dataOf(input);
        const float* add = addTensor >= 0 ? dataOf(addTensor) : nullptr;
        float* to = dataOf(c.output);
        const TensorView fromView = viewOf(input), toView = viewOf(c.output);
        const std::vector<float> weights = c.weights, bias = c.bias;
        step.label = "convolution,spleen_trt:direct," + shapeName(toView) + " from " + std::to_string(fromView.c);
        step.custom = [self, from, add, to, fromView, toView, weights, bias, postOps] {
          directConv3(from, fromView, weights, bias, postOps, add, to, toView, self->parallel);
        };
        plan->steps.push_back(std::move(step));
        continue;
      }
      // oneDNN 2.x's JIT convolutions take `sum` only as the first post-op (eltwise after sum);
      // after an eltwise they fall back to the reference kernel. A trailing sum therefore becomes
      // a separate in-place sum primitive; a leading one stays a post-op (dst pre-filled).
      std::vector<PostOp> convPostOps = c.postOps;
      bool trailingSum = false;
      if (c.addTensor >= 0) {
        const auto& a = shapes[static_cast<std::size_t>(addTensor)];
        check(a == out, "ERR_INVALID_ARG_VALUE", "oneDNN network op " + std::to_string(i) + ": the added tensor's shape differs");
        trailingSum = convPostOps.back().kind == PostOp::Kind::kSum;
        if (trailingSum) {
          convPostOps.pop_back();
        } else {
          step.copyFrom = addTensor;
          step.copyTo = c.output;
        }
      }
      // The primitives: one, or for a sub-pixel conv whose channels fill blocks, one per output
      // parity with only the taps it uses (kernel 1 or 2 per axis: 27/64 of the fused form's
      // multiply-adds; measured faster, bench/onednn-profile.mjs). Weights in [out][in] order.
      struct Piece {
        int dst = 0;
        std::int64_t channels = 0;
        std::array<std::int64_t, 3> kernel{};
        std::array<std::int64_t, 3> padEnd{};
        std::vector<float> weights;
        const float* bias = nullptr;
      };
      std::vector<Piece> pieces;
      auto hidden = [&](std::array<std::int64_t, 4> shape) {
        shapes.push_back(shape);
        plan->descs.emplace_back();
        plan->memories.push_back(nullptr);
        const int t = static_cast<int>(shapes.size()) - 1;
        layoutDesc(t);
        return t;
      };
      const std::int64_t k = c.kernel;
      const bool split = c.subpixel && spec_.subpixelSplit && c.outChannels % l.block == 0;
      if (split) {
        for (int parity = 0; parity < 8; ++parity) {
          Piece piece;
          piece.channels = c.outChannels;
          for (int axis = 0; axis < 3; ++axis) {
            const bool odd = ((parity >> (2 - axis)) & 1) != 0;
            piece.kernel[static_cast<std::size_t>(axis)] = odd ? 2 : 1;
            piece.padEnd[static_cast<std::size_t>(axis)] = odd ? 1 : 0;
          }
          const auto [kd, kh, kw] = piece.kernel;
          for (std::int64_t o = 0; o < c.outChannels; ++o) {
            for (std::int64_t ic = 0; ic < c.inChannels; ++ic) {
              const float* w = &c.weights[static_cast<std::size_t>(((parity * c.outChannels + o) * c.inChannels + ic) * 8)];
              for (std::int64_t a = 0; a < kd; ++a) {
                for (std::int64_t b = 0; b < kh; ++b) {
                  for (std::int64_t e = 0; e < kw; ++e) piece.weights.push_back(w[(a * 2 + b) * 2 + e]);
                }
              }
            }
          }
          piece.bias = c.bias.data() + static_cast<std::ptrdiff_t>(parity) * c.outChannels;
          piece.dst = hidden({c.outChannels, convOut[1], convOut[2], convOut[3]});
          pieces.push_back(std::move(piece));
        }
      } else {
        Piece piece;
        piece.channels = convChannels;
        piece.kernel = {k, k, k};
        piece.padEnd = {c.padEnd, c.padEnd, c.padEnd};
        piece.bias = c.bias.data();
        piece.dst = c.subpixel ? hidden(convOut) : c.output;
        if (c.transposed) {
          // A transposed conv's ONNX weights are [in][out].
          const std::size_t k3 = static_cast<std::size_t>(k * k * k);
          piece.weights.resize(c.weights.size());
          for (int ic = 0; ic < c.inChannels; ++ic) {
            for (int oc = 0; oc < c.outChannels; ++oc) {
              std::memcpy(&piece.weights[(static_cast<std::size_t>(oc) * c.inChannels + ic) * k3],
                          &c.weights[(static_cast<std::size_t>(ic) * c.outChannels + oc) * k3], k3 * sizeof(float));
            }
          }
        } else {
          piece.weights = c.weights;
        }
        pieces.push_back(std::move(piece));
      }
      for (Piece& piece : pieces) {
      const int dst = piece.dst;
      dnnl_dims_t wdims = {piece.channels, c.inChannels, piece.kernel[0], piece.kernel[1], piece.kernel[2]};
      dnnl_dims_t bdims = {piece.channels};
      dnnl_memory_desc_t wAny = plainDesc(api, 5, wdims, dnnl_format_tag_any);
      dnnl_memory_desc_t bDesc = plainDesc(api, 1, bdims, dnnl_x);
      dnnl_dims_t strides = {c.stride, c.stride, c.stride};
      dnnl_dims_t padL = {c.padBegin, c.padBegin, c.padBegin};
      dnnl_dims_t padR = {piece.padEnd[0], piece.padEnd[1], piece.padEnd[2]};
      // op_desc is a union-like blob; both descs share the primitive_desc_create path.
      dnnl_convolution_desc_t convDesc;
      dnnl_deconvolution_desc_t deconvDesc;
      const void* opDesc = nullptr;
      if (c.transposed) {
        dnnl(api.dnnl_deconvolution_forward_desc_init(&deconvDesc, dnnl_forward_inference, dnnl_deconvolution_direct,
                                                      &plan->descs[static_cast<std::size_t>(input)], &wAny, &bDesc,
                                                      &plan->descs[static_cast<std::size_t>(dst)], strides, padL, padR),
             "deconvolution_forward_desc_init");
        opDesc = &deconvDesc;
      } else {
        dnnl(api.dnnl_convolution_forward_desc_init(&convDesc, dnnl_forward_inference, dnnl_convolution_direct,
                                                    &plan->descs[static_cast<std::size_t>(input)], &wAny, &bDesc,
                                                    &plan->descs[static_cast<std::size_t>(dst)], strides, padL, padR),
             "convolution_forward_desc_init");
        opDesc = &convDesc;
      }
      dnnl_post_ops_t postOps = nullptr;
      dnnl_primitive_attr_t attr = nullptr;
      dnnl(api.dnnl_post_ops_create(&postOps), "post_ops_create");
      for (const PostOp& p : convPostOps) {
        if (p.kind == PostOp::Kind::kRelu) {
          dnnl(api.dnnl_post_ops_append_eltwise(postOps, 1.0f, dnnl_eltwise_relu, p.alpha, 0.0f), "post_ops_append_eltwise");
        } else {
          dnnl(api.dnnl_post_ops_append_sum(postOps, 1.0f), "post_ops_append_sum");
        }
      }
      attr = userScratchpadAttr(api);
      dnnl(api.dnnl_primitive_attr_set_post_ops(attr, postOps), "primitive_attr_set_post_ops");
      api.dnnl_post_ops_destroy(postOps);
      dnnl_primitive_desc_t pd = nullptr;
      const dnnl_status_t status = api.dnnl_primitive_desc_create(&pd, static_cast<const_dnnl_op_desc_t>(opDesc), attr, l.engine, nullptr);
      api.dnnl_primitive_attr_destroy(attr);
      dnnl(status, c.transposed ? "deconvolution primitive_desc_create" : "convolution primitive_desc_create");
      const dnnl_memory_desc_t wChosen = *api.dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
      dnnl_memory_t wMem = nullptr;
      dnnl_memory_t bMem = nullptr;
      try {
        wMem = reorderedConstant(*plan, stream, plainDesc(api, 5, wdims, dnnl_oidhw), wChosen, piece.weights.data());
        bMem = reorderedConstant(*plan, stream, bDesc, bDesc, piece.bias);
      } catch (...) {
        api.dnnl_primitive_desc_destroy(pd);
        throw;
      }
      step.primitive = makePrimitive(*plan, pd);
      step.args = {{DNNL_ARG_SRC, plan->memories[static_cast<std::size_t>(input)]},
                   {DNNL_ARG_WEIGHTS, wMem},
                   {DNNL_ARG_BIAS, bMem},
                   {DNNL_ARG_DST, plan->memories[static_cast<std::size_t>(dst)]}};
      plan->steps.push_back(std::move(step));
      step = Step();
      }
      if (c.subpixel) {
        Step d2s;
        std::array<ParitySource, 8> parities;
        for (std::size_t p = 0; p < 8; ++p) {
          const int from = pieces[split ? p : 0].dst;
          parities[p] = {dataOf(from), viewOf(from), split ? 0 : static_cast<std::int64_t>(p) * c.outChannels};
        }
        float* to = dataOf(c.output);
        const TensorView toView = viewOf(c.output);
        const std::int64_t channels = c.outChannels;
        d2s.label = "depth_to_space,spleen_trt:cpp," + shapeName(toView);
        d2s.custom = [self, parities, channels, to, toView] { depthToSpace(parities, channels, to, toView, 0, self->parallel); };
        plan->steps.push_back(std::move(d2s));
      }
      if (trailingSum) {
        Step sum;
        const dnnl_memory_desc_t srcs[2] = {plan->descs[static_cast<std::size_t>(c.output)],
                                            plan->descs[static_cast<std::size_t>(addTensor)]};
        const float scales[2] = {1.0f, 1.0f};
        dnnl_primitive_desc_t sumPd = nullptr;
        dnnl(api.dnnl_sum_primitive_desc_create(&sumPd, &plan->descs[static_cast<std::size_t>(c.output)], 2, scales, srcs, Attr(api).attr,
                                                l.engine),
             "sum_primitive_desc_create");
        sum.primitive = makePrimitive(*plan, sumPd);
        sum.args = {{DNNL_ARG_MULTIPLE_SRC, plan->memories[static_cast<std::size_t>(c.output)]},
                    {DNNL_ARG_MULTIPLE_SRC + 1, plan->memories[static_cast<std::size_t>(addTensor)]},
                    {DNNL_ARG_DST, plan->memories[static_cast<std::size_t>(c.output)]}};
        plan->steps.push_back(std::move(sum));
      }
    }
    const auto& o = shapes[static_cast<std::size_t>(spec_.outputTensor)];
    for (int d = 0; d < 3; ++d) plan->outDims[d] = o[static_cast<std::size_t>(d + 1)];
    {
      dnnl_dims_t md = {batch, o[0], o[1], o[2], o[3]};
      dnnl_memory_desc_t user = plainDesc(api, 5, md, dnnl_ncdhw);
      dnnl(api.dnnl_memory_create(&plan->userOutput, &user, l.engine, DNNL_MEMORY_NONE), "memory_create");
      dnnl_primitive_desc_t pd = nullptr;
      dnnl(api.dnnl_reorder_primitive_desc_create(&pd, &plan->descs[static_cast<std::size_t>(spec_.outputTensor)], l.engine, &user,
                                                  l.engine, Attr(api).attr),
           "output reorder");
      plan->outputReorder = makePrimitive(*plan, pd);
    }
    std::size_t scratchBytes = 0;
    for (auto& sp : plan->scratchpads) scratchBytes = std::max(scratchBytes, api.dnnl_memory_desc_get_size(&sp.second));
    if (scratchBytes > 0) {
      plan->scratchBuffer.reset(new std::uint8_t[scratchBytes + 64]);
      void* aligned = reinterpret_cast<void*>((reinterpret_cast<std::uintptr_t>(plan->scratchBuffer.get()) + 63) & ~std::uintptr_t{63});
      for (auto& sp : plan->scratchpads) {
        dnnl_memory_t m = nullptr;
        dnnl(api.dnnl_memory_create(&m, &sp.second, l.engine, aligned), "memory_create");
        plan->scratchMemories.emplace_back(sp.first, m);
        for (Step& st : plan->steps) {
          if (st.primitive == sp.first) st.args.push_back({DNNL_ARG_SCRATCHPAD, m});
        }
      }
    }
    plan_ = std::move(plan);
  }
  Plan& plan = *plan_;
  for (int d = 0; d < 3; ++d) outDims[d] = plan.outDims[d];
  const std::size_t outCount = static_cast<std::size_t>(batch) * static_cast<std::size_t>(outputChannels_) *
                               static_cast<std::size_t>(plan.outDims[0] * plan.outDims[1] * plan.outDims[2]);
  output->resize(outCount);
  // The user memories wrap the caller's buffers for this run only.
  dnnl(api.dnnl_memory_set_data_handle(plan.userInput, const_cast<float*>(input)), "memory_set_data_handle");
  dnnl(api.dnnl_memory_set_data_handle(plan.userOutput, output->data()), "memory_set_data_handle");
  {
    std::vector<dnnl_exec_arg_t> args = {{DNNL_ARG_FROM, plan.userInput}, {DNNL_ARG_TO, plan.memories[0]}};
    plan.addScratchpad(plan.inputReorder, &args);
    dnnl(api.dnnl_primitive_execute(plan.inputReorder, stream, static_cast<int>(args.size()), args.data()), "input reorder");
  }
  for (Step& step : plan.steps) {
    if (step.custom) {
      dnnl(api.dnnl_stream_wait(stream), "stream_wait");
      const auto start = std::chrono::steady_clock::now();
      step.custom();
      if (verbose()) {
        // oneDNN's own exec line format (DNNL_VERBOSE), so bench/onednn-profile.mjs sums both.
        std::printf("onednn_verbose,exec,cpu,%s,%g\n", step.label.c_str(),
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      }
      continue;
    }
    if (step.copyFrom >= 0) {
      // Same shape and channel count, hence the same layout: the sum post-op's addend.
      dnnl(api.dnnl_stream_wait(stream), "stream_wait");
      void* from = nullptr;
      void* to = nullptr;
      dnnl(api.dnnl_memory_get_data_handle(plan.memories[static_cast<std::size_t>(step.copyFrom)], &from), "memory_get_data_handle");
      dnnl(api.dnnl_memory_get_data_handle(plan.memories[static_cast<std::size_t>(step.copyTo)], &to), "memory_get_data_handle");
      std::memcpy(to, from, api.dnnl_memory_desc_get_size(&plan.descs[static_cast<std::size_t>(step.copyTo)]));
    }
    dnnl(api.dnnl_primitive_execute(step.primitive, stream, static_cast<int>(step.args.size()), step.args.data()), "execute");
  }
  {
    std::vector<dnnl_exec_arg_t> args = {{DNNL_ARG_FROM, plan.memories[static_cast<std::size_t>(spec_.outputTensor)]},
                                         {DNNL_ARG_TO, plan.userOutput}};
    plan.addScratchpad(plan.outputReorder, &args);
    dnnl(api.dnnl_primitive_execute(plan.outputReorder, stream, static_cast<int>(args.size()), args.data()), "output reorder");
  }
  dnnl(api.dnnl_stream_wait(stream), "stream_wait");
  dnnl(api.dnnl_memory_set_data_handle(plan.userInput, nullptr), "memory_set_data_handle");
  dnnl(api.dnnl_memory_set_data_handle(plan.userOutput, nullptr), "memory_set_data_handle");
}

#else  // no dnnl.h at build time

const Availability& availability() {
  static const Availability info = [] {
    Availability a;
    a.reason = "the addon was built without oneDNN's headers (install libdnnl-dev and rebuild)";
    return a;
  }();
  return info;
}

struct Network::Plan {};

Network::Network(NetworkSpec spec) : spec_(std::move(spec)) {
  throw Error("ERR_BACKEND_UNAVAILABLE", availability().reason);
}
Network::~Network() = default;
void Network::run(const float*, int, const std::int64_t*, std::vector<float>*, std::int64_t*) {
  throw Error("ERR_BACKEND_UNAVAILABLE", availability().reason);
}

#endif

}  // namespace spleen_trt::core::onednn
