// Carries a native failure from a worker thread to the JS thread as plain data, and turns it into
// a JS Error with `code` and `details` there. src/native/tensorrt.ts re-creates it as a
// SpleenTrtError in the awaiting function, so the stack shows the caller.
#pragma once

#include <napi.h>

#include <exception>
#include <string>
#include <vector>

#include "core/native_error.h"

namespace spleen_trt {

struct ErrorData {
  std::string code;
  std::string message;
  std::vector<std::string> details;

  static ErrorData from(const core::NativeError& error);
  // Anything else escaping native code (std::bad_alloc, a bug): reported under `fallback`.
  static ErrorData from(const std::exception& error, core::ErrorCode fallback);
};

// JS thread only.
Napi::Error ToJsError(Napi::Env env, const ErrorData& error);

Napi::Array ToJsStringArray(Napi::Env env, const std::vector<std::string>& lines);

}  // namespace spleen_trt
