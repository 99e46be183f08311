// Finishing small files off the parsing thread: the extract thread creates each file (so ordering, hardlinks and
// collisions are decided in tar order), then hands the open fd, its content and its metadata to a writer thread.
// Queued content is bounded in bytes; the first failure stops the pool and is rethrown to the extract thread.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
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
  bool writeback = false;  // start the file's writeback once written (ExtractOptions::writeback)
};

// File content is written in blocks of this size; a block of zeros is skipped, leaving a hole that reads back as
// zeros: runs of zeros take no disk, and reading the file (an export, a checksum) gives the same bytes either way.
constexpr size_t kHoleBlock = 4096;

struct WrittenRuns {
  uint64_t bytes = 0;  // bytes actually written (holes excluded)
  int64_t end = 0;     // offset just past the last byte written (0: nothing written)
};

// Writes `n` bytes meant for offset `off` of `fd` (block-aligned, as every piece but a file's last is whole blocks):
// each run of blocks holding data with pwrite, each block of zeros skipped. Calls `before(bytes)` ahead of each run.
template <typename Before>
WrittenRuns write_runs(int fd, const uint8_t* p, size_t n, int64_t off, const std::string& path, Before before);

// The bytes of `p` that write_runs would write.
uint64_t data_bytes(const uint8_t* p, size_t n);

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

inline bool zero_block(const uint8_t* p, size_t n) { return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0); }

template <typename Before>
WrittenRuns write_runs(int fd, const uint8_t* p, size_t n, int64_t off, const std::string& path, Before before) {
  WrittenRuns out;
  size_t i = 0;
  while (i < n) {
    size_t len = std::min(kHoleBlock, n - i);
    if (zero_block(p + i, len)) {
      i += len;
      continue;
    }
    size_t j = i + len;
    while (j < n) {
      size_t next = std::min(kHoleBlock, n - j);
      if (zero_block(p + j, next)) break;
      j += next;
    }
    before(j - i);
    size_t done = i;
    while (done < j) {
      ssize_t w = pwrite(fd, p + done, j - done, off + static_cast<int64_t>(done));
      if (w < 0) {
        if (errno == EINTR) continue;
        fail_errno(errno, "pwrite", path, "writing file content");
      }
      done += static_cast<size_t>(w);
    }
    out.bytes += j - i;
    out.end = off + static_cast<int64_t>(j);
    i = j;
  }
  return out;
}

}  // namespace carrier
