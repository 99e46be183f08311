// compressChunked's native half: a layer's tar in, the same tar as a zstd:chunked blob out, in one pass.
//
// zstd:chunked (containers/storage's format) in our words: the blob is an ordinary zstd stream (any zstd reader gets
// the tar back) cut into frames so that every regular file's content sits alone in its own frame(s). A frame holds
// the non-content bytes (headers, padding) up to the next file content; that content is one frame; and so on; the
// tar's end blocks close the last frame. After the data come three zstd *skippable* frames (magic 0x184D2A50, a
// little-endian u32 length, then the payload), which decoders pass over:
//   1. the TOC: a zstd-compressed JSON {"version":1,"entries":[...],"tarSplitDigest":"sha256:..."}, one entry per tar
//      entry (type reg/dir/symlink/hardlink/char/block/fifo, name, linkName, mode, size, uid, gid, modtime, devMajor,
//      devMinor, xattrs with base64 values, and for content: digest (sha256 of the content), offset and endOffset,
//      the compressed range of its frame in the blob); zero values are left out;
//   2. the tar-split: the zstd-compressed tar-split JSON lines (segments of raw bytes, file entries with their
//      CRC-64), whose digest over the compressed bytes is the TOC's tarSplitDigest;
//   3. the footer: 64 bytes, seven little-endian u64 (TOC offset, compressed and uncompressed TOC length, manifest
//      type 1, tar-split offset, its compressed and uncompressed lengths) and the magic "GNUlInUx".
// The manifest's layer descriptor carries the same positions as annotations, which pullers use instead of the
// footer: manifest-checksum (sha256 of the compressed TOC), manifest-position "offset:length:uncompressed:1" and
// tarsplit-position "offset:length:uncompressed" (offsets are of the payloads, after the 8-byte frame headers).
//
// Threads: the JS thread queues tar chunks; one worker thread parses, compresses and hashes, and hands compressed
// chunks back to JS in order, at most kCredits unacknowledged.
#include <pthread.h>
#include <zstd.h>

#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "apply_job.h"
#include "crc64.h"
#include "napi_util.h"
#include "sha256.h"
#include "stream_job.h"
#include "tar_reader.h"
#include "tar_split.h"

namespace carrier {

namespace {

constexpr size_t kOutChunk = 1 << 20;

struct ChunkedConfig {
  int level = 3;
  uint64_t max_entries = 0;
};

struct ChunkedResult {
  std::string diff_id, digest, toc_digest, manifest_position, tarsplit_position;
  uint64_t size = 0, uncompressed_size = 0, entries = 0;
};

struct Event {
  enum Kind { Drain, Data, Done, Error } kind;
  std::vector<uint8_t> data;
  std::optional<Failure> failure;
  ChunkedResult result;
};

void fill(Napi::Env env, Event& event, Napi::Object& js);
using EventFn = Napi::TypedThreadSafeFunction<std::nullptr_t, Event, deliver_event<Event, fill>>;

struct ChunkedState : StreamState<> {
  ChunkedConfig cfg;
  EventFn tsfn;
  bool aborted = false;

  [[noreturn]] void stopped() {
    std::lock_guard<std::mutex> lock(mu);
    if (aborted) fail_aborted();
    fail("CARRIER_STOPPED", "stopped");
  }
};

struct CCtx {
  ZSTD_CCtx* p = ZSTD_createCCtx();
  ~CCtx() { ZSTD_freeCCtx(p); }
};

// Compresses the data part of the blob, a frame at a time, into `out`, counting every byte written.
class FrameWriter {
 public:
  FrameWriter(int level, std::function<void(const uint8_t*, size_t)> sink) : sink_(std::move(sink)) {
    if (!cctx_.p) fail("ENOMEM", "zstd: cannot create a compression context");
    check(ZSTD_CCtx_setParameter(cctx_.p, ZSTD_c_compressionLevel, level));
    check(ZSTD_CCtx_setParameter(cctx_.p, ZSTD_c_checksumFlag, 0));
    buf_.resize(ZSTD_CStreamOutSize());
  }

  void write(const uint8_t* p, size_t n) {
    if (n == 0) return;
    open_ = true;
    ZSTD_inBuffer in{p, n, 0};
    while (in.pos < in.size) step(in, ZSTD_e_continue);
  }

  // Ends the open frame, if any; the next write starts a new one.
  void end_frame() {
    if (!open_) return;
    ZSTD_inBuffer in{nullptr, 0, 0};
    while (step(in, ZSTD_e_end) != 0) {
    }
    open_ = false;
  }

  uint64_t offset() const { return written_; }

  // Writes bytes as they are (the skippable frames).
  void raw(const uint8_t* p, size_t n) { emit(p, n); }

 private:
  static void check(size_t r) {
    if (ZSTD_isError(r)) fail("CARRIER_BAD_COMPRESSION", std::string("zstd: ") + ZSTD_getErrorName(r));
  }
  size_t step(ZSTD_inBuffer& in, ZSTD_EndDirective mode) {
    ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
    size_t left = ZSTD_compressStream2(cctx_.p, &out, &in, mode);
    check(left);
    emit(buf_.data(), out.pos);
    return left;
  }
  void emit(const uint8_t* p, size_t n) {
    if (!n) return;
    written_ += n;
    sink_(p, n);
  }

  CCtx cctx_;
  std::vector<uint8_t> buf_;
  std::function<void(const uint8_t*, size_t)> sink_;
  bool open_ = false;
  uint64_t written_ = 0;
};

std::string compress_all(const std::string& data, int level) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  if (ZSTD_isError(n)) fail("CARRIER_BAD_COMPRESSION", std::string("zstd: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

const char* toc_type(char t) {
  switch (t) {
    case '0': return "reg";
    case '1': return "hardlink";
    case '2': return "symlink";
    case '3': return "char";
    case '4': return "block";
    case '5': return "dir";
    case '6': return "fifo";
    default: return nullptr;
  }
}

// RFC 3339 in UTC with the fraction trimmed, as Go's time.Time marshals.
std::string rfc3339(int64_t sec, uint32_t nsec) {
  time_t t = static_cast<time_t>(sec);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string s = buf;
  if (nsec) {
    char frac[16];
    snprintf(frac, sizeof frac, ".%09u", nsec);
    std::string f = frac;
    while (f.back() == '0') f.pop_back();
    s += f;
  }
  return s + "Z";
}

// Parses the tar and writes each entry's bytes through the frame writer, the tar-split lines and the TOC entries.
class ChunkedWriter : public TarHandler {
 public:
  ChunkedWriter(FrameWriter& fw) : fw_(fw) {}

  void raw(const uint8_t* data, size_t n) override {
    fw_.write(data, n);
    pending_.append(reinterpret_cast<const char*>(data), n);
  }

  void entry_begin(TarEntry& e) override {
    const char* type = toc_type(e.type);
    if (!type) fail("CARRIER_BAD_TAR", "zstd:chunked has no TOC type for tar entry '" + e.name + "' of type '" + e.type + "'");
    if (!pending_.empty()) split_ += tar_split_segment_line(pending_, position_++);
    pending_.clear();
    cur_ = &e;
    crc_.reset();
    sha_.reset(new Sha256());
    start_ = 0;
    if (e.size > 0) {
      fw_.end_frame();
      start_ = fw_.offset();
    }
  }

  void entry_data(const uint8_t* data, size_t n) override {
    fw_.write(data, n);
    crc_.update(data, n);
    sha_->update(data, n);
  }

  void entry_end() override {
    const TarEntry& e = *cur_;
    std::string digest;
    uint64_t end = 0;
    if (e.size > 0) {
      fw_.end_frame();
      end = fw_.offset();
      digest = sha_->digest();
    }
    uint8_t crc[8];
    crc_.big_endian(crc);
    split_ += tar_split_file_line(e.name, e.size, e.size ? crc : nullptr, position_++);

    std::string& j = toc_;
    if (entries_++) j += ',';
    j += "{\"type\":\"";
    j += toc_type(e.type);
    j += "\",\"name\":";
    json_string(j, e.name);
    if (!e.linkname.empty()) {
      j += ",\"linkName\":";
      json_string(j, e.linkname);
    }
    if (e.mode) j += ",\"mode\":" + std::to_string(e.mode);
    if (e.size) j += ",\"size\":" + std::to_string(e.size);
    if (e.uid) j += ",\"uid\":" + std::to_string(e.uid);
    if (e.gid) j += ",\"gid\":" + std::to_string(e.gid);
    j += ",\"modtime\":\"" + rfc3339(e.mtime_sec, e.mtime_nsec) + "\"";
    if (e.devmajor) j += ",\"devMajor\":" + std::to_string(e.devmajor);
    if (e.devminor) j += ",\"devMinor\":" + std::to_string(e.devminor);
    if (!e.xattrs.empty()) {
      j += ",\"xattrs\":{";
      bool first = true;
      for (const auto& [k, v] : e.xattrs) {
        if (!first) j += ',';
        first = false;
        json_string(j, k);
        j += ":\"" + base64_encode(reinterpret_cast<const uint8_t*>(v.data()), v.size()) + "\"";
      }
      j += '}';
    }
    if (!digest.empty()) {
      j += ",\"digest\":\"" + digest + "\"";
      j += ",\"offset\":" + std::to_string(start_) + ",\"endOffset\":" + std::to_string(end);
    }
    j += '}';
    cur_ = nullptr;
  }

  void global_header(const std::string& name) override {
    fail("CARRIER_BAD_TAR", "zstd:chunked cannot describe the PAX global header '" + name + "'");
  }

  // The raw bytes after the last entry (its padding, the end blocks) close the data part.
  void finish() {
    if (!pending_.empty()) split_ += tar_split_segment_line(pending_, position_++);
    pending_.clear();
    fw_.end_frame();
  }

  std::string toc_json(const std::string& tar_split_digest) const {
    return "{\"version\":1,\"entries\":[" + toc_ + "],\"tarSplitDigest\":\"" + tar_split_digest + "\"}";
  }
  const std::string& tar_split() const { return split_; }

 private:
  FrameWriter& fw_;
  std::string pending_, split_, toc_;
  uint64_t position_ = 0, entries_ = 0, start_ = 0;
  TarEntry* cur_ = nullptr;
  Crc64 crc_;
  std::unique_ptr<Sha256> sha_;
};

void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}

std::string skippable(const std::string& payload) {
  std::string s = "\x50\x2a\x4d\x18";
  put_u32(s, static_cast<uint32_t>(payload.size()));
  return s + payload;
}

std::string sha256_of(const std::string& s) {
  Sha256 h;
  h.update(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  return h.digest();
}

void worker_thread(std::shared_ptr<ChunkedState> s) {
  pthread_setname_np(pthread_self(), "carrier-chunked");
  Event* done = new Event{Event::Done, {}, std::nullopt, {}};
  try {
    auto stopped = [&] { s->stopped(); };
    Sha256 out_sha;
    std::vector<uint8_t> out;
    auto flush = [&] {
      if (out.empty()) return;
      s->take_credit(stopped);
      s->tsfn.BlockingCall(new Event{Event::Data, std::move(out), std::nullopt, {}});
      out = {};
    };
    auto sink = [&](const uint8_t* p, size_t n) {
      out_sha.update(p, n);
      out.insert(out.end(), p, p + n);
      if (out.size() >= kOutChunk) flush();
    };
    FrameWriter fw(s->cfg.level, sink);
    ChunkedWriter writer(fw);
    TarReader reader(writer, s->cfg.max_entries);
    Sha256 tar_sha;
    uint64_t tar_size = 0;
    auto drain = [&] { s->tsfn.NonBlockingCall(new Event{Event::Drain, {}, std::nullopt, {}}); };
    std::vector<uint8_t> chunk;
    while (s->next_input(chunk, stopped, drain)) {
      tar_sha.update(chunk.data(), chunk.size());
      tar_size += chunk.size();
      reader.feed(chunk.data(), chunk.size());
    }
    reader.finish();
    writer.finish();

    const std::string split = compress_all(writer.tar_split(), s->cfg.level);
    const std::string toc = writer.toc_json(sha256_of(split));
    const std::string ctoc = compress_all(toc, s->cfg.level);
    const uint64_t toc_offset = fw.offset() + 8;
    const uint64_t split_offset = toc_offset + ctoc.size() + 8;
    std::string footer;
    put_u64(footer, toc_offset);
    put_u64(footer, ctoc.size());
    put_u64(footer, toc.size());
    put_u64(footer, 1);
    put_u64(footer, split_offset);
    put_u64(footer, split.size());
    put_u64(footer, writer.tar_split().size());
    footer += "GNUlInUx";
    for (const std::string& frame : {skippable(ctoc), skippable(split), skippable(footer)}) {
      fw.raw(reinterpret_cast<const uint8_t*>(frame.data()), frame.size());
    }
    flush();

    ChunkedResult& r = done->result;
    r.diff_id = tar_sha.digest();
    r.digest = out_sha.digest();
    r.size = fw.offset();
    r.uncompressed_size = tar_size;
    r.entries = reader.entries();
    r.toc_digest = sha256_of(ctoc);
    r.manifest_position = std::to_string(toc_offset) + ":" + std::to_string(ctoc.size()) + ":" + std::to_string(toc.size()) + ":1";
    r.tarsplit_position = std::to_string(split_offset) + ":" + std::to_string(split.size()) + ":" + std::to_string(writer.tar_split().size());
  } catch (...) {
    Failure f = current_failure();
    bool aborted;
    {
      std::lock_guard<std::mutex> lock(s->mu);
      aborted = s->aborted;
    }
    s->halt();
    if (aborted) f = Failure{"ABORT_ERR", "the operation was aborted", "", "", 0};
    done->kind = Event::Error;
    done->failure = std::move(f);
  }
  post_last(s->tsfn, done);
}

void fill(Napi::Env env, Event& event, Napi::Object& js) {
  switch (event.kind) {
    case Event::Drain:
      js.Set("type", "drain");
      break;
    case Event::Data:
      js.Set("type", "data");
      js.Set("chunk", Napi::Buffer<uint8_t>::Copy(env, event.data.data(), event.data.size()));
      break;
    case Event::Done: {
      const ChunkedResult& r = event.result;
      Napi::Object o = layer_result_to_js(env, r);
      o.Set("tocDigest", r.toc_digest);
      o.Set("manifestPosition", r.manifest_position);
      o.Set("tarSplitPosition", r.tarsplit_position);
      js.Set("type", "done");
      js.Set("result", o);
      break;
    }
    case Event::Error:
      set_error_event(env, js, *event.failure);
      break;
  }
}

class ChunkedCompressJob : public Napi::ObjectWrap<ChunkedCompressJob> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ChunkedCompressJob",
                       {InstanceMethod("push", &ChunkedCompressJob::Push), InstanceMethod("end", &ChunkedCompressJob::End),
                        InstanceMethod("ack", &ChunkedCompressJob::Ack), InstanceMethod("abort", &ChunkedCompressJob::Abort)});
  }

  ChunkedCompressJob(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ChunkedCompressJob>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(env, "ChunkedCompressJob(options, onEvent)");
    }
    state_ = std::make_shared<ChunkedState>();
    ChunkedConfig& c = state_->cfg;
    Napi::Object o = info[0].As<Napi::Object>();
    c.level = static_cast<int>(number_option(o, "level", 3));
    if (c.level < 1 || c.level > 19) throw Napi::RangeError::New(env, "level must be between 1 and 19");
    c.max_entries = static_cast<uint64_t>(number_option(o, "maxEntries", 1e9));
    state_->tsfn = EventFn::New(env, info[1].As<Napi::Function>(), "carrier-compress-chunked", 0, 1);
    std::thread(worker_thread, state_).detach();
  }

 private:
  Napi::Value Push(const Napi::CallbackInfo& info) { return state_->push(info); }
  void End(const Napi::CallbackInfo&) { state_->end(); }
  void Ack(const Napi::CallbackInfo& info) { state_->ack(info); }
  void Abort(const Napi::CallbackInfo&) {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->aborted = true;
    state_->stop = true;
    state_->cv.notify_all();
  }

  std::shared_ptr<ChunkedState> state_;
};

}  // namespace

// hashFiles (file_hash.cc): the store side of a partial pull, registered with the zstd:chunked writer.
void init_file_hash(Napi::Env env, Napi::Object exports);

void init_chunked_job(Napi::Env env, Napi::Object exports) {
  exports.Set("ChunkedCompressJob", ChunkedCompressJob::Define(env));
  init_file_hash(env, exports);
}

}  // namespace carrier
