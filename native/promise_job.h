// What the one-shot native calls share (setDirQuota, getDirQuota, syncFs): a promise settled from a libuv pool
// thread. `work` runs there on plain C++ values; on the JS thread the promise resolves with what `result` makes of
// them (undefined without one) or rejects with the NativeFailure `work` threw. No JS value is touched off the JS
// thread.
#pragma once

#include <napi.h>

#include <functional>
#include <optional>
#include <utility>

#include "common.h"
#include "napi_util.h"

namespace carrier {

class PromiseJob : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Result = std::function<Napi::Value(Napi::Env)>;

  // Queues `work` on the pool and returns the promise it settles.
  static Napi::Promise run(Napi::Env env, Work work, Result result = nullptr) {
    auto* job = new PromiseJob(env, std::move(work), std::move(result));
    Napi::Promise promise = job->deferred_.Promise();
    job->Queue();  // the AsyncWorker deletes itself once settled
    return promise;
  }

 private:
  PromiseJob(Napi::Env env, Work work, Result result)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        result_(std::move(result)) {}

  void Execute() override {
    try {
      work_();
    } catch (...) {
      failure_ = current_failure();
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failure_)
      deferred_.Reject(failure_to_js(env, *failure_));
    else
      deferred_.Resolve(result_ ? result_(env) : env.Undefined());
  }

  Napi::Promise::Deferred deferred_;
  Work work_;
  Result result_;
  std::optional<Failure> failure_;
};

}  // namespace carrier
