// Shared helpers for the libFuzzer targets: a deterministic chunking schedule derived from the input itself, so the
// seed files stay plain tar/gzip/zstd files and every crash reproduces from its input alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace carrier_fuzz {

class Chunker {
 public:
  Chunker(const uint8_t* data, size_t size) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a of the input
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211ull;
    state_ = h;
  }
  // The next chunk length: 1..remaining, mostly small, sometimes everything that is left.
  size_t next(size_t remaining) {
    if (remaining == 0) return 0;
    uint64_t r = rand64();
    size_t n;
    switch (r & 3) {
      case 0: n = 1 + (r >> 8) % 7; break;       // tiny: splits headers and fields
      case 1: n = 1 + (r >> 8) % 600; break;     // around a block
      case 2: n = 1 + (r >> 8) % 70000; break;   // around a buffer
      default: n = remaining; break;
    }
    return n < remaining ? n : remaining;
  }

 private:
  uint64_t rand64() {  // splitmix64
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

// An invariant the code under test broke: print and abort so libFuzzer records the input.
[[noreturn]] inline void invariant_failed(const char* what) {
  fprintf(stderr, "FUZZ INVARIANT FAILED: %s\n", what);
  abort();
}

}  // namespace carrier_fuzz
