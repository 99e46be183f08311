// Bounded hand-off of byte blocks between two threads. The producer fills free blocks and queues them; the consumer
// takes them in order and gives them back. Capacity is fixed, so memory stays flat whatever the input size.
// Either side may give up (cancel), saying why: the first reason given is kept, for the side that stopped because of
// it to report instead of a failure of its own.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "common.h"

namespace carrier {

struct Block {
  std::unique_ptr<uint8_t[]> data;
  size_t len = 0;
  size_t cap = 0;
};

class BlockQueue {
 public:
  BlockQueue(size_t count, size_t size) {
    for (size_t i = 0; i < count; ++i) free_.push_back(Block{std::unique_ptr<uint8_t[]>(new uint8_t[size]), 0, size});
  }

  // Producer: an empty block, or false once cancelled.
  bool acquire(Block& out) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return cancelled_ || !free_.empty(); });
    if (cancelled_) return false;
    out = std::move(free_.back());
    free_.pop_back();
    out.len = 0;
    return true;
  }
  void push(Block b) {
    std::lock_guard<std::mutex> lock(mu_);
    full_.push_back(std::move(b));
    cv_.notify_all();
  }
  // Producer is done; the consumer drains what is queued.
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  // Either side gives up: both wake and stop. `why`, when given and no reason was given before, is kept.
  void cancel(std::optional<Failure> why = std::nullopt) {
    std::lock_guard<std::mutex> lock(mu_);
    if (why && !failure_) failure_ = std::move(why);
    cancelled_ = true;
    cv_.notify_all();
  }
  bool cancelled() {
    std::lock_guard<std::mutex> lock(mu_);
    return cancelled_;
  }
  // The first reason a side gave for cancelling, if any.
  std::optional<Failure> failure() {
    std::lock_guard<std::mutex> lock(mu_);
    return failure_;
  }

  // Consumer: the next block in order; false when closed and drained, or cancelled.
  bool take(Block& out) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return cancelled_ || !full_.empty() || closed_; });
    if (cancelled_ || full_.empty()) return false;
    out = std::move(full_.front());
    full_.pop_front();
    return true;
  }
  void release(Block b) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(b));
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Block> free_;
  std::deque<Block> full_;
  bool closed_ = false;
  bool cancelled_ = false;
  std::optional<Failure> failure_;
};

}  // namespace carrier
