// The bundle's UNet (or any graph of the same few operations) run with oneDNN's CPU primitives.
//
// oneDNN is optional: libdnnl is opened with dlopen at run time, never linked, so the addon loads
// and runs without it. Only the oneDNN 2.x C API is supported: 3.0 removed the
// `*_desc_init` op descriptors this file builds primitives from (3.x creates primitive
// descriptors directly, with other signatures), so a libdnnl.so.3 is refused by version, not
// half-used. The network comes from TS as a flat list of operations (src/inference/onednn-plan.ts).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace spleen_trt::core::onednn {

// Whether a oneDNN 2.x library could be opened, its version, and why not.
struct Availability {
  bool available = false;
  std::string version;  // "2.6.3"
  std::string path;     // the file the loader mapped
  std::string reason;   // why not, when not available
  std::string isa;      // oneDNN's effective CPU ISA, as a number's name
};

// Opens the library once per process (the name from SPLEEN_TRT_ONEDNN_LIBRARY, else
// libdnnl.so.2); later calls return the same answer.
const Availability& availability();

// One post-op after a convolution, applied in order: leaky ReLU (PReLU with one shared slope)
// or `+ tensor[addTensor]` (oneDNN's sum post-op: the destination is first filled with it).
struct PostOp {
  enum class Kind { kRelu, kSum } kind = Kind::kRelu;
  float alpha = 0.0f;
};

struct ConvOp {
  bool transposed = false;
  int input = 0;
  int output = 0;
  int inChannels = 0;
  int outChannels = 0;
  int kernel = 1;
  int stride = 1;
  int padBegin = 0;
  int padEnd = 0;
  // Conv: [out][in][k][k][k]; transposed: [in][out][k][k][k] (PyTorch / ONNX layouts).
  std::vector<float> weights;
  std::vector<float> bias;  // [out]
  std::vector<PostOp> postOps;
  int addTensor = -1;  // the tensor a kSum post-op adds; -1 when none
  // A transposed conv (kernel 3, stride 2, padding 1, output padding 1) in sub-pixel form: a
  // forward conv with kernel 2, stride 1, padding (0, 1) and 8 * outChannels outputs, parity-major
  // (channel p * outChannels + o is output parity p = (pd * 2 + ph) * 2 + pw of channel o), then
  // a depth-to-space into the 2x-resolution output. weights [8 * out][in][2][2][2], bias [8 * out];
  // `transposed` is false, kernel 2, stride 1, padBegin 0, padEnd 1. No sum post-op.
  bool subpixel = false;
};

struct ConcatOp {
  std::vector<int> inputs;
  int output = 0;
};

struct Op {
  enum class Kind { kConv, kConcat } kind = Kind::kConv;
  ConvOp conv;
  ConcatOp concat;
};

struct NetworkSpec {
  int inputChannels = 1;
  int tensorCount = 1;  // tensor 0 is the input
  int outputTensor = 0;
  // OpenMP threads for each run (Debian's libdnnl2 is built with OpenMP); 0 keeps OpenMP's default
  // (OMP_NUM_THREADS, else all cores).
  int threads = 0;
  // A stride-1 kernel-3 conv between narrow tensors (channels not filling a block: plain layouts)
  // runs as a direct C++ loop (onednn_kernels.h) instead of oneDNN's GEMM path; false: oneDNN.
  bool directConv = true;
  // A sub-pixel conv whose output channels fill blocks runs as 8 convs, one per output parity with
  // only its taps (kernel 1 or 2 per axis); false: one conv over all 8 parities with zero taps.
  bool subpixelSplit = true;
  // Wide tensors in the channels-last layout (ndhwc) instead of oneDNN's blocked one (nCdhw16c).
  bool channelsLast = false;
  std::vector<Op> ops;
};

// Thrown for a bad spec or shape (code "ERR_INVALID_ARG_VALUE") and for oneDNN failures
// ("ERR_INFERENCE_FAILED", "ERR_BACKEND_UNAVAILABLE").
struct Error : std::runtime_error {
  Error(std::string code, const std::string& message) : std::runtime_error(message), code(std::move(code)) {}
  std::string code;
};

class Network {
 public:
  // Checks the spec (channels chain, weight sizes) and keeps it; primitives are made per input
  // shape on the first run of that shape. Throws Error.
  explicit Network(NetworkSpec spec);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  int outputChannels() const noexcept { return outputChannels_; }

  // input: [batch][inputChannels][d0][d1][d2] float32; output resized to
  // [batch][outputChannels][o0][o1][o2]. Not thread-safe: the caller serializes runs.
  void run(const float* input, int batch, const std::int64_t dims[3], std::vector<float>* output,
           std::int64_t outDims[3]);

  struct Plan;

 private:
  NetworkSpec spec_;
  int outputChannels_ = 0;
  std::unique_ptr<Plan> plan_;
};

}  // namespace spleen_trt::core::onednn
