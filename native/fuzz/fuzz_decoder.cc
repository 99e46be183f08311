// Decoder over arbitrary bytes: the first byte picks auto/gzip/zstd/none (so the rest can be a real compressed
// stream), the rest is fed in input-derived chunks into a sink that discards, then finish(). Output is capped so a
// small decompression bomb costs time, not the whole fuzzing budget.
#include <cstring>

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
    total_ += n;
    if (total_ > max_) carrier::fail("FUZZ_OUTPUT_CAP", "output cap reached");
  }

 private:
  uint8_t buf_[65536];
  size_t window_;
  uint64_t max_;
  uint64_t total_ = 0;
};

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
  DiscardSink sink(window);
  carrier::Decoder decoder(kind);
  carrier_fuzz::Chunker chunks(data, size);
  try {
    size_t fed = 0;
    while (fed < size) {
      size_t n = chunks.next(size - fed);
      decoder.feed(data + fed, n, sink);
      fed += n;
    }
    decoder.finish(sink);
  } catch (const carrier::Fail&) {
  }
  return 0;
}
