// The TensorRT objects of one engine build, declared in the order they must die (members are
// destroyed in reverse): the config first (it holds the timing cache and the profile), then the
// parser (it refers to the network), the network, the builder (which owns the optimization
// profile), and last the timing cache: "The lifetime of the ITimingCache must exceed the lifetime
// of all builders that use it" (NvInfer.h). A template over the five types so the order is tested
// without TensorRT (test/native/cpp/core_test.cc); tensorrt_build.cc instantiates it with
// TensorRT's interfaces.
#pragma once

#include <memory>

namespace spleen_trt::core {

template <typename TimingCache, typename Builder, typename Network, typename Parser, typename Config>
struct BuildObjects {
  std::unique_ptr<TimingCache> timingCache;
  std::unique_ptr<Builder> builder;
  std::unique_ptr<Network> network;
  std::unique_ptr<Parser> parser;
  std::unique_ptr<Config> config;
};

}  // namespace spleen_trt::core
