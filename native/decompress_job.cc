// DecompressJob: a streaming decoder (zstd multi-frame, gzip multi-member, or none) on a thread of its own, for the
// archive reader's Transform. JS pushes compressed chunks into a bounded queue (push() answers false past the
// high-water mark, and a 'drain' event says when to push again); the thread decodes them into ~1 MiB chunks handed
// back as 'data' events, at most kCredits of them unacknowledged. Memory stays flat whatever the stream's size.
#include <pthread.h>

#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "apply_job.h"
#include "decoder.h"
#include "napi_util.h"
#include "stream_job.h"

namespace carrier {

namespace {

constexpr size_t kChunk = 1 << 20;

struct Out {
  enum Kind { Drain, Data, End, Error } kind;
  std::vector<uint8_t> data;
  std::optional<Failure> failure;
};

void fill(Napi::Env env, Out& out, Napi::Object& js);
using OutFn = Napi::TypedThreadSafeFunction<std::nullptr_t, Out, deliver_event<Out, fill>>;

struct DecompressState : StreamState<> {
  Compression kind = Compression::Auto;
  OutFn tsfn;
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
    s_.take_credit(fail_aborted);
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
  pthread_setname_np(pthread_self(), "carrier-decomp");
  Out* last = nullptr;
  try {
    Decoder decoder(s->kind);
    ChunkSink sink(*s);
    auto drain = [&] { s->tsfn.NonBlockingCall(new Out{Out::Drain, {}, std::nullopt}); };
    std::vector<uint8_t> chunk;
    while (s->next_input(chunk, fail_aborted, drain)) {
      decoder.feed(chunk.data(), chunk.size(), sink);
    }
    decoder.finish(sink);
    sink.flush();
    last = new Out{Out::End, {}, std::nullopt};
  } catch (...) {
    last = new Out{Out::Error, {}, current_failure()};
  }
  post_last(s->tsfn, last);
}

void fill(Napi::Env env, Out& out, Napi::Object& js) {
  switch (out.kind) {
    case Out::Drain:
      js.Set("type", "drain");
      break;
    case Out::Data:
      js.Set("type", "data");
      // A copy into a JS-owned buffer: V8 sees the memory, and the native buffer is freed at once.
      js.Set("chunk", Napi::Buffer<uint8_t>::Copy(env, out.data.data(), out.data.size()));
      break;
    case Out::End:
      js.Set("type", "end");
      break;
    case Out::Error:
      set_error_event(env, js, *out.failure);
      break;
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
  Napi::Value Push(const Napi::CallbackInfo& info) { return state_->push(info); }
  void End(const Napi::CallbackInfo&) { state_->end(); }
  void Ack(const Napi::CallbackInfo& info) { state_->ack(info); }
  void Abort(const Napi::CallbackInfo&) { state_->halt(); }

  std::shared_ptr<DecompressState> state_;
};

}  // namespace

void init_decompress_job(Napi::Env env, Napi::Object exports) {
  exports.Set("DecompressJob", DecompressJob::Define(env));
  prime_inflater_choice();
  // Which inflater gzip streams go through in this process ('isal' or 'zlib'); loads libisal.so.2 if it has to.
  exports.Set("inflater", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                try {
                  return Napi::String::New(info.Env(), inflater_name(resolve_inflater(Inflater::Default)));
                } catch (const Fail& f) {
                  Napi::Error err = Napi::Error::New(info.Env(), f.failure().message);
                  err.Set("code", f.failure().code);
                  throw err;
                }
              }));
}

}  // namespace carrier
