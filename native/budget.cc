// ImageBudget: the JS handle of a ByteBudget (budget.h), shared by the ApplyJobs of one image.
#include "budget.h"

#include <memory>

#include "apply_job.h"

namespace carrier {

namespace {

// Marks ImageBudget objects, so no other object is ever unwrapped as one.
const napi_type_tag kBudgetTag = {0x6361727269657262ull, 0x7564676574000001ull};

class ImageBudget : public Napi::ObjectWrap<ImageBudget> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ImageBudget", {InstanceAccessor("used", &ImageBudget::Used, nullptr),
                                            InstanceAccessor("limit", &ImageBudget::Limit, nullptr)});
  }

  ImageBudget(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ImageBudget>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().DoubleValue() < 0) {
      throw Napi::TypeError::New(env, "ImageBudget(limitBytes)");
    }
    budget_ = std::make_shared<ByteBudget>(static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue()));
    info.This().As<Napi::Object>().TypeTag(&kBudgetTag);
  }

  std::shared_ptr<ByteBudget> budget() const { return budget_; }

 private:
  Napi::Value Used(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(budget_->used.load()));
  }
  Napi::Value Limit(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(budget_->limit));
  }

  std::shared_ptr<ByteBudget> budget_;
};

}  // namespace

std::shared_ptr<ByteBudget> budget_of(Napi::Env env, Napi::Value value) {
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kBudgetTag)) {
    throw Napi::TypeError::New(env, "budget must be an ImageBudget");
  }
  return ImageBudget::Unwrap(value.As<Napi::Object>())->budget();
}

void init_budget(Napi::Env env, Napi::Object exports) { exports.Set("ImageBudget", ImageBudget::Define(env)); }

}  // namespace carrier
