// CRC-64/ISO as Go's hash/crc64 computes it (reflected polynomial 0xD800000000000000, inverted in and out):
// tar-split records it, big-endian, for every file's content.
#pragma once

#include <cstddef>
#include <cstdint>

namespace carrier {

class Crc64 {
 public:
  void update(const uint8_t* p, size_t n);
  uint64_t value() const { return ~crc_; }
  void reset() { crc_ = ~uint64_t{0}; }
  // 8 bytes, big-endian, as tar-split stores it.
  void big_endian(uint8_t out[8]) const {
    uint64_t v = value();
    for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<uint8_t>(v);
  }

 private:
  uint64_t crc_ = ~uint64_t{0};
};

}  // namespace carrier
