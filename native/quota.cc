// Project quotas on a directory (XFS, and ext4 formatted with the project+quota features): the directory gets a
// project id of its own with the inherit flag, so everything created below it is charged to that project, and the
// project gets a block limit. This is the mechanism podman's overlay driver uses for `--storage-opt size=`.
//
// The quota calls go through quotactl_fd(2) (Linux 5.14) on the directory itself; on older kernels the block device
// of the mount is looked up in /proc/self/mountinfo and quotactl(2) is used on it. All of it runs on a libuv pool
// thread: quotactl can wait on the filesystem's quota machinery and must not hold the event loop.
#include <fcntl.h>
#include <linux/dqblk_xfs.h>
#include <linux/fs.h>
#include <linux/quota.h>
#include <napi.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "apply_job.h"
#include "common.h"
#include "napi_util.h"
#include "promise_job.h"

#ifndef __NR_quotactl_fd
#define __NR_quotactl_fd 443  // the same number on every architecture since 5.14
#endif

namespace carrier {
namespace {

constexpr uint64_t kBasicBlock = 512;  // quota block counts are in 512-byte "basic blocks"

// Where quota commands go: the directory's fd (quotactl_fd) or, on old kernels, the mount's block device.
struct QuotaTarget {
  int fd = -1;
  std::string device;  // empty while quotactl_fd works
  std::string dir;
};

[[noreturn]] void unsupported(const std::string& dir, const std::string& why, int err = 0, const char* syscall = nullptr) {
  Failure f;
  f.code = "CARRIER_UNSUPPORTED";
  f.path = dir;
  f.errnum = err;
  if (syscall) f.syscall = syscall;
  f.message = "project quotas are not available for '" + dir + "': " + why +
              " (XFS needs the prjquota mount option; ext4 needs the project and quota features and prjquota)";
  if (err) f.message += std::string(": ") + strerror(err);
  throw Fail(std::move(f));
}

// The block device node of the filesystem with device number `dev`, from the mount table; empty when none is found.
std::string device_of(dev_t dev) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, majmin;
    fields >> id >> parent >> majmin;
    unsigned maj = 0, min = 0;
    if (sscanf(majmin.c_str(), "%u:%u", &maj, &min) != 2 || makedev(maj, min) != dev) continue;
    size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream tail(line.substr(sep + 3));
    std::string fstype, source;
    tail >> fstype >> source;
    struct stat st {};
    if (stat(source.c_str(), &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == dev) return source;
  }
  return {};
}

// Whether the kernel has quotactl_fd: with a bad fd it says EBADF, without the call ENOSYS (which a filesystem
// without quota support also returns, so the two cannot be told apart on a real call).
bool have_quotactl_fd() {
  static const bool have = [] {
    long r = syscall(__NR_quotactl_fd, -1, QCMD(Q_XGETQSTAT, PRJQUOTA), 0, nullptr);
    return !(r < 0 && errno == ENOSYS);
  }();
  return have;
}

// One quota command; returns 0 or -errno (nothing thrown, so callers can treat ENOENT and friends as answers).
int quota_cmd(QuotaTarget& t, int cmd, uint32_t id, void* addr) {
  int subcmd = QCMD(cmd, PRJQUOTA);
  if (t.device.empty()) {
    if (have_quotactl_fd()) {
      long r = syscall(__NR_quotactl_fd, t.fd, subcmd, id, addr);
      return r == 0 ? 0 : -errno;  // ENOSYS here: the filesystem has no quota operations at all
    }
    struct stat st {};
    if (fstat(t.fd, &st) < 0) return -errno;
    t.device = device_of(st.st_dev);
    if (t.device.empty()) unsupported(t.dir, "no block device found for its mount (and the kernel lacks quotactl_fd)");
  }
  long r = syscall(SYS_quotactl, subcmd, t.device.c_str(), id, addr);
  return r == 0 ? 0 : -errno;
}

// Fails with CARRIER_UNSUPPORTED unless project quota accounting and enforcement are on for the directory's fs.
void require_project_quota(QuotaTarget& t) {
  struct fs_quota_stat qs {};
  int r = quota_cmd(t, Q_XGETQSTAT, 0, &qs);
  if (r < 0) {
    int err = -r;
    if (err == EPERM || err == EACCES) fail_errno(err, "quotactl(Q_XGETQSTAT)", t.dir, "reading the quota state");
    unsupported(t.dir, "the filesystem has no project quota support", err, "quotactl(Q_XGETQSTAT)");
  }
  if (!(qs.qs_flags & FS_QUOTA_PDQ_ACCT)) unsupported(t.dir, "project quota accounting is off on its filesystem");
  if (!(qs.qs_flags & FS_QUOTA_PDQ_ENFD)) unsupported(t.dir, "project quota enforcement is off on its filesystem");
}

struct fsxattr get_xattr(int fd, const std::string& path) {
  struct fsxattr fsx {};
  if (ioctl(fd, FS_IOC_FSGETXATTR, &fsx) < 0) fail_errno(errno, "ioctl(FS_IOC_FSGETXATTR)", path, "reading the project id");
  return fsx;
}

// The lowest project id >= `from` that has no quota record (no usage charged and no limit set), so no file uses it.
uint32_t free_project_id(QuotaTarget& t, uint32_t from) {
  uint32_t candidate = from == 0 ? 1 : from;
  for (int guard = 0; guard < 1'000'000; guard++) {
    struct fs_disk_quota d {};
    int r = quota_cmd(t, Q_XGETNEXTQUOTA, candidate, &d);
    if (r == -ENOENT || r == -ESRCH) return candidate;  // nothing at or above candidate
    if (r == -EINVAL || r == -ENOSYS || r == -EOPNOTSUPP) {
      // No GETNEXTQUOTA (kernel < 4.6): ask id by id.
      r = quota_cmd(t, Q_XGETQUOTA, candidate, &d);
      if (r == -ENOENT || r == -ESRCH) return candidate;
      if (r < 0) fail_errno(-r, "quotactl(Q_XGETQUOTA)", t.dir, "looking for a free project id");
      if (d.d_bcount == 0 && d.d_icount == 0 && d.d_blk_hardlimit == 0 && d.d_blk_softlimit == 0 &&
          d.d_ino_hardlimit == 0 && d.d_ino_softlimit == 0)
        return candidate;
      candidate++;
      continue;
    }
    if (r < 0) fail_errno(-r, "quotactl(Q_XGETNEXTQUOTA)", t.dir, "looking for a free project id");
    if (d.d_id > candidate) return candidate;
    if (d.d_id == UINT32_MAX) break;
    candidate = d.d_id + 1;
  }
  fail("CARRIER_LIMIT_EXCEEDED", "no free project id found", t.dir);
}

void set_limit(QuotaTarget& t, uint32_t id, uint64_t bytes) {
  struct fs_disk_quota d {};
  d.d_version = FS_DQUOT_VERSION;
  d.d_flags = FS_PROJ_QUOTA;
  d.d_id = id;
  d.d_fieldmask = FS_DQ_BHARD | FS_DQ_BSOFT;
  uint64_t blocks = (bytes + kBasicBlock - 1) / kBasicBlock;
  d.d_blk_hardlimit = blocks;
  d.d_blk_softlimit = blocks;
  int r = quota_cmd(t, Q_XSETQLIM, id, &d);
  if (r < 0) fail_errno(-r, "quotactl(Q_XSETQLIM)", t.dir, "setting the project's block limit");
}

struct QuotaResult {
  uint32_t project = 0;
  uint64_t limit = 0;
  uint64_t used = 0;
  bool has_record = false;
};

void read_quota(QuotaTarget& t, uint32_t id, QuotaResult& out) {
  struct fs_disk_quota d {};
  int r = quota_cmd(t, Q_XGETQUOTA, id, &d);
  if (r == -ENOENT || r == -ESRCH) return;
  if (r < 0) fail_errno(-r, "quotactl(Q_XGETQUOTA)", t.dir, "reading the project quota");
  out.has_record = true;
  out.limit = d.d_blk_hardlimit * kBasicBlock;
  out.used = d.d_bcount * kBasicBlock;
}

Fd open_dir(const std::string& dir) {
  Fd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) fail_errno(errno, "open", dir);
  return fd;
}

// One setDirQuota or getDirQuota call: its arguments in, its result out (read on the JS thread once settled).
struct QuotaCall {
  std::string dir;
  uint64_t bytes = 0;
  uint32_t min_id = 1;
  QuotaResult result;
};

void get_quota(QuotaCall& c) {
  Fd fd = open_dir(c.dir);
  QuotaTarget t;
  t.fd = fd.get();
  t.dir = c.dir;
  c.result.project = get_xattr(fd.get(), c.dir).fsx_projid;
  if (c.result.project != 0) read_quota(t, c.result.project, c.result);
}

void set_quota(QuotaCall& c) {
  Fd fd = open_dir(c.dir);
  QuotaTarget t;
  t.fd = fd.get();
  t.dir = c.dir;
  require_project_quota(t);
  struct fsxattr fsx = get_xattr(fd.get(), c.dir);
  // Serialise id choice with other Carrier processes limiting siblings (an flock on the parent directory).
  std::string parent = c.dir.substr(0, c.dir.find_last_of('/'));
  if (parent.empty()) parent = "/";
  Fd pfd = open_dir(parent);
  while (flock(pfd.get(), LOCK_EX) < 0) {
    if (errno != EINTR) fail_errno(errno, "flock", parent);
  }
  uint32_t parent_id = get_xattr(pfd.get(), parent).fsx_projid;
  uint32_t id = fsx.fsx_projid;
  bool fresh = id == 0 || id == parent_id;  // inherited ids belong to the parent's project, not to this dir
  if (fresh) id = free_project_id(t, std::max<uint32_t>(c.min_id, parent_id + 1));
  set_limit(t, id, c.bytes);  // first, so the id is taken (it has a quota record) before anyone else looks
  if (fresh || !(fsx.fsx_xflags & FS_XFLAG_PROJINHERIT)) {
    fsx.fsx_projid = id;
    fsx.fsx_xflags |= FS_XFLAG_PROJINHERIT;
    if (ioctl(fd.get(), FS_IOC_FSSETXATTR, &fsx) < 0) {
      int err = errno;
      if (fresh) {
        struct fs_disk_quota d {};
        d.d_version = FS_DQUOT_VERSION;
        d.d_flags = FS_PROJ_QUOTA;
        d.d_id = id;
        d.d_fieldmask = FS_DQ_BHARD | FS_DQ_BSOFT;
        quota_cmd(t, Q_XSETQLIM, id, &d);  // give the id back
      }
      if (err == EOPNOTSUPP || err == ENOTTY || err == EINVAL)
        unsupported(c.dir, "its filesystem cannot give a directory a project id", err, "ioctl(FS_IOC_FSSETXATTR)");
      fail_errno(err, "ioctl(FS_IOC_FSSETXATTR)", c.dir, "setting the directory's project id");
    }
  }
  c.result.project = id;
  read_quota(t, id, c.result);
}

Napi::Value quota_to_js(Napi::Env env, const QuotaResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("projectId", Napi::Number::New(env, r.project));
  o.Set("limit", Napi::Number::New(env, static_cast<double>(r.limit)));
  o.Set("used", Napi::Number::New(env, static_cast<double>(r.used)));
  o.Set("hasRecord", Napi::Boolean::New(env, r.has_record));
  return o;
}

// setDirQuota(dir, bytes, minProjectId) -> Promise<{projectId, limit, used, hasRecord}>
Napi::Value SetDirQuota(const Napi::CallbackInfo& info) {
  auto c = std::make_shared<QuotaCall>();
  c->dir = info[0].As<Napi::String>().Utf8Value();
  c->bytes = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
  c->min_id = static_cast<uint32_t>(info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : 1);
  return PromiseJob::run(
      info.Env(), [c] { set_quota(*c); }, [c](Napi::Env env) { return quota_to_js(env, c->result); });
}

// getDirQuota(dir) -> Promise<{projectId, limit, used, hasRecord}>; projectId 0 when the dir has none.
Napi::Value GetDirQuota(const Napi::CallbackInfo& info) {
  auto c = std::make_shared<QuotaCall>();
  c->dir = info[0].As<Napi::String>().Utf8Value();
  return PromiseJob::run(
      info.Env(), [c] { get_quota(*c); }, [c](Napi::Env env) { return quota_to_js(env, c->result); });
}

}  // namespace

void init_quota(Napi::Env env, Napi::Object exports) {
  exports.Set("setDirQuota", Napi::Function::New(env, SetDirQuota, "setDirQuota"));
  exports.Set("getDirQuota", Napi::Function::New(env, GetDirQuota, "getDirQuota"));
}

}  // namespace carrier
