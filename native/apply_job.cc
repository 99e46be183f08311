// applyLayer's native half. Three threads per layer, so decompression, parsing and file writes overlap:
//   decode thread:  compressed bytes (file reads, or chunks pushed from JS) [-> tee file] -> SHA-256 -> gzip/zstd/none
//                   -> blocks
//   extract thread: blocks -> SHA-256 of the tar -> tar parser -> safe creation of every entry (+ tar-split)
//   write thread:   content and metadata of small files the extract thread created (see write_pool.h)
// The JS thread only queues incoming chunks, without copying them (see Borrowed), and receives 'drain' and 'done'
// events.
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include "apply_job.h"
#include "block_queue.h"
#include "decoder.h"
#include "extractor.h"
#include "fs_safe.h"
#include "napi_util.h"
#include "partial_rebuild.h"
#include "sha256.h"
#include "stream_job.h"
#include "tar_reader.h"
#include "tar_split.h"

namespace carrier {

namespace {

constexpr size_t kBlockSize = 1 << 20;
constexpr size_t kBlockCount = 4;
constexpr size_t kReadSize = 1 << 20;
constexpr uint64_t kTeeWritebackBytes = 8 << 20;

struct ApplyConfig {
  std::string dir;
  std::string source_path;  // empty: bytes are pushed from JS
  Compression compression = Compression::Auto;
  ExtractOptions extract;
  std::string tar_split;
  std::string expected_digest, expected_diff_id;
  int64_t expected_size = -1;
  uint64_t max_uncompressed = 0;
  uint64_t max_entries = 0;
  int tee_fd = -1;  // also receives every compressed byte, in order (a pull's blob cache file); not owned
  // A partial pull: the tar is rebuilt from this plan (partial_rebuild.h) instead of decoded, and what JS pushes is the
  // remote contents' zstd frames.
  std::shared_ptr<RebuildPlan> rebuild;
};

struct ApplyResult {
  std::string compressed_digest, diff_digest;
  uint64_t compressed_size = 0, diff_size = 0, entries = 0;
  Compression compression = Compression::None;
  std::set<uint32_t> uids, gids;
  std::vector<SkippedEntry> skipped;
};

struct ApplyState;

struct Event {
  enum Kind { Drain, Done } kind;
  std::optional<Failure> failure;
  ApplyResult result;
  std::shared_ptr<ApplyState> state;  // Done: whose borrowed chunks the JS thread lets go of
};

void fill(Napi::Env env, Event& event, Napi::Object& js);
using EventFn = Napi::TypedThreadSafeFunction<std::nullptr_t, Event, deliver_event<Event, fill>>;

// One push from JS: the bytes of the chunks it named, read in place. The JS values stay referenced (refs, touched on
// the JS thread only) until the decode thread has taken the push (done_seq) or has ended, so they cannot be collected
// under it; a body is thousands of chunks, and copying each on the JS thread cost it more than everything else the
// job asks of it. Chunks a stream has pushed are not changed afterwards, as Node's streams require.
struct Borrowed {
  std::vector<std::pair<const uint8_t*, size_t>> parts;
  size_t bytes = 0;
  uint64_t seq = 0;
  size_t size() const { return bytes; }  // what the push added to the queued input bytes (StreamState::next_queued)
};

// The input queue carries compressed bytes from JS to the decode thread (no credits: nothing streams back); stop is
// atomic as the decode and extract threads check it between blocks without the lock. The first failure of either
// thread is kept in the block queue's failure slot.
struct ApplyState : StreamState<std::atomic<bool>> {
  ApplyConfig cfg;
  EventFn tsfn;
  BlockQueue blocks{kBlockCount, kBlockSize};

  // JS -> decode thread, under mu (input_bytes, input_ended, want_drain are StreamState's)
  std::deque<Borrowed> borrowed;
  // the last push the decode thread is done with
  std::atomic<uint64_t> done_seq{0};
  // JS thread only: the references that keep pushed chunks alive, by push
  std::deque<std::pair<uint64_t, napi_ref>> refs;
  uint64_t next_seq = 0;
  // set once the decode thread reads no more input (or never started): every reference may go
  std::atomic<bool> input_closed{false};

  std::atomic<bool> aborted{false};

  // written by the decode thread, read by the extract thread after join
  std::string compressed_digest;
  uint64_t compressed_size = 0;
  Compression compression = Compression::None;

  void record(Failure f) {
    blocks.cancel(std::move(f));
    halt();
  }
  void halt() {
    stop = true;
    blocks.cancel();
    StreamState::halt();
  }
  void check_abort() {
    if (aborted) fail_aborted();
    if (stop) throw Fail(Failure{"CARRIER_STOPPED", "stopped", "", "", 0});
  }

  // JS thread: lets go of the chunks of the pushes the decode thread is done with (all of them once it has ended).
  void release(napi_env env) {
    bool all = input_closed.load(std::memory_order_acquire);
    uint64_t done = done_seq.load(std::memory_order_acquire);
    while (!refs.empty() && (all || refs.front().first <= done)) {
      napi_delete_reference(env, refs.front().second);
      refs.pop_front();
    }
  }

  // JS thread, push(Uint8Array | Uint8Array[]): queues the chunks' bytes without copying them; false past the
  // high-water mark, and a 'drain' follows.
  Napi::Value push_borrowed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !(info[0].IsTypedArray() || info[0].IsArray())) {
      throw Napi::TypeError::New(env, "push(Uint8Array | Uint8Array[])");
    }
    release(env);
    Borrowed b;
    auto add = [&](Napi::Value v) {
      if (!v.IsTypedArray()) throw Napi::TypeError::New(env, "push(Uint8Array | Uint8Array[])");
      Napi::TypedArray t = v.As<Napi::TypedArray>();
      size_t n = t.ByteLength();
      if (n == 0) return;
      const uint8_t* base = static_cast<const uint8_t*>(t.ArrayBuffer().Data());
      b.parts.emplace_back(base + t.ByteOffset(), n);
      b.bytes += n;
    };
    if (info[0].IsTypedArray()) {
      add(info[0]);
    } else {
      Napi::Array list = info[0].As<Napi::Array>();
      for (uint32_t i = 0, n = list.Length(); i < n; i++) add(list.Get(i));
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stop || input_ended) return Napi::Boolean::New(env, true);
      if (b.bytes) {
        napi_ref ref;
        NAPI_THROW_IF_FAILED(env, napi_create_reference(env, info[0], 1, &ref), Napi::Value());
        b.seq = ++next_seq;
        refs.emplace_back(b.seq, ref);
        input_bytes += b.bytes;
        borrowed.push_back(std::move(b));
        cv.notify_all();
      }
      bool room = input_bytes < kInputHighWater;
      if (!room) want_drain = true;
      return Napi::Boolean::New(env, room);
    }
  }

  // Decode thread: the next push, false once the input has ended; as StreamState::next_input.
  template <class Stopped, class Drain>
  bool next_borrowed(Borrowed& out, Stopped stopped, Drain drain) {
    return next_queued(borrowed, out, std::move(stopped), std::move(drain));
  }
};

// Held by the decode and rebuild threads: once either returns, however it returns, it reads no more input, and the JS
// thread may let go of every borrowed chunk.
struct InputClosed {
  ApplyState& s;
  ~InputClosed() { s.input_closed.store(true, std::memory_order_release); }
};

// Receives decompressed bytes straight into queue blocks.
class BlockSink : public DecodeSink {
 public:
  BlockSink(ApplyState& s) : s_(s) {}
  uint8_t* space(size_t* avail) override {
    if (!cur_.data && !s_.blocks.acquire(cur_)) {
      s_.check_abort();
      fail("CARRIER_STOPPED", "stopped");
    }
    *avail = cur_.cap - cur_.len;
    return cur_.data.get() + cur_.len;
  }
  void commit(size_t n) override {
    total_ += n;
    if (total_ > s_.cfg.max_uncompressed) {
      fail("CARRIER_LIMIT_EXCEEDED", "the layer expands past the limit of " + std::to_string(s_.cfg.max_uncompressed) +
                                         " uncompressed bytes (a decompression bomb?)");
    }
    cur_.len += n;
    if (cur_.len == cur_.cap) flush();
  }
  uint64_t total() const { return total_; }
  void flush() {
    if (cur_.data && cur_.len) s_.blocks.push(std::move(cur_));
    cur_ = Block{};
  }

 private:
  ApplyState& s_;
  Block cur_;
  uint64_t total_ = 0;
};

void decode_thread(std::shared_ptr<ApplyState> s) {
  pthread_setname_np(pthread_self(), "carrier-decode");
  InputClosed closed{*s};
  try {
    Decoder decoder(s->cfg.compression);
    Sha256 sha;
    BlockSink sink(*s);
    uint64_t size = 0;
    uint64_t tee_kicked = 0;  // the tee file's bytes whose writeback has been started
    auto take = [&](const uint8_t* p, size_t n) {
      if (s->cfg.tee_fd >= 0) {
        write_all(s->cfg.tee_fd, p, n, "", "copying the blob to the blob cache");
        // Start the cache copy's writeback as it grows (no wait): the syncfs that makes the layer durable would
        // otherwise find the whole blob dirty and write it too, though the cache needs no durability (a blob is
        // verified on every use). Best effort: a failure only leaves the pages to the flusher.
        if (size + n - tee_kicked >= kTeeWritebackBytes) {
          sync_file_range(s->cfg.tee_fd, static_cast<off_t>(tee_kicked), static_cast<off_t>(size + n - tee_kicked), SYNC_FILE_RANGE_WRITE);
          tee_kicked = size + n;
        }
      }
      // An uncompressed blob's digest is its tar's digest, which the extract thread computes anyway.
      if (decoder.kind() != Compression::None) sha.update(p, n);
      size += n;
      if (s->cfg.expected_size >= 0 && size > static_cast<uint64_t>(s->cfg.expected_size)) {
        fail("CARRIER_DIGEST_MISMATCH", "the blob is longer than its expected size of " +
                                            std::to_string(s->cfg.expected_size) + " bytes");
      }
      decoder.feed(p, n, sink);
    };
    if (!s->cfg.source_path.empty()) {
      Fd fd(open(s->cfg.source_path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) fail_errno(errno, "open", s->cfg.source_path, "opening the layer blob");
      posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
      std::unique_ptr<uint8_t[]> buf(new uint8_t[kReadSize]);
      for (;;) {
        s->check_abort();
        ssize_t n = read(fd.get(), buf.get(), kReadSize);
        if (n < 0) {
          if (errno == EINTR) continue;
          fail_errno(errno, "read", s->cfg.source_path, "reading the layer blob");
        }
        if (n == 0) break;
        take(buf.get(), static_cast<size_t>(n));
      }
    } else {
      auto stopped = [&] { s->check_abort(); };
      auto drain = [&] { s->tsfn.NonBlockingCall(new Event{Event::Drain, std::nullopt, {}, {}}); };
      Borrowed b;
      while (s->next_borrowed(b, stopped, drain)) {
        for (const auto& [p, n] : b.parts) take(p, n);
        s->done_seq.store(b.seq, std::memory_order_release);
      }
    }
    decoder.finish(sink);
    sink.flush();
    if (s->cfg.expected_size >= 0 && size != static_cast<uint64_t>(s->cfg.expected_size)) {
      fail("CARRIER_DIGEST_MISMATCH", "the blob is " + std::to_string(size) + " bytes, expected " +
                                          std::to_string(s->cfg.expected_size));
    }
    if (decoder.kind() != Compression::None) s->compressed_digest = sha.digest();
    s->compressed_size = size;
    s->compression = decoder.kind();
    s->blocks.close();
  } catch (...) {
    s->record(current_failure());
  }
}

// In place of decode_thread for a partial pull: the tar rebuilt from its plan, the pushed frames decoded on demand.
void rebuild_thread(std::shared_ptr<ApplyState> s) {
  pthread_setname_np(pthread_self(), "carrier-rebuild");
  InputClosed closed{*s};
  try {
    BlockSink sink(*s);
    std::function<void()> stopped = [&] { s->check_abort(); };
    auto drain = [&] { s->tsfn.NonBlockingCall(new Event{Event::Drain, std::nullopt, {}, {}}); };
    // The fetched frames are few: each push is copied out at once and let go of.
    RemoteInput remote = [&](std::vector<uint8_t>& chunk) {
      Borrowed b;
      if (!s->next_borrowed(b, stopped, drain)) return false;
      chunk.clear();
      chunk.reserve(b.bytes);
      for (const auto& [p, n] : b.parts) chunk.insert(chunk.end(), p, p + n);
      s->done_seq.store(b.seq, std::memory_order_release);
      return true;
    };
    rebuild_tar(*s->cfg.rebuild, remote, sink, stopped);
    sink.flush();
    s->compressed_size = sink.total();
    s->compression = Compression::None;
    s->blocks.close();
  } catch (...) {
    s->record(current_failure());
  }
}

void require_empty(int rootfd, const std::string& dir) {
  int fd = dup(rootfd);
  DIR* d = fd >= 0 ? fdopendir(fd) : nullptr;
  if (!d) {
    if (fd >= 0) close(fd);
    fail_errno(errno, "fdopendir", dir);
  }
  bool empty = true;
  while (struct dirent* ent = readdir(d)) {
    if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  closedir(d);
  if (!empty) fail("CARRIER_INVALID_ARGUMENT", "the layer directory '" + dir + "' is not empty", dir);
}

void extract_thread(std::shared_ptr<ApplyState> s) {
  pthread_setname_np(pthread_self(), "carrier-extract");
  Event* done = new Event{Event::Done, std::nullopt, {}, {}};
  std::thread decoder;
  Fd root;
  bool may_clean = false;
  std::unique_ptr<TarSplitWriter> split;
  try {
    root = open_root(s->cfg.dir);
    require_empty(root.get(), s->cfg.dir);
    may_clean = true;
    if (!s->cfg.tar_split.empty()) split.reset(new TarSplitWriter(s->cfg.tar_split));
    Extractor extractor(root.get(), s->cfg.extract, split.get());
    TarReader reader(extractor, s->cfg.max_entries);
    Sha256 sha;
    uint64_t size = 0;
    decoder = std::thread(s->cfg.rebuild ? rebuild_thread : decode_thread, s);
    Block b;
    while (s->blocks.take(b)) {
      sha.update(b.data.get(), b.len);
      size += b.len;
      reader.feed(b.data.get(), b.len);
      s->blocks.release(std::move(b));
      s->check_abort();
    }
    decoder.join();
    if (auto f = s->blocks.failure()) throw Fail(*f);
    s->check_abort();
    reader.finish();
    extractor.finish();
    std::string diff_digest = sha.digest();
    if (s->compression == Compression::None) s->compressed_digest = diff_digest;
    if (!s->cfg.expected_digest.empty() && s->compressed_digest != s->cfg.expected_digest) {
      fail("CARRIER_DIGEST_MISMATCH",
           "the blob's digest is " + s->compressed_digest + ", expected " + s->cfg.expected_digest);
    }
    if (!s->cfg.expected_diff_id.empty() && diff_digest != s->cfg.expected_diff_id) {
      fail("CARRIER_DIGEST_MISMATCH",
           "the image's diff_id does not match its layer: the layer's tar hashes to " + diff_digest +
               ", the config's diff_id is " + s->cfg.expected_diff_id +
               " (a tool rewrote the layer without updating the config, as skopeo 1.9 and podman 4.3 do writing "
               "zstd:chunked from a tar with record padding); the layer is refused");
    }
    if (split) split->close();
    ApplyResult& r = done->result;
    r.compressed_digest = s->compressed_digest;
    r.compressed_size = s->compressed_size;
    r.compression = s->compression;
    r.diff_digest = diff_digest;
    r.diff_size = size;
    r.entries = reader.entries();
    r.uids = extractor.uids();
    r.gids = extractor.gids();
    r.skipped = extractor.skipped();
  } catch (...) {
    Failure f = current_failure();
    // A thread that stopped because the other failed reports the other's failure (recorded before the stop); an
    // abort beats everything.
    std::optional<Failure> first = s->blocks.failure();
    if (s->aborted) f = Failure{"ABORT_ERR", "the operation was aborted", "", "", 0};
    else if (f.code == "CARRIER_STOPPED" && first) f = *first;
    else s->blocks.cancel(f);
    s->halt();
    if (decoder.joinable()) decoder.join();
    if (split) split->discard();
    if (may_clean) {
      try {
        empty_directory(root.get(), s->cfg.dir);
      } catch (const std::exception& cleanup) {
        f.message += " (and emptying the layer directory failed: " + std::string(cleanup.what()) + ")";
      }
    }
    done->failure = std::move(f);
  }
  s->input_closed.store(true, std::memory_order_release);  // the decode thread has been joined, or never ran
  done->state = s;
  post_last(s->tsfn, done);
}

Napi::Value result_to_js(Napi::Env env, const ApplyResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("compressedDigest", r.compressed_digest);
  o.Set("compressedSize", Napi::Number::New(env, static_cast<double>(r.compressed_size)));
  o.Set("diffDigest", r.diff_digest);
  o.Set("diffSize", Napi::Number::New(env, static_cast<double>(r.diff_size)));
  o.Set("compression", compression_name(r.compression));
  Napi::Array uids = Napi::Array::New(env, r.uids.size());
  uint32_t i = 0;
  for (uint32_t id : r.uids) uids.Set(i++, Napi::Number::New(env, id));
  Napi::Array gids = Napi::Array::New(env, r.gids.size());
  i = 0;
  for (uint32_t id : r.gids) gids.Set(i++, Napi::Number::New(env, id));
  o.Set("uidset", uids);
  o.Set("gidset", gids);
  o.Set("entries", Napi::Number::New(env, static_cast<double>(r.entries)));
  Napi::Array skipped = Napi::Array::New(env, r.skipped.size());
  i = 0;
  for (const SkippedEntry& sk : r.skipped) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("path", sk.path);
    e.Set("reason", sk.reason);
    skipped.Set(i++, e);
  }
  o.Set("skipped", skipped);
  return o;
}

void fill(Napi::Env env, Event& event, Napi::Object& js) {
  if (event.state) event.state->release(env);
  if (event.kind == Event::Drain) {
    js.Set("type", "drain");
  } else if (event.failure) {
    set_error_event(env, js, *event.failure);
  } else {
    js.Set("type", "done");
    js.Set("result", result_to_js(env, event.result));
  }
}

// { layer, segments: Uint8Array, steps: Float64Array of (file or -1, bytes) pairs, names, paths and digests: strings
// joined by NUL (a path '' for a remote file), sizes: Float64Array, claimed: Uint8Array } (src/layer/apply.ts).
std::shared_ptr<RebuildPlan> parse_rebuild(Napi::Env env, const Napi::Object& o) {
  auto bad = [&](const char* what) { return Napi::TypeError::New(env, std::string("ApplyJob: rebuild.") + what); };
  auto plan = std::make_shared<RebuildPlan>();
  plan->layer = string_option(o, "layer");
  Napi::Value seg = o.Get("segments"), steps = o.Get("steps"), sizes = o.Get("sizes"), claimed = o.Get("claimed");
  if (!seg.IsTypedArray() || seg.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) throw bad("segments must be a Uint8Array");
  if (!steps.IsTypedArray() || steps.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) throw bad("steps must be a Float64Array");
  if (!sizes.IsTypedArray() || sizes.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) throw bad("sizes must be a Float64Array");
  if (!claimed.IsTypedArray() || claimed.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) throw bad("claimed must be a Uint8Array");
  Napi::Uint8Array sg = seg.As<Napi::Uint8Array>();
  plan->segments.assign(sg.Data(), sg.Data() + sg.ByteLength());
  auto split = [&](const char* key) {
    std::vector<std::string> out;
    Napi::Value v = o.Get(key);
    if (!v.IsString()) throw bad("names, paths and digests must be strings");
    std::string all = v.As<Napi::String>().Utf8Value();
    size_t at = 0;
    for (;;) {
      size_t end = all.find('\0', at);
      out.push_back(all.substr(at, end == std::string::npos ? std::string::npos : end - at));
      if (end == std::string::npos) break;
      at = end + 1;
    }
    return out;
  };
  Napi::Float64Array sz = sizes.As<Napi::Float64Array>();
  Napi::Uint8Array cl = claimed.As<Napi::Uint8Array>();
  size_t count = sz.ElementLength();
  std::vector<std::string> names = count ? split("names") : std::vector<std::string>();
  std::vector<std::string> paths = count ? split("paths") : std::vector<std::string>();
  std::vector<std::string> digests = count ? split("digests") : std::vector<std::string>();
  if (names.size() != count || paths.size() != count || digests.size() != count || cl.ElementLength() != count) throw bad("files differ in count");
  plan->files.resize(count);
  for (size_t i = 0; i < count; ++i) {
    RebuildFile& f = plan->files[i];
    f.name = std::move(names[i]);
    f.path = std::move(paths[i]);
    f.digest = std::move(digests[i]);
    f.size = static_cast<int64_t>(sz[i]);
    f.claimed = cl[i] != 0;
    if (f.size < 0) throw bad("sizes must not be negative");
  }
  Napi::Float64Array st = steps.As<Napi::Float64Array>();
  if (st.ElementLength() % 2) throw bad("steps must come in pairs");
  uint64_t seg_total = 0;
  for (size_t i = 0; i < st.ElementLength(); i += 2) {
    int64_t file = static_cast<int64_t>(st[i]);
    uint64_t bytes = static_cast<uint64_t>(st[i + 1]);
    if (file >= static_cast<int64_t>(count)) throw bad("a step names no file");
    if (file < 0) seg_total += bytes;
    plan->steps.push_back({file < 0 ? -1 : file, bytes});
  }
  if (seg_total != plan->segments.size()) throw bad("segment steps must cover the segments");
  return plan;
}

class ApplyJob : public Napi::ObjectWrap<ApplyJob> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ApplyJob",
                       {InstanceMethod("push", &ApplyJob::Push), InstanceMethod("end", &ApplyJob::End),
                        InstanceMethod("abort", &ApplyJob::Abort)});
  }

  ApplyJob(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ApplyJob>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[0].IsString() || !info[2].IsObject() || !info[3].IsFunction()) {
      throw Napi::TypeError::New(env, "ApplyJob(dir, sourcePath|null, options, onEvent)");
    }
    state_ = std::make_shared<ApplyState>();
    ApplyConfig& c = state_->cfg;
    c.dir = info[0].As<Napi::String>().Utf8Value();
    if (info[1].IsString()) c.source_path = info[1].As<Napi::String>().Utf8Value();
    Napi::Object o = info[2].As<Napi::Object>();
    c.compression = parse_compression(string_option(o, "compression", "auto"));
    c.extract.overlay_whiteouts = string_option(o, "whiteouts", "overlay") != "aufs";
    c.extract.rootless = o.Get("rootless").ToBoolean().Value();
    c.tar_split = string_option(o, "tarSplit");
    c.expected_digest = string_option(o, "expectedDigest");
    c.expected_diff_id = string_option(o, "expectedDiffID");
    c.expected_size = static_cast<int64_t>(number_option(o, "expectedSize", -1));
    c.max_uncompressed = static_cast<uint64_t>(number_option(o, "maxUncompressedBytes", 64.0 * (1ull << 30)));
    c.max_entries = static_cast<uint64_t>(number_option(o, "maxEntries", 4e6));
    c.tee_fd = static_cast<int>(number_option(o, "teeFd", -1));
    Napi::Value clones = o.Get("clones");
    if (clones.IsArray()) {
      Napi::Array list = clones.As<Napi::Array>();
      for (uint32_t i = 0; i + 1 < list.Length(); i += 2) {
        c.extract.clones[list.Get(i).ToString().Utf8Value()] = list.Get(i + 1).ToString().Utf8Value();
      }
    }
    c.extract.hardlink_clones = o.Get("hardlinkClones").ToBoolean().Value();
    c.extract.writeback = o.Get("writeback").ToBoolean().Value();
    if (o.Get("rebuild").IsObject()) c.rebuild = parse_rebuild(env, o.Get("rebuild").As<Napi::Object>());
    c.extract.budget = budget_of(env, o.Get("budget"));
    state_->tsfn = EventFn::New(env, info[3].As<Napi::Function>(), "carrier-apply-layer", 0, 1);
    std::thread(extract_thread, state_).detach();
  }

 private:
  Napi::Value Push(const Napi::CallbackInfo& info) { return state_->push_borrowed(info); }
  void End(const Napi::CallbackInfo&) { state_->end(); }

  void Abort(const Napi::CallbackInfo&) {
    state_->aborted = true;
    state_->halt();
  }

  std::shared_ptr<ApplyState> state_;
};

}  // namespace

void init_apply_job(Napi::Env env, Napi::Object exports) {
  exports.Set("ApplyJob", ApplyJob::Define(env));
  // Decided here, on the main thread, so CARRIER_NO_OPENAT2 is read once at load and never from a worker.
  path_resolver();
  exports.Set("pathResolver", Napi::Function::New(
                                  env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                                    return Napi::String::New(info.Env(), path_resolver());
                                  },
                                  "pathResolver"));
}

}  // namespace carrier
