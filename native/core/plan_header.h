// What the first bytes of a serialized TensorRT engine (a "plan") say, read without TensorRT:
// a plan starts with the little-endian uint32 0x74727466 ("ftrt"), and bytes 24..27 hold the
// major.minor.patch.build of the TensorRT that built it. Used to turn a wrong file or a plan from
// another TensorRT into ERR_ENGINE_INCOMPATIBLE with a useful message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace spleen_trt::core {

struct PlanHeader {
  bool isPlan = false;  // long enough and starts with the magic
  int major = 0;
  int minor = 0;
  int patch = 0;
  int build = 0;
};

constexpr std::uint32_t kPlanMagic = 0x74727466u;  // "ftrt" read as a little-endian uint32
constexpr std::size_t kPlanHeaderBytes = 28;

PlanHeader parsePlanHeader(const std::uint8_t* data, std::size_t size) noexcept;

// "10.13.0.26".
std::string formatPlanVersion(const PlanHeader& header);

}  // namespace spleen_trt::core
