#include "core/plan_header.h"

namespace spleen_trt::core {

PlanHeader parsePlanHeader(const std::uint8_t* data, std::size_t size) noexcept {
  PlanHeader header;
  if (data == nullptr || size < kPlanHeaderBytes) return header;
  const std::uint32_t magic = static_cast<std::uint32_t>(data[0]) |
                              (static_cast<std::uint32_t>(data[1]) << 8) |
                              (static_cast<std::uint32_t>(data[2]) << 16) |
                              (static_cast<std::uint32_t>(data[3]) << 24);
  if (magic != kPlanMagic) return header;
  header.isPlan = true;
  header.serializationVersion = static_cast<std::uint32_t>(data[4]) | (static_cast<std::uint32_t>(data[5]) << 8) |
                                (static_cast<std::uint32_t>(data[6]) << 16) |
                                (static_cast<std::uint32_t>(data[7]) << 24);
  if (header.serializationVersion != 0) return header;
  header.versionKnown = true;
  header.major = data[24];
  header.minor = data[25];
  header.patch = data[26];
  header.build = data[27];
  return header;
}

std::string formatPlanVersion(const PlanHeader& header) {
  if (!header.versionKnown) {
    return "unknown (serialization version " + std::to_string(header.serializationVersion) + ")";
  }
  return std::to_string(header.major) + "." + std::to_string(header.minor) + "." +
         std::to_string(header.patch) + "." + std::to_string(header.build);
}

}  // namespace spleen_trt::core
