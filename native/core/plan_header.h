// What the first bytes of a serialized TensorRT engine (a "plan") say, read without TensorRT:
// a plan starts with the little-endian uint32 0x74727466 ("ftrt"); the uint32 at 4 is the
// serialization version, and only when it is 0 do bytes 24..27 hold the major.minor.patch.build
// of the TensorRT that built it (trtexec, samples/common/sampleEngines.cpp: "Blob index to store
// the plan version may depend on the serialization version"). Used to turn a wrong file or a plan from
// another TensorRT into ERR_ENGINE_INCOMPATIBLE with a useful message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace spleen_trt::core {

struct PlanHeader {
  bool isPlan = false;  // long enough and starts with the magic
  std::uint32_t serializationVersion = 0;
  // The version bytes are where serialization version 0 keeps them; otherwise major..build are 0
  // and only TensorRT itself can tell which release built the plan.
  bool versionKnown = false;
  int major = 0;
  int minor = 0;
  int patch = 0;
  int build = 0;
};

constexpr std::uint32_t kPlanMagic = 0x74727466u;  // "ftrt" read as a little-endian uint32
constexpr std::size_t kPlanHeaderBytes = 28;

PlanHeader parsePlanHeader(const std::uint8_t* data, std::size_t size) noexcept;

// "10.13.0.26", or "unknown (serialization version 3)".
std::string formatPlanVersion(const PlanHeader& header);

}  // namespace spleen_trt::core
