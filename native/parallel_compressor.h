// Compression on several cores, as a stream: bytes written in order come out compressed, in order, on an output
// thread. The input is cut into fixed blocks that worker threads compress independently:
//   gzip: one gzip member; each block a raw deflate run primed with the previous block's last 32 KiB (pigz's scheme)
//         and ended with a sync flush, the last one with the final block; CRC-32s combined in order for the trailer.
//   zstd: each block one zstd frame (with its content checksum); a multi-frame stream, as pzstd writes.
//   none: the blocks as they are.
// The output depends only on the input, the compression and the level (for gzip: and whether ISA-L's deflate was asked
// for and found) — never on the number of threads — so a layer compresses to the same digest on any machine with the
// same build and libraries. At most threads + 2 blocks are in flight
// (each its input and its output: ~2 MiB for gzip, ~8 MiB for zstd), so memory stays flat whatever the input's size.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "decoder.h"

namespace carrier {

// The loaded ISA-L's version ("2.30.0"), or "" when gzip is zlib's only.
std::string isal_version();

class ParallelCompressor {
 public:
  // Receives the compressed bytes in order, on the output thread; may block (backpressure) and may throw a Fail.
  using Sink = std::function<void(const uint8_t* data, size_t n)>;

  // `block`: input bytes per block; 0 takes block_size(kind) (the fuzz target uses tiny blocks to exercise the seams).
  // `isal_level` 1-3: gzip with ISA-L's deflate at that level instead of zlib's at `level`, when libisal is on the
  // machine (isal_version() is then not empty); otherwise ignored.
  ParallelCompressor(Compression kind, int level, int threads, Sink sink, size_t block = 0, int isal_level = 0);
  ~ParallelCompressor();  // cancels what is still running and joins every thread
  ParallelCompressor(const ParallelCompressor&) = delete;
  ParallelCompressor& operator=(const ParallelCompressor&) = delete;

  // Caller's thread. Blocks while too many blocks are in flight; throws the first failure of any thread.
  void write(const uint8_t* data, size_t n);
  // End of input: the last block is compressed and emitted (gzip: then the trailer). Throws the first failure.
  void finish();
  // Stops every thread as soon as it can; the output is then incomplete.
  void cancel();

  static size_t block_size(Compression kind);

 private:
  struct Job;
  void submit(bool last);
  void worker();
  void isal_block(Job& job, const uint8_t* in, size_t n, void* stream, std::vector<uint8_t>& level_buf);
  void writer();
  void record(Failure f);
  void rethrow();

  Compression kind_;
  int level_;
  int isal_level_ = 0;  // > 0: gzip through ISA-L at this level
  Sink sink_;
  size_t block_;
  size_t max_inflight_;
  uint64_t seq_ = 0;
  std::unique_ptr<Job> cur_;
  std::vector<uint8_t> tail_;  // gzip: the last 32 KiB of input before cur_

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Job>> jobs_;  // submitted and not yet emitted, in order
  bool input_done_ = false;
  bool stopping_ = false;
  bool output_done_ = false;
  std::optional<Failure> failure_;
  std::vector<std::thread> workers_;
  std::thread writer_;
};

}  // namespace carrier
