// DecompressJob: a streaming decoder (zstd multi-frame, gzip multi-member, or none) on a thread of its own, for the
// archive reader's Transform. JS pushes compressed chunks into a bounded queue (push() answers false past the
// high-water mark, and a 'drain' event says when to push again); the thread decodes them into ~1 MiB chunks handed
// back as 'data' events, at most kCredits of them unacknowledged. Memory stays flat whatever the stream's size.
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "apply_job.h"
#include "decoder.h"
#include "napi_util.h"

namespace carrier {

namespace {

constexpr size_t kChunk = 1 << 20;
constexpr int kCredits = 4;
constexpr size_t kInputHighWater = 4 << 20;  // queued compressed bytes before JS is asked to wait

struct Out {
  enum Kind { Drain, Data, End, Error } kind;
  std::vector<uint8_t> data;
  std::optional<Failure> failure;
};

void deliver(Napi::Env env, Napi::Function callback, std::nullptr_t*, Out* out);
using OutFn = Napi::TypedThreadSafeFunction<std::nullptr_t, Out, deliver>;

struct DecompressState {
  Compression kind = Compression::Auto;
  OutFn tsfn;
  std::mutex mu;
  std::condition_variable cv;
  // JS -> decode thread
  std::deque<std::vector<uint8_t>> input;
  size_t input_bytes = 0;
  bool ended = false;
  bool want_drain = false;
  // decode thread -> JS
  int credits = kCredits;
  bool stop = false;
};

// Collects decoded bytes into chunk-sized buffers and sends each one when full, waiting for credit first.
class ChunkSink : public DecodeSink {
 public:
  explicit ChunkSink(DecompressState& s) : s_(s), buf_(kChunk) {}

  uint8_t* space(size_t* avail) override {
    if (len_ == kChunk) send();
    *avail = kChunk - len_;
    return buf_.data() + len_;
  }
  void commit(size_t n) override { len_ += n; }
  void flush() {
    if (len_) send();
  }

 private:
  void send() {
    {
      std::unique_lock<std::mutex> lock(s_.mu);
      s_.cv.wait(lock, [&] { return s_.stop || s_.credits > 0; });
      if (s_.stop) fail("ABORT_ERR", "the operation was aborted");
      --s_.credits;
    }
    Out* o = new Out{Out::Data, {}, std::nullopt};
    o->data.assign(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(len_));
    len_ = 0;
    s_.tsfn.BlockingCall(o);
  }

  DecompressState& s_;
  std::vector<uint8_t> buf_;
  size_t len_ = 0;
};

void decode(std::shared_ptr<DecompressState> s) {
  Out* last = nullptr;
  try {
    Decoder decoder(s->kind);
    ChunkSink sink(*s);
    for (;;) {
      std::vector<uint8_t> chunk;
      bool notify_drain = false;
      {
        std::unique_lock<std::mutex> lock(s->mu);
        s->cv.wait(lock, [&] { return s->stop || !s->input.empty() || s->ended; });
        if (s->stop) fail("ABORT_ERR", "the operation was aborted");
        if (s->input.empty()) break;  // ended
        chunk = std::move(s->input.front());
        s->input.pop_front();
        s->input_bytes -= chunk.size();
        if (s->want_drain && s->input_bytes <= kInputHighWater / 2) {
          s->want_drain = false;
          notify_drain = true;
        }
      }
      if (notify_drain) s->tsfn.NonBlockingCall(new Out{Out::Drain, {}, std::nullopt});
      decoder.feed(chunk.data(), chunk.size(), sink);
    }
    decoder.finish(sink);
    sink.flush();
    last = new Out{Out::End, {}, std::nullopt};
  } catch (...) {
    last = new Out{Out::Error, {}, current_failure()};
  }
  s->tsfn.BlockingCall(last);
  s->tsfn.Release();
}

void deliver(Napi::Env env, Napi::Function callback, std::nullptr_t*, Out* out) {
  std::unique_ptr<Out> owned(out);
  if (env == nullptr || callback.IsEmpty()) return;  // the environment is shutting down
  Napi::Object js = Napi::Object::New(env);
  switch (out->kind) {
    case Out::Drain:
      js.Set("type", "drain");
      break;
    case Out::Data:
      js.Set("type", "data");
      // A copy into a JS-owned buffer: V8 sees the memory, and the native buffer is freed at once.
      js.Set("chunk", Napi::Buffer<uint8_t>::Copy(env, out->data.data(), out->data.size()));
      break;
    case Out::End:
      js.Set("type", "end");
      break;
    case Out::Error:
      js.Set("type", "error");
      js.Set("error", failure_to_js(env, *out->failure));
      break;
  }
  try {
    callback.Call({js});
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  }
}

class DecompressJob : public Napi::ObjectWrap<DecompressJob> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DecompressJob",
                       {InstanceMethod("push", &DecompressJob::Push), InstanceMethod("end", &DecompressJob::End),
                        InstanceMethod("ack", &DecompressJob::Ack), InstanceMethod("abort", &DecompressJob::Abort)});
  }

  DecompressJob(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DecompressJob>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(env, "DecompressJob(compression, onEvent)");
    }
    state_ = std::make_shared<DecompressState>();
    state_->kind = parse_compression(info[0].As<Napi::String>().Utf8Value());
    state_->tsfn = OutFn::New(env, info[1].As<Napi::Function>(), "carrier-decompress", 0, 1);
    std::thread(decode, state_).detach();
  }

 private:
  Napi::Value Push(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "push(Uint8Array)");
    Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
    DecompressState& s = *state_;
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.stop || s.ended) return Napi::Boolean::New(info.Env(), true);
    if (bytes.ByteLength()) {
      s.input.emplace_back(bytes.Data(), bytes.Data() + bytes.ByteLength());
      s.input_bytes += bytes.ByteLength();
      s.cv.notify_all();
    }
    bool room = s.input_bytes < kInputHighWater;
    if (!room) s.want_drain = true;
    return Napi::Boolean::New(info.Env(), room);
  }

  void End(const Napi::CallbackInfo&) {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->ended = true;
    state_->cv.notify_all();
  }

  void Ack(const Napi::CallbackInfo& info) {
    int n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->credits = std::min(state_->credits + n, kCredits);
    state_->cv.notify_all();
  }

  void Abort(const Napi::CallbackInfo&) {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stop = true;
    state_->cv.notify_all();
  }

  std::shared_ptr<DecompressState> state_;
};

}  // namespace

void init_decompress_job(Napi::Env env, Napi::Object exports) {
  exports.Set("DecompressJob", DecompressJob::Define(env));
}

}  // namespace carrier
