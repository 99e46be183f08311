#include "fs_safe.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <vector>

namespace carrier {

namespace {

enum Resolver { kUndecided = 0, kOpenat2 = 1, kWalk = 2 };
std::atomic<int> g_resolver{kUndecided};

constexpr int kMaxSymlinks = 40;  // the kernel's MAXSYMLINKS: ELOOP past it, as openat2 would answer

long sys_openat2(int dirfd, const char* path, int flags, mode_t mode, uint64_t resolve) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = resolve;
  return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

int decide() {
  const char* off = getenv("CARRIER_NO_OPENAT2");
  if (off && *off && strcmp(off, "0") != 0) return kWalk;
  long fd = sys_openat2(AT_FDCWD, "/", O_PATH | O_DIRECTORY, 0, RESOLVE_NO_MAGICLINKS);
  if (fd >= 0) {
    close(static_cast<int>(fd));
    return kOpenat2;
  }
  return errno == ENOSYS || errno == EPERM ? kWalk : kOpenat2;
}

int resolver() {
  int r = g_resolver.load(std::memory_order_acquire);
  if (r != kUndecided) return r;
  int mine = decide();
  // Two threads may both decide; they reach the same answer, and the first one stored wins.
  return g_resolver.compare_exchange_strong(r, mine, std::memory_order_acq_rel) ? mine : r;
}

// A path's components in order, empty ones dropped; a trailing slash becomes a final "." (the name before it must
// then be a directory, reached through a symlink if need be, as the kernel reads "name/").
void push_front_path(std::deque<std::string>& todo, const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.emplace_back(path, i, j - i);
    i = j + 1;
  }
  if (!path.empty() && path.back() == '/' && !parts.empty()) parts.emplace_back(".");
  todo.insert(todo.begin(), parts.begin(), parts.end());
}

bool on_procfs(int fd) {
  struct statfs sfs;
  return fstatfs(fd, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC;
}

// The userspace resolution: `names_` are the real directories (never symlinks) from the base to the current one,
// so ".." is the lexical parent of a physical path, reopened from the base through directories only: it can never
// climb above the base, whatever is renamed meanwhile (a rename that breaks the chain answers EAGAIN, as openat2
// does when it sees one).
class Walk {
 public:
  // in_root: RESOLVE_IN_ROOT (symlinks followed inside the base, ".." at the base stays there). Otherwise
  // RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV (absolute paths, ".." above the base and mount
  // crossings are EXDEV; symlinks ELOOP). Both refuse magic links.
  Walk(int base, bool in_root) : base_(base), in_root_(in_root) {}

  int open(const std::string& path, int flags, mode_t mode) {
    if (path.size() >= PATH_MAX) return -ENAMETOOLONG;
    if (path.empty()) return -ENOENT;
    if (!in_root_) {
      if (path[0] == '/') return -EXDEV;
      struct stat st;
      if (fstat(base_, &st) != 0) return -errno;
      dev_ = st.st_dev;
    }
    flags |= O_CLOEXEC;
    std::deque<std::string> todo;
    push_front_path(todo, path);
    while (!todo.empty()) {
      std::string name = std::move(todo.front());
      todo.pop_front();
      if (name == ".") continue;
      if (name == "..") {
        if (int r = up(); r < 0) return r;
        continue;
      }
      if (!todo.empty()) {
        int fd = openat(at(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
          int err = errno;
          if (err != ENOTDIR) return -err;
          if (int r = follow_if_link(name, todo, err); r < 0) return r;
          continue;
        }
        Fd dir(fd);
        if (int r = same_mount(fd); r < 0) return r;
        names_.push_back(std::move(name));
        cur_ = std::move(dir);
        continue;
      }
      // The final component: opened with the caller's flags, never letting the kernel follow a symlink.
      if (flags & O_NOFOLLOW) return finish(openat(at(), name.c_str(), flags, mode));
      int fd = openat(at(), name.c_str(), flags | O_NOFOLLOW, mode);
      if (fd >= 0) {
        Fd got(fd);
        struct stat st;
        if ((flags & O_PATH) && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
          if (int r = expand(fd, todo); r < 0) return r;
          continue;
        }
        return finish(got.release());
      }
      int err = errno;
      if (err != ELOOP && err != ENOTDIR) return -err;
      if (int r = follow_if_link(name, todo, err); r < 0) return r;
    }
    // The path ended on a directory already reached ("..", a trailing slash, a symlink to a directory name).
    return finish(openat(at(), ".", flags, mode));
  }

 private:
  int at() const { return cur_.valid() ? cur_.get() : base_; }

  int finish(int fd) {
    if (fd < 0) return -errno;
    if (int r = same_mount(fd); r < 0) {
      close(fd);
      return r;
    }
    return fd;
  }

  int same_mount(int fd) const {
    if (in_root_) return 0;
    struct stat st;
    if (fstat(fd, &st) != 0) return -errno;
    return st.st_dev == dev_ ? 0 : -EXDEV;
  }

  int up() {
    if (names_.empty()) return in_root_ ? 0 : -EXDEV;
    names_.pop_back();
    Fd dir;
    for (const std::string& n : names_) {
      int fd = openat(dir.valid() ? dir.get() : base_, n.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return errno == ENOENT || errno == ENOTDIR ? -EAGAIN : -errno;
      dir = Fd(fd);
    }
    cur_ = std::move(dir);
    return 0;
  }

  // `name` in the current directory failed to open with `err`: when it is a symlink, expand it; else `err` stands.
  int follow_if_link(const std::string& name, std::deque<std::string>& todo, int err) {
    Fd link(openat(at(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!link.valid()) return -errno;
    struct stat st;
    if (fstat(link.get(), &st) != 0) return -errno;
    if (!S_ISLNK(st.st_mode)) return -err;
    return expand(link.get(), todo);
  }

  // Puts the target of the symlink `linkfd` (in the current directory) in front of what is left to resolve.
  int expand(int linkfd, std::deque<std::string>& todo) {
    if (!in_root_ || on_procfs(linkfd)) return -ELOOP;
    if (++links_ > kMaxSymlinks) return -ELOOP;
    char buf[PATH_MAX];
    ssize_t n = readlinkat(linkfd, "", buf, sizeof buf);
    if (n < 0) return -errno;
    if (n == 0) return -ENOENT;
    if (static_cast<size_t>(n) >= sizeof buf) return -ENAMETOOLONG;
    std::string target(buf, static_cast<size_t>(n));
    if (target[0] == '/') {
      names_.clear();
      cur_.reset();
    }
    push_front_path(todo, target);
    return 0;
  }

  int base_;
  bool in_root_;
  dev_t dev_ = 0;
  Fd cur_;
  std::vector<std::string> names_;
  int links_ = 0;
};

}  // namespace

const char* path_resolver() { return resolver() == kWalk ? "walk" : "openat2"; }

int open_in_root_walk(int rootfd, const std::string& path, int flags, mode_t mode) {
  return Walk(rootfd, /*in_root=*/true).open(path, flags, mode);
}

int open_beneath_walk(int dirfd, const std::string& path, int flags) {
  return Walk(dirfd, /*in_root=*/false).open(path, flags, 0);
}

int open_in_root(int rootfd, const std::string& path, int flags, mode_t mode) {
  const char* p = path.empty() ? "." : path.c_str();
  for (int attempt = 0; attempt < 64; ++attempt) {
    int fd;
    if (resolver() == kOpenat2) {
      long r = sys_openat2(rootfd, p, flags, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
      fd = r >= 0 ? static_cast<int>(r) : -errno;
      if (fd == -ENOSYS) {
        g_resolver.store(kWalk, std::memory_order_release);
        continue;
      }
    } else {
      fd = open_in_root_walk(rootfd, p, flags, mode);
    }
    if (fd >= 0) return fd;
    if (fd != -EAGAIN && fd != -EINTR) return fd;
  }
  return -EAGAIN;
}

int open_beneath(int dirfd, const std::string& path, int flags) {
  for (int attempt = 0; attempt < 64; ++attempt) {
    int fd;
    if (resolver() == kOpenat2) {
      long r = sys_openat2(dirfd, path.c_str(), flags, 0,
                           RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
      fd = r >= 0 ? static_cast<int>(r) : -errno;
      if (fd == -ENOSYS) {
        g_resolver.store(kWalk, std::memory_order_release);
        continue;
      }
    } else {
      fd = open_beneath_walk(dirfd, path, flags);
    }
    if (fd >= 0) return fd;
    if (fd != -EAGAIN && fd != -EINTR) return fd;
  }
  return -EAGAIN;
}

Fd open_root(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail_errno(errno, "open", dir, "opening the layer directory");
  return Fd(fd);
}

namespace {

void empty_at(int dirfd, const std::string& shown, int depth) {
  if (depth > 4096) fail("CARRIER_LIMIT_EXCEEDED", "directory nesting too deep to remove", shown);
  // List first, then remove: unlinking while readdir walks the same directory may skip entries.
  std::vector<std::string> names;
  {
    int fd = dup(dirfd);
    if (fd < 0) fail_errno(errno, "dup", shown);
    DIR* d = fdopendir(fd);
    if (!d) {
      int err = errno;
      close(fd);
      fail_errno(err, "fdopendir", shown);
    }
    rewinddir(d);
    while (struct dirent* ent = readdir(d)) {
      if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0) names.emplace_back(ent->d_name);
    }
    closedir(d);
  }
  for (const std::string& name : names) {
    struct stat st;
    if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    std::string child = shown + "/" + name;
    if (S_ISDIR(st.st_mode)) {
      // Make sure we may list and unlink inside it; a directory (not a symlink) by the fstatat above.
      if ((st.st_mode & 0700) != 0700) fchmodat(dirfd, name.c_str(), 0700, 0);
      Fd sub(openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) fail_errno(errno, "openat", child, "opening a directory to remove it");
      empty_at(sub.get(), child, depth + 1);
      if (unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) fail_errno(errno, "unlinkat", child);
    } else if (unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
      fail_errno(errno, "unlinkat", child);
    }
  }
}

}  // namespace

void empty_directory(int dirfd, const std::string& shown_path) {
  struct stat st;
  if (fstat(dirfd, &st) == 0 && (st.st_mode & 0700) != 0700) fchmod(dirfd, st.st_mode | 0700);
  empty_at(dirfd, shown_path, 0);
}

}  // namespace carrier
