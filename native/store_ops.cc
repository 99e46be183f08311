// Small store primitives the JS side cannot do itself: fcntl OFD record locks (the locks podman's
// containers/storage takes with F_SETLKW conflict with these), syncfs, a directory ext4 places in a block group
// of its own (makeSpreadDir), a record file's durable replacement in one pool job (writeFileAtomic), and a tree's
// removal in one (removeTree). Nothing here blocks the event loop:
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
#include <sys/types.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <thread>
#include <utility>
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

// The failure of an OS call on `path`, worded as Node words its fs errors ("ENOENT: no such file or directory, open
// '<path>'"), so a message reads the same whichever side failed.
void word_as_node(Failure& f, const std::string& path) {
  std::string reason = strerror(f.errnum);
  if (!reason.empty()) reason[0] = static_cast<char>(tolower(static_cast<unsigned char>(reason[0])));
  f.path = path;
  f.message = f.code + ": " + reason + ", " + f.syscall + " '" + path + "'";
}

[[noreturn]] void fail_at(int err, const char* syscall, const std::string& path) {
  Failure f = errno_failure(err, syscall);
  word_as_node(f, path);
  throw Fail(std::move(f));
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
            if (failure->errnum != 0) word_as_node(*failure, failure->path.empty() ? (*steps)[i].path : failure->path);
            else if (failure->path.empty()) failure->path = (*steps)[i].path;
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

// A file's bytes in malloc'd memory, neither zeroed nor touched beyond what was read: the buffer handed to JS as is.
struct WholeFile {
  char* data = nullptr;
  size_t size = 0;
  WholeFile() = default;
  WholeFile(const WholeFile&) = delete;
  WholeFile& operator=(const WholeFile&) = delete;
  ~WholeFile() { free(data); }
};

// A whole file's bytes: open, reads until one returns nothing, close. Fails with the errno of the call that failed.
// The buffer is sized by fstat (a byte more, so the read that meets the end finds room to say so): a short command
// reads a few small files (records, carrier.json, a link), and a 64 KiB buffer zeroed for each cost its page faults.
void read_whole(const std::string& path, WholeFile& out) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) fail_at(errno, "open", path);
  struct stat st;
  size_t cap = 4096;
  if (fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) cap = static_cast<size_t>(st.st_size) + 1;
  size_t used = 0;
  char* buf = static_cast<char*>(malloc(cap));
  if (buf == nullptr) fail_at(ENOMEM, "read", path);
  out.data = buf;
  for (;;) {
    if (used == cap) {
      char* grown = static_cast<char*>(realloc(out.data, cap * 2));
      if (grown == nullptr) fail_at(ENOMEM, "read", path);
      out.data = grown;
      cap *= 2;
    }
    ssize_t n = read(fd.get(), out.data + used, cap - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_at(errno, "read", path);
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  out.size = used;
}

// The bytes as a Buffer, handed over without a copy: freed when the Buffer is collected.
Napi::Value bytes_to_js(Napi::Env env, WholeFile& file) {
  if (file.size == 0) return Napi::Buffer<char>::New(env, 0);
  char* data = file.data;
  file.data = nullptr;
  return Napi::Buffer<char>::New(env, data, file.size, [](Napi::Env, char* d) { free(d); });
}

// readFile(path) -> Promise<Buffer>: a whole file read by one pool job. The store's record files, a layer's link
// and lower, a container's carrier.json and an image's config are each read so by a short command; through
// fs/promises each was three round trips (open, read, close), every one a wake of a pool thread and of the event
// loop. Fails with the errno of the call that failed, worded as Node's.
Napi::Value ReadFile(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  auto file = std::make_shared<WholeFile>();
  return PromiseJob::run(
      info.Env(), [path, file] { read_whole(path, *file); },
      [file](Napi::Env env) -> Napi::Value { return bytes_to_js(env, *file); });
}

// readFiles(paths) -> Promise<(Buffer | NativeFailure)[]>: several whole files read by one pool job, one after
// another; each answer is the file's bytes or, where its read failed, that failure (as readFile would reject with it).
// `carrier ps` reads every container's carrier.json: one job each was a round trip per container.
Napi::Value ReadFiles(const Napi::CallbackInfo& info) {
  Napi::Array list = info[0].As<Napi::Array>();
  struct One {
    std::string path;
    WholeFile file;
    bool failed = false;
    Failure failure;
  };
  auto files = std::make_shared<std::vector<One>>(list.Length());
  for (uint32_t i = 0; i < list.Length(); ++i) (*files)[i].path = list.Get(i).As<Napi::String>().Utf8Value();
  return PromiseJob::run(
      info.Env(),
      [files] {
        for (One& f : *files) {
          try {
            read_whole(f.path, f.file);
          } catch (...) {
            f.failed = true;
            f.failure = current_failure();
          }
        }
      },
      [files](Napi::Env env) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, files->size());
        for (uint32_t i = 0; i < files->size(); ++i) {
          One& f = (*files)[i];
          out.Set(i, f.failed ? Napi::Value(failure_to_js(env, f.failure)) : bytes_to_js(env, f.file));
        }
        return out;
      });
}

// One record file's replacement, as src/store/atomic.ts describes it: a plain C++ baton read on the JS thread.
struct AtomicFile {
  std::string dir;   // the target's directory
  std::string temp;  // the temp file's name in it (the orphan sweep's pattern)
  std::string name;  // the target's name in it
  std::string data;
  mode_t mode = 0600;
  int durable = 2;  // 0: no flush; 1: the contents before the rename; 2: and the directory after it
  int lock_fd = -1;  // the store lock whose last-writer token is written once the new name is in place
  std::string token;
  std::string lock_path;  // for messages
};

Fd open_dir(const std::string& dir) {
  Fd d(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d.valid()) fail_at(errno, "open", dir);
  return d;
}

// The temp file made (O_EXCL: a name that exists is refused, never reused), filled, given its mode as asked (the
// umask applied at creation), and its contents flushed unless durable is 0. Removed on any failure.
void write_temp(int dirfd, const AtomicFile& a) {
  const std::string path = a.dir + "/" + a.temp;
  int fd = openat(dirfd, a.temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, a.mode);
  if (fd < 0) fail_at(errno, "open", path);
  int err = 0;
  const char* call = nullptr;
  const char* p = a.data.data();
  size_t n = a.data.size();
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      err = errno;
      call = "write";
      break;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  if (!err && fchmod(fd, a.mode) != 0) err = errno, call = "fchmod";
  if (!err && a.durable > 0 && fdatasync(fd) != 0) err = errno, call = "fdatasync";
  if (close(fd) != 0 && errno != EINTR && !err) err = errno, call = "close";  // Linux closes the fd on EINTR too
  if (err) {
    unlinkat(dirfd, a.temp.c_str(), 0);
    fail_at(err, call, path);
  }
}

// The temp file renamed over the target; then the lock's new token written, and (durable 2) the directory flushed,
// in that order: a reader that sees the token finds the new name, and the save settles only once the name is durable.
void commit_temp(int dirfd, const AtomicFile& a) {
  if (renameat(dirfd, a.temp.c_str(), dirfd, a.name.c_str()) != 0) {
    int err = errno;
    unlinkat(dirfd, a.temp.c_str(), 0);
    fail_at(err, "rename", a.dir + "/" + a.temp);
  }
  if (a.lock_fd >= 0) {
    ssize_t w;
    do w = pwrite(a.lock_fd, a.token.data(), a.token.size(), 0);
    while (w < 0 && errno == EINTR);
    if (w < 0) fail_at(errno, "write", a.lock_path);
    if (static_cast<size_t>(w) != a.token.size()) fail_at(ENOSPC, "write", a.lock_path);
  }
  if (a.durable == 2 && fsync(dirfd) != 0) fail_at(errno, "fsync", a.dir);
}

std::string bytes_of(const Napi::Value& v) {
  if (v.IsString()) return v.As<Napi::String>().Utf8Value();
  auto a = v.As<Napi::Uint8Array>();
  return std::string(reinterpret_cast<const char*>(a.Data()), a.ByteLength());
}

// writeFileAtomic(spec) -> Promise<void>, one pool job. spec: { dir, temp, name, data (string | Uint8Array), mode,
// durable (0 | 1 | 2), lockFd?, token?, lockPath?, step? }. step 'all' (the default) does every step; 'contents'
// only writes and flushes the temp file; 'rename' only renames an earlier 'contents' over the target and goes on from
// there (a save whose rename must wait for another's, src/store/atomic.ts). Rejects with a NativeFailure; a failure
// before or in the rename removes the temp file, and one after it (the token, the directory flush) leaves the new file.
Napi::Value WriteFileAtomic(const Napi::CallbackInfo& info) {
  Napi::Object spec = info[0].As<Napi::Object>();
  auto a = std::make_shared<AtomicFile>();
  a->dir = string_option(spec, "dir");
  a->temp = string_option(spec, "temp");
  a->name = string_option(spec, "name");
  std::string step = string_option(spec, "step", "all");
  if (step != "rename") a->data = bytes_of(spec.Get("data"));
  a->mode = static_cast<mode_t>(number_option(spec, "mode", 0600));
  a->durable = static_cast<int>(number_option(spec, "durable", 2));
  a->lock_fd = static_cast<int>(number_option(spec, "lockFd", -1));
  if (a->lock_fd >= 0) {
    a->token = bytes_of(spec.Get("token"));
    a->lock_path = string_option(spec, "lockPath");
  }
  bool write = step != "rename", rename = step != "contents";
  return PromiseJob::run(info.Env(), [a, write, rename] {
    Fd dir = open_dir(a->dir);
    if (write) write_temp(dir.get(), *a);
    if (rename) commit_temp(dir.get(), *a);
  });
}

// What removeTree does for one entry: 0 once it is gone (or was), else the errno of the step that failed (`syscall`).
struct Removal {
  int err = 0;
  const char* syscall = nullptr;
  std::string path;  // the entry it failed on
};

Removal remove_entry(int dir, const std::string& path, const std::string& name, unsigned char type, bool& granted,
                     int depth);

// Whether the directory open as `fd` is the root of a mount (statx's STATX_ATTR_MOUNT_ROOT, Linux 5.8). A tree is
// never emptied through a mount inside it (a container's overlay left mounted, a bind mount of a host directory):
// that would remove the mounted file system's files, not the tree's. c/storage unmounts such mounts first; the removal
// fails instead (EBUSY), and what is mounted stays as it was. A btrfs subvolume has a device of its own but is no
// mount root: it is removed like any directory.
bool mount_root(int fd) {
#ifdef STATX_ATTR_MOUNT_ROOT
  struct statx sx;
  if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, 0, &sx) == 0 && (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
    return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
#endif
  return false;
}

// Gives the directory open as `dir` owner rwx, as removing its entries needs (a layer's diff/ is 0555, an image's
// directories may lack the owner's write bit): once per directory, and only after a removal in it was refused.
bool grant_write(int dir) {
  struct stat st;
  if (fstat(dir, &st) != 0 || (st.st_mode & 0700) == 0700) return false;
  return fchmod(dir, (st.st_mode & 07777) | 0700) == 0;
}

// Removes every entry of the directory open as `dir` (at `path`, for messages), depth first.
Removal empty_dir(int dir, const std::string& path, int depth) {
  if (depth > 1024) return {ELOOP, "open", path};
  int copy = fcntl(dir, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return {errno, "fcntl", path};
  DIR* d = fdopendir(copy);
  if (!d) {
    int err = errno;
    close(copy);
    return {err, "opendir", path};
  }
  std::vector<std::pair<std::string, unsigned char>> entries;  // read first: the directory is not changed while read
  errno = 0;
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) entries.emplace_back(e->d_name, e->d_type);
    errno = 0;
  }
  int err = errno;
  closedir(d);
  if (err) return {err, "readdir", path};
  bool granted = false;
  for (const auto& [name, type] : entries) {
    Removal r = remove_entry(dir, path, name, type, granted, depth);
    if (r.err) return r;
  }
  return {};
}

// Removes `name` in `dir`, a tree or not: a directory is opened without following a link (O_NOFOLLOW) and emptied
// first; anything else (a symlink included) is unlinked. A refusal for lack of permission grants the owner write on
// the directory it happened in, once, and tries again (as src/fs/remove.ts did in JS).
Removal remove_entry(int dir, const std::string& path, const std::string& name, unsigned char type, bool& granted,
                     int depth) {
  const std::string full = path + "/" + name;
  for (;;) {
    Removal r;
    if (type != DT_DIR) {
      if (unlinkat(dir, name.c_str(), 0) == 0) return {};
      r = {errno, "unlink", full};
      if (r.err == EISDIR) {
        type = DT_DIR;
        continue;
      }
    } else {
      int fd = openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        r = {errno, "open", full};
        if (r.err == ENOTDIR || r.err == ELOOP) {  // not a directory (any more): unlinked as a file
          type = DT_REG;
          continue;
        }
        if (r.err == EACCES) {  // a directory its owner may not read: made readable through its parent
          struct stat st;
          if (fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & 0700) != 0700 &&
              fchmodat(dir, name.c_str(), (st.st_mode & 07777) | 0700, 0) == 0)
            continue;
        }
      } else {
        Fd child(fd);
        if (mount_root(child.get())) return {EBUSY, "rmdir", full};
        r = empty_dir(child.get(), full, depth + 1);
        if (r.err) return r;
        if (unlinkat(dir, name.c_str(), AT_REMOVEDIR) == 0) return {};
        r = {errno, "rmdir", full};
      }
    }
    if (r.err == ENOENT) return {};
    if ((r.err == EACCES || r.err == EPERM) && !granted) {
      granted = true;
      if (grant_write(dir)) continue;
    }
    return r;
  }
}

// removeTree(path) -> Promise<void>: `rm -rf path` on a pool thread (path absolute; a missing one is no failure).
// Links are never followed, nor mounts entered: a mount point in the tree (or the tree itself one) fails it with
// EBUSY, after the entries removed before it. A directory left non-empty by a writer adding to it meanwhile
// (ENOTEMPTY), or busy (EBUSY), is tried twice more, as fs.rm's maxRetries did. Rejects with a NativeFailure naming
// the entry that failed.
Napi::Value RemoveTree(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  return PromiseJob::run(info.Env(), [path] {
    size_t slash = path.find_last_of('/');
    if (slash == std::string::npos || slash + 1 == path.size()) fail("CARRIER_INVALID_ARGUMENT", "removeTree needs an absolute path to an entry", path);
    std::string parent = slash == 0 ? "/" : path.substr(0, slash), name = path.substr(slash + 1);
    Fd dir(open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) {
      if (errno == ENOENT) return;
      fail_at(errno, "open", parent);
    }
    Removal r;
    for (int attempt = 0; attempt < 3; attempt++) {
      bool granted = true;  // the parent of the tree is not the tree's to change
      r = remove_entry(dir.get(), parent == "/" ? "" : parent, name, DT_UNKNOWN, granted, 0);
      if (r.err != ENOTEMPTY && r.err != EBUSY) break;
    }
    if (r.err) fail_at(r.err, r.syscall, r.path);
  });
}

}  // namespace

void init_store_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("lockFile", Napi::Function::New(env, LockFile, "lockFile"));
  exports.Set("unlockFile", Napi::Function::New(env, UnlockFile, "unlockFile"));
  exports.Set("syncFs", Napi::Function::New(env, SyncFs, "syncFs"));
  exports.Set("readFile", Napi::Function::New(env, ReadFile, "readFile"));
  exports.Set("readFiles", Napi::Function::New(env, ReadFiles, "readFiles"));
  exports.Set("fsBatch", Napi::Function::New(env, FsBatch, "fsBatch"));
  exports.Set("makeSpreadDir", Napi::Function::New(env, MakeSpreadDir, "makeSpreadDir"));
  exports.Set("writeFileAtomic", Napi::Function::New(env, WriteFileAtomic, "writeFileAtomic"));
  exports.Set("removeTree", Napi::Function::New(env, RemoveTree, "removeTree"));
}

}  // namespace carrier
