// assembleLayer's native half: one producer thread reads the tar-split file, writes its raw segments verbatim and
// each file's content from the diff directory (resolved inside it, CRC-64 checked), and hands ~1 MiB chunks to JS.
// Flow control is by credit: the producer may have only a few chunks in flight until JS acknowledges them.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <memory>
#include <optional>
#include <thread>

#include "apply_job.h"
#include "assemble.h"
#include "crc64.h"
#include "extractor.h"
#include "fs_safe.h"
#include "napi_util.h"
#include "stream_job.h"
#include "tar_split.h"

namespace carrier {

namespace {

constexpr size_t kChunk = 1 << 20;

struct Chunk {
  std::vector<uint8_t> data;
  bool end = false;
  std::optional<Failure> failure;
};

void fill(Napi::Env env, Chunk& chunk, Napi::Object& js);
using ChunkFn = Napi::TypedThreadSafeFunction<std::nullptr_t, Chunk, deliver_event<Chunk, fill>>;

// Only the credits are used: nothing is pushed from JS.
struct AssembleState : StreamState<> {
  std::string tar_split, dir;
  ChunkFn tsfn;
};

class Producer {
 public:
  Producer(const std::string& tar_split, const std::string& dir, const TarSink& sink)
      : tar_split_(tar_split), dir_(dir), sink_(sink) {
    out_.reserve(kChunk);
  }

  void run() {
    Fd root = open_root(dir_);
    Fd split(open(tar_split_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!split.valid()) fail_errno(errno, "open", tar_split_, "opening the tar-split file");
    z_stream zs{};
    if (inflateInit2(&zs, 15 + 32) != Z_OK) fail("ENOMEM", "cannot initialise gzip decompression");
    std::unique_ptr<z_stream, void (*)(z_stream*)> guard(&zs, [](z_stream* z) { inflateEnd(z); });
    std::vector<uint8_t> in(1 << 16), plain(1 << 16);
    std::string line;
    bool ended = false;
    for (;;) {
      ssize_t n = read(split.get(), in.data(), in.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        fail_errno(errno, "read", tar_split_, "reading the tar-split file");
      }
      if (n == 0) break;
      zs.next_in = in.data();
      zs.avail_in = static_cast<uInt>(n);
      while (zs.avail_in > 0) {
        if (ended) {
          inflateReset(&zs);
          ended = false;
        }
        zs.next_out = plain.data();
        zs.avail_out = static_cast<uInt>(plain.size());
        int ret = inflate(&zs, Z_NO_FLUSH);
        if (ret == Z_STREAM_END) ended = true;
        else if (ret != Z_OK && ret != Z_BUF_ERROR) fail("CARRIER_BAD_TAR_SPLIT", "the tar-split file is not valid gzip");
        size_t produced = plain.size() - zs.avail_out;
        for (size_t i = 0; i < produced; ++i) {
          char c = static_cast<char>(plain[i]);
          if (c != '\n') {
            line += c;
            continue;
          }
          entry(line, root.get());
          line.clear();
        }
      }
    }
    if (!ended) fail("CARRIER_BAD_TAR_SPLIT", "the tar-split file is truncated");
    if (!line.empty()) entry(line, root.get());
    send();
  }

 private:
  void entry(const std::string& line, int rootfd) {
    if (line.empty()) return;
    TarSplitEntry e = parse_tar_split_line(line);
    if (e.type == 2) {
      emit(reinterpret_cast<const uint8_t*>(e.payload.data()), e.payload.size());
      return;
    }
    if (e.size == 0) return;
    Fd fd = open_content(rootfd, e.name);
    Crc64 crc;
    int64_t left = e.size;
    while (left > 0) {
      if (out_.size() == kChunk) send();
      size_t room = kChunk - out_.size();
      size_t want = static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(room)));
      size_t at = out_.size();
      out_.resize(at + want);
      ssize_t n = read(fd.get(), out_.data() + at, want);
      if (n < 0) {
        out_.resize(at);
        if (errno == EINTR) continue;
        fail_errno(errno, "read", e.name, "reading a layer file to rebuild the tar");
      }
      out_.resize(at + static_cast<size_t>(n));
      if (n == 0) fail("CARRIER_DIGEST_MISMATCH", "'" + e.name + "' is shorter than the tar-split records", e.name);
      crc.update(out_.data() + at, static_cast<size_t>(n));
      left -= n;
    }
    uint8_t extra;
    ssize_t more;
    while ((more = read(fd.get(), &extra, 1)) < 0 && errno == EINTR) {
    }
    // As containers/storage copies the whole file, a file that grew since extraction does not rebuild the tar.
    if (more > 0) fail("CARRIER_DIGEST_MISMATCH", "'" + e.name + "' is longer than the tar-split records", e.name);
    if (e.payload.size() == 8) {
      uint8_t be[8];
      crc.big_endian(be);
      if (memcmp(be, e.payload.data(), 8) != 0) {
        fail("CARRIER_DIGEST_MISMATCH", "'" + e.name + "' does not match the CRC-64 the tar-split records", e.name);
      }
    }
  }

  // A file's content, for reading. Rootless extraction keeps modes like 0000 (/etc/shadow) that the owner cannot
  // read without privilege; for such a file that we own, allow reading for a moment and put the mode back.
  static Fd open_content(int rootfd, const std::string& name) {
    int fd = open_in_root(rootfd, name, O_RDONLY | O_NOFOLLOW);
    if (fd >= 0) return Fd(fd);
    if (fd != -EACCES) fail_errno(-fd, "openat2", name, "opening a layer file to rebuild the tar");
    std::vector<std::string> parts = clean_path(name, "tar-split name");
    if (parts.empty()) fail_errno(EACCES, "openat2", name, "opening a layer file to rebuild the tar");
    Fd parent(open_in_root(rootfd, join_path(parts, parts.size() - 1), O_PATH | O_DIRECTORY));
    if (!parent.valid()) fail_errno(-parent.release(), "openat2", name, "opening a layer file to rebuild the tar");
    const char* base = parts.back().c_str();
    struct stat st;
    if (fstatat(parent.get(), base, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
      fail_errno(EACCES, "openat2", name, "opening a layer file to rebuild the tar");
    }
    // A regular file (checked just above, and only Carrier writes layer directories), so this chmod follows nothing.
    if (fchmodat(parent.get(), base, (st.st_mode & 07777) | 0400, 0) != 0) fail_errno(errno, "fchmodat", name);
    Fd out(openat(parent.get(), base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    int err = errno;
    if (out.valid()) {
      fchmod(out.get(), st.st_mode & 07777);
    } else {
      fchmodat(parent.get(), base, st.st_mode & 07777, 0);
      fail_errno(err, "openat", name, "opening a layer file to rebuild the tar");
    }
    return out;
  }

  void emit(const uint8_t* p, size_t n) {
    while (n > 0) {
      if (out_.size() == kChunk) send();
      size_t k = std::min(n, kChunk - out_.size());
      out_.insert(out_.end(), p, p + k);
      p += k;
      n -= k;
    }
  }

  void send() {
    if (out_.empty()) return;
    sink_(out_);
    out_.clear();
    out_.reserve(kChunk);
  }

  const std::string& tar_split_;
  const std::string& dir_;
  const TarSink& sink_;
  std::vector<uint8_t> out_;
};

}  // namespace

void assemble_tar(const std::string& tar_split, const std::string& dir, const TarSink& sink) {
  Producer(tar_split, dir, sink).run();
}

namespace {

void produce(std::shared_ptr<AssembleState> s) {
  Chunk* last = new Chunk;
  try {
    TarSink sink = [&](std::vector<uint8_t>& chunk) {
      s->take_credit(fail_aborted);
      Chunk* c = new Chunk;
      c->data = std::move(chunk);
      s->tsfn.BlockingCall(c);
    };
    assemble_tar(s->tar_split, s->dir, sink);
    last->end = true;
  } catch (...) {
    last->failure = current_failure();
  }
  post_last(s->tsfn, last);
}

void fill(Napi::Env env, Chunk& chunk, Napi::Object& js) {
  if (chunk.failure) {
    set_error_event(env, js, *chunk.failure);
  } else if (chunk.end) {
    js.Set("type", "end");
  } else {
    auto* vec = new std::vector<uint8_t>(std::move(chunk.data));
    js.Set("type", "data");
    js.Set("chunk", Napi::Buffer<uint8_t>::New(env, vec->data(), vec->size(),
                                                [](Napi::Env, uint8_t*, std::vector<uint8_t>* v) { delete v; }, vec));
  }
}

class AssembleJob : public Napi::ObjectWrap<AssembleJob> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AssembleJob",
                       {InstanceMethod("ack", &AssembleJob::Ack), InstanceMethod("abort", &AssembleJob::Abort)});
  }

  AssembleJob(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AssembleJob>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsFunction()) {
      throw Napi::TypeError::New(env, "AssembleJob(tarSplitPath, diffDir, onEvent)");
    }
    state_ = std::make_shared<AssembleState>();
    state_->tar_split = info[0].As<Napi::String>().Utf8Value();
    state_->dir = info[1].As<Napi::String>().Utf8Value();
    state_->tsfn = ChunkFn::New(env, info[2].As<Napi::Function>(), "carrier-assemble-layer", 0, 1);
    std::thread(produce, state_).detach();
  }

 private:
  void Ack(const Napi::CallbackInfo& info) { state_->ack(info); }
  void Abort(const Napi::CallbackInfo&) { state_->halt(); }

  std::shared_ptr<AssembleState> state_;
};

}  // namespace

void init_assemble_job(Napi::Env env, Napi::Object exports) { exports.Set("AssembleJob", AssembleJob::Define(env)); }

}  // namespace carrier
