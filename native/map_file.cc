// A file mapped into memory and handed to JS without a copy: the CLI's bundle as V8 source text and its code cache as
// a Buffer (src/cli/bin.cts). Read into a Buffer and then made a string, the ~600 KB bundle was copied twice into
// fresh memory, and in this VM every fresh page costs a page fault (~4 us): ~300 faults, about 1.2 ms of every command.
// A mapping of the file's cached pages faults a few pages at a time, and only where something reads them: with a
// code cache V8 reads the source only to compile a function the cache lacks, or to show a line of it.
#include <fcntl.h>
#include <napi.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>

#include "apply_job.h"

// Node 20.4+ (experimental there, Node-API 10 from Node 22.14): the addon is built for Node-API 8, whose headers leave
// it undeclared. Weak, so an older Node (which lacks it) still loads the addon: mapFile then answers undefined.
extern "C" napi_status NAPI_CDECL node_api_create_external_string_latin1(napi_env env, char* str, size_t length,
                                                                         napi_finalize finalize_callback,
                                                                         void* finalize_hint, napi_value* result,
                                                                         bool* copied) __attribute__((weak));

namespace carrier {
namespace {

void unmap(napi_env, void* data, void* hint) { munmap(data, reinterpret_cast<uintptr_t>(hint)); }

// mapFile(path, text) -> { data, size, mtimeMs, ino } | undefined: the whole of a regular, non-empty file, mapped
// read-only and private, as a latin1 string (text: true; each byte one character, so only for ASCII or latin1 files)
// or a Buffer, with what fstat said of the descriptor mapped. The mapping lives until the string or Buffer is
// collected. Undefined when the file cannot be opened or mapped, is empty or not a regular file, or this Node cannot
// make an external string: the caller reads the file instead. A file truncated while mapped would fault its reader
// (SIGBUS): only for files replaced by rename, never rewritten in place (scripts/bundle-cli.mjs, the bin's cache).
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  bool text = info[1].ToBoolean().Value();
  if (text && node_api_create_external_string_latin1 == nullptr) return env.Undefined();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return env.Undefined();
  struct stat st;
  void* at = MAP_FAILED;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    at = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  }
  close(fd);
  if (at == MAP_FAILED) return env.Undefined();
  size_t size = static_cast<size_t>(st.st_size);
  void* hint = reinterpret_cast<void*>(static_cast<uintptr_t>(size));
  napi_value data;
  napi_status status;
  if (text) {
    bool copied = false;
    // a copy (a V8 built with its sandbox) has called unmap already
    status = node_api_create_external_string_latin1(env, static_cast<char*>(at), size, unmap, hint, &data, &copied);
  } else {
    status = napi_create_external_buffer(env, size, at, unmap, hint, &data);
  }
  if (status != napi_ok) {
    munmap(at, size);
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Value(env, data));
  out.Set("size", Napi::Number::New(env, static_cast<double>(size)));
  out.Set("mtimeMs", Napi::Number::New(env, static_cast<double>(st.st_mtim.tv_sec) * 1e3 + static_cast<double>(st.st_mtim.tv_nsec) / 1e6));
  out.Set("ino", Napi::Number::New(env, static_cast<double>(st.st_ino)));
  return out;
}

}  // namespace

void init_map_file(Napi::Env env, Napi::Object exports) {
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
}

}  // namespace carrier
