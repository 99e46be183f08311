// hashFiles(root, names, sizes) -> Promise<string[]>: the sha256 of each named regular file inside the directory
// `root`, on a worker thread (a partial pull's index of the store's file contents). Names are resolved inside the root
// (openat2 RESOLVE_IN_ROOT, the last component never followed), so a layer's symlinks cannot lead the hashing
// elsewhere. A name that is missing, not a regular file, or not of its expected size gets "" (not usable): the index
// is a hint, and every byte taken from it is hashed again when it is used.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common.h"
#include "fs_safe.h"
#include "napi_util.h"
#include "sha256.h"

namespace carrier {

namespace {

constexpr size_t kReadBuffer = 256 << 10;

// The digest of `name` in `rootfd` when it is a regular file of `size` bytes, else "".
std::string hash_one(int rootfd, const std::string& name, int64_t size, std::vector<uint8_t>& buf) {
  int fd = open_in_root(rootfd, name, O_RDONLY | O_NOFOLLOW);
  if (fd < 0) return {};
  Fd file(fd);
  struct stat st;
  if (fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != size) return {};
  posix_fadvise(file.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  Sha256 h;
  int64_t total = 0;
  for (;;) {
    ssize_t n = read(file.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return {};
    }
    if (n == 0) break;
    total += n;
    if (total > size) return {};  // grew meanwhile: not the content indexed
    h.update(buf.data(), static_cast<size_t>(n));
  }
  return total == size ? h.digest() : std::string();
}

class HashFilesWorker : public Napi::AsyncWorker {
 public:
  HashFilesWorker(Napi::Env env, std::string root, std::vector<std::string> names, std::vector<int64_t> sizes)
      : Napi::AsyncWorker(env),
        root_(std::move(root)),
        names_(std::move(names)),
        sizes_(std::move(sizes)),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      Fd root = open_root(root_);
      std::vector<uint8_t> buf(kReadBuffer);
      digests_.reserve(names_.size());
      for (size_t i = 0; i < names_.size(); ++i) digests_.push_back(hash_one(root.get(), names_[i], sizes_[i], buf));
    } catch (...) {
      failure_ = current_failure();
      failed_ = true;
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      deferred_.Reject(failure_to_js(env, failure_));
      return;
    }
    Napi::Array out = Napi::Array::New(env, digests_.size());
    for (size_t i = 0; i < digests_.size(); ++i) out.Set(static_cast<uint32_t>(i), digests_[i]);
    deferred_.Resolve(out);
  }

 private:
  std::string root_;
  std::vector<std::string> names_;
  std::vector<int64_t> sizes_;
  std::vector<std::string> digests_;
  bool failed_ = false;
  Failure failure_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value HashFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsArray() || !info[2].IsArray()) {
    throw Napi::TypeError::New(env, "hashFiles(root: string, names: string[], sizes: number[])");
  }
  Napi::Array names = info[1].As<Napi::Array>();
  Napi::Array sizes = info[2].As<Napi::Array>();
  if (names.Length() != sizes.Length()) throw Napi::TypeError::New(env, "hashFiles: names and sizes differ in length");
  std::vector<std::string> n;
  std::vector<int64_t> s;
  n.reserve(names.Length());
  s.reserve(names.Length());
  for (uint32_t i = 0; i < names.Length(); ++i) {
    Napi::Value name = names.Get(i);
    Napi::Value size = sizes.Get(i);
    if (!name.IsString() || !size.IsNumber()) throw Napi::TypeError::New(env, "hashFiles: a name is not a string or a size not a number");
    n.push_back(name.As<Napi::String>().Utf8Value());
    s.push_back(size.As<Napi::Number>().Int64Value());
  }
  auto* w = new HashFilesWorker(env, info[0].As<Napi::String>().Utf8Value(), std::move(n), std::move(s));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace

void init_file_hash(Napi::Env env, Napi::Object exports) {
  exports.Set("hashFiles", Napi::Function::New(env, HashFiles, "hashFiles"));
}

}  // namespace carrier
