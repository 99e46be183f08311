// Decoder over arbitrary bytes: the first byte picks auto/gzip/zstd/none (so the rest can be a real compressed
// stream), the rest is fed in input-derived chunks into a sink that discards, then finish(). Output is capped so a
// small decompression bomb costs time, not the whole fuzzing budget. A gzip stream goes through both inflaters, zlib
// and igzip (libisal.so.2, which must be installed: Debian's libisal2), with the same chunks and window: a stream
// one of them decodes, the other must decode too, to the same bytes.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "../common.h"
#include "../decoder.h"
#include "fuzz_common.h"

namespace {

class DiscardSink : public carrier::DecodeSink {
 public:
  explicit DiscardSink(size_t window) : window_(window), max_(window < 4096 ? 256u << 10 : 32u << 20) {}
  uint8_t* space(size_t* avail) override {
    *avail = window_;
    return buf_;
  }
  void commit(size_t n) override {
    if (n > window_) carrier_fuzz::invariant_failed("commit() of more than space() offered");
    for (size_t i = 0; i < n; i++) hash_ = (hash_ ^ buf_[i]) * 1099511628211ull;
    total_ += n;
    if (total_ > max_) carrier::fail("FUZZ_OUTPUT_CAP", "output cap reached");
  }
  uint64_t total() const { return total_; }
  uint64_t hash() const { return hash_; }

 private:
  uint8_t buf_[65536];
  size_t window_;
  uint64_t max_;
  uint64_t total_ = 0;
  uint64_t hash_ = 1469598103934665603ull;
};

struct Outcome {
  bool ok = false;
  std::string code;
  uint64_t total = 0, hash = 0;
};

Outcome decode(carrier::Compression kind, carrier::Inflater inflater, size_t window, const uint8_t* data, size_t size) {
  DiscardSink sink(window);
  carrier::Decoder decoder(kind, inflater);
  carrier_fuzz::Chunker chunks(data, size);
  Outcome out;
  try {
    size_t fed = 0;
    while (fed < size) {
      size_t n = chunks.next(size - fed);
      decoder.feed(data + fed, n, sink);
      fed += n;
    }
    decoder.finish(sink);
    out.ok = true;
  } catch (const carrier::Fail& f) {
    out.code = f.failure().code;
  }
  out.total = sink.total();
  out.hash = sink.hash();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const carrier::Compression kinds[] = {carrier::Compression::Auto, carrier::Compression::Gzip,
                                               carrier::Compression::Zstd, carrier::Compression::None};
  carrier::Compression kind = kinds[data[0] & 3];
  // Bits 2..3 pick the sink's window: 1 byte, 7 bytes, 4 KiB or 64 KiB.
  static const size_t windows[] = {1, 7, 4096, 65536};
  size_t window = windows[(data[0] >> 2) & 3];
  data++;
  size--;
  bool gzip = kind == carrier::Compression::Gzip || (kind == carrier::Compression::Auto && size >= 2 && data[0] == 0x1f &&
                                                      data[1] == 0x8b);
  if (!gzip) {
    decode(kind, carrier::Inflater::Default, window, data, size);
    return 0;
  }
  static bool checked = false;
  if (!checked) {
    checked = true;
    try {
      carrier::resolve_inflater(carrier::Inflater::Isal);
    } catch (const carrier::Fail& f) {
      fprintf(stderr, "fuzz_decoder: %s\n", f.what());
      abort();
    }
  }
  Outcome z = decode(kind, carrier::Inflater::Zlib, window, data, size);
  Outcome i = decode(kind, carrier::Inflater::Isal, window, data, size);
  if (z.code == "FUZZ_OUTPUT_CAP" || i.code == "FUZZ_OUTPUT_CAP") return 0;
  if (z.ok != i.ok) {
    fprintf(stderr, "zlib: %s, igzip: %s\n", z.ok ? "ok" : z.code.c_str(), i.ok ? "ok" : i.code.c_str());
    carrier_fuzz::invariant_failed("one inflater decoded a gzip stream the other refused");
  }
  if (z.ok && (z.total != i.total || z.hash != i.hash)) carrier_fuzz::invariant_failed("the inflaters decoded different bytes");
  return 0;
}
