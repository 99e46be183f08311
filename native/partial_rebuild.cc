// rebuild_tar (partial_rebuild.h): a partial pull's tar, step by step from its plan. A store file is read straight
// into the apply pipeline's blocks and hashed as it goes; remote contents are decoded from the frames JS pushes (one
// zstd stream: concatenated frames decode to the concatenated contents), exactly each file's size at a time.
#include "partial_rebuild.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "common.h"
#include "sha256.h"

namespace carrier {

namespace {

constexpr size_t kCheckEvery = 4 << 20;  // bytes between abort checks within a file

// The remote contents' frames, decoded on demand.
class RemoteContents {
 public:
  explicit RemoteContents(const RemoteInput& input) : input_(input), dctx_(ZSTD_createDCtx()) {
    if (!dctx_) fail("ENOMEM", "zstd: cannot create a decompression context");
  }
  ~RemoteContents() { ZSTD_freeDCtx(dctx_); }
  RemoteContents(const RemoteContents&) = delete;
  RemoteContents& operator=(const RemoteContents&) = delete;

  // Up to `n` decoded bytes at `out`; 0 once the frames have all come and are decoded. Throws `bad(reason)` when they
  // are not valid zstd.
  template <class Bad>
  size_t read(uint8_t* out, size_t n, const Bad& bad) {
    for (;;) {
      ZSTD_inBuffer in{in_.data(), in_.size(), pos_};
      ZSTD_outBuffer o{out, n, 0};
      size_t r = ZSTD_decompressStream(dctx_, &o, &in);
      if (ZSTD_isError(r)) bad(std::string("not valid zstd: ") + ZSTD_getErrorName(r));
      if (o.pos || in.pos != pos_) pending_ = r;  // a call that moved nothing reports the next frame's needs
      pos_ = in.pos;
      if (o.pos) return o.pos;
      if (pos_ < in_.size()) continue;  // headers or skippable frames: consumed, nothing out yet
      if (ended_) return 0;
      pos_ = 0;
      in_.clear();
      if (!input_(in_)) {
        ended_ = true;
        in_.clear();
      }
    }
  }

  // Whether the last frame was complete (no frame started and unfinished).
  bool at_frame_end() const { return pending_ == 0; }

 private:
  const RemoteInput& input_;
  ZSTD_DCtx* dctx_;
  std::vector<uint8_t> in_;
  size_t pos_ = 0;
  bool ended_ = false;
  size_t pending_ = 0;
};

class Rebuilder {
 public:
  Rebuilder(const RebuildPlan& plan, const RemoteInput& remote, DecodeSink& sink, const std::function<void()>& check)
      : plan_(plan), remote_(remote), sink_(sink), check_(check) {}

  void run() {
    uint64_t seg = 0;
    for (const RebuildPlan::Step& step : plan_.steps) {
      if (step.file < 0) {
        if (step.bytes > plan_.segments.size() - seg) fail("CARRIER_INTERNAL", "a partial pull's plan overruns its segments");
        emit(plan_.segments.data() + seg, step.bytes);
        seg += step.bytes;
        continue;
      }
      check_();
      const RebuildFile& f = plan_.files.at(static_cast<size_t>(step.file));
      Sha256 h;
      int64_t n = f.path.empty() ? fetched(f, h) : stored(f, h);
      std::string got = n == f.size ? h.digest() : std::string();
      if (got == f.digest) continue;
      if (!f.path.empty() && f.claimed) {
        fail("CARRIER_STALE_INDEX", "zstd:chunked layer " + plan_.layer + ": '" + f.name + "' read from the store at " + f.path +
                                        " does not hold what an earlier layer's TOC claimed (" + f.digest + "); the layer is fetched whole");
      }
      fail("CARRIER_DIGEST_MISMATCH", "zstd:chunked layer " + plan_.layer + ": '" + f.name + "' " +
                                          (f.path.empty() ? std::string("as fetched") : "read from the store at " + f.path) +
                                          " does not match its TOC digest " + f.digest + " (" + std::to_string(n < 0 ? 0 : n) + " bytes, " +
                                          (got.empty() ? std::string("not a regular file of its size") : got) + "); the layer is refused");
    }
    // Every byte fetched must have gone into a file: frames that decode to more (or end inside a frame) lie.
    uint8_t extra[512];
    auto bad = [&](const std::string& why) { toc_lies(why); };
    if (remote_.read(extra, sizeof extra, bad) > 0) toc_lies("the TOC's ranges decode to more bytes than its files hold");
    if (!remote_.at_frame_end()) toc_lies("the TOC's ranges end inside a zstd frame");
  }

 private:
  [[noreturn]] void toc_lies(const std::string& why) {
    fail("CARRIER_BAD_TOC", "zstd:chunked layer " + plan_.layer + ": " + why + "; the layer is refused");
  }

  void emit(const uint8_t* p, size_t n) { sink_.put(p, n); }

  // A store file's content, hashed as it goes to the sink; -1 when it is not a regular file of its size (or changes
  // size while read). A file gone since it was indexed fails with ENOENT: not the image's fault (the pull is retried
  // whole).
  int64_t stored(const RebuildFile& f, Sha256& h) {
    Fd fd(open(f.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT || errno == ENOTDIR) fail_errno(ENOENT, "open", f.path, "opening a store file for a partial pull");
      return -1;
    }
    struct stat st;
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != f.size) return -1;
    int64_t left = f.size, since = 0;
    while (left > 0) {
      size_t avail = 0;
      uint8_t* out = sink_.space(&avail);
      size_t k = static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(avail)));
      ssize_t got = read(fd.get(), out, k);
      if (got < 0) {
        if (errno == EINTR) continue;
        fail_errno(errno, "read", f.path, "reading a store file for a partial pull");
      }
      if (got == 0) return -1;  // shrank meanwhile
      h.update(out, static_cast<size_t>(got));
      sink_.commit(static_cast<size_t>(got));
      left -= got;
      if ((since += got) >= static_cast<int64_t>(kCheckEvery)) {
        since = 0;
        check_();
      }
    }
    uint8_t more;
    ssize_t got;
    while ((got = read(fd.get(), &more, 1)) < 0 && errno == EINTR) {
    }
    return got == 0 ? f.size : -1;  // grew meanwhile: not the content indexed
  }

  // A remote file's content, decoded from the fetched frames; fewer bytes than its size when they run out.
  int64_t fetched(const RebuildFile& f, Sha256& h) {
    auto bad = [&](const std::string& why) {
      fail("CARRIER_DIGEST_MISMATCH", "zstd:chunked layer " + plan_.layer + ": '" + f.name + "' as fetched is " + why + "; the layer is refused");
    };
    int64_t n = 0, since = 0;
    while (n < f.size) {
      size_t avail = 0;
      uint8_t* out = sink_.space(&avail);
      size_t k = static_cast<size_t>(std::min<int64_t>(f.size - n, static_cast<int64_t>(avail)));
      size_t got = remote_.read(out, k, bad);
      if (got == 0) break;
      h.update(out, got);
      sink_.commit(got);
      n += static_cast<int64_t>(got);
      if ((since += static_cast<int64_t>(got)) >= static_cast<int64_t>(kCheckEvery)) {
        since = 0;
        check_();
      }
    }
    return n;
  }

  const RebuildPlan& plan_;
  RemoteContents remote_;
  DecodeSink& sink_;
  const std::function<void()>& check_;
};

}  // namespace

void rebuild_tar(const RebuildPlan& plan, const RemoteInput& remote, DecodeSink& sink, const std::function<void()>& check) {
  Rebuilder(plan, remote, sink, check).run();
}

}  // namespace carrier
