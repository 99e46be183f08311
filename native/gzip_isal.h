// gzip decoding with ISA-L's igzip, about twice as fast as zlib's inflate on image layers. libisal.so.2 is opened at
// run time (dlopen, at the first gzip stream), so neither the addon nor its prebuilds link it: where it is missing,
// gzip streams go through zlib as before. CARRIER_INFLATE=zlib|isal forces one inflater (isal then fails where the
// library cannot be loaded), for tests and measurements.
//
// The semantics are zlib's, so either inflater gives the same results and the same errors: multi-member streams,
// the header parsed here with zlib's checks in zlib's order (magic after two bytes, method and flags after four,
// the header CRC), the deflate data and the CRC-32/ISIZE trailer by igzip.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace carrier {

class DecodeSink;

enum class Inflater { Default, Zlib, Isal };

// What Default means in this process: CARRIER_INFLATE when set (read once), else Isal where libisal.so.2 loads and
// Zlib otherwise. Throws CARRIER_INVALID_CONFIG for an unknown CARRIER_INFLATE value and CARRIER_UNSUPPORTED when
// isal is forced but cannot be loaded.
Inflater resolve_inflater(Inflater requested);
const char* inflater_name(Inflater inflater);
// libisal.so.2, opened once per process (dlopen, RTLD_LOCAL, never closed) for igzip here and ISA-L's deflate in
// parallel_compressor.cc; null where it cannot be loaded, with the reason in *why when given.
void* isal_library(const char** why = nullptr);
// Reads CARRIER_INFLATE now (call it on the main thread at load, so worker threads never call getenv).
void prime_inflater_choice();

class IsalGunzip {
 public:
  IsalGunzip();
  ~IsalGunzip();
  IsalGunzip(const IsalGunzip&) = delete;
  IsalGunzip& operator=(const IsalGunzip&) = delete;

  void feed(const uint8_t* in, size_t n, DecodeSink& sink);
  // End of input: true when the last member ended with its trailer.
  bool complete() const;

 private:
  struct State;
  size_t header(const uint8_t* in, size_t n);
  bool body(const uint8_t* in, size_t n, size_t offset, DecodeSink& sink, size_t* consumed);
  [[noreturn]] void checksum_failed(const uint8_t* in, size_t end) const;

  std::unique_ptr<State> s_;
};

}  // namespace carrier
