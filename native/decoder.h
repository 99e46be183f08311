// Streaming decompression: gzip (multi-member), zstd (multi-frame) or none, detected by magic bytes on 'auto'.
// Output goes straight into the consumer's buffer; the consumer flushes it when full.
#pragma once

#include <zlib.h>
#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "gzip_isal.h"

namespace carrier {

enum class Compression { Auto, None, Gzip, Zstd };

Compression parse_compression(const std::string& name);
const char* compression_name(Compression c);

class DecodeSink {
 public:
  virtual ~DecodeSink() = default;
  // Where the next decompressed bytes go, and how many fit (at least 1).
  virtual uint8_t* space(size_t* avail) = 0;
  // `n` bytes were written at the pointer space() returned.
  virtual void commit(size_t n) = 0;
  // Copies `n` bytes in, in as many space()/commit() turns as it takes.
  void put(const uint8_t* in, size_t n) {
    while (n > 0) {
      size_t avail = 0;
      uint8_t* out = space(&avail);
      size_t k = n < avail ? n : avail;
      memcpy(out, in, k);
      commit(k);
      in += k;
      n -= k;
    }
  }
};

class Decoder {
 public:
  // `inflater` picks the gzip decoder; Default is igzip where libisal.so.2 loads, zlib otherwise (gzip_isal.h).
  explicit Decoder(Compression c, Inflater inflater = Inflater::Default) : kind_(c), inflater_(inflater) {}
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  void feed(const uint8_t* in, size_t n, DecodeSink& sink);
  // End of input: fails with CARRIER_TRUNCATED when a stream is unfinished.
  void finish(DecodeSink& sink);
  Compression kind() const { return kind_; }
  // The gzip decoder in use, once a gzip stream has started.
  Inflater inflater() const { return inflater_; }

 private:
  void start(Compression c);
  void feed_known(const uint8_t* in, size_t n, DecodeSink& sink);
  void gzip(const uint8_t* in, size_t n, DecodeSink& sink);
  size_t inflate_once(DecodeSink& sink);  // one inflate call; returns the bytes produced
  void zstd(const uint8_t* in, size_t n, DecodeSink& sink, bool flushing);

  Compression kind_;
  Inflater inflater_;
  bool started_ = false;
  uint8_t magic_[4];
  size_t magic_len_ = 0;
  uint64_t fed_ = 0;

  z_stream zs_{};
  bool zs_init_ = false;
  bool member_done_ = false;
  std::unique_ptr<IsalGunzip> isal_;

  ZSTD_DCtx* zd_ = nullptr;
  size_t zstd_pending_ = 0;  // last ZSTD_decompressStream hint: 0 means a frame ended cleanly
};

}  // namespace carrier
