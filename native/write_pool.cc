#include "write_pool.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>


namespace carrier {

uint64_t data_bytes(const uint8_t* p, size_t n) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; i += kHoleBlock) {
    size_t len = std::min(kHoleBlock, n - i);
    if (!zero_block(p + i, len)) total += len;
  }
  return total;
}

void set_owner(int fd, const std::string& path, uint32_t uid, uint32_t gid) {
  if (fchown(fd, uid, gid) != 0) fail_errno(errno, "fchown", path);
}

void set_mode_and_times(int fd, const std::string& path, uint32_t mode, int64_t sec, uint32_t nsec) {
  if (fchmod(fd, mode) != 0) fail_errno(errno, "fchmod", path);
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = static_cast<time_t>(sec);
  times[0].tv_nsec = times[1].tv_nsec = nsec;
  if (futimens(fd, times) != 0) fail_errno(errno, "futimens", path);
}

WritePool::WritePool(size_t threads, size_t max_queued_bytes) : max_bytes_(max_queued_bytes) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

WritePool::~WritePool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    queue_.clear();
  }
  work_cv_.notify_all();
  space_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WritePool::rethrow_locked() {
  if (failure_) throw Fail(*failure_);
}

void WritePool::check() {
  std::lock_guard<std::mutex> lock(mu_);
  rethrow_locked();
}

void WritePool::submit(WriteTask task) {
  std::unique_lock<std::mutex> lock(mu_);
  space_cv_.wait(lock, [&] { return failure_ || queued_bytes_ == 0 || queued_bytes_ + task.content.size() <= max_bytes_; });
  rethrow_locked();
  queued_bytes_ += task.content.size();
  queue_.push_back(std::move(task));
  work_cv_.notify_one();
}

void WritePool::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  space_cv_.wait(lock, [&] { return failure_ || (queue_.empty() && busy_ == 0); });
  rethrow_locked();
}

void WritePool::run() {
  pthread_setname_np(pthread_self(), "carrier-write");
  for (;;) {
    WriteTask task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    std::optional<Failure> failed;
    try {
      // Blocks of zeros become holes, as in a streamed file; the length comes from ftruncate when it ends in one.
      int64_t size = static_cast<int64_t>(task.content.size());
      WrittenRuns w = write_runs(task.fd.get(), task.content.data(), task.content.size(), 0, task.path, [](size_t) {});
      if (w.end < size && ftruncate(task.fd.get(), size) != 0) fail_errno(errno, "ftruncate", task.path);
      if (task.chown) set_owner(task.fd.get(), task.path, task.uid, task.gid);
      set_mode_and_times(task.fd.get(), task.path, task.mode, task.mtime_sec, task.mtime_nsec);
      if (task.writeback && w.bytes > 0) sync_file_range(task.fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);  // a hint
    } catch (...) {
      failed = current_failure();
    }
    size_t bytes = task.content.size();
    task.fd.reset();
    std::lock_guard<std::mutex> lock(mu_);
    --busy_;
    queued_bytes_ -= bytes;
    if (failed && !failure_) failure_ = std::move(failed);
    space_cv_.notify_all();
  }
}

}  // namespace carrier
