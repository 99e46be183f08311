// The module's entry point: the job classes and the versions of what the core was built with.
#include <napi.h>
#include <openssl/opensslv.h>
#include <zlib.h>
#include <zstd.h>

#include <string>

#include "apply_job.h"
#include "parallel_compressor.h"

namespace {

// What the core was built with, and the isa-l the process would load. A getter: naming isa-l's version loads
// libisal.so.2 (dlopen, then realpath of the file the soname resolves to), ~0.5 ms every short command paid at load
// for a string only `carrier version` and `carrier info` print.
Napi::Value Version(const Napi::CallbackInfo& info) {
  std::string version = std::string("carrier-native/1 zlib/") + zlibVersion() + " zstd/" + ZSTD_versionString() +
                        " openssl/" + OPENSSL_VERSION_TEXT;
  if (!carrier::isal_version().empty()) version += " isa-l/" + carrier::isal_version();
  return Napi::String::New(info.Env(), version);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  carrier::init_apply_job(env, exports);
  carrier::init_assemble_job(env, exports);
  carrier::init_decompress_job(env, exports);
  carrier::init_compress_job(env, exports);
  carrier::init_diff_job(env, exports);
  carrier::init_chunked_job(env, exports);
  carrier::init_store_ops(env, exports);
  carrier::init_clone(env, exports);
  carrier::init_mount(env, exports);
  carrier::init_quota(env, exports);
  carrier::init_tty(env, exports);
  carrier::init_map_file(env, exports);
  carrier::init_budget(env, exports);
  exports.DefineProperty(Napi::PropertyDescriptor::Accessor<Version>("version", napi_enumerable));
  return exports;
}

}  // namespace

NODE_API_MODULE(carrier, Init)
