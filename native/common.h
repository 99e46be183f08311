// Shared plumbing for the native core: the failure type every worker throws, and small helpers.
// Nothing here knows about JavaScript; the N-API glue converts a Failure into a CarrierError.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <utility>

namespace carrier {

// A failure with a stable code. OS failures use the errno name as code and carry errno/syscall.
struct Failure {
  std::string code;
  std::string message;
  std::string path;     // path inside the layer, when one is concerned
  std::string syscall;  // the OS call that failed, when one did
  int errnum = 0;
};

class Fail : public std::exception {
 public:
  explicit Fail(Failure f) : f_(std::move(f)) {}
  const char* what() const noexcept override { return f_.message.c_str(); }
  const Failure& failure() const { return f_; }

 private:
  Failure f_;
};

[[noreturn]] inline void fail(const char* code, std::string message, std::string path = {}) {
  Failure f;
  f.code = code;
  f.message = std::move(message);
  f.path = std::move(path);
  throw Fail(std::move(f));
}

const char* errno_name(int err);

// Throws an OS failure: code is the errno name ("ENOSPC"), message says what was being done and where.
[[noreturn]] inline void fail_errno(int err, const char* syscall, const std::string& path,
                                    const std::string& what = {}) {
  Failure f;
  f.code = errno_name(err);
  f.errnum = err;
  f.syscall = syscall;
  f.path = path;
  f.message = (what.empty() ? std::string(syscall) : what) + " failed for '" + path + "': " + strerror(err);
  throw Fail(std::move(f));
}

// The failure being handled; call only inside a catch block.
inline Failure current_failure() {
  Failure out;
  try {
    throw;
  } catch (const Fail& f) {
    return f.failure();
  } catch (const std::bad_alloc&) {
    out.code = "ENOMEM";
    out.message = "out of memory";
  } catch (const std::exception& e) {
    out.code = "CARRIER_INTERNAL";
    out.message = e.what();
  } catch (...) {
    out.code = "CARRIER_INTERNAL";
    out.message = "unknown native failure";
  }
  return out;
}

// RAII file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept;
  ~Fd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset();

 private:
  int fd_ = -1;
};

std::string hex(const uint8_t* data, size_t len);

// write(2) until all of it is written; fails with the errno (ENOSPC, EIO...) naming `path` and `what`.
void write_all(int fd, const uint8_t* p, size_t n, const std::string& path, const char* what);

}  // namespace carrier
