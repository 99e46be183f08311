// ParallelCompressor round trip over arbitrary bytes: the first byte picks gzip/zstd/none, the thread count (1-4) and
// the level; the second the block size (1 byte to 64 KiB, so inputs span many blocks and every seam is crossed).
// The output, decoded by the Decoder (multi-member gzip, multi-frame zstd), must be the input; and a second run with
// another thread count must give the same bytes.
#include <cstring>
#include <vector>

#include "../common.h"
#include "../decoder.h"
#include "../parallel_compressor.h"
#include "fuzz_common.h"

namespace {

class VectorSink : public carrier::DecodeSink {
 public:
  // Grows by 64 KiB at a time; only the first `used` bytes are output (space() may be asked for and not used).
  uint8_t* space(size_t* avail) override {
    out.resize(used + 65536);
    *avail = 65536;
    return out.data() + used;
  }
  void commit(size_t n) override { used += n; }
  std::vector<uint8_t> out;
  size_t used = 0;
};

std::vector<uint8_t> compress(carrier::Compression kind, int level, int threads, size_t block, const uint8_t* data,
                              size_t size) {
  std::vector<uint8_t> out;
  carrier::ParallelCompressor pc(
      kind, level, threads, [&](const uint8_t* p, size_t n) { out.insert(out.end(), p, p + n); }, block);
  carrier_fuzz::Chunker chunks(data, size);
  size_t fed = 0;
  while (fed < size) {
    size_t n = chunks.next(size - fed);
    pc.write(data + fed, n);
    fed += n;
  }
  pc.finish();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const carrier::Compression kinds[] = {carrier::Compression::Gzip, carrier::Compression::Zstd,
                                               carrier::Compression::None, carrier::Compression::Gzip};
  carrier::Compression kind = kinds[data[0] & 3];
  int threads = 1 + ((data[0] >> 2) & 3);
  int level = kind == carrier::Compression::Zstd ? 1 + (data[0] >> 4) % 5 : (data[0] >> 4) % 10;
  static const size_t blocks[] = {1, 7, 512, 4096, 65536, 100, 33000, 2};
  size_t block = blocks[data[1] & 7];
  data += 2;
  size -= 2;
  std::vector<uint8_t> packed = compress(kind, level, threads, block, data, size);
  if (compress(kind, level, 1 + threads % 4, block, data, size) != packed) {
    carrier_fuzz::invariant_failed("the output depends on the thread count");
  }
  VectorSink sink;
  carrier::Decoder decoder(kind);
  decoder.feed(packed.data(), packed.size(), sink);
  decoder.finish(sink);
  if (sink.used != size || (size && memcmp(sink.out.data(), data, size) != 0)) {
    carrier_fuzz::invariant_failed("the compressed stream does not decode to its input");
  }
  return 0;
}
