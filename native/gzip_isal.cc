#include "gzip_isal.h"

#include <dlfcn.h>
#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "common.h"
#include "decoder.h"

// The declarations only (types and prototypes; decltype never references a symbol): the library itself is dlopen'ed.
// A build machine without Debian's libisal-dev builds an addon that always uses zlib.
#if __has_include(<isa-l/igzip_lib.h>)
#include <isa-l/igzip_lib.h>
#define CARRIER_HAVE_ISAL 1
#else
#define CARRIER_HAVE_ISAL 0
#endif

namespace carrier {

namespace {

#if CARRIER_HAVE_ISAL
struct IsalApi {
  decltype(&::isal_inflate_init) init;
  decltype(&::isal_inflate_reset) reset;
  decltype(&::isal_inflate) inflate;
};
#else
struct IsalApi {};
#endif

struct Loaded {
  const IsalApi* api = nullptr;
  std::string why;  // when api is null
};

const Loaded& load_isal() {
  static Loaded loaded;
  static std::once_flag once;
  std::call_once(once, [] {
#if CARRIER_HAVE_ISAL
    const char* err = nullptr;
    void* lib = isal_library(&err);
    if (!lib) {
      loaded.why = err;
      return;
    }
    static IsalApi api;
    api.init = reinterpret_cast<decltype(api.init)>(dlsym(lib, "isal_inflate_init"));
    api.reset = reinterpret_cast<decltype(api.reset)>(dlsym(lib, "isal_inflate_reset"));
    api.inflate = reinterpret_cast<decltype(api.inflate)>(dlsym(lib, "isal_inflate"));
    if (!api.init || !api.reset || !api.inflate) {
      loaded.why = "libisal.so.2 lacks isal_inflate";
      return;
    }
    loaded.api = &api;
#else
    loaded.why = "this build of the addon has no igzip support (libisal-dev was not installed when it was built)";
#endif
  });
  return loaded;
}

enum class Choice { Auto, Zlib, Isal, Invalid };

Choice choice() {
  static const Choice c = [] {
    const char* v = getenv("CARRIER_INFLATE");
    if (!v || !*v || strcmp(v, "auto") == 0) return Choice::Auto;
    if (strcmp(v, "zlib") == 0) return Choice::Zlib;
    if (strcmp(v, "isal") == 0) return Choice::Isal;
    return Choice::Invalid;
  }();
  return c;
}

}  // namespace

void* isal_library(const char** why) {
  static std::string error;
  static void* const lib = [] {
    void* h = dlopen("libisal.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      error = e ? e : "libisal.so.2 cannot be loaded";
    }
    return h;
  }();
  if (!lib && why) *why = error.c_str();
  return lib;
}

void prime_inflater_choice() { choice(); }

Inflater resolve_inflater(Inflater requested) {
  Choice c = requested == Inflater::Zlib   ? Choice::Zlib
             : requested == Inflater::Isal ? Choice::Isal
                                           : choice();
  switch (c) {
    case Choice::Zlib:
      return Inflater::Zlib;
    case Choice::Auto:
      return load_isal().api ? Inflater::Isal : Inflater::Zlib;
    case Choice::Isal:
      if (!load_isal().api) {
        fail("CARRIER_UNSUPPORTED", "CARRIER_INFLATE=isal, but igzip cannot be used: " + load_isal().why +
                                        ". Install Debian's libisal2, or unset CARRIER_INFLATE");
      }
      return Inflater::Isal;
    default:
      fail("CARRIER_INVALID_CONFIG", "CARRIER_INFLATE must be zlib, isal or auto");
  }
}

const char* inflater_name(Inflater inflater) { return inflater == Inflater::Isal ? "isal" : "zlib"; }

#if CARRIER_HAVE_ISAL

namespace {

// Where the reader is in the current member. The header phases follow zlib's inflate() state machine.
enum class Phase { Fixed, ExtraLen, Extra, Name, Comment, HeaderCrc, Body, Done };

constexpr uint8_t kFlagHcrc = 0x02, kFlagExtra = 0x04, kFlagName = 0x08, kFlagComment = 0x10;

[[noreturn]] void corrupt(const char* what) { fail("CARRIER_BAD_COMPRESSION", std::string("corrupt gzip stream: ") + what); }

uint32_t le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }

}  // namespace

struct IsalGunzip::State {
  const IsalApi* api;
  inflate_state st;
  Phase phase = Phase::Fixed;
  uint8_t fixed[10];      // the fixed header: magic, method, flags, mtime, xfl, os
  uint8_t field[2];       // FHCRC
  size_t got = 0;         // bytes of the current fixed-size field read so far
  uint32_t remaining = 0; // bytes of FEXTRA still to skip
  uLong hcrc = 0;         // CRC-32 of the header so far, for FHCRC
  uint8_t tail[8] = {};   // the last 8 bytes of the input before the current feed, to read a failed trailer
  size_t tail_len = 0;

  void next_member() {
    phase = Phase::Fixed;
    got = 0;
    remaining = 0;
    hcrc = crc32(0, nullptr, 0);
  }
  void after(Phase done) {
    uint8_t flags = fixed[3];
    got = 0;
    if (done < Phase::ExtraLen && (flags & kFlagExtra)) {
      phase = Phase::ExtraLen;
    } else if (done < Phase::Name && (flags & kFlagName)) {
      phase = Phase::Name;
    } else if (done < Phase::Comment && (flags & kFlagComment)) {
      phase = Phase::Comment;
    } else if (done < Phase::HeaderCrc && (flags & kFlagHcrc)) {
      phase = Phase::HeaderCrc;
    } else {
      api->reset(&st);
      st.crc_flag = ISAL_GZIP_NO_HDR_VER;  // raw deflate, then the CRC-32 and ISIZE trailer checked by igzip
      phase = Phase::Body;
    }
  }
};

IsalGunzip::IsalGunzip() : s_(new State) {
  s_->api = load_isal().api;
  if (!s_->api) fail("CARRIER_UNSUPPORTED", "igzip cannot be used: " + load_isal().why);
  s_->api->init(&s_->st);
  s_->next_member();
}

IsalGunzip::~IsalGunzip() = default;

bool IsalGunzip::complete() const { return s_->phase == Phase::Done; }

void IsalGunzip::feed(const uint8_t* in, size_t n, DecodeSink& sink) {
  State& s = *s_;
  size_t i = 0;
  while (i < n) {
    if (s.phase == Phase::Done) s.next_member();  // another member follows (pigz, `cat a.gz b.gz`)
    if (s.phase != Phase::Body) {
      i += header(in + i, n - i);
      continue;
    }
    size_t consumed = 0;
    if (!body(in, n, i, sink, &consumed)) fail("CARRIER_BAD_COMPRESSION", "gzip decompression made no progress");
    i += consumed;
  }
  // The input is consumed, but igzip may still hold output it could not place: drain it.
  size_t none = 0;
  while (s.phase == Phase::Body && body(in, n, n, sink, &none)) {
  }
  // Keep the last bytes seen, so a trailer that failed its check can be read back (it may straddle two feeds).
  size_t keep = std::min(n, sizeof(s.tail));
  size_t old = std::min(s.tail_len, sizeof(s.tail) - keep);
  memmove(s.tail, s.tail + s.tail_len - old, old);
  memcpy(s.tail + old, in + n - keep, keep);
  s.tail_len = old + keep;
}

size_t IsalGunzip::header(const uint8_t* in, size_t n) {
  State& s = *s_;
  size_t i = 0;
  while (i < n && s.phase != Phase::Body) {
    uint8_t b = in[i++];
    if (s.phase != Phase::HeaderCrc) s.hcrc = crc32(s.hcrc, &b, 1);
    switch (s.phase) {
      case Phase::Fixed:
        s.fixed[s.got++] = b;
        if (s.got == 2 && (s.fixed[0] != 0x1f || s.fixed[1] != 0x8b)) corrupt("incorrect header check");
        if (s.got == 4) {
          if (s.fixed[2] != Z_DEFLATED) corrupt("unknown compression method");
          if (s.fixed[3] & 0xe0) corrupt("unknown header flags set");
        }
        if (s.got == sizeof(s.fixed)) s.after(Phase::Fixed);
        break;
      case Phase::ExtraLen:
        s.remaining |= static_cast<uint32_t>(b) << (8 * s.got);
        if (++s.got == 2) {
          s.got = 0;
          s.phase = Phase::Extra;
          if (s.remaining == 0) s.after(Phase::Extra);
        }
        break;
      case Phase::Extra:
        if (--s.remaining == 0) s.after(Phase::Extra);
        break;
      case Phase::Name:
      case Phase::Comment:
        if (b == 0) s.after(s.phase);
        break;
      case Phase::HeaderCrc:
        s.field[s.got++] = b;
        if (s.got == 2) {
          if (static_cast<uLong>(s.field[0] | s.field[1] << 8) != (s.hcrc & 0xffff)) corrupt("header crc mismatch");
          s.after(Phase::HeaderCrc);
        }
        break;
      default:
        break;
    }
  }
  return i;
}

// One igzip call on in[offset, n): sets *consumed, and answers whether anything happened (input taken, output made,
// or the member ended). Moves to Done when the member's trailer checked out.
bool IsalGunzip::body(const uint8_t* in, size_t n, size_t offset, DecodeSink& sink, size_t* consumed_out) {
  State& s = *s_;
  size_t avail = 0;
  uint8_t* out = sink.space(&avail);
  if (avail > UINT32_MAX) avail = UINT32_MAX;
  s.st.next_in = const_cast<uint8_t*>(in + offset);
  s.st.avail_in = static_cast<uint32_t>(std::min<size_t>(n - offset, UINT32_MAX));
  uint32_t given_in = s.st.avail_in;
  s.st.next_out = out;
  s.st.avail_out = static_cast<uint32_t>(avail);
  int ret = s.api->inflate(&s.st);
  size_t produced = avail - s.st.avail_out;
  size_t consumed = given_in - s.st.avail_in;
  *consumed_out = consumed;
  if (produced) sink.commit(produced);
  switch (ret) {
    case ISAL_DECOMP_OK:
      break;
    case ISAL_INCORRECT_CHECKSUM:
      checksum_failed(in, offset + consumed);
    case ISAL_INVALID_BLOCK:
      corrupt("invalid deflate block");
    case ISAL_INVALID_SYMBOL:
      corrupt("invalid deflate code");
    case ISAL_INVALID_LOOKBACK:
      corrupt("invalid distance too far back");
    default:
      fail("CARRIER_BAD_COMPRESSION", "gzip decompression failed");
  }
  if (s.st.block_state == ISAL_BLOCK_FINISH) {
    s.phase = Phase::Done;
    return true;
  }
  return consumed > 0 || produced > 0;
}

// igzip says only that the trailer disagrees; zlib says which half, CRC-32 first. The trailer is the 8 bytes before
// `end` in this feed, preceded by the tail of the previous feeds when the trailer straddles them.
void IsalGunzip::checksum_failed(const uint8_t* in, size_t end) const {
  const State& s = *s_;
  uint8_t trailer[8];
  size_t from_in = std::min<size_t>(end, sizeof(trailer));
  size_t from_tail = sizeof(trailer) - from_in;
  if (from_tail > s.tail_len) corrupt("incorrect data check");
  memcpy(trailer, s.tail + s.tail_len - from_tail, from_tail);
  memcpy(trailer + from_tail, in + end - from_in, from_in);
  if (le32(trailer) != s.st.crc) corrupt("incorrect data check");
  corrupt("incorrect length check");
}

#else

struct IsalGunzip::State {};
IsalGunzip::IsalGunzip() { fail("CARRIER_UNSUPPORTED", "igzip cannot be used: " + load_isal().why); }
IsalGunzip::~IsalGunzip() = default;
bool IsalGunzip::complete() const { return false; }
void IsalGunzip::feed(const uint8_t*, size_t, DecodeSink&) {}

#endif

}  // namespace carrier
