#include "decoder.h"

#include <cstring>

#include "common.h"

namespace carrier {

Compression parse_compression(const std::string& name) {
  if (name == "gzip") return Compression::Gzip;
  if (name == "zstd") return Compression::Zstd;
  if (name == "none") return Compression::None;
  return Compression::Auto;
}

const char* compression_name(Compression c) {
  switch (c) {
    case Compression::Gzip:
      return "gzip";
    case Compression::Zstd:
      return "zstd";
    default:
      return "none";
  }
}

Decoder::~Decoder() {
  if (zs_init_) inflateEnd(&zs_);
  if (zd_) ZSTD_freeDCtx(zd_);
}

void Decoder::start(Compression c) {
  kind_ = c;
  started_ = true;
  if (c == Compression::Gzip) {
    inflater_ = resolve_inflater(inflater_);
    if (inflater_ == Inflater::Isal) {
      isal_ = std::make_unique<IsalGunzip>();
      return;
    }
    if (inflateInit2(&zs_, 15 + 16) != Z_OK) fail("ENOMEM", "cannot initialise gzip decompression");
    zs_init_ = true;
  } else if (c == Compression::Zstd) {
    zd_ = ZSTD_createDCtx();
    if (!zd_) fail("ENOMEM", "cannot initialise zstd decompression");
    zstd_pending_ = 1;
  }
}

void Decoder::feed(const uint8_t* in, size_t n, DecodeSink& sink) {
  if (n == 0) return;
  fed_ += n;
  if (started_) return feed_known(in, n, sink);
  if (kind_ != Compression::Auto) {
    start(kind_);
    return feed_known(in, n, sink);
  }
  // Auto: gather four bytes to look at the magic number, then replay them.
  size_t take = std::min(n, sizeof(magic_) - magic_len_);
  memcpy(magic_ + magic_len_, in, take);
  magic_len_ += take;
  if (magic_len_ < sizeof(magic_)) return;
  static const uint8_t kGzip[2] = {0x1f, 0x8b};
  static const uint8_t kZstd[4] = {0x28, 0xb5, 0x2f, 0xfd};
  // A zstd stream may begin with a skippable frame (magic 0x184D2A50..5F, little-endian): zstd:chunked layers put
  // their metadata in such frames. The decoder skips them like any other frame.
  bool skippable = (magic_[0] & 0xf0) == 0x50 && magic_[1] == 0x2a && magic_[2] == 0x4d && magic_[3] == 0x18;
  if (memcmp(magic_, kGzip, 2) == 0) {
    start(Compression::Gzip);
  } else if (memcmp(magic_, kZstd, 4) == 0 || skippable) {
    start(Compression::Zstd);
  } else {
    start(Compression::None);
  }
  feed_known(magic_, magic_len_, sink);
  feed_known(in + take, n - take, sink);
}

void Decoder::feed_known(const uint8_t* in, size_t n, DecodeSink& sink) {
  if (n == 0) return;
  switch (kind_) {
    case Compression::Gzip:
      return gzip(in, n, sink);
    case Compression::Zstd:
      return zstd(in, n, sink, false);
    default:
      return sink.put(in, n);
  }
}

void Decoder::gzip(const uint8_t* in, size_t n, DecodeSink& sink) {
  if (isal_) return isal_->feed(in, n, sink);
  zs_.next_in = const_cast<Bytef*>(in);
  zs_.avail_in = static_cast<uInt>(n);
  while (zs_.avail_in > 0) {
    if (member_done_) {
      // Another member follows (concatenated gzip, as pigz and `cat a.gz b.gz` make).
      inflateReset(&zs_);
      member_done_ = false;
    }
    inflate_once(sink);
  }
  // Input is consumed, but inflate may still hold output it could not place: drain it.
  while (!member_done_ && inflate_once(sink) > 0) {
  }
}

size_t Decoder::inflate_once(DecodeSink& sink) {
  size_t avail = 0;
  uint8_t* out = sink.space(&avail);
  zs_.next_out = out;
  zs_.avail_out = static_cast<uInt>(avail);
  int ret = inflate(&zs_, Z_NO_FLUSH);
  size_t produced = avail - zs_.avail_out;
  if (produced) sink.commit(produced);
  if (ret == Z_STREAM_END) {
    member_done_ = true;
  } else if (ret == Z_DATA_ERROR || ret == Z_NEED_DICT) {
    fail("CARRIER_BAD_COMPRESSION", std::string("corrupt gzip stream: ") + (zs_.msg ? zs_.msg : "data error"));
  } else if (ret == Z_MEM_ERROR) {
    fail("ENOMEM", "out of memory in gzip decompression");
  } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
    fail("CARRIER_BAD_COMPRESSION", "gzip decompression failed");
  }
  return produced;
}

void Decoder::zstd(const uint8_t* in, size_t n, DecodeSink& sink, bool flushing) {
  ZSTD_inBuffer input{in, n, 0};
  for (;;) {
    size_t avail = 0;
    uint8_t* out = sink.space(&avail);
    ZSTD_outBuffer output{out, avail, 0};
    size_t consumed_before = input.pos;
    size_t ret = ZSTD_decompressStream(zd_, &output, &input);
    if (ZSTD_isError(ret)) {
      fail("CARRIER_BAD_COMPRESSION", std::string("corrupt zstd stream: ") + ZSTD_getErrorName(ret));
    }
    // A call that moved nothing reports what the *next* frame needs; only progress tells where we are.
    if (output.pos || input.pos != consumed_before) zstd_pending_ = ret;
    if (output.pos) sink.commit(output.pos);
    bool out_full = output.pos == output.size;
    if (input.pos == input.size && !out_full) break;
    if (flushing && output.pos == 0) break;
  }
}

void Decoder::finish(DecodeSink& sink) {
  if (!started_) {
    if (fed_ == 0) {
      if (kind_ == Compression::Auto || kind_ == Compression::None) {
        kind_ = Compression::None;
        return;  // an empty uncompressed blob; the tar reader decides whether that is acceptable
      }
      fail("CARRIER_TRUNCATED", std::string("empty ") + compression_name(kind_) + " stream");
    }
    // Fewer than four bytes in all: too short for any magic number, so treat as uncompressed.
    start(Compression::None);
    feed_known(magic_, magic_len_, sink);
  }
  if (kind_ == Compression::Gzip && !(isal_ ? isal_->complete() : member_done_)) {
    fail("CARRIER_TRUNCATED", "the gzip stream ends before its end-of-stream marker");
  }
  if (kind_ == Compression::Zstd) {
    if (zstd_pending_ != 0) zstd(nullptr, 0, sink, true);  // output that did not fit earlier
    if (zstd_pending_ != 0) fail("CARRIER_TRUNCATED", "the zstd stream ends in the middle of a frame");
  }
}

}  // namespace carrier
