// compressLayer's native half: a layer's uncompressed tar in, its compressed stream out, in one pass.
//   JS thread:       copies incoming tar chunks into a bounded queue; receives 'drain', 'data', 'done' events
//                    (or, given sourceTarSplit and sourceDir, pushes nothing: the layerout thread rebuilds the tar
//                    itself from the store's tar-split and layer directory, without a trip through JS)
//   carrier-layerout: SHA-256 of the tar (the diff_id) -> tar parser (refuses a corrupt tar; records the tar-split,
//                    CRC-64 of every file as containers/storage does) -> the parallel compressor
//   compressor:      worker threads compress blocks; its output thread hashes the compressed bytes (the digest) and
//                    hands them to JS in order, at most kCredits chunks unacknowledged
// Memory stays flat whatever the layer's size: every queue between the threads is bounded.
#include <pthread.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "apply_job.h"
#include "assemble.h"
#include "crc64.h"
#include "extractor.h"
#include "napi_util.h"
#include "parallel_compressor.h"
#include "sha256.h"
#include "stream_job.h"
#include "tar_reader.h"
#include "tar_split.h"

namespace carrier {

namespace {

struct CompressConfig {
  Compression compression = Compression::Gzip;
  int level = 6;
  int threads = 1;
  int isal_level = 0;
  std::string tar_split;
  uint64_t max_entries = 0;
  // When set, the tar is rebuilt here from this tar-split and diff directory instead of pushed from JS.
  std::string source_split, source_dir;
};

struct CompressResult {
  std::string diff_id, digest;
  uint64_t size = 0, uncompressed_size = 0, entries = 0;
};

struct Event {
  enum Kind { Drain, Data, Done, Error } kind;
  std::vector<uint8_t> data;
  std::optional<Failure> failure;
  CompressResult result;
  uint64_t tar_bytes = 0;  // Data: the tar's bytes taken in so far
};

void fill(Napi::Env env, Event& event, Napi::Object& js);
using EventFn = Napi::TypedThreadSafeFunction<std::nullptr_t, Event, deliver_event<Event, fill>>;

// The input queue carries the tar from JS to the layerout thread, the credits bound the compressed chunks in flight
// from the compressor's output thread to JS.
struct CompressState : StreamState<> {
  CompressConfig cfg;
  EventFn tsfn;
  bool aborted = false;
  std::atomic<uint64_t> tar_bytes{0};
  std::optional<Failure> source_failure;  // the tar's rebuild failed (source mode), under mu

  [[noreturn]] void stopped() {
    std::lock_guard<std::mutex> lock(mu);
    if (aborted) fail_aborted();
    fail("CARRIER_STOPPED", "stopped");
  }
};

// Records the tar-split of the stream it parses exactly as the extractor does when it applies the same tar (overlay
// whiteouts): raw bytes as segments; each entry's name, with the size and CRC-64 of its content when a regular file
// will hold that content, else the content itself as raw bytes (a whiteout's, a file naming the root).
class SplitRecorder : public TarHandler {
 public:
  explicit SplitRecorder(TarSplitWriter* split) : split_(split) {}
  void raw(const uint8_t* data, size_t n) override {
    if (split_) split_->raw(data, n);
  }
  void entry_begin(TarEntry& e) override {
    cur_ = &e;
    if (!split_) return;
    split_->flush_segment();
    crc_.reset();
    content_in_split_ = e.size > 0 && !kept_in_file(e);
  }
  void entry_data(const uint8_t* data, size_t n) override {
    if (!split_) return;
    if (content_in_split_) split_->raw(data, n);
    else crc_.update(data, n);
  }
  void entry_end() override {
    if (split_) {
      uint8_t crc[8];
      crc_.big_endian(crc);
      if (content_in_split_) split_->file(cur_->name, 0, nullptr);
      else split_->file(cur_->name, cur_->size, cur_->size ? crc : nullptr);
    }
    cur_ = nullptr;
  }

 private:
  static bool kept_in_file(const TarEntry& e) {
    if (e.type != '0') return false;
    std::vector<std::string> parts = clean_path(e.name, "entry path");
    return !parts.empty() && parts.back().compare(0, 4, ".wh.") != 0;
  }

  TarSplitWriter* split_;
  Crc64 crc_;
  TarEntry* cur_ = nullptr;
  bool content_in_split_ = false;
};

// Rebuilds the tar from the tar-split into the input queue, waiting while it holds kInputHighWater bytes; records its
// failure (unless the job was stopped first) and stops the job with it.
void produce_tar(std::shared_ptr<CompressState> s) {
  pthread_setname_np(pthread_self(), "carrier-assemble");
  try {
    TarSink sink = [&](std::vector<uint8_t>& chunk) {
      std::unique_lock<std::mutex> lock(s->mu);
      if (s->input_bytes >= kInputHighWater) {
        s->want_drain = true;
        s->cv.wait(lock, [&] { return s->stop || !s->want_drain; });
      }
      if (s->stop) fail("CARRIER_STOPPED", "stopped");
      s->input_bytes += chunk.size();
      s->input.push_back(std::move(chunk));
      s->cv.notify_all();
    };
    assemble_tar(s->cfg.source_split, s->cfg.source_dir, sink);
    std::lock_guard<std::mutex> lock(s->mu);
    s->input_ended = true;
    s->cv.notify_all();
  } catch (...) {
    Failure f = current_failure();
    std::lock_guard<std::mutex> lock(s->mu);
    if (!s->stop) s->source_failure = std::move(f);
    s->stop = true;
    s->cv.notify_all();
  }
}

void layerout_thread(std::shared_ptr<CompressState> s) {
  pthread_setname_np(pthread_self(), "carrier-layerout");
  Event* done = new Event{Event::Done, {}, std::nullopt, {}};
  std::thread producer;
  std::unique_ptr<TarSplitWriter> split;
  std::unique_ptr<ParallelCompressor> compressor;
  Sha256 out_sha;
  uint64_t out_size = 0;
  try {
    if (!s->cfg.tar_split.empty()) split.reset(new TarSplitWriter(s->cfg.tar_split));
    SplitRecorder recorder(split.get());
    TarReader reader(recorder, s->cfg.max_entries);
    Sha256 tar_sha;
    uint64_t tar_size = 0;
    auto stopped = [&] { s->stopped(); };
    // Runs on the compressor's output thread: hash, count, and hand the bytes to JS once it has credit.
    auto emit = [&](const uint8_t* p, size_t n) {
      out_sha.update(p, n);
      out_size += n;
      s->take_credit(stopped);
      Event* e = new Event{Event::Data, std::vector<uint8_t>(p, p + n), std::nullopt, {}};
      e->tar_bytes = s->tar_bytes.load(std::memory_order_relaxed);
      s->tsfn.BlockingCall(e);
    };
    compressor.reset(new ParallelCompressor(s->cfg.compression, s->cfg.level, s->cfg.threads, emit, 0, s->cfg.isal_level));
    auto take = [&](const std::vector<uint8_t>& chunk) {
      tar_sha.update(chunk.data(), chunk.size());
      tar_size += chunk.size();
      reader.feed(chunk.data(), chunk.size());  // before compressing: a corrupt tar stops here
      compressor->write(chunk.data(), chunk.size());
      s->tar_bytes.store(tar_size, std::memory_order_relaxed);
    };
    std::function<void()> drain = [&] { s->tsfn.NonBlockingCall(new Event{Event::Drain, {}, std::nullopt, {}}); };
    if (!s->cfg.source_split.empty()) {
      // The tar is rebuilt on a thread of its own into the input queue, as JS would push it: reading the layer's
      // files and checking their CRC-64s goes on beside the hashing, parsing and block filling here.
      producer = std::thread(produce_tar, s);
      drain = [&] { s->cv.notify_all(); };
    }
    std::vector<uint8_t> chunk;
    while (s->next_input(chunk, stopped, drain)) take(chunk);
    if (producer.joinable()) producer.join();
    reader.finish();
    compressor->finish();
    compressor.reset();
    if (split) split->close();
    CompressResult& r = done->result;
    r.diff_id = tar_sha.digest();
    r.digest = out_sha.digest();
    r.size = out_size;
    r.uncompressed_size = tar_size;
    r.entries = reader.entries();
  } catch (...) {
    Failure f = current_failure();
    s->halt();
    if (producer.joinable()) producer.join();
    bool aborted;
    {
      std::lock_guard<std::mutex> lock(s->mu);
      aborted = s->aborted;
      if (s->source_failure) f = *s->source_failure;
    }
    compressor.reset();  // joins its threads, which the halt has woken
    if (aborted) f = Failure{"ABORT_ERR", "the operation was aborted", "", "", 0};
    if (split) split->discard();
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
      js.Set("tarBytes", Napi::Number::New(env, static_cast<double>(event.tar_bytes)));
      break;
    case Event::Done: {
      const CompressResult& r = event.result;
      Napi::Object o = layer_result_to_js(env, r);
      js.Set("type", "done");
      js.Set("result", o);
      break;
    }
    case Event::Error:
      set_error_event(env, js, *event.failure);
      break;
  }
}

class CompressJob : public Napi::ObjectWrap<CompressJob> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CompressJob",
                       {InstanceMethod("push", &CompressJob::Push), InstanceMethod("end", &CompressJob::End),
                        InstanceMethod("ack", &CompressJob::Ack), InstanceMethod("abort", &CompressJob::Abort)});
  }

  CompressJob(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CompressJob>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(env, "CompressJob(options, onEvent)");
    }
    state_ = std::make_shared<CompressState>();
    CompressConfig& c = state_->cfg;
    Napi::Object o = info[0].As<Napi::Object>();
    c.compression = parse_compression(string_option(o, "compression", "gzip"));
    if (c.compression == Compression::Auto) throw Napi::TypeError::New(env, "compression must be gzip, zstd or none");
    c.level = static_cast<int>(number_option(o, "level", c.compression == Compression::Zstd ? 3 : 6));
    unsigned cores = std::thread::hardware_concurrency();
    c.threads = static_cast<int>(number_option(o, "threads", cores ? cores : 1));
    if (c.threads < 1 || c.threads > 256) throw Napi::RangeError::New(env, "threads must be between 1 and 256");
    c.isal_level = static_cast<int>(number_option(o, "isalLevel", 0));
    c.tar_split = string_option(o, "tarSplit");
    c.max_entries = static_cast<uint64_t>(number_option(o, "maxEntries", 1e9));
    c.source_split = string_option(o, "sourceTarSplit");
    c.source_dir = string_option(o, "sourceDir");
    if (c.source_split.empty() != c.source_dir.empty()) throw Napi::TypeError::New(env, "sourceTarSplit and sourceDir go together");
    state_->tsfn = EventFn::New(env, info[1].As<Napi::Function>(), "carrier-compress-layer", 0, 1);
    std::thread(layerout_thread, state_).detach();
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

  std::shared_ptr<CompressState> state_;
};

}  // namespace

void init_compress_job(Napi::Env env, Napi::Object exports) { exports.Set("CompressJob", CompressJob::Define(env)); }

}  // namespace carrier
