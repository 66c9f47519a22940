#include "js_error.h"

#include <new>

namespace spleen_trt {

ErrorData ErrorData::from(const core::NativeError& error) {
  return ErrorData{core::errorCodeName(error.code()), error.what(), error.details()};
}

ErrorData ErrorData::from(const std::exception& error, core::ErrorCode fallback) {
  if (dynamic_cast<const std::bad_alloc*>(&error) != nullptr) {
    return ErrorData{core::errorCodeName(core::ErrorCode::kOutOfMemory), "Out of host memory", {}};
  }
  return ErrorData{core::errorCodeName(fallback), error.what(), {}};
}

Napi::Array ToJsStringArray(Napi::Env env, const std::vector<std::string>& lines) {
  Napi::Array array = Napi::Array::New(env, lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) array.Set(static_cast<uint32_t>(i), lines[i]);
  return array;
}

Napi::Error ToJsError(Napi::Env env, const ErrorData& error) {
  Napi::Error jsError = Napi::Error::New(env, error.message);
  jsError.Set("code", error.code);
  jsError.Set("details", ToJsStringArray(env, error.details));
  return jsError;
}

}  // namespace spleen_trt
