// Finishing small files off the parsing thread: the extract thread creates each file (so ordering, hardlinks and
// collisions are decided in tar order), then hands the open fd, its content and its metadata to a writer thread.
// Queued content is bounded in bytes; the first failure stops the pool and is rethrown to the extract thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common.h"

namespace carrier {

struct WriteTask {
  Fd fd;
  std::vector<uint8_t> content;
  std::string path;  // for error messages
  bool chown = false;
  uint32_t uid = 0, gid = 0, mode = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
};

// A regular file's metadata, applied owner first (chown clears setuid bits and file capabilities, so xattrs and
// the mode come after it), mode and times last.
void set_owner(int fd, const std::string& path, uint32_t uid, uint32_t gid);
void set_mode_and_times(int fd, const std::string& path, uint32_t mode, int64_t sec, uint32_t nsec);

class WritePool {
 public:
  WritePool(size_t threads, size_t max_queued_bytes);
  ~WritePool();
  WritePool(const WritePool&) = delete;
  WritePool& operator=(const WritePool&) = delete;

  void submit(WriteTask task);  // waits while the queue is full; throws the pool's failure if there is one
  void drain();                 // waits until every task is done; throws the pool's failure if there is one
  void check();                 // throws the pool's failure if there is one

 private:
  void run();
  void rethrow_locked();

  std::mutex mu_;
  std::condition_variable work_cv_, space_cv_;
  std::deque<WriteTask> queue_;
  size_t queued_bytes_ = 0;
  size_t busy_ = 0;
  size_t max_bytes_;
  bool stop_ = false;
  std::optional<Failure> failure_;
  std::vector<std::thread> threads_;
};

}  // namespace carrier
