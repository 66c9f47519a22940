// Reading the plain arguments the TS wrappers pass. TS validates first (TypeError/RangeError with
// the package's message shape); these checks only turn a call that bypassed it into a TypeError
// instead of undefined behaviour. JS thread only.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace spleen_trt::js_args {

inline Napi::Value Field(const Napi::Object& object, const char* name) { return object.Get(name); }

inline double Number(const Napi::Value& value, const char* name) {
  if (!value.IsNumber()) throw Napi::TypeError::New(value.Env(), std::string("Expected a number for ") + name);
  return value.As<Napi::Number>().DoubleValue();
}

inline int Int(const Napi::Value& value, const char* name, int min, int max) {
  const double number = Number(value, name);
  if (!(number >= min && number <= max) || number != static_cast<double>(static_cast<int>(number))) {
    throw Napi::RangeError::New(value.Env(), std::string("Expected an integer in [") + std::to_string(min) + ", " +
                                                 std::to_string(max) + "] for " + name);
  }
  return static_cast<int>(number);
}

inline bool Bool(const Napi::Value& value, const char* name) {
  if (!value.IsBoolean()) throw Napi::TypeError::New(value.Env(), std::string("Expected a boolean for ") + name);
  return value.As<Napi::Boolean>().Value();
}

inline std::string String(const Napi::Value& value, const char* name) {
  if (!value.IsString()) throw Napi::TypeError::New(value.Env(), std::string("Expected a string for ") + name);
  return value.As<Napi::String>().Utf8Value();
}

inline bool IsTypedArrayOf(const Napi::Value& value, napi_typedarray_type type) {
  return value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == type;
}

inline Napi::Uint8Array Bytes(const Napi::Value& value, const char* name) {
  if (!IsTypedArrayOf(value, napi_uint8_array)) {
    throw Napi::TypeError::New(value.Env(), std::string("Expected a Uint8Array for ") + name);
  }
  return value.As<Napi::Uint8Array>();
}

inline std::vector<std::uint8_t> CopyBytes(const Napi::Uint8Array& array) {
  const std::uint8_t* data = array.Data();
  return std::vector<std::uint8_t>(data, data + array.ElementLength());
}

}  // namespace spleen_trt::js_args
