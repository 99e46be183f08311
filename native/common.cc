#include "common.h"

#include <unistd.h>

#include "crc64.h"

namespace carrier {

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

Fd::~Fd() { reset(); }

void Fd::reset() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void write_all(int fd, const uint8_t* p, size_t n, const std::string& path, const char* what) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail_errno(errno, "write", path, what);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

std::string hex(const uint8_t* data, size_t len) {
  static const char digits[] = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (size_t i = 0; i < len; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 15];
  }
  return out;
}

// strerrorname_np needs glibc 2.32; the prebuild must load on older systems, so name the errnos ourselves.
const char* errno_name(int err) {
  switch (err) {
#define E(name) \
  case name:    \
    return #name;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF) E(ECHILD) E(EAGAIN)
    E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL)
    E(ENFILE) E(EMFILE) E(ENOTTY) E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK) E(EPIPE) E(ERANGE)
    E(ENAMETOOLONG) E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENODATA) E(EOVERFLOW) E(EOPNOTSUPP) E(EDQUOT)
    E(ETIMEDOUT) E(ECONNRESET) E(ECANCELED)
#undef E
    default:
      return "EUNKNOWN";
  }
}

namespace {

struct Crc64Tables {
  uint64_t t[8][256];
  Crc64Tables() {
    const uint64_t poly = 0xD800000000000000ULL;  // ISO, reflected
    for (int i = 0; i < 256; ++i) {
      uint64_t c = static_cast<uint64_t>(i);
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
      t[0][i] = c;
    }
    for (int i = 0; i < 256; ++i) {
      uint64_t c = t[0][i];
      for (int s = 1; s < 8; ++s) {
        c = t[0][c & 0xff] ^ (c >> 8);
        t[s][i] = c;
      }
    }
  }
};

const Crc64Tables& tables() {
  static const Crc64Tables tabs;
  return tabs;
}

}  // namespace

// Slicing-by-8: eight bytes per step, several times faster than the byte loop on large file contents.
void Crc64::update(const uint8_t* p, size_t n) {
  const auto& T = tables().t;
  uint64_t c = crc_;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);  // little-endian host (x86-64, arm64)
    c ^= w;
    c = T[7][c & 0xff] ^ T[6][(c >> 8) & 0xff] ^ T[5][(c >> 16) & 0xff] ^ T[4][(c >> 24) & 0xff] ^
        T[3][(c >> 32) & 0xff] ^ T[2][(c >> 40) & 0xff] ^ T[1][(c >> 48) & 0xff] ^ T[0][c >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) c = T[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  crc_ = c;
}

}  // namespace carrier
