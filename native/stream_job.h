// What the streaming jobs (ApplyJob, CompressJob, DecompressJob, AssembleJob) share: the state a JS-facing object
// and its worker thread hold in common, the bounded queue of bytes JS pushes, the credits that bound the chunks
// handed back to JS, and the delivery of one event to the job's listener on the JS thread.
#pragma once

#include <napi.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common.h"
#include "napi_util.h"

namespace carrier {

constexpr int kCredits = 4;                  // chunks handed to JS and not yet acknowledged
constexpr size_t kInputHighWater = 4 << 20;  // queued input bytes before JS is asked to wait

// Stop is a plain bool when it is only read under mu, a std::atomic<bool> when threads read it without the lock.
template <class Stop = bool>
struct StreamState {
  std::mutex mu;
  std::condition_variable cv;
  Stop stop{false};
  // JS -> worker thread
  std::deque<std::vector<uint8_t>> input;
  size_t input_bytes = 0;
  bool input_ended = false;
  bool want_drain = false;
  // worker thread -> JS
  int credits = kCredits;

  // Any thread: stops the job and wakes every thread waiting on it.
  void halt() {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
    cv.notify_all();
  }

  // JS thread, push(Uint8Array | Uint8Array[]): queues a copy, of an array's chunks as one entry (their bytes in
  // order), so JS need not join the chunks of one turn (a TLS body comes in 16 KiB records) before handing them over:
  // one copy instead of two. Answers false past the high-water mark, and a 'drain' follows.
  Napi::Value push(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !(info[0].IsTypedArray() || info[0].IsArray())) {
      throw Napi::TypeError::New(env, "push(Uint8Array | Uint8Array[])");
    }
    std::vector<uint8_t> bytes;
    if (info[0].IsTypedArray()) {
      Napi::Uint8Array one = info[0].As<Napi::Uint8Array>();
      bytes.assign(one.Data(), one.Data() + one.ByteLength());
    } else {
      Napi::Array list = info[0].As<Napi::Array>();
      uint32_t n = list.Length();
      std::vector<Napi::Uint8Array> parts;
      parts.reserve(n);
      size_t total = 0;
      for (uint32_t i = 0; i < n; i++) {
        Napi::Value v = list.Get(i);
        if (!v.IsTypedArray()) throw Napi::TypeError::New(env, "push(Uint8Array | Uint8Array[])");
        parts.push_back(v.As<Napi::Uint8Array>());
        total += parts.back().ByteLength();
      }
      bytes.reserve(total);
      for (Napi::Uint8Array& part : parts) bytes.insert(bytes.end(), part.Data(), part.Data() + part.ByteLength());
    }
    std::lock_guard<std::mutex> lock(mu);
    if (stop || input_ended) return Napi::Boolean::New(env, true);
    if (!bytes.empty()) {
      input_bytes += bytes.size();
      input.push_back(std::move(bytes));
      cv.notify_all();
    }
    bool room = input_bytes < kInputHighWater;
    if (!room) want_drain = true;
    return Napi::Boolean::New(env, room);
  }

  // JS thread, end(): no more input.
  void end() {
    std::lock_guard<std::mutex> lock(mu);
    input_ended = true;
    cv.notify_all();
  }

  // JS thread, ack(n = 1): JS has taken n more chunks.
  void ack(const Napi::CallbackInfo& info) {
    int n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
    std::lock_guard<std::mutex> lock(mu);
    credits = std::min(credits + n, kCredits);
    cv.notify_all();
  }

  // Worker thread: waits for the next pushed chunk; false once the input has ended. When the job is stopped it calls
  // stopped(), which throws, with the lock released; when the queue has fallen to half the high-water mark after
  // JS was asked to wait, it calls drain() so the job can post its 'drain' event.
  template <class Stopped, class Drain>
  bool next_input(std::vector<uint8_t>& chunk, Stopped stopped, Drain drain) {
    return next_queued(input, chunk, std::move(stopped), std::move(drain));
  }

  // next_input over any queue of pushes guarded by mu, for a job that keeps its own (ApplyJob's borrowed chunks): an
  // entry's size() is the bytes it added to input_bytes.
  template <class Entry, class Stopped, class Drain>
  bool next_queued(std::deque<Entry>& queue, Entry& out, Stopped stopped, Drain drain) {
    bool notify_drain = false;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return stop || !queue.empty() || input_ended; });
      if (stop) {
        lock.unlock();
        stopped();
      }
      if (queue.empty()) return false;  // ended
      out = std::move(queue.front());
      queue.pop_front();
      input_bytes -= out.size();
      if (want_drain && input_bytes <= kInputHighWater / 2) {
        want_drain = false;
        notify_drain = true;
      }
    }
    if (notify_drain) drain();
    return true;
  }

  // Worker thread: waits until JS may take one more chunk, and takes that credit. When the job is stopped it calls
  // stopped(), which throws, with the lock released.
  template <class Stopped>
  void take_credit(Stopped stopped) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return stop || credits > 0; });
    if (stop) {
      lock.unlock();
      stopped();
    }
    --credits;
  }
};

[[noreturn]] inline void fail_aborted() { fail("ABORT_ERR", "the operation was aborted"); }

// The thread-safe function's call on the JS thread: Fill turns the job's event into the object its listener gets.
// A listener that throws surfaces as an uncaught exception, as a throwing stream listener would.
template <class Event, void (*Fill)(Napi::Env, Event&, Napi::Object&)>
void deliver_event(Napi::Env env, Napi::Function callback, std::nullptr_t*, Event* event) {
  std::unique_ptr<Event> owned(event);
  if (env == nullptr || callback.IsEmpty()) return;  // the environment is shutting down
  Napi::Object js = Napi::Object::New(env);
  Fill(env, *event, js);
  try {
    callback.Call({js});
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  }
}

inline void set_error_event(Napi::Env env, Napi::Object& js, const Failure& failure) {
  js.Set("type", "error");
  js.Set("error", failure_to_js(env, failure));
}

// Worker thread, last: posts the final event and lets the thread-safe function go.
template <class Fn, class Event>
void post_last(Fn& tsfn, Event* last) {
  tsfn.BlockingCall(last);
  tsfn.Release();
}

}  // namespace carrier
