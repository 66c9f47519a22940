// `memory.adviseHugePages(view: ArrayBufferView): void`: transparent huge pages advised for the
// 2 MiB-aligned part of a large, not yet touched buffer (core/huge_pages.h), so filling it costs
// a few 2 MiB page faults instead of thousands of 4 KiB ones. Advice only; a no-op off Linux.
// `memory.setHugePageAdvice(on: boolean)`: switches it off and on process-wide (A/B benches).
#pragma once

#include <napi.h>

namespace spleen_trt {

void RegisterMemory(Napi::Env env, Napi::Object exports);

}  // namespace spleen_trt
