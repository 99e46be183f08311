// Conversions at the JS boundary, used on the main thread only.
#pragma once

#include <napi.h>

#include "common.h"

namespace carrier {

inline Napi::Object failure_to_js(Napi::Env env, const Failure& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("code", f.code);
  o.Set("message", f.message);
  if (!f.path.empty()) o.Set("path", f.path);
  if (!f.syscall.empty()) o.Set("syscall", f.syscall);
  if (f.errnum) o.Set("errno", -f.errnum);  // Node's convention: negative errno
  return o;
}

inline std::string string_option(const Napi::Object& o, const char* key, const std::string& fallback = {}) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}

inline double number_option(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

// A made layer's figures as JS sees them ({ diffID, digest, size, uncompressedSize, entries }): the results of the
// compress, chunked-compress and diff jobs share these fields.
template <class Result>
Napi::Object layer_result_to_js(Napi::Env env, const Result& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("diffID", r.diff_id);
  o.Set("digest", r.digest);
  o.Set("size", Napi::Number::New(env, static_cast<double>(r.size)));
  o.Set("uncompressedSize", Napi::Number::New(env, static_cast<double>(r.uncompressed_size)));
  o.Set("entries", Napi::Number::New(env, static_cast<double>(r.entries)));
  return o;
}

}  // namespace carrier
