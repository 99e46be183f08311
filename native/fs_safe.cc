#include "fs_safe.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

namespace carrier {

int open_in_root(int rootfd, const std::string& path, int flags, mode_t mode) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const char* p = path.empty() ? "." : path.c_str();
  for (int attempt = 0; attempt < 64; ++attempt) {
    long fd = syscall(SYS_openat2, rootfd, p, &how, sizeof(how));
    if (fd >= 0) return static_cast<int>(fd);
    if (errno != EAGAIN && errno != EINTR) return -errno;
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
