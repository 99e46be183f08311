#include "parallel_compressor.h"

#include "gzip_isal.h"

#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdlib.h>
#include <pthread.h>
#include <zlib.h>
#include <zstd.h>

#if __has_include(<isa-l/igzip_lib.h>)
#include <isa-l/igzip_lib.h>
#define CARRIER_HAVE_ISAL 1
#endif

#include <algorithm>
#include <cstring>
#include <utility>

namespace carrier {

namespace {

constexpr size_t kWindow = 32 << 10;  // deflate's window: how much of the previous block primes the next

// The gzip header as Go's compress/gzip writes it: no name, mtime 0, OS "unknown".
void gzip_header(uint8_t out[10], int level) {
  const uint8_t h[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, static_cast<uint8_t>(level == 9 ? 2 : level == 1 ? 4 : 0), 255};
  memcpy(out, h, 10);
}

void le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

#ifdef CARRIER_HAVE_ISAL
// ISA-L's deflate, loaded when the machine has libisal (Debian ships it shared only): built against its header, so
// the stream struct's layout is the soname's; never linked, so a machine without it loads the addon all the same.
struct Isal {
  void* handle;
  void (*init)(isal_zstream*);
  int (*set_dict)(isal_zstream*, uint8_t*, uint32_t);
  int (*deflate)(isal_zstream*);
};

const Isal* isal() {
  static const Isal* loaded = []() -> const Isal* {
    void* h = isal_library();
    if (!h) return nullptr;
    static Isal api;
    api.handle = h;
    api.init = reinterpret_cast<void (*)(isal_zstream*)>(dlsym(h, "isal_deflate_init"));
    api.set_dict = reinterpret_cast<int (*)(isal_zstream*, uint8_t*, uint32_t)>(dlsym(h, "isal_deflate_set_dict"));
    api.deflate = reinterpret_cast<int (*)(isal_zstream*)>(dlsym(h, "isal_deflate"));
    if (!api.init || !api.set_dict || !api.deflate) return nullptr;
    return &api;
  }();
  return loaded;
}

size_t isal_level_buf(int level) {
  return level == 1 ? ISAL_DEF_LVL1_DEFAULT : level == 2 ? ISAL_DEF_LVL2_DEFAULT : level == 3 ? ISAL_DEF_LVL3_DEFAULT : 0;
}
#endif

}  // namespace

std::string isal_version() {
#ifdef CARRIER_HAVE_ISAL
  if (isal()) {
    // The file the soname resolves to names the version: libisal.so.2.0.30.
    link_map* map = nullptr;
    char real[PATH_MAX];
    if (dlinfo(isal()->handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name && realpath(map->l_name, real)) {
      std::string f = real;
      size_t so = f.rfind(".so.");
      if (so != std::string::npos) return f.substr(so + 4);
    }
    return "loaded";
  }
#endif
  return "";
}

// Bytes whose resize does not zero what it adds: a block's output buffer is sized for the worst case (zstd's bound is
// the whole block) and mostly never written, so its pages are never touched either.
template <class T>
struct NoInit : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = NoInit<U>;
  };
  NoInit() = default;
  template <class U>
  NoInit(const NoInit<U>&) {}
  template <class U>
  void construct(U* p) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using Bytes = std::vector<uint8_t, NoInit<uint8_t>>;

struct ParallelCompressor::Job {
  enum State { Filling, Queued, Working, Done } state = Filling;
  uint64_t seq = 0;
  bool last = false;
  Bytes in, out;
  std::vector<uint8_t> dict;
  uint32_t crc = 0;
  size_t in_len = 0;
};

size_t ParallelCompressor::block_size(Compression kind) {
  // gzip: pigz's blocks are 128 KiB; 1 MiB halves the per-block cost (sync markers, dictionary priming) for
  // almost no loss of balance. zstd: larger frames keep the ratio close to one frame's.
  return kind == Compression::Zstd ? 4 << 20 : 1 << 20;
}

ParallelCompressor::ParallelCompressor(Compression kind, int level, int threads, Sink sink, size_t block, int isal_level)
    : kind_(kind), level_(level), sink_(std::move(sink)), block_(block ? block : block_size(kind)) {
  if (kind_ != Compression::Gzip && kind_ != Compression::Zstd && kind_ != Compression::None) {
    fail("CARRIER_INVALID_ARGUMENT", "compression must be gzip, zstd or none");
  }
#ifdef CARRIER_HAVE_ISAL
  if (kind_ == Compression::Gzip && isal_level >= 1 && isal_level <= ISAL_DEF_MAX_LEVEL && isal()) isal_level_ = isal_level;
#endif
  int n = std::max(1, threads);
  max_inflight_ = static_cast<size_t>(n + 2);  // a block per worker, one being written out, one being filled
  cur_.reset(new Job);
  cur_->in.reserve(block_);
  writer_ = std::thread([this] { writer(); });
  for (int i = 0; i < n; ++i) workers_.emplace_back([this] { worker(); });
}

ParallelCompressor::~ParallelCompressor() {
  cancel();
  if (writer_.joinable()) writer_.join();
  for (std::thread& t : workers_)
    if (t.joinable()) t.join();
}

void ParallelCompressor::cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  cv_.notify_all();
}

void ParallelCompressor::record(Failure f) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_) failure_ = std::move(f);
  stopping_ = true;
  cv_.notify_all();
}

void ParallelCompressor::rethrow() {
  std::lock_guard<std::mutex> lock(mu_);
  if (failure_) throw Fail(*failure_);
  if (stopping_) fail("CARRIER_STOPPED", "stopped");
}

void ParallelCompressor::write(const uint8_t* p, size_t n) {
  while (n > 0) {
    size_t k = std::min(n, block_ - cur_->in.size());
    cur_->in.insert(cur_->in.end(), p, p + k);
    p += k;
    n -= k;
    if (cur_->in.size() == block_) submit(false);
  }
}

void ParallelCompressor::submit(bool last) {
  std::unique_ptr<Job> job = std::move(cur_);
  job->seq = seq_++;
  job->last = last;
  if (kind_ == Compression::Gzip) {
    job->dict = tail_;
    size_t keep = std::min(job->in.size(), kWindow);
    if (keep == kWindow) {
      tail_.assign(job->in.end() - static_cast<std::ptrdiff_t>(keep), job->in.end());
    } else {  // a short block (only ever the last) still extends the window
      tail_.insert(tail_.end(), job->in.begin(), job->in.end());
      if (tail_.size() > kWindow) tail_.erase(tail_.begin(), tail_.end() - static_cast<std::ptrdiff_t>(kWindow));
    }
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stopping_ || jobs_.size() < max_inflight_; });
    if (stopping_) {
      lock.unlock();
      rethrow();
    }
    job->state = Job::Queued;
    jobs_.push_back(std::move(job));
    cv_.notify_all();
  }
  if (!last) {
    cur_.reset(new Job);
    cur_->in.reserve(block_);
  }
}

void ParallelCompressor::finish() {
  // zstd and none need no empty last block, unless it is the only one (an empty stream is still one zstd frame).
  if (kind_ == Compression::Gzip || !cur_->in.empty() || seq_ == 0) {
    submit(true);
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    input_done_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return stopping_ || output_done_; });
  }
  rethrow();
}

void ParallelCompressor::worker() {
  pthread_setname_np(pthread_self(), "carrier-deflate");
  z_stream zs{};
  bool zs_init = false;
  ZSTD_CCtx* zc = nullptr;
#ifdef CARRIER_HAVE_ISAL
  std::unique_ptr<isal_zstream> is;
  std::vector<uint8_t> is_buf;
#endif
  try {
    if (isal_level_ > 0) {
#ifdef CARRIER_HAVE_ISAL
      is.reset(new isal_zstream());
      is_buf.resize(isal_level_buf(isal_level_));
#endif
    } else if (kind_ == Compression::Gzip) {
      if (deflateInit2(&zs, level_, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        fail("CARRIER_INVALID_ARGUMENT", "cannot initialise gzip compression at level " + std::to_string(level_));
      }
      zs_init = true;
    } else if (kind_ == Compression::Zstd) {
      zc = ZSTD_createCCtx();
      if (!zc) fail("ENOMEM", "cannot initialise zstd compression");
      size_t r = ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, level_);
      if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(zc, ZSTD_c_checksumFlag, 1);
      if (ZSTD_isError(r)) fail("CARRIER_INVALID_ARGUMENT", std::string("zstd: ") + ZSTD_getErrorName(r));
    }
    for (;;) {
      Job* job = nullptr;
      {
        std::unique_lock<std::mutex> lock(mu_);
        for (;;) {
          if (stopping_) break;
          for (auto& j : jobs_) {
            if (j->state == Job::Queued) {
              job = j.get();
              break;
            }
          }
          if (job || input_done_) break;
          cv_.wait(lock);
        }
        if (!job) break;
        job->state = Job::Working;
      }
      const uint8_t* in = job->in.data();
      size_t n = job->in.size();
      job->in_len = n;
      if (isal_level_ > 0) {
        job->crc = static_cast<uint32_t>(crc32(0, in, static_cast<uInt>(n)));
        isal_block(*job, in, n, is.get(), is_buf);
      } else if (kind_ == Compression::Gzip) {
        job->crc = static_cast<uint32_t>(crc32(0, in, static_cast<uInt>(n)));
        // A fresh stream per block, not deflateReset: the zlib Node exports keeps state across a reset that changes
        // the bytes a block compresses to, and the output must not depend on which worker took which block.
        deflateEnd(&zs);
        zs = z_stream{};
        if (deflateInit2(&zs, level_, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) fail("ENOMEM", "cannot initialise gzip compression");
        if (!job->dict.empty() &&
            deflateSetDictionary(&zs, job->dict.data(), static_cast<uInt>(job->dict.size())) != Z_OK) {
          fail("CARRIER_INTERNAL", "deflateSetDictionary failed");
        }
        job->out.resize(deflateBound(&zs, static_cast<uLong>(n)) + 16);
        zs.next_in = const_cast<Bytef*>(in);
        zs.avail_in = static_cast<uInt>(n);
        zs.next_out = job->out.data();
        zs.avail_out = static_cast<uInt>(job->out.size());
        int flush = job->last ? Z_FINISH : Z_SYNC_FLUSH;
        for (;;) {
          int ret = deflate(&zs, flush);
          if (ret == Z_STREAM_ERROR) fail("CARRIER_INTERNAL", "deflate failed");
          bool complete = job->last ? ret == Z_STREAM_END : (zs.avail_in == 0 && zs.avail_out > 0);
          if (complete) break;
          size_t used = job->out.size() - zs.avail_out;
          job->out.resize(job->out.size() * 2);
          zs.next_out = job->out.data() + used;
          zs.avail_out = static_cast<uInt>(job->out.size() - used);
        }
        job->out.resize(job->out.size() - zs.avail_out);
      } else if (kind_ == Compression::Zstd) {
        job->out.resize(ZSTD_compressBound(n));
        size_t r = ZSTD_compress2(zc, job->out.data(), job->out.size(), in, n);
        if (ZSTD_isError(r)) fail("CARRIER_INTERNAL", std::string("zstd compression failed: ") + ZSTD_getErrorName(r));
        job->out.resize(r);
      } else {
        job->out = std::move(job->in);
      }
      job->in = Bytes();
      job->dict = std::vector<uint8_t>();
      std::lock_guard<std::mutex> lock(mu_);
      job->state = Job::Done;
      cv_.notify_all();
    }
  } catch (...) {
    record(current_failure());
  }
  if (zs_init) deflateEnd(&zs);
  if (zc) ZSTD_freeCCtx(zc);
}

void ParallelCompressor::isal_block(Job& job, const uint8_t* in, size_t n, void* stream, std::vector<uint8_t>& level_buf) {
#ifdef CARRIER_HAVE_ISAL
  // As the zlib path: a fresh stream per block primed with the previous 32 KiB, ended with a sync flush (the last
  // block with the final one), so the bytes depend only on the input and the level.
  const Isal* api = isal();
  isal_zstream& s = *static_cast<isal_zstream*>(stream);
  api->init(&s);
  s.level = static_cast<uint32_t>(isal_level_);
  s.level_buf = level_buf.data();
  s.level_buf_size = static_cast<uint32_t>(level_buf.size());
  s.gzip_flag = IGZIP_DEFLATE;
  s.flush = job.last ? NO_FLUSH : SYNC_FLUSH;
  s.end_of_stream = job.last ? 1 : 0;
  if (!job.dict.empty() && api->set_dict(&s, job.dict.data(), static_cast<uint32_t>(job.dict.size())) != COMP_OK) {
    fail("CARRIER_INTERNAL", "isal_deflate_set_dict failed");
  }
  job.out.resize(n + n / 8 + (64 << 10));
  s.next_in = const_cast<uint8_t*>(in);
  s.avail_in = static_cast<uint32_t>(n);
  s.next_out = job.out.data();
  s.avail_out = static_cast<uint32_t>(job.out.size());
  for (;;) {
    if (api->deflate(&s) != COMP_OK) fail("CARRIER_INTERNAL", "isal_deflate failed");
    bool complete = job.last ? s.internal_state.state == ZSTATE_END : (s.avail_in == 0 && s.avail_out > 0);
    if (complete) break;
    size_t used = job.out.size() - s.avail_out;
    job.out.resize(job.out.size() * 2);
    s.next_out = job.out.data() + used;
    s.avail_out = static_cast<uint32_t>(job.out.size() - used);
  }
  job.out.resize(job.out.size() - s.avail_out);
#else
  (void)job, (void)in, (void)n, (void)stream, (void)level_buf;
  fail("CARRIER_INTERNAL", "built without ISA-L");
#endif
}

void ParallelCompressor::writer() {
  pthread_setname_np(pthread_self(), "carrier-compout");
  try {
    uint32_t crc = 0;
    uint64_t size = 0;
    if (kind_ == Compression::Gzip) {
      uint8_t h[10];
      gzip_header(h, isal_level_ > 0 ? 0 : level_);
      sink_(h, sizeof(h));
    }
    for (;;) {
      std::unique_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] {
          return stopping_ || (!jobs_.empty() && jobs_.front()->state == Job::Done) || (input_done_ && jobs_.empty());
        });
        if (stopping_) return;
        if (jobs_.empty()) break;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        cv_.notify_all();  // room for another block
      }
      if (!job->out.empty()) sink_(job->out.data(), job->out.size());
      if (kind_ == Compression::Gzip) {
        crc = static_cast<uint32_t>(crc32_combine64(crc, job->crc, static_cast<z_off64_t>(job->in_len)));
        size += job->in_len;
        if (job->last) {
          uint8_t t[8];
          le32(t, crc);
          le32(t + 4, static_cast<uint32_t>(size));  // ISIZE: the length modulo 2^32
          sink_(t, sizeof(t));
        }
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    output_done_ = true;
    cv_.notify_all();
  } catch (...) {
    record(current_failure());
  }
}

}  // namespace carrier
