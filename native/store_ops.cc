// Small store primitives the JS side cannot do itself: fcntl OFD record locks (the locks podman's
// containers/storage takes with F_SETLKW conflict with these), syncfs, and a directory ext4 places in a block group
// of its own (makeSpreadDir). Nothing here blocks the event loop:
// a lock that is free is taken at once with F_OFD_SETLK (no disk I/O involved); a contended one is waited for on a
// thread of its own, so a long wait for another process never occupies a libuv pool thread that fs calls need.
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <napi.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <memory>
#include <thread>
#include <vector>

#include "apply_job.h"
#include "common.h"
#include "napi_util.h"
#include "promise_job.h"

namespace carrier {
namespace {

struct flock whole_file(short type) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;  // to the end of the file, however long it grows
  fl.l_pid = 0;  // required for OFD locks
  return fl;
}

Failure errno_failure(int err, const char* syscall) {
  Failure f;
  f.code = errno_name(err);
  f.errnum = err;
  f.syscall = syscall;
  f.message = std::string(syscall) + " failed: " + strerror(err);
  return f;
}

// The failure as a plain object; src/store/lock.ts turns it into a CarrierError.
Napi::Object errno_error(Napi::Env env, int err, const char* syscall) { return failure_to_js(env, errno_failure(err, syscall)); }

struct Waiter {
  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction tsfn;
  int fd;
  short type;
  int err = 0;
  explicit Waiter(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

// lockFile(fd, exclusive, wait) -> Promise<boolean>: true once held; false only when !wait and it is taken.
Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  short type = info[1].ToBoolean().Value() ? F_WRLCK : F_RDLCK;
  bool wait = info[2].ToBoolean().Value();
  struct flock fl = whole_file(type);
  int rc;
  do rc = fcntl(fd, F_OFD_SETLK, &fl);
  while (rc < 0 && errno == EINTR);
  if (rc == 0 || !(errno == EAGAIN || errno == EACCES) || !wait) {
    auto d = Napi::Promise::Deferred::New(env);
    if (rc == 0)
      d.Resolve(Napi::Boolean::New(env, true));
    else if (errno == EAGAIN || errno == EACCES)
      d.Resolve(Napi::Boolean::New(env, false));
    else
      d.Reject(errno_error(env, errno, "fcntl(F_OFD_SETLK)"));
    return d.Promise();
  }
  auto* w = new Waiter(env);
  w->fd = fd;
  w->type = type;
  w->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                          "carrier-lock-wait", 0, 1);
  Napi::Promise promise = w->deferred.Promise();
  std::thread([w] {
    struct flock fl = whole_file(w->type);
    int r;
    do r = fcntl(w->fd, F_OFD_SETLKW, &fl);
    while (r < 0 && errno == EINTR);
    w->err = r < 0 ? errno : 0;
    w->tsfn.BlockingCall([w](Napi::Env env, Napi::Function) {
      if (w->err == 0)
        w->deferred.Resolve(Napi::Boolean::New(env, true));
      else
        w->deferred.Reject(errno_error(env, w->err, "fcntl(F_OFD_SETLKW)"));
      w->tsfn.Release();
      delete w;
    });
  }).detach();
  return promise;
}

// unlockFile(fd) -> undefined, or the failure: drops this open file description's lock. Never blocks.
Napi::Value UnlockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct flock fl = whole_file(F_UNLCK);
  if (fcntl(fd, F_OFD_SETLK, &fl) < 0) return errno_error(env, errno, "fcntl(F_OFD_SETLK)");
  return env.Undefined();
}

// syncFs(fd) -> Promise<void>: flush the whole filesystem holding fd (layers are written without per-file fsync).
Napi::Value SyncFs(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  return PromiseJob::run(info.Env(), [fd] {
    if (syncfs(fd) < 0) throw Fail(errno_failure(errno, "syncfs"));
  });
}

// Sets or clears FS_TOPDIR_FL on an open directory; false where the file system has no such flag.
bool set_topdir(int fd, bool on) {
  int flags = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) return false;
  bool has = (flags & FS_TOPDIR_FL) != 0;
  if (has == on) return true;
  flags = on ? (flags | FS_TOPDIR_FL) : (flags & ~FS_TOPDIR_FL);
  return ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
}

// makeSpreadDir(parent, name, mode) -> Promise<boolean>: mkdir parent/name (EEXIST when it exists), placed where ext4
// places a top-level directory rather than beside its parent. ext4 puts a directory's files, and its subdirectories,
// in the block group of the directory; a directory it treats as top-level (a child of the root or of a directory
// flagged FS_TOPDIR_FL) goes to a group chosen from the hash of its name among those with room. Without a journal,
// ext4 skips every inode deleted in the last minutes (up to 5) on each allocation, scanning them from the start of
// the group: a layer extracted where the previous copy of it was just removed pays that scan for every file
// (quadratic: seconds of system time for a few thousand files). So the directory is made under a random name while
// `parent` carries the flag (the name picks the group), then renamed to `name`, and the parent's flag is restored.
// Resolves true when placed so, false when the file system has no such flag (then it is a plain mkdir).
bool make_spread_dir(const std::string& parent, const std::string& name, mode_t mode) {
  Fd dir(open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.valid()) throw Fail(errno_failure(errno, "open"));
  int flags = 0;
  bool had = ioctl(dir.get(), FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_TOPDIR_FL) != 0;
  if (!had && !set_topdir(dir.get(), true)) {
    if (mkdirat(dir.get(), name.c_str(), mode) != 0) throw Fail(errno_failure(errno, "mkdir"));
    return false;
  }
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) r = static_cast<uint64_t>(time(nullptr)) * 2654435761u ^ getpid();
  char tmp[40];
  snprintf(tmp, sizeof tmp, ".spread-%016llx", static_cast<unsigned long long>(r));
  int err = mkdirat(dir.get(), tmp, mode) != 0 ? errno : 0;
  if (!had) set_topdir(dir.get(), false);
  if (err) throw Fail(errno_failure(err, "mkdir"));
  if (renameat2(dir.get(), tmp, dir.get(), name.c_str(), RENAME_NOREPLACE) != 0) {
    err = errno;
    unlinkat(dir.get(), tmp, AT_REMOVEDIR);
    throw Fail(errno_failure(err, "renameat2"));
  }
  return true;
}

Napi::Value MakeSpreadDir(const Napi::CallbackInfo& info) {
  std::string parent = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  mode_t mode = static_cast<mode_t>(info[2].As<Napi::Number>().Uint32Value());
  auto spread = std::make_shared<bool>(false);
  return PromiseJob::run(
      info.Env(), [parent, name, mode, spread] { *spread = make_spread_dir(parent, name, mode); },
      [spread](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, *spread); });
}

// One step of fsBatch.
struct FsStep {
  enum Kind { kMkdir, kMkdirParents, kSpreadDir, kChmod, kSymlink, kWrite } kind;
  std::string path;    // the directory, file or link made or changed (spreadDir: the parent)
  std::string name;    // spreadDir: the new directory's name
  std::string target;  // symlink: what the link says
  std::string data;    // write: the file's bytes
  mode_t mode = 0;
};

// mkdir -p: `path` and every missing parent, each `mode` less the umask; a directory that exists is fine.
void mkdir_parents(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) == 0) return;
  int err = errno;
  struct stat st;
  if (err == EEXIST && stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return;
  if (err != ENOENT) throw Fail(errno_failure(err, "mkdir"));
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos || slash == 0) throw Fail(errno_failure(err, "mkdir"));
  mkdir_parents(path.substr(0, slash), mode);
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) throw Fail(errno_failure(errno, "mkdir"));
}

void run_step(const FsStep& st) {
  switch (st.kind) {
    case FsStep::kMkdir:
      if (mkdir(st.path.c_str(), st.mode) != 0) throw Fail(errno_failure(errno, "mkdir"));
      return;
    case FsStep::kMkdirParents:
      mkdir_parents(st.path, st.mode);
      return;
    case FsStep::kSpreadDir:
      make_spread_dir(st.path, st.name, st.mode);
      return;
    case FsStep::kChmod:
      if (chmod(st.path.c_str(), st.mode) != 0) throw Fail(errno_failure(errno, "chmod"));
      return;
    case FsStep::kSymlink:
      if (symlink(st.target.c_str(), st.path.c_str()) != 0) throw Fail(errno_failure(errno, "symlink"));
      return;
    case FsStep::kWrite: {
      Fd fd(open(st.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, st.mode));
      if (!fd.valid()) throw Fail(errno_failure(errno, "open"));
      write_all(fd.get(), reinterpret_cast<const uint8_t*>(st.data.data()), st.data.size(), st.path, "write");
      if (close(fd.release()) != 0) throw Fail(errno_failure(errno, "close"));
      return;
    }
  }
}

// fsBatch(steps) -> Promise<void>: small file-system steps run in order by one pool job, stopping at the first that
// fails. Each step is { op, path, mode?, name?, target?, data? } with op one of mkdir (fails when it exists),
// mkdirp (mkdir -p), spreadDir (makeSpreadDir of `name` in the directory `path`), chmod, symlink (`path` says
// `target`), write (create or truncate, then the bytes of `data`, a string or a Buffer). A layer's directories and
// files, made one fs/promises call at a time, were five round trips on the way of every `carrier create`. Rejects
// with a NativeFailure whose `path` is the failed step's and `step` its index.
Napi::Value FsBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array list = info[0].As<Napi::Array>();
  auto steps = std::make_shared<std::vector<FsStep>>();
  steps->reserve(list.Length());
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Object o = list.Get(i).As<Napi::Object>();
    std::string op = o.Get("op").As<Napi::String>().Utf8Value();
    FsStep st{};
    if (op == "mkdir") st.kind = FsStep::kMkdir;
    else if (op == "mkdirp") st.kind = FsStep::kMkdirParents;
    else if (op == "spreadDir") st.kind = FsStep::kSpreadDir;
    else if (op == "chmod") st.kind = FsStep::kChmod;
    else if (op == "symlink") st.kind = FsStep::kSymlink;
    else if (op == "write") st.kind = FsStep::kWrite;
    else {
      Napi::TypeError::New(env, "fsBatch: unknown op " + op).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    st.path = o.Get("path").As<Napi::String>().Utf8Value();
    Napi::Value mode = o.Get("mode");
    st.mode = static_cast<mode_t>(mode.IsNumber() ? mode.As<Napi::Number>().Uint32Value() : 0777);
    if (st.kind == FsStep::kSpreadDir) st.name = o.Get("name").As<Napi::String>().Utf8Value();
    if (st.kind == FsStep::kSymlink) st.target = o.Get("target").As<Napi::String>().Utf8Value();
    if (st.kind == FsStep::kWrite) {
      Napi::Value data = o.Get("data");
      if (data.IsBuffer()) {
        auto b = data.As<Napi::Buffer<char>>();
        st.data.assign(b.Data(), b.Length());
      } else {
        st.data = data.As<Napi::String>().Utf8Value();
      }
    }
    steps->push_back(std::move(st));
  }
  auto failed_at = std::make_shared<int64_t>(-1);
  auto failure = std::make_shared<Failure>();
  return PromiseJob::run(
      env,
      [steps, failed_at, failure] {
        for (size_t i = 0; i < steps->size(); ++i) {
          try {
            run_step((*steps)[i]);
          } catch (...) {
            *failed_at = static_cast<int64_t>(i);
            *failure = current_failure();
            if (failure->path.empty()) failure->path = (*steps)[i].path;
            return;
          }
        }
      },
      [failed_at, failure](Napi::Env env) -> Napi::Value {
        if (*failed_at < 0) return env.Undefined();
        // a failed step settles the promise rejected, with the step's index beside the failure
        Napi::Object f = failure_to_js(env, *failure);
        f.Set("step", Napi::Number::New(env, static_cast<double>(*failed_at)));
        auto d = Napi::Promise::Deferred::New(env);
        d.Reject(f);
        return d.Promise();
      });
}


// readFile(path) -> Promise<Buffer>: a whole file read by one pool job (open, reads until one returns nothing, close).
// The store's record files, a layer's link and lower, a container's carrier.json and an image's config are each
// read so by a short command; through fs/promises each was three round trips (open, read, close), every one a wake
// of a pool thread and of the event loop. Fails with the errno of the call that failed (the JS side adds the path).
Napi::Value ReadFile(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  auto data = std::make_shared<std::vector<char>>();
  return PromiseJob::run(
      info.Env(),
      [path, data] {
        Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
        if (!fd.valid()) throw Fail(errno_failure(errno, "open"));
        size_t used = 0;
        data->resize(64 * 1024);
        for (;;) {
          if (used == data->size()) data->resize(data->size() * 2);
          ssize_t n = read(fd.get(), data->data() + used, data->size() - used);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) throw Fail(errno_failure(errno, "read"));
          if (n == 0) break;
          used += static_cast<size_t>(n);
        }
        data->resize(used);
      },
      [data](Napi::Env env) -> Napi::Value {
        // handed over without a copy: the vector lives until the Buffer is collected
        auto* owned = new std::vector<char>(std::move(*data));
        if (owned->empty()) {
          delete owned;
          return Napi::Buffer<char>::New(env, 0);
        }
        return Napi::Buffer<char>::New(env, owned->data(), owned->size(), [](Napi::Env, char*, std::vector<char>* v) { delete v; }, owned);
      });
}

// ---- removeTree ---------------------------------------------------------------------------------------------------

// Grants the owner rwx on an open directory that lacks it (a layer's read-only directories, emptied rootless).
void grant_owner(int fd) {
  struct stat st;
  if (fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700) fchmod(fd, (st.st_mode & 07777) | 0700);
}

// Unlinks `name` in `dir` (AT_REMOVEDIR for a directory); a directory without write permission is granted it once.
void unlink_in(int dir, const char* name, int flags) {
  for (int attempt = 0;; ++attempt) {
    if (unlinkat(dir, name, flags) == 0 || errno == ENOENT) return;
    if ((errno == EACCES || errno == EPERM) && attempt == 0) {
      grant_owner(dir);
      continue;
    }
    throw Fail(errno_failure(errno, flags ? "rmdir" : "unlink"));
  }
}

// Opens the directory `name` in `dir` without following a link; one that cannot be read or searched is granted it.
int open_subdir(int dir, const char* name) {
  int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == EACCES) {
    struct stat st;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0) fchmodat(dir, name, (st.st_mode & 07777) | 0700, 0);
    fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (fd < 0) throw Fail(errno_failure(errno, "open"));
  return fd;
}

// Empties the open directory `fd`, depth first, staying on the device `dev` (a mount point inside is refused, never
// emptied through the mount).
void empty_dir(int fd, dev_t dev) {
  struct stat st;
  if (fstat(fd, &st) != 0) throw Fail(errno_failure(errno, "fstat"));
  if (st.st_dev != dev) throw Fail(errno_failure(EXDEV, "rmdir"));
  int copy = dup(fd);
  if (copy < 0) throw Fail(errno_failure(errno, "dup"));
  DIR* d = fdopendir(copy);
  if (d == nullptr) {
    int err = errno;
    close(copy);
    throw Fail(errno_failure(err, "opendir"));
  }
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, closedir);
  for (;;) {
    errno = 0;
    struct dirent* e = readdir(d);
    if (e == nullptr) {
      if (errno != 0) throw Fail(errno_failure(errno, "readdir"));
      return;
    }
    const char* name = e->d_name;
    if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat cst;
      if (fstatat(fd, name, &cst, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        throw Fail(errno_failure(errno, "lstat"));
      }
      is_dir = S_ISDIR(cst.st_mode);
    }
    if (!is_dir) {
      unlink_in(fd, name, 0);
      continue;
    }
    Fd child(open_subdir(fd, name));
    empty_dir(child.get(), dev);
    child.reset();
    unlink_in(fd, name, AT_REMOVEDIR);
  }
}

// removeTree(path) -> Promise<void>: rm -rf on a pool thread, one round trip where fs.rm walks a tree with one per
// call: never follows a link, grants the owner rwx on directories it must empty (rootless layers hold read-only
// ones), stops with EXDEV at a mount inside rather than emptying it, resolves when `path` is not there. Open
// descriptors grow with depth: a tree deeper than the descriptor limit fails with EMFILE. On any failure the JS side
// (src/fs/remove.ts) goes on path by path, as it did before this existed.
Napi::Value RemoveTree(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  return PromiseJob::run(info.Env(), [path] {
    size_t slash = path.find_last_of('/');
    std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    if (base.empty() || base == "." || base == "..") throw Fail(errno_failure(EINVAL, "rmdir"));
    Fd dir(open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) {
      if (errno == ENOENT) return;
      throw Fail(errno_failure(errno, "open"));
    }
    struct stat st;
    if (fstatat(dir.get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return;
      throw Fail(errno_failure(errno, "lstat"));
    }
    if (!S_ISDIR(st.st_mode)) {
      unlink_in(dir.get(), base.c_str(), 0);
      return;
    }
    Fd top(open_subdir(dir.get(), base.c_str()));
    empty_dir(top.get(), st.st_dev);
    top.reset();
    unlink_in(dir.get(), base.c_str(), AT_REMOVEDIR);
  });
}
}  // namespace

void init_store_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("lockFile", Napi::Function::New(env, LockFile, "lockFile"));
  exports.Set("unlockFile", Napi::Function::New(env, UnlockFile, "unlockFile"));
  exports.Set("syncFs", Napi::Function::New(env, SyncFs, "syncFs"));
  exports.Set("readFile", Napi::Function::New(env, ReadFile, "readFile"));
  exports.Set("fsBatch", Napi::Function::New(env, FsBatch, "fsBatch"));
  exports.Set("removeTree", Napi::Function::New(env, RemoveTree, "removeTree"));
  exports.Set("makeSpreadDir", Napi::Function::New(env, MakeSpreadDir, "makeSpreadDir"));
}

}  // namespace carrier
