// cloneTree's native half: copies a directory tree on a thread of its own (a long copy never holds one of libuv's
// pool threads). The source is walked with directory fds (openat/fdopendir, O_NOFOLLOW), the destination is built
// with *at() calls on fds of directories this job created, so no path string is ever re-resolved through a symlink.
// Per regular file: ioctl(FICLONE), else copy_file_range, else pread/pwrite; holes are kept (SEEK_DATA/SEEK_HOLE)
// on the copying paths. Metadata is applied in the order the kernel needs: chown (which clears setuid/setgid and
// security.capability), then xattrs, then chmod, then timestamps; directories get theirs once their children exist.
//
// mergeLayers uses the same copier to flatten overlay layers, base first, into one new tree with overlay's rules:
// a 0/0 character device (or an aufs `.wh.NAME` file) deletes NAME, recursively, from what the layers below made; a
// directory marked opaque (trusted.overlay.opaque=y, user.overlay.opaque=y, or an aufs `.wh..wh..opq` inside it)
// first empties the directory below; anything else replaces what is there (a directory over a non-directory, or the
// reverse, replaces it; a directory over a directory is merged and takes the upper one's metadata). Whiteouts and
// overlay's own xattrs are not copied. The destination is only ever changed through fds of directories this job
// created or checked with O_NOFOLLOW|O_DIRECTORY, and an entry of the wrong type is removed, never followed: a
// symlink `a` from one layer and a file `a/x` from the next leave a real directory `a` holding `x`.
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <napi.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "apply_job.h"
#include "common.h"
#include "fs_safe.h"
#include "napi_util.h"

namespace carrier {
namespace {

enum class Mode { Auto, Reflink, Copy, Hardlink };

// Which data paths moved at least one file; more than one bit set reports as 'mixed'.
enum Method : unsigned { kReflink = 1, kCopyFileRange = 2, kReadWrite = 4, kHardlink = 8 };

constexpr size_t kChunk = 8 << 20;     // bytes per copy_file_range / pread-pwrite round; abort is checked between
constexpr size_t kBufSize = 1 << 20;  // the read/write fallback's buffer
constexpr int kMaxDepth = 4096;

struct CloneConfig {
  std::string src, dst;
  Mode mode = Mode::Auto;
  bool preserve_owner = false;
  // mergeLayers: the layer directories, base first (src is then the first of them).
  bool merge = false;
  std::vector<std::string> layers;
};

struct CloneStats {
  uint64_t files = 0, dirs = 0, symlinks = 0, hardlinks = 0, specials = 0;
  uint64_t skipped_specials = 0, skipped_xattrs = 0;
  uint64_t bytes_cloned = 0, bytes_copied = 0, bytes_hardlinked = 0;
  // mergeLayers: whiteouts met, opaque directories met, lower entries an upper one replaced (or a whiteout removed).
  uint64_t layers = 0, whiteouts = 0, opaque_dirs = 0, replaced = 0;
  unsigned methods = 0;
};

struct CloneState {
  CloneConfig cfg;
  std::atomic<bool> abort{false};
  Napi::ThreadSafeFunction tsfn;
  std::optional<Napi::Promise::Deferred> deferred;
  CloneStats stats;
  std::optional<Failure> failure;
};

std::string join(const std::string& dir, const char* name) { return dir.empty() ? name : dir + "/" + name; }
std::string shown(const std::string& rel) { return rel.empty() ? "." : rel; }

// The name `name` inside the directory `dirfd`, as a path the l*xattr calls accept without following a final
// symlink: the directory is reached through our own fd's /proc link, never through a path string.
std::string proc_path(int dirfd, const char* name) {
  return "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
}

class Cloner {
 public:
  explicit Cloner(CloneState& s) : s_(s), cfg_(s.cfg), st_(s.stats), buf_(new uint8_t[kBufSize]) {}

  void run() {
    try {
      open_roots();
      check_abort(".");
      if (cfg_.merge) {
        // The destination root keeps the mode it was made with: a layer's diff/ root carries the store's mode
        // (0555 in c/storage), not the image's.
        for (size_t i = 0; i < cfg_.layers.size(); ++i) {
          if (i > 0) {
            int fd = open(cfg_.layers[i].c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0) fail_errno(errno, "open", cfg_.layers[i], "opening a layer directory");
            src_root_ = Fd(fd);
            check_not_dst(src_root_.get(), cfg_.layers[i]);
          }
          links_.clear();  // hard links are kept within a layer; layers share no inodes
          merge_dir_contents(src_root_.get(), dst_root_.get(), "", 0, /*fresh=*/false);
          ++st_.layers;
        }
        return;
      }
      struct stat root;
      if (fstat(src_root_.get(), &root) != 0) fail_errno(errno, "fstat", ".", "reading the source directory");
      copy_dir_contents(src_root_.get(), dst_root_.get(), "", 0);
      finish_node_fd(src_root_.get(), dst_root_.get(), root, "");
    } catch (...) {
      cleanup();
      throw;
    }
  }

 private:
  CloneState& s_;
  const CloneConfig& cfg_;
  CloneStats& st_;
  std::unique_ptr<uint8_t[]> buf_;
  Fd src_root_, dst_parent_, dst_root_;
  std::string dst_base_;
  bool dst_created_ = false;
  dev_t dst_dev_ = 0;
  ino_t dst_ino_ = 0;
  bool reflink_unsupported_ = false;  // auto: the filesystem said it cannot clone; stop asking
  bool cfr_unsupported_ = false;
  // Xattrs of symlinks and device nodes are reached through /proc/self/fd; without /proc they are not copied.
  const bool have_proc_ = access("/proc/self/fd", X_OK) == 0;
  // (dev, ino) of a source file with several names -> where its first copy lives (parent rel path, name).
  std::map<std::pair<dev_t, ino_t>, std::pair<std::string, std::string>> links_;

  void check_abort(const std::string& rel) {
    if (s_.abort.load(std::memory_order_relaxed)) fail("ABORT_ERR", "The operation was aborted", rel);
  }

  void open_roots() {
    int fd = open(cfg_.src.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail_errno(errno, "open", cfg_.src, "opening the source directory");
    src_root_ = Fd(fd);

    std::string dst = cfg_.dst;
    while (dst.size() > 1 && dst.back() == '/') dst.pop_back();
    size_t slash = dst.rfind('/');
    std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : dst.substr(0, slash);
    dst_base_ = slash == std::string::npos ? dst : dst.substr(slash + 1);
    if (dst_base_.empty() || dst_base_ == "." || dst_base_ == "..")
      fail("CARRIER_INVALID_ARGUMENT", "the destination must name a directory to create: '" + cfg_.dst + "'",
           cfg_.dst);
    fd = open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail_errno(errno, "open", parent, "opening the destination's parent directory");
    dst_parent_ = Fd(fd);

    if (mkdirat(dst_parent_.get(), dst_base_.c_str(), 0700) == 0) {
      dst_created_ = true;
    } else if (errno != EEXIST) {
      fail_errno(errno, "mkdirat", cfg_.dst, "creating the destination directory");
    }
    fd = openat(dst_parent_.get(), dst_base_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == ELOOP || err == ENOTDIR)
        fail_errno(EEXIST, "openat", cfg_.dst, "the destination exists and is not a directory; opening it");
      fail_errno(err, "openat", cfg_.dst, "opening the destination directory");
    }
    dst_root_ = Fd(fd);
    if (!dst_created_ && !is_empty(dst_root_.get())) {
      dst_root_.reset();
      Failure f;
      f.code = "ENOTEMPTY";
      f.errnum = ENOTEMPTY;
      f.path = cfg_.dst;
      f.message = "the destination '" + cfg_.dst + "' exists and is not empty; cloneTree needs a new or empty directory";
      throw Fail(std::move(f));
    }
    struct stat sst, dstst;
    if (fstat(src_root_.get(), &sst) != 0 || fstat(dst_root_.get(), &dstst) != 0)
      fail_errno(errno, "fstat", cfg_.dst);
    dst_dev_ = dstst.st_dev;
    dst_ino_ = dstst.st_ino;
    if (sst.st_dev == dst_dev_ && sst.st_ino == dst_ino_)
      fail("CARRIER_INVALID_ARGUMENT", "the source and the destination are the same directory", cfg_.dst);
    if (cfg_.mode == Mode::Hardlink && sst.st_dev != dst_dev_) {
      Failure f;
      f.code = "EXDEV";
      f.errnum = EXDEV;
      f.syscall = "linkat";
      f.path = cfg_.dst;
      f.message = "mode 'hardlink' needs the source and the destination on one filesystem, but '" + cfg_.src +
                  "' and '" + cfg_.dst + "' are on different ones; use mode 'auto' to copy instead";
      throw Fail(std::move(f));
    }
  }

  static bool is_empty(int dirfd) {
    int fd = dup(dirfd);
    if (fd < 0) fail_errno(errno, "dup", ".");
    DIR* d = fdopendir(fd);
    if (!d) {
      int err = errno;
      close(fd);
      fail_errno(err, "fdopendir", ".");
    }
    bool empty = true;
    while (struct dirent* e = readdir(d)) {
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
        empty = false;
        break;
      }
    }
    closedir(d);
    return empty;
  }

  // A failed clone leaves nothing behind: what we created is removed, a destination that existed empty is emptied.
  void cleanup() {
    if (!dst_root_.valid()) return;
    try {
      empty_directory(dst_root_.get(), cfg_.dst);
      if (dst_created_) unlinkat(dst_parent_.get(), dst_base_.c_str(), AT_REMOVEDIR);
    } catch (...) {
      // The first failure is the one worth reporting.
    }
  }

  struct Entry {
    std::string name;
    unsigned char type;
  };

  std::vector<Entry> list(int dirfd, const std::string& rel) {
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail_errno(errno, "openat", shown(rel), "opening a source directory to list it");
    DIR* d = fdopendir(fd);
    if (!d) {
      int err = errno;
      close(fd);
      fail_errno(err, "fdopendir", shown(rel));
    }
    std::vector<Entry> out;
    errno = 0;
    while (struct dirent* e = readdir(d)) {
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) out.push_back({e->d_name, e->d_type});
      errno = 0;
    }
    int err = errno;
    closedir(d);
    if (err) fail_errno(err, "readdir", shown(rel));
    return out;
  }

  void copy_dir_contents(int sdir, int ddir, const std::string& rel, int depth) {
    if (depth > kMaxDepth) fail("CARRIER_LIMIT_EXCEEDED", "directory nesting deeper than 4096 levels", shown(rel));
    for (const Entry& e : list(sdir, rel)) {
      std::string child = join(rel, e.name.c_str());
      check_abort(child);
      struct stat st;
      if (fstatat(sdir, e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed while we walked
        fail_errno(errno, "fstatat", child);
      }
      const char* name = e.name.c_str();
      switch (st.st_mode & S_IFMT) {
        case S_IFDIR:
          copy_dir(sdir, ddir, name, st, child, depth);
          break;
        case S_IFREG:
          copy_file(sdir, ddir, name, st, rel, child);
          break;
        case S_IFLNK:
          copy_symlink(sdir, ddir, name, st, child);
          break;
        case S_IFIFO:
        case S_IFCHR:
        case S_IFBLK:
          copy_special(sdir, ddir, name, st, rel, child);
          break;
        default:  // sockets belong to a running process and cannot be copied
          ++st_.skipped_specials;
          break;
      }
    }
  }

  void copy_dir(int sdir, int ddir, const char* name, const struct stat& st, const std::string& rel, int depth) {
    Fd s(openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!s.valid()) fail_errno(errno, "openat", rel, "opening a source directory");
    struct stat real;
    if (fstat(s.get(), &real) != 0) fail_errno(errno, "fstat", rel);
    if (real.st_dev == dst_dev_ && real.st_ino == dst_ino_)
      fail("CARRIER_INVALID_ARGUMENT", "the destination is inside the source tree", rel);
    // Owner-writable while it is filled, whatever the source's mode (0555 directories included).
    if (mkdirat(ddir, name, 0700) != 0) fail_errno(errno, "mkdirat", rel);
    Fd d(openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d.valid()) fail_errno(errno, "openat", rel, "opening a created directory");
    ++st_.dirs;
    copy_dir_contents(s.get(), d.get(), rel, depth + 1);
    finish_node_fd(s.get(), d.get(), real, rel);
  }

  // ---- mergeLayers ------------------------------------------------------------------------------------------------

  void check_not_dst(int sfd, const std::string& shown_path) {
    struct stat st;
    if (fstat(sfd, &st) != 0) fail_errno(errno, "fstat", shown_path);
    if (st.st_dev == dst_dev_ && st.st_ino == dst_ino_)
      fail("CARRIER_INVALID_ARGUMENT", "a layer and the destination are the same directory", shown_path);
  }

  static bool is_overlay_xattr(const char* key) {
    return strncmp(key, "trusted.overlay.", 16) == 0 || strncmp(key, "user.overlay.", 13) == 0;
  }

  static bool xattr_is_y(int fd, const char* key) {
    char v[4];
    ssize_t n = fgetxattr(fd, key, v, sizeof(v));
    return n == 1 && v[0] == 'y';
  }

  static bool is_whiteout_dev(const struct stat& st) {
    return S_ISCHR(st.st_mode) && major(st.st_rdev) == 0 && minor(st.st_rdev) == 0;
  }

  // Removes `name` from the destination directory `ddir`, whatever it is; a directory goes with its content.
  // Returns false when there was nothing to remove.
  bool remove_entry(int ddir, const char* name, const std::string& rel) {
    struct stat st;
    if (fstatat(ddir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return false;
      fail_errno(errno, "fstatat", rel);
    }
    if (S_ISDIR(st.st_mode)) {
      if ((st.st_mode & 0700) != 0700) fchmodat(ddir, name, 0700, 0);  // a directory by the fstatat: no symlink
      Fd d(openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!d.valid()) fail_errno(errno, "openat", rel, "opening a directory to remove it");
      empty_directory(d.get(), rel);
      if (unlinkat(ddir, name, AT_REMOVEDIR) != 0) fail_errno(errno, "unlinkat", rel, "removing a directory");
    } else if (unlinkat(ddir, name, 0) != 0) {
      fail_errno(errno, "unlinkat", rel, "removing an entry a layer replaces");
    }
    return true;
  }

  // An upper directory over a lower one: the lower one's xattrs go, the upper one's come with finish_node_fd.
  void clear_xattrs_fd(int dfd, const std::string& rel) {
    std::vector<char> names(1024);
    ssize_t len;
    for (;;) {
      len = flistxattr(dfd, names.data(), names.size());
      if (len >= 0) break;
      if (errno == ERANGE) {
        names.resize(names.size() * 4);
        continue;
      }
      if (errno == EOPNOTSUPP || errno == ENOSYS) return;
      fail_errno(errno, "flistxattr", shown(rel));
    }
    for (ssize_t i = 0; i < len;) {
      const char* key = names.data() + i;
      i += static_cast<ssize_t>(strlen(key)) + 1;
      if (fremovexattr(dfd, key) != 0 && errno != ENODATA && !xattr_skippable(errno))
        fail_errno(errno, "fremovexattr", shown(rel), std::string("removing xattr ") + key);
    }
  }

  // One layer directory `sdir` onto the destination directory `ddir`. `fresh`: ddir was made by this layer (so no
  // whiteout or opaque marker can have anything to remove in it).
  void merge_dir_contents(int sdir, int ddir, const std::string& rel, int depth, bool fresh) {
    if (depth > kMaxDepth) fail("CARRIER_LIMIT_EXCEEDED", "directory nesting deeper than 4096 levels", shown(rel));
    std::vector<Entry> entries = list(sdir, rel);
    bool opaque = xattr_is_y(sdir, "trusted.overlay.opaque") || xattr_is_y(sdir, "user.overlay.opaque");
    for (const Entry& e : entries)
      if (e.name == ".wh..wh..opq") opaque = true;
    if (opaque) {
      ++st_.opaque_dirs;
      if (!fresh) empty_directory(ddir, shown(rel));
    }
    // Whiteouts first: in a diff a whiteout never shares its name with an entry, but order must not matter.
    std::vector<std::pair<const Entry*, struct stat>> rest;
    rest.reserve(entries.size());
    for (const Entry& e : entries) {
      std::string child = join(rel, e.name.c_str());
      check_abort(child);
      if (e.name.compare(0, 4, ".wh.") == 0) {
        // aufs: `.wh..wh.*` are aufs' own bookkeeping (the opaque marker handled above); `.wh.NAME` deletes NAME.
        if (e.name.compare(0, 8, ".wh..wh.") == 0) continue;
        std::string target = e.name.substr(4);
        if (target.empty() || target == "." || target == "..") continue;
        ++st_.whiteouts;
        if (!fresh && remove_entry(ddir, target.c_str(), join(rel, target.c_str()))) ++st_.replaced;
        continue;
      }
      struct stat st;
      if (fstatat(sdir, e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        fail_errno(errno, "fstatat", child);
      }
      if (is_whiteout_dev(st)) {
        ++st_.whiteouts;
        if (!fresh && remove_entry(ddir, e.name.c_str(), child)) ++st_.replaced;
        continue;
      }
      rest.emplace_back(&e, st);
    }
    for (auto& [e, st] : rest) {
      const char* name = e->name.c_str();
      std::string child = join(rel, name);
      check_abort(child);
      struct stat dst;
      bool have = false;
      if (!fresh) {
        if (fstatat(ddir, name, &dst, AT_SYMLINK_NOFOLLOW) == 0)
          have = true;
        else if (errno != ENOENT)
          fail_errno(errno, "fstatat", child);
      }
      if (S_ISDIR(st.st_mode)) {
        if (have && S_ISDIR(dst.st_mode)) {
          merge_into_dir(sdir, ddir, name, child, depth);
          continue;
        }
        if (have) {
          remove_entry(ddir, name, child);
          ++st_.replaced;
        }
        merge_new_dir(sdir, ddir, name, child, depth);
        continue;
      }
      if (have) {
        remove_entry(ddir, name, child);
        ++st_.replaced;
      }
      switch (st.st_mode & S_IFMT) {
        case S_IFREG:
          copy_file(sdir, ddir, name, st, rel, child);
          break;
        case S_IFLNK:
          copy_symlink(sdir, ddir, name, st, child);
          break;
        case S_IFIFO:
        case S_IFCHR:
        case S_IFBLK:
          copy_special(sdir, ddir, name, st, rel, child);
          break;
        default:
          ++st_.skipped_specials;
          break;
      }
    }
  }

  Fd open_src_dir(int sdir, const char* name, const std::string& rel, struct stat& real) {
    Fd s(openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!s.valid()) fail_errno(errno, "openat", rel, "opening a layer directory");
    if (fstat(s.get(), &real) != 0) fail_errno(errno, "fstat", rel);
    if (real.st_dev == dst_dev_ && real.st_ino == dst_ino_)
      fail("CARRIER_INVALID_ARGUMENT", "the destination is inside a layer", rel);
    return s;
  }

  void merge_new_dir(int sdir, int ddir, const char* name, const std::string& rel, int depth) {
    struct stat real;
    Fd s = open_src_dir(sdir, name, rel, real);
    if (mkdirat(ddir, name, 0700) != 0) fail_errno(errno, "mkdirat", rel);
    Fd d(openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d.valid()) fail_errno(errno, "openat", rel, "opening a created directory");
    ++st_.dirs;
    merge_dir_contents(s.get(), d.get(), rel, depth + 1, /*fresh=*/true);
    finish_node_fd(s.get(), d.get(), real, rel);
  }

  void merge_into_dir(int sdir, int ddir, const char* name, const std::string& rel, int depth) {
    struct stat real;
    Fd s = open_src_dir(sdir, name, rel, real);
    // O_NOFOLLOW|O_DIRECTORY: what a lower layer left here must be a real directory to be entered.
    Fd d(openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d.valid()) fail_errno(errno, "openat", rel, "opening a directory a lower layer made");
    if (fchmod(d.get(), 0700) != 0) fail_errno(errno, "fchmod", rel);
    clear_xattrs_fd(d.get(), rel);
    merge_dir_contents(s.get(), d.get(), rel, depth + 1, /*fresh=*/false);
    finish_node_fd(s.get(), d.get(), real, rel);
  }

  // Ownership, xattrs, mode and times of a node both sides hold an fd for (directories and regular files).
  void finish_node_fd(int sfd, int dfd, const struct stat& st, const std::string& rel) {
    if (cfg_.preserve_owner && fchown(dfd, st.st_uid, st.st_gid) != 0) fail_errno(errno, "fchown", shown(rel));
    copy_xattrs_fd(sfd, dfd, rel);
    if (fchmod(dfd, st.st_mode & 07777) != 0) fail_errno(errno, "fchmod", shown(rel));
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (futimens(dfd, ts) != 0) fail_errno(errno, "futimens", shown(rel));
  }

  void copy_file(int sdir, int ddir, const char* name, const struct stat& lst, const std::string& parent_rel,
                 const std::string& rel) {
    if (lst.st_nlink > 1) {
      auto it = links_.find({lst.st_dev, lst.st_ino});
      if (it != links_.end()) {
        link_again(it->second, ddir, name, rel);
        return;
      }
    }
    if (cfg_.mode == Mode::Hardlink) {
      if (linkat(sdir, name, ddir, name, 0) != 0) {
        int err = errno;
        if (err == EXDEV) {
          Failure f;
          f.code = "EXDEV";
          f.errnum = err;
          f.syscall = "linkat";
          f.path = rel;
          f.message = "mode 'hardlink' cannot link '" + rel +
                      "': it is on another filesystem than the destination (a mount inside the source?)";
          throw Fail(std::move(f));
        }
        fail_errno(err, "linkat", rel, "hard-linking a source file");
      }
      ++st_.files;
      st_.bytes_hardlinked += static_cast<uint64_t>(lst.st_size);
      st_.methods |= kHardlink;
      if (lst.st_nlink > 1) links_[{lst.st_dev, lst.st_ino}] = {parent_rel, name};
      return;
    }

    // O_NONBLOCK: if the name was swapped for a fifo since the fstatat, the open must not hang.
    Fd s(openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!s.valid()) fail_errno(errno, "openat", rel, "opening a source file");
    struct stat st;
    if (fstat(s.get(), &st) != 0) fail_errno(errno, "fstat", rel);
    if (!S_ISREG(st.st_mode)) fail("CARRIER_CHANGED", "the source changed while it was copied", rel);
    Fd d(openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!d.valid()) fail_errno(errno, "openat", rel, "creating a file");
    copy_data(s.get(), d.get(), st, rel);
    finish_node_fd(s.get(), d.get(), st, rel);
    ++st_.files;
    if (st.st_nlink > 1) links_[{st.st_dev, st.st_ino}] = {parent_rel, name};
  }

  // Another name of a file already in the destination: link to its first copy, so identity is kept.
  void link_again(const std::pair<std::string, std::string>& first, int ddir, const char* name,
                  const std::string& rel) {
    Fd parent;
    int pfd = dst_root_.get();
    if (!first.first.empty()) {
      parent = Fd(open_beneath(dst_root_.get(), first.first, O_PATH | O_DIRECTORY));
      if (!parent.valid())
        fail_errno(-parent.release(), "openat2", first.first, "reopening the directory of a hard link's target");
      pfd = parent.get();
    }
    if (linkat(pfd, first.second.c_str(), ddir, name, 0) != 0)
      fail_errno(errno, "linkat", rel, "linking '" + rel + "' to '" + join(first.first, first.second.c_str()) + "'");
    ++st_.hardlinks;
  }

  static bool clone_unsupported(int err) {
    return err == EOPNOTSUPP || err == ENOTTY || err == EXDEV || err == EINVAL || err == ENOSYS || err == EPERM ||
           err == ETXTBSY || err == EBADF;
  }

  void copy_data(int sfd, int dfd, const struct stat& st, const std::string& rel) {
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if ((cfg_.mode == Mode::Auto && !reflink_unsupported_) || cfg_.mode == Mode::Reflink) {
      if (ioctl(dfd, FICLONE, sfd) == 0) {
        st_.bytes_cloned += size;
        st_.methods |= kReflink;
        return;
      }
      int err = errno;
      if (!clone_unsupported(err)) fail_errno(err, "ioctl(FICLONE)", rel, "cloning a file");
      if (cfg_.mode == Mode::Reflink) {
        Failure f;
        f.code = "CARRIER_NO_REFLINK";
        f.errnum = err;
        f.syscall = "ioctl(FICLONE)";
        f.path = rel;
        f.message = std::string("mode 'reflink': cannot clone '") + rel + "' (" + errno_name(err) + ": " +
                    strerror(err) + "); the destination filesystem must support reflinks (XFS with reflink=1, " +
                    "btrfs) and hold the source too; use mode 'auto' to fall back to copying";
        throw Fail(std::move(f));
      }
      // Not supported by this filesystem pair: stop asking. EINVAL can be per file (btrfs nodatacow), keep asking.
      if (err == EOPNOTSUPP || err == ENOTTY || err == EXDEV || err == ENOSYS) reflink_unsupported_ = true;
    }
    if (size == 0) return;
    // Only look for holes where there can be some: fewer allocated blocks than the size needs.
    bool maybe_sparse = static_cast<uint64_t>(st.st_blocks) * 512 < size;
    uint64_t off = 0, written_end = 0;
    while (off < size) {
      uint64_t end = size;
      if (maybe_sparse) {
        off_t data = lseek(sfd, static_cast<off_t>(off), SEEK_DATA);
        if (data < 0) {
          if (errno == ENXIO) break;  // only a hole is left
          if (errno != EINVAL && errno != EOPNOTSUPP) fail_errno(errno, "lseek(SEEK_DATA)", rel);
          maybe_sparse = false;
        } else {
          off = static_cast<uint64_t>(data);
          off_t hole = lseek(sfd, data, SEEK_HOLE);
          if (hole < 0) fail_errno(errno, "lseek(SEEK_HOLE)", rel);
          end = std::min<uint64_t>(static_cast<uint64_t>(hole), size);
        }
      }
      if (off >= end) break;
      uint64_t copied = copy_range(sfd, dfd, off, end - off, rel);
      if (copied) written_end = off + copied;
      if (copied < end - off) break;  // the source shrank under us: copy what there was
      off = end;
    }
    // A trailing hole (or data that ended early) becomes the file's size without writing zeros. Only then: a
    // truncate to the same size is not free (XFS flushes a truncated file when it is closed).
    if (written_end < size && ftruncate(dfd, static_cast<off_t>(size)) != 0) fail_errno(errno, "ftruncate", rel);
  }

  uint64_t copy_range(int sfd, int dfd, uint64_t off, uint64_t len, const std::string& rel) {
    uint64_t done = 0;
    while (done < len && !cfr_unsupported_) {
      check_abort(rel);
      loff_t in = static_cast<loff_t>(off + done), out = in;
      size_t n = static_cast<size_t>(std::min<uint64_t>(len - done, kChunk));
      // The raw system call: the prebuild must not need glibc 2.27's wrapper.
      long r = syscall(SYS_copy_file_range, sfd, &in, dfd, &out, n, 0u);
      if (r < 0) {
        int err = errno;
        if (err == EINTR) continue;
        if (err == EXDEV || err == EINVAL || err == EOPNOTSUPP || err == ENOSYS || err == EBADF) {
          // Not for this pair of files (EINVAL, EBADF) or not at all here (the others): read/write from where it
          // stopped.
          if (err == ENOSYS || err == EXDEV || err == EOPNOTSUPP) cfr_unsupported_ = true;
          break;
        }
        fail_errno(err, "copy_file_range", rel, "copying a file");
      }
      if (r == 0) return done;
      done += static_cast<uint64_t>(r);
      st_.bytes_copied += static_cast<uint64_t>(r);
      st_.methods |= kCopyFileRange;
    }
    if (done >= len) return done;
    bool moved = false;
    while (done < len) {
      check_abort(rel);
      size_t want = static_cast<size_t>(std::min<uint64_t>(len - done, kBufSize));
      ssize_t r = pread(sfd, buf_.get(), want, static_cast<off_t>(off + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        fail_errno(errno, "read", rel, "reading a source file");
      }
      if (r == 0) break;
      size_t w = 0;
      while (w < static_cast<size_t>(r)) {
        ssize_t k = pwrite(dfd, buf_.get() + w, static_cast<size_t>(r) - w, static_cast<off_t>(off + done + w));
        if (k < 0) {
          if (errno == EINTR) continue;
          fail_errno(errno, "write", rel, "writing a file");
        }
        w += static_cast<size_t>(k);
      }
      done += static_cast<uint64_t>(r);
      st_.bytes_copied += static_cast<uint64_t>(r);
      moved = true;
    }
    if (moved) st_.methods |= kReadWrite;
    return done;
  }

  void copy_symlink(int sdir, int ddir, const char* name, const struct stat& st, const std::string& rel) {
    std::vector<char> target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 255) + 1);
    for (;;) {
      ssize_t n = readlinkat(sdir, name, target.data(), target.size());
      if (n < 0) fail_errno(errno, "readlinkat", rel);
      if (static_cast<size_t>(n) < target.size()) {
        target[static_cast<size_t>(n)] = '\0';
        break;
      }
      target.resize(target.size() * 2);  // grew since the fstatat
    }
    if (symlinkat(target.data(), ddir, name) != 0) fail_errno(errno, "symlinkat", rel);
    finish_node_at(sdir, ddir, name, st, rel, /*is_link=*/true);
    ++st_.symlinks;
  }

  void copy_special(int sdir, int ddir, const char* name, const struct stat& st, const std::string& parent_rel,
                    const std::string& rel) {
    if (st.st_nlink > 1) {
      auto it = links_.find({st.st_dev, st.st_ino});
      if (it != links_.end()) {
        link_again(it->second, ddir, name, rel);
        return;
      }
    }
    // 0600 now (mknod applies the umask), the real mode once the owner is set.
    if (mknodat(ddir, name, (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) {
      int err = errno;
      // Without privilege only fifos and whiteouts (char 0/0, Linux >= 5.8) can be made; other devices are counted.
      if (err == EPERM && !S_ISFIFO(st.st_mode)) {
        ++st_.skipped_specials;
        return;
      }
      fail_errno(err, "mknodat", rel);
    }
    finish_node_at(sdir, ddir, name, st, rel, /*is_link=*/false);
    ++st_.specials;
    if (st.st_nlink > 1) links_[{st.st_dev, st.st_ino}] = {parent_rel, name};
  }

  // Ownership, xattrs, mode and times of a node reached by name (symlinks, fifos, devices: nothing to open).
  void finish_node_at(int sdir, int ddir, const char* name, const struct stat& st, const std::string& rel,
                      bool is_link) {
    if (cfg_.preserve_owner && fchownat(ddir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0)
      fail_errno(errno, "fchownat", rel);
    if (have_proc_) copy_xattrs_path(proc_path(sdir, name), proc_path(ddir, name), rel);
    if (!is_link) {
      if (fchmodat(ddir, name, st.st_mode & 07777, AT_SYMLINK_NOFOLLOW) != 0) {
        // Older C libraries cannot chmod without following; the node is one we just made and is no symlink.
        if (errno != ENOTSUP || fchmodat(ddir, name, st.st_mode & 07777, 0) != 0)
          fail_errno(errno, "fchmodat", rel);
      }
    }
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW) != 0) fail_errno(errno, "utimensat", rel);
  }

  // An xattr the destination refuses for want of privilege or support is counted, not fatal: unprivileged
  // callers cannot write trusted.* or security.*, and some filesystems have no xattrs at all.
  static bool xattr_skippable(int err) {
    return err == EPERM || err == EACCES || err == EOPNOTSUPP || err == ENOSYS;
  }

  template <typename List, typename Get, typename Set>
  void copy_xattrs(List list_fn, Get get_fn, Set set_fn, const std::string& rel) {
    std::vector<char> names(256);
    ssize_t len;
    for (;;) {
      len = list_fn(names.data(), names.size());
      if (len >= 0) break;
      if (errno == ERANGE) {
        ssize_t need = list_fn(nullptr, 0);
        if (need < 0 && errno != ERANGE) fail_errno(errno, "listxattr", shown(rel));
        names.resize(need > 0 ? static_cast<size_t>(need) + 64 : names.size() * 2);
        continue;
      }
      if (errno == EOPNOTSUPP || errno == ENOSYS) return;  // no xattrs on the source filesystem
      fail_errno(errno, "listxattr", shown(rel));
    }
    std::vector<char> value(256);
    for (ssize_t i = 0; i < len;) {
      const char* key = names.data() + i;
      i += static_cast<ssize_t>(strlen(key)) + 1;
      if (cfg_.merge && is_overlay_xattr(key)) continue;  // overlay's markers are not part of the merged view
      ssize_t vlen;
      for (;;) {
        vlen = get_fn(key, value.data(), value.size());
        if (vlen >= 0) break;
        if (errno == ERANGE) {
          ssize_t need = get_fn(key, nullptr, 0);
          value.resize(need > 0 ? static_cast<size_t>(need) + 64 : value.size() * 2);
          continue;
        }
        break;
      }
      if (vlen < 0) {
        if (errno == ENODATA) continue;  // removed since listed
        if (xattr_skippable(errno)) {
          ++st_.skipped_xattrs;
          continue;
        }
        fail_errno(errno, "getxattr", shown(rel), std::string("reading xattr ") + key);
      }
      if (set_fn(key, value.data(), static_cast<size_t>(vlen)) != 0) {
        if (xattr_skippable(errno)) {
          ++st_.skipped_xattrs;
          continue;
        }
        fail_errno(errno, "setxattr", shown(rel), std::string("setting xattr ") + key);
      }
    }
  }

  void copy_xattrs_fd(int sfd, int dfd, const std::string& rel) {
    copy_xattrs([&](char* b, size_t n) { return flistxattr(sfd, b, n); },
                [&](const char* k, void* v, size_t n) { return fgetxattr(sfd, k, v, n); },
                [&](const char* k, const void* v, size_t n) { return fsetxattr(dfd, k, v, n, 0); }, rel);
  }

  void copy_xattrs_path(const std::string& src, const std::string& dst, const std::string& rel) {
    copy_xattrs([&](char* b, size_t n) { return llistxattr(src.c_str(), b, n); },
                [&](const char* k, void* v, size_t n) { return lgetxattr(src.c_str(), k, v, n); },
                [&](const char* k, const void* v, size_t n) { return lsetxattr(dst.c_str(), k, v, n, 0); }, rel);
  }
};

const char* method_name(unsigned methods, Mode mode) {
  switch (methods) {
    case 0:
      return mode == Mode::Hardlink ? "hardlink" : mode == Mode::Reflink ? "reflink" : "copy";
    case kReflink:
      return "reflink";
    case kCopyFileRange:
      return "copy_file_range";
    case kReadWrite:
      return "copy";
    case kHardlink:
      return "hardlink";
    default:
      return "mixed";
  }
}

Napi::Object stats_to_js(Napi::Env env, const CloneStats& s, Mode mode) {
  Napi::Object o = Napi::Object::New(env);
  auto n = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  n("files", s.files);
  n("dirs", s.dirs);
  n("symlinks", s.symlinks);
  n("hardlinks", s.hardlinks);
  n("specials", s.specials);
  n("skippedSpecials", s.skipped_specials);
  n("skippedXattrs", s.skipped_xattrs);
  n("bytesCloned", s.bytes_cloned);
  n("bytesCopied", s.bytes_copied);
  n("bytesHardlinked", s.bytes_hardlinked);
  o.Set("method", method_name(s.methods, mode));
  return o;
}

Napi::Object merge_stats_to_js(Napi::Env env, const CloneStats& s, Mode mode) {
  Napi::Object o = stats_to_js(env, s, mode);
  auto n = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  n("layers", s.layers);
  n("whiteouts", s.whiteouts);
  n("opaqueDirs", s.opaque_dirs);
  n("replaced", s.replaced);
  return o;
}

Mode parse_mode(Napi::Env env, const Napi::Object& opts, bool merge) {
  std::string mode = string_option(opts, "mode", "auto");
  if (mode == "auto") return Mode::Auto;
  if (mode == "reflink") return Mode::Reflink;
  if (mode == "copy") return Mode::Copy;
  // Hard links into a layer would let a change to the checkout change the store.
  if (mode == "hardlink" && !merge) return Mode::Hardlink;
  throw Napi::TypeError::New(env, merge ? "mergeLayers: mode must be 'auto', 'reflink' or 'copy'"
                                        : "cloneTree: mode must be 'auto', 'reflink', 'copy' or 'hardlink'");
}

// Runs the copier on a thread of its own; returns { promise, abort() }.
Napi::Object start_job(Napi::Env env, std::shared_ptr<CloneState> state) {
  state->deferred.emplace(Napi::Promise::Deferred::New(env));
  state->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                              "carrier-clone", 0, 1);
  Napi::Object job = Napi::Object::New(env);
  job.Set("promise", state->deferred->Promise());
  std::weak_ptr<CloneState> weak = state;
  job.Set("abort", Napi::Function::New(env, [weak](const Napi::CallbackInfo&) {
            if (auto s = weak.lock()) s->abort.store(true);
          }, "abort"));

  std::thread([state] {
    try {
      Cloner(*state).run();
    } catch (...) {
      state->failure = current_failure();
    }
    state->tsfn.BlockingCall([state](Napi::Env env, Napi::Function) {
      if (state->failure)
        state->deferred->Reject(failure_to_js(env, *state->failure));
      else if (state->cfg.merge)
        state->deferred->Resolve(merge_stats_to_js(env, state->stats, state->cfg.mode));
      else
        state->deferred->Resolve(stats_to_js(env, state->stats, state->cfg.mode));
      state->deferred.reset();
      state->tsfn.Release();
    });
  }).detach();
  return job;
}

// cloneTree(src, dst, { mode, preserveOwnership }) -> { promise, abort() }. The promise resolves with the counts or
// rejects with a failure object (ABORT_ERR after abort()); on failure the destination is left as it was found.
Napi::Value CloneTree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString() || !info[2].IsObject())
    throw Napi::TypeError::New(env, "cloneTree(src: string, dst: string, options: object)");
  auto state = std::make_shared<CloneState>();
  state->cfg.src = info[0].As<Napi::String>().Utf8Value();
  state->cfg.dst = info[1].As<Napi::String>().Utf8Value();
  Napi::Object opts = info[2].As<Napi::Object>();
  state->cfg.mode = parse_mode(env, opts, false);
  state->cfg.preserve_owner = opts.Get("preserveOwnership").ToBoolean().Value();
  return start_job(env, state);
}

// mergeLayers(layers, dst, { mode, preserveOwnership }) -> { promise, abort() }: the layer directories, base first,
// flattened into dst (new, or an empty directory) with overlay's whiteout and opaque rules. On failure the
// destination is left as it was found.
Napi::Value MergeLayers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray() || !info[1].IsString() || !info[2].IsObject())
    throw Napi::TypeError::New(env, "mergeLayers(layers: string[], dst: string, options: object)");
  auto state = std::make_shared<CloneState>();
  Napi::Array layers = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < layers.Length(); ++i) {
    Napi::Value v = layers.Get(i);
    if (!v.IsString()) throw Napi::TypeError::New(env, "mergeLayers: layers must be strings");
    state->cfg.layers.push_back(v.As<Napi::String>().Utf8Value());
  }
  if (state->cfg.layers.empty()) throw Napi::TypeError::New(env, "mergeLayers: at least one layer is needed");
  state->cfg.merge = true;
  state->cfg.src = state->cfg.layers.front();
  state->cfg.dst = info[1].As<Napi::String>().Utf8Value();
  Napi::Object opts = info[2].As<Napi::Object>();
  state->cfg.mode = parse_mode(env, opts, true);
  state->cfg.preserve_owner = opts.Get("preserveOwnership").ToBoolean().Value();
  return start_job(env, state);
}

}  // namespace

void init_clone(Napi::Env env, Napi::Object exports) {
  exports.Set("cloneTree", Napi::Function::New(env, CloneTree, "cloneTree"));
  exports.Set("mergeLayers", Napi::Function::New(env, MergeLayers, "mergeLayers"));
}

}  // namespace carrier
