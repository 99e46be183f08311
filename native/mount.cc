// Overlay mounts. Two kernel interfaces, each run on a thread of its own (a mount can wait on the filesystems below
// it for a long time and must hold neither the event loop nor a libuv pool thread):
//
//  - the new mount API: fsopen("overlay") gives a filesystem context; each lower layer is appended with its own
//    fsconfig("lowerdir+", dir) (Linux 6.8), so the layer count is limited only by the kernel (500), not by the
//    one-page option string of mount(2); then upperdir/workdir/userxattr and the other parameters, CMD_CREATE,
//    fsmount and move_mount onto the target. When a step fails, the context's log (read() on the fsopen fd) holds
//    the kernel's own explanation, which goes into the error along with the parameter that was refused.
//  - mount(2) with a monolithic "lowerdir=a:b,upperdir=…,workdir=…" string, which must fit in one page. The paths
//    are kept short by making them relative to a directory (the store's overlay/, so lowers read "l/<26 chars>").
//    The kernel resolves relative option paths against the calling thread's cwd; a process-wide chdir() would race
//    with every other thread, so the mounting thread first leaves the process's shared fs_struct with
//    unshare(CLONE_FS) and then fchdir()s. That cwd belongs to this short-lived thread alone and dies with it.
//
// The syscalls of the new API are called through syscall(2): glibc gained wrappers only in 2.36 and the prebuild
// must not need symbols newer than 2.33. Their constants are defined here, with the kernel's ABI values, rather than
// taken from <linux/mount.h>, which clashes with <sys/mount.h> on some glibc versions.
#include <fcntl.h>
#include <napi.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "apply_job.h"
#include "common.h"
#include "napi_util.h"

#ifndef SYS_move_mount
#define SYS_move_mount 429  // the syscall numbers of the mount API are the same on every architecture
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif

namespace carrier {
namespace {

// Kernel ABI values (include/uapi/linux/mount.h).
constexpr unsigned kFsopenCloexec = 0x1;
constexpr unsigned kFsconfigSetFlag = 0;
constexpr unsigned kFsconfigSetString = 1;
constexpr unsigned kFsconfigCmdCreate = 6;
constexpr unsigned kFsmountCloexec = 0x1;
constexpr unsigned kMoveMountFEmptyPath = 0x4;
constexpr unsigned kAttrRdonly = 0x1, kAttrNosuid = 0x2, kAttrNodev = 0x4, kAttrNoexec = 0x8;
constexpr unsigned kAttrAtimeMask = 0x70, kAttrNoatime = 0x10, kAttrStrictatime = 0x20, kAttrNodiratime = 0x80;
constexpr unsigned kAttrNosymfollow = 0x200000;
constexpr unsigned long kMsNosymfollow = 256;  // MS_NOSYMFOLLOW (5.10), missing from older headers
constexpr size_t kFsconfigStringMax = 255;     // fsconfig copies at most 256 bytes of a string value, NUL included
constexpr size_t kMaxLowers = 500;             // overlayfs's OVL_MAX_STACK

int sys_fsopen(const char* fs, unsigned flags) { return static_cast<int>(syscall(SYS_fsopen, fs, flags)); }
int sys_fsconfig(int fd, unsigned cmd, const char* key, const char* value, int aux) {
  return static_cast<int>(syscall(SYS_fsconfig, fd, cmd, key, value, aux));
}
int sys_fsmount(int fd, unsigned flags, unsigned attrs) { return static_cast<int>(syscall(SYS_fsmount, fd, flags, attrs)); }
int sys_move_mount(int from_dfd, const char* from, int to_dfd, const char* to, unsigned flags) {
  return static_cast<int>(syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags));
}

struct MountSpec {
  bool use_fsopen = true;
  bool lowerdir_plus = true;  // fsopen: one "lowerdir+" per layer, else one "lowerdir" string (≤ 255 bytes)
  std::vector<std::string> lowers;
  std::string upper, work, target, cwd;
  bool userxattr = false;
  bool read_only = false;
  std::vector<std::string> options;
};

// A mount option either sets a per-mount attribute (ro, nodev, ...) or is a parameter of the overlay filesystem.
struct Attr {
  const char* name;
  unsigned attr_set, attr_clear;        // fsmount attributes
  unsigned long ms_set, ms_clear;       // mount(2) flags
};
constexpr Attr kAttrs[] = {
    {"ro", kAttrRdonly, 0, MS_RDONLY, 0},
    {"rw", 0, kAttrRdonly, 0, MS_RDONLY},
    {"nosuid", kAttrNosuid, 0, MS_NOSUID, 0},
    {"suid", 0, kAttrNosuid, 0, MS_NOSUID},
    {"nodev", kAttrNodev, 0, MS_NODEV, 0},
    {"dev", 0, kAttrNodev, 0, MS_NODEV},
    {"noexec", kAttrNoexec, 0, MS_NOEXEC, 0},
    {"exec", 0, kAttrNoexec, 0, MS_NOEXEC},
    {"noatime", kAttrNoatime, kAttrAtimeMask, MS_NOATIME, MS_RELATIME | MS_STRICTATIME},
    {"relatime", 0, kAttrAtimeMask, MS_RELATIME, MS_NOATIME | MS_STRICTATIME},
    {"strictatime", kAttrStrictatime, kAttrAtimeMask, MS_STRICTATIME, MS_NOATIME | MS_RELATIME},
    {"nodiratime", kAttrNodiratime, 0, MS_NODIRATIME, 0},
    {"diratime", 0, kAttrNodiratime, 0, MS_NODIRATIME},
    {"nosymfollow", kAttrNosymfollow, 0, kMsNosymfollow, 0},
    {"symfollow", 0, kAttrNosymfollow, 0, kMsNosymfollow},
};

const Attr* attr_of(const std::string& opt) {
  for (const Attr& a : kAttrs)
    if (opt == a.name) return &a;
  return nullptr;
}

// Everything the kernel logged into a filesystem context, one message a line, without the "e "/"w "/"i " prefixes.
std::string drain_log(int fsfd) {
  std::string out;
  char buf[4096];
  for (int i = 0; i < 64; ++i) {
    ssize_t n = read(fsfd, buf, sizeof(buf) - 1);
    if (n <= 0) break;  // ENODATA: the log is empty
    std::string msg(buf, static_cast<size_t>(n));
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    if (msg.size() > 2 && msg[1] == ' ') msg = msg.substr(2);
    if (!out.empty()) out += "; ";
    out += msg;
  }
  return out;
}

[[noreturn]] void mount_failure(int err, const char* syscall, const std::string& path, const std::string& what,
                                const std::string& kernel_log = {}) {
  Failure f;
  f.code = errno_name(err);
  f.errnum = err;
  f.syscall = syscall;
  f.path = path;
  f.message = what + ": " + strerror(err);
  if (!kernel_log.empty()) f.message += " (kernel: " + kernel_log + ")";
  throw Fail(std::move(f));
}

[[noreturn]] void limit_failure(const std::string& path, const std::string& message) {
  Failure f;
  f.code = "CARRIER_LIMIT_EXCEEDED";
  f.path = path;
  f.message = message;
  throw Fail(std::move(f));
}

// The escapes overlayfs's option parser undoes: '\' before ',' ':' and '\' itself.
std::string escaped(const std::string& p) {
  std::string out;
  out.reserve(p.size());
  for (char c : p) {
    if (c == ',' || c == ':' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string unquoted(const std::string& v) {
  return v.size() >= 2 && v.front() == '"' && v.back() == '"' ? v.substr(1, v.size() - 2) : v;
}

// A path usable as an fsconfig string value: itself when short enough, else /proc/self/fd/N of an O_PATH fd
// (kept open in `holders` until the filesystem is created; the kernel follows the magic link to the directory).
std::string fsconfig_path(const std::string& p, std::vector<Fd>& holders) {
  if (p.size() <= kFsconfigStringMax) return p;
  int fd = open(p.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) mount_failure(errno, "open", p, "opening the overlay directory '" + p + "'");
  holders.emplace_back(fd);
  return "/proc/self/fd/" + std::to_string(fd);
}

std::string describe_target(const MountSpec& s) { return "mounting overlay on '" + s.target + "'"; }

void mount_with_fsopen(const MountSpec& s) {
  if (s.lowers.size() > kMaxLowers)
    limit_failure(s.target, describe_target(s) + ": " + std::to_string(s.lowers.size()) +
                                " lower layers, more than overlayfs allows (" + std::to_string(kMaxLowers) + ")");
  int raw = sys_fsopen("overlay", kFsopenCloexec);
  if (raw < 0) mount_failure(errno, "fsopen", s.target, describe_target(s) + ": fsopen(\"overlay\") failed");
  Fd fs(raw);
  std::vector<Fd> holders;

  auto set = [&](unsigned cmd, const std::string& key, const std::string* value, const std::string& path) {
    if (sys_fsconfig(fs.get(), cmd, key.c_str(), value ? value->c_str() : nullptr, 0) == 0) return;
    int err = errno;
    std::string log = drain_log(fs.get());
    std::string what = describe_target(s) + ": the kernel refused " + key;
    if (value) what += " '" + (path.empty() ? *value : path) + "'";
    mount_failure(err, "fsconfig", path.empty() ? s.target : path, what, log);
  };

  if (s.lowerdir_plus) {
    for (const std::string& dir : s.lowers) {
      std::string v = fsconfig_path(dir, holders);
      set(kFsconfigSetString, "lowerdir+", &v, dir);
    }
  } else {
    std::string joined;
    for (const std::string& dir : s.lowers) joined += (joined.empty() ? "" : ":") + escaped(dir);
    if (joined.size() > kFsconfigStringMax)
      limit_failure(s.target, describe_target(s) + ": the lowerdir list is " + std::to_string(joined.size()) +
                                  " bytes; without lowerdir+ (Linux 6.8) fsconfig takes at most " +
                                  std::to_string(kFsconfigStringMax));
    set(kFsconfigSetString, "lowerdir", &joined, {});
  }
  if (!s.upper.empty()) {
    std::string v = fsconfig_path(s.upper, holders);
    set(kFsconfigSetString, "upperdir", &v, s.upper);
  }
  if (!s.work.empty()) {
    std::string v = fsconfig_path(s.work, holders);
    set(kFsconfigSetString, "workdir", &v, s.work);
  }
  if (s.userxattr) set(kFsconfigSetFlag, "userxattr", nullptr, {});

  unsigned attrs = s.read_only ? kAttrRdonly : 0;
  for (const std::string& opt : s.options) {
    if (const Attr* a = attr_of(opt)) {
      attrs = (attrs & ~a->attr_clear) | a->attr_set;
      continue;
    }
    size_t eq = opt.find('=');
    if (eq == std::string::npos) {
      set(kFsconfigSetFlag, opt, nullptr, {});
    } else {
      std::string value = unquoted(opt.substr(eq + 1));
      set(kFsconfigSetString, opt.substr(0, eq), &value, {});
    }
  }
  if (s.read_only) attrs |= kAttrRdonly;

  if (sys_fsconfig(fs.get(), kFsconfigCmdCreate, nullptr, nullptr, 0) != 0) {
    int err = errno;
    std::string log = drain_log(fs.get());
    // overlayfs reports most of its reasons with pr_err (the kernel log), not into the context's log.
    mount_failure(err, "fsconfig", s.target,
                  describe_target(s) + ": creating the overlay filesystem failed" +
                      (log.empty() && err == EINVAL ? " (the kernel's reason is in its log: dmesg)" : ""),
                  log);
  }
  raw = sys_fsmount(fs.get(), kFsmountCloexec, attrs);
  if (raw < 0) {
    int err = errno;
    mount_failure(err, "fsmount", s.target, describe_target(s) + ": fsmount failed", drain_log(fs.get()));
  }
  Fd mnt(raw);
  if (sys_move_mount(mnt.get(), "", AT_FDCWD, s.target.c_str(), kMoveMountFEmptyPath) != 0)
    mount_failure(errno, "move_mount", s.target, describe_target(s) + ": attaching the mount failed");
  // Closing `mnt` now is fine: the mount is attached to the tree and no longer depends on the fd.
}

// Where an ENOENT/ENOTDIR from mount(2) came from: the first of the named directories that is not one.
std::optional<std::string> first_missing(const MountSpec& s) {
  auto bad = [](const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) != 0 || !S_ISDIR(st.st_mode);
  };
  auto shown = [&](const std::string& p) { return p[0] == '/' || s.cwd.empty() ? p : s.cwd + "/" + p; };
  for (const std::string& l : s.lowers)
    if (bad(l)) return shown(l);
  if (!s.upper.empty() && bad(s.upper)) return shown(s.upper);
  if (!s.work.empty() && bad(s.work)) return shown(s.work);
  if (bad(s.target)) return shown(s.target);
  return std::nullopt;
}

void mount_with_mount2(const MountSpec& s) {
  if (s.lowers.size() > kMaxLowers)
    limit_failure(s.target, describe_target(s) + ": " + std::to_string(s.lowers.size()) +
                                " lower layers, more than overlayfs allows (" + std::to_string(kMaxLowers) + ")");
  std::string data = "lowerdir=";
  for (size_t i = 0; i < s.lowers.size(); ++i) data += (i ? ":" : "") + escaped(s.lowers[i]);
  if (!s.upper.empty()) data += ",upperdir=" + escaped(s.upper);
  if (!s.work.empty()) data += ",workdir=" + escaped(s.work);
  if (s.userxattr) data += ",userxattr";
  unsigned long flags = s.read_only ? MS_RDONLY : 0;
  for (const std::string& opt : s.options) {
    if (const Attr* a = attr_of(opt)) {
      flags = (flags & ~a->ms_clear) | a->ms_set;
      continue;
    }
    data += "," + opt;
  }
  if (s.read_only) flags |= MS_RDONLY;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (data.size() >= page)
    limit_failure(s.target, describe_target(s) + ": the mount(2) option string for " + std::to_string(s.lowers.size()) +
                                " lower layers is " + std::to_string(data.size()) + " bytes, over the one-page limit (" +
                                std::to_string(page - 1) +
                                "); the new mount API (Linux 6.8, lowerdir+) or fuse-overlayfs has no such limit");

  if (!s.cwd.empty()) {
    // This thread only: leave the fs_struct shared with the rest of the process, then change directory.
    if (unshare(CLONE_FS) != 0) mount_failure(errno, "unshare", s.cwd, describe_target(s) + ": unshare(CLONE_FS) failed");
    int dfd = open(s.cwd.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) mount_failure(errno, "open", s.cwd, describe_target(s) + ": opening '" + s.cwd + "' failed");
    Fd dir(dfd);
    if (fchdir(dir.get()) != 0) mount_failure(errno, "fchdir", s.cwd, describe_target(s) + ": fchdir failed");
  }
  if (mount("overlay", s.target.c_str(), "overlay", flags, data.c_str()) != 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      if (auto missing = first_missing(s))
        mount_failure(err, "mount", *missing, describe_target(s) + ": '" + *missing + "' is not a directory");
    }
    mount_failure(err, "mount", s.target,
                  describe_target(s) + ": mount(2) failed" +
                      (err == EINVAL ? " (the kernel's reason is in its log: dmesg)" : std::string()));
  }
}

// ---- running work on a thread of its own and settling a promise with the outcome -------------------------------

struct Task {
  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction tsfn;
  std::function<void()> work;
  std::function<Napi::Value(Napi::Env)> result;  // called on the main thread after `work` succeeded
  std::optional<Failure> failure;
  explicit Task(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

Napi::Promise run_on_own_thread(Napi::Env env, const char* name, std::function<void()> work,
                                std::function<Napi::Value(Napi::Env)> result) {
  auto* t = new Task(env);
  t->work = std::move(work);
  t->result = std::move(result);
  Napi::Promise promise = t->deferred.Promise();
  t->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), name, 0, 1);
  auto finish = [](Napi::Env env, Task* t) {
    if (t->failure)
      t->deferred.Reject(failure_to_js(env, *t->failure));
    else
      t->deferred.Resolve(t->result ? t->result(env) : env.Undefined());
  };
  try {
    std::thread([t, finish] {
      try {
        t->work();
      } catch (...) {
        t->failure = current_failure();
      }
      t->tsfn.BlockingCall([t, finish](Napi::Env env, Napi::Function) {
        finish(env, t);
        t->tsfn.Release();
        delete t;
      });
    }).detach();
  } catch (const std::exception& e) {
    Failure f;
    f.code = "CARRIER_INTERNAL";
    f.message = std::string("cannot start a thread: ") + e.what();
    t->failure = std::move(f);
    finish(env, t);
    t->tsfn.Release();
    delete t;
  }
  return promise;
}

std::vector<std::string> string_array(const Napi::Object& o, const char* key) {
  std::vector<std::string> out;
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).ToString().Utf8Value());
  return out;
}

// overlayMount(spec) -> Promise<void>; rejects with a NativeFailure.
Napi::Value OverlayMount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "overlayMount: spec object expected");
  Napi::Object o = info[0].As<Napi::Object>();
  auto spec = std::make_shared<MountSpec>();
  spec->use_fsopen = string_option(o, "method", "fsopen") == "fsopen";
  spec->lowerdir_plus = o.Get("lowerdirPlus").IsUndefined() ? true : o.Get("lowerdirPlus").ToBoolean().Value();
  spec->lowers = string_array(o, "lowerdirs");
  spec->upper = string_option(o, "upperdir");
  spec->work = string_option(o, "workdir");
  spec->target = string_option(o, "target");
  spec->cwd = string_option(o, "cwd");
  spec->userxattr = o.Get("userxattr").ToBoolean().Value();
  spec->read_only = o.Get("readOnly").ToBoolean().Value();
  spec->options = string_array(o, "options");
  return run_on_own_thread(
      env, "carrier-overlay-mount",
      [spec] {
        if (spec->target.empty()) fail("CARRIER_INVALID_ARGUMENT", "overlay mount: no target");
        if (spec->lowers.empty()) fail("CARRIER_INVALID_ARGUMENT", "overlay mount: no lower directories", spec->target);
        if (spec->use_fsopen)
          mount_with_fsopen(*spec);
        else
          mount_with_mount2(*spec);
      },
      nullptr);
}

// overlayUnmount(target, lazy) -> Promise<void>: umount2 without following a symlink at the target.
Napi::Value OverlayUnmount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string target = info[0].ToString().Utf8Value();
  bool lazy = info[1].ToBoolean().Value();
  return run_on_own_thread(
      env, "carrier-overlay-unmount",
      [target, lazy] {
        int flags = UMOUNT_NOFOLLOW | (lazy ? MNT_DETACH : 0);
        if (umount2(target.c_str(), flags) != 0) {
          int err = errno;
          mount_failure(err, "umount2", target,
                        "unmounting '" + target + "' failed" + (err == EINVAL ? " (nothing is mounted there)" : ""));
        }
      },
      nullptr);
}

struct Probe {
  bool fsopen = false;
  int fsopen_errno = 0;
  int lowerdir_plus = -1;  // -1: unknown (fsopen not permitted)
  int userxattr = -1;
};

// overlayProbe() -> Promise<{fsopen, fsopenErrno, lowerdirPlus: boolean|null, userxattr: boolean|null}>: asks a
// throwaway overlay context which parameters this kernel knows. Nothing is mounted.
Napi::Value OverlayProbe(const Napi::CallbackInfo& info) {
  auto probe = std::make_shared<Probe>();
  return run_on_own_thread(
      info.Env(), "carrier-overlay-probe",
      [probe] {
        int raw = sys_fsopen("overlay", kFsopenCloexec);
        if (raw < 0) {
          probe->fsopen_errno = errno;
          return;
        }
        Fd fs(raw);
        probe->fsopen = true;
        // An unknown parameter fails with EINVAL and "Unknown parameter" in the log; "/" exists everywhere.
        auto known = [&](unsigned cmd, const char* key, const char* value) {
          if (sys_fsconfig(fs.get(), cmd, key, value, 0) == 0) return 1;
          int err = errno;
          std::string log = drain_log(fs.get());
          return err == EINVAL && log.find("nknown parameter") != std::string::npos ? 0 : 1;
        };
        probe->lowerdir_plus = known(kFsconfigSetString, "lowerdir+", "/");
        probe->userxattr = known(kFsconfigSetFlag, "userxattr", nullptr);
      },
      [probe](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("fsopen", probe->fsopen);
        o.Set("fsopenErrno", probe->fsopen_errno ? Napi::Value(Napi::String::New(env, errno_name(probe->fsopen_errno)))
                                                 : env.Null());
        o.Set("lowerdirPlus", probe->lowerdir_plus < 0 ? env.Null() : Napi::Boolean::New(env, probe->lowerdir_plus == 1));
        o.Set("userxattr", probe->userxattr < 0 ? env.Null() : Napi::Boolean::New(env, probe->userxattr == 1));
        return o;
      });
}

}  // namespace

void init_mount(Napi::Env env, Napi::Object exports) {
  exports.Set("overlayMount", Napi::Function::New(env, OverlayMount, "overlayMount"));
  exports.Set("overlayUnmount", Napi::Function::New(env, OverlayUnmount, "overlayUnmount"));
  exports.Set("overlayProbe", Napi::Function::New(env, OverlayProbe, "overlayProbe"));
}

}  // namespace carrier
