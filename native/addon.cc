// The module's entry point: the job classes and the versions of what the core was built with.
#include <napi.h>
#include <openssl/opensslv.h>
#include <zlib.h>
#include <zstd.h>

#include <string>

#include "apply_job.h"
#include "parallel_compressor.h"

namespace {

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
  carrier::init_budget(env, exports);
  std::string version = std::string("carrier-native/1 zlib/") + zlibVersion() + " zstd/" + ZSTD_versionString() +
                        " openssl/" + OPENSSL_VERSION_TEXT;
  if (!carrier::isal_version().empty()) version += " isa-l/" + carrier::isal_version();
  exports.Set("version", version);
  return exports;
}

}  // namespace

NODE_API_MODULE(carrier, Init)
