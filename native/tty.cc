// Terminal input Carrier clears before an OCI runtime takes the terminal over. A terminal in canonical mode keeps an
// end-of-file (Ctrl-D, or what `script` sends when its own input ends) as a NUL marker in its input queue; once the
// runtime switches the terminal to raw mode, that marker is read as a real NUL byte and forwarded to the container,
// whose terminal echoes it before the command's output. Only such markers are dropped: text waiting in the queue
// stays for the container.
#include <fcntl.h>
#include <napi.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <string>

#include "apply_job.h"
#include "common.h"

namespace carrier {
namespace {

// discardTerminalEof(fd) -> number: how many pending end-of-file markers were dropped (0 when `fd` is not a terminal
// in canonical mode, or when text is waiting). Never blocks: the queue is read through a non-blocking descriptor of
// its own, so the shared one the runtime inherits keeps its flags.
Napi::Value DiscardTerminalEof(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct termios t;
  int pending = 0;
  if (tcgetattr(fd, &t) != 0 || !(t.c_lflag & ICANON)) return Napi::Number::New(env, 0);
  // In canonical mode FIONREAD counts the bytes of completed lines and leaves end-of-file markers out: 0 means that
  // a read can only return such a marker (or nothing).
  if (ioctl(fd, FIONREAD, &pending) != 0 || pending != 0) return Napi::Number::New(env, 0);
  std::string self = "/proc/self/fd/" + std::to_string(fd);
  int own = open(self.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (own < 0) return Napi::Number::New(env, 0);
  int dropped = 0;
  char buf[1];
  for (int i = 0; i < 64; ++i) {
    // -1 (EAGAIN): nothing more is pending. 1: a line was completed since FIONREAD (its first byte is lost).
    if (read(own, buf, sizeof(buf)) != 0) break;
    ++dropped;
  }
  close(own);
  return Napi::Number::New(env, dropped);
}

}  // namespace

void init_tty(Napi::Env env, Napi::Object exports) {
  exports.Set("discardTerminalEof", Napi::Function::New(env, DiscardTerminalEof, "discardTerminalEof"));
}

}  // namespace carrier
