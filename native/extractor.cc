#include "extractor.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <cstring>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "fs_safe.h"

namespace carrier {

std::vector<std::string> clean_path(const std::string& name, const char* what) {
  if (name.find('\0') != std::string::npos) fail("CARRIER_BAD_TAR", std::string("NUL byte in a ") + what, name);
  bool rooted = !name.empty() && name[0] == '/';
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string::npos) j = name.size();
    std::string part = name.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty() && rooted) continue;  // "/.." is "/", as Go's filepath.Clean has it
      if (parts.empty()) {
        fail("CARRIER_UNSAFE_PATH", std::string("the ") + what + " '" + name + "' climbs out of the layer root", name);
      }
      parts.pop_back();
      continue;
    }
    parts.push_back(std::move(part));
    if (parts.size() > Extractor::kMaxDepth) {
      fail("CARRIER_LIMIT_EXCEEDED", std::string("the ") + what + " is deeper than 1024 components", name.substr(0, 256));
    }
  }
  return parts;
}

std::string join_path(const std::vector<std::string>& parts, size_t count) {
  std::string out;
  for (size_t k = 0; k < count; ++k) {
    if (k) out += '/';
    out += parts[k];
  }
  return out;
}

namespace {

const char kWhiteoutPrefix[] = ".wh.";
const char kOpaqueMarker[] = ".wh..wh..opq";

bool starts_with(const std::string& s, const char* prefix) { return s.compare(0, strlen(prefix), prefix) == 0; }

struct timespec to_timespec(int64_t sec, uint32_t nsec) {
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(sec);
  ts.tv_nsec = nsec;
  return ts;
}

// containers/storage sets the times of everything but symlinks through its Chtimes, which puts a time before 1970
// or past the end of 64-bit nanoseconds (2262) at the epoch; podman's tree has 0 there, so Carrier's does too.
void storage_time(int64_t* sec, uint32_t* nsec) {
  const int64_t max_sec = INT64_MAX / 1000000000;
  const uint32_t max_nsec = static_cast<uint32_t>(INT64_MAX % 1000000000);
  if (*sec < 0 || *sec > max_sec || (*sec == max_sec && *nsec > max_nsec)) {
    *sec = 0;
    *nsec = 0;
  }
}

[[noreturn]] void exists(const std::string& path) {
  fail("CARRIER_DUPLICATE_ENTRY", "'" + path + "' appears twice in the layer (or collides through a symlink)", path);
}

}  // namespace

void Extractor::raw(const uint8_t* data, size_t n) {
  if (split_) split_->raw(data, n);
}

void Extractor::claim(const std::string& path) {
  if (!seen_.insert(path).second) exists(path);
}

Fd Extractor::parent_dir(const std::vector<std::string>& parts, size_t count, const std::string& path) {
  std::string parent = join_path(parts, count);
  int fd = open_in_root(root_, parent, O_PATH | O_DIRECTORY);
  if (fd >= 0) return Fd(fd);
  if (fd != -ENOENT) {
    if (fd == -ENOTDIR) fail("CARRIER_BAD_TAR", "a parent of '" + path + "' is not a directory", path);
    fail_errno(-fd, "openat2", parent, "resolving a parent directory");
  }
  // Create what is missing, one component at a time, each inside its resolved parent (like mkdir -p, but every
  // step is resolved again from the root: nothing is assumed about what an earlier step found).
  for (size_t k = 1; k <= count; ++k) {
    std::string prefix = join_path(parts, k);
    int probe = open_in_root(root_, prefix, O_PATH | O_DIRECTORY);
    if (probe >= 0) {
      close(probe);
      continue;
    }
    if (probe != -ENOENT) {
      if (probe == -ENOTDIR) fail("CARRIER_BAD_TAR", "a parent of '" + path + "' is not a directory", path);
      fail_errno(-probe, "openat2", prefix, "resolving a parent directory");
    }
    Fd up(open_in_root(root_, join_path(parts, k - 1), O_PATH | O_DIRECTORY));
    if (!up.valid()) fail_errno(-up.release(), "openat2", join_path(parts, k - 1), "resolving a parent directory");
    if (mkdirat(up.get(), parts[k - 1].c_str(), 0755) != 0) {
      if (errno == EEXIST) {
        // It exists yet does not resolve to a directory: a dangling symlink. Refuse to write through it.
        fail("CARRIER_UNSAFE_PATH", "'" + path + "' would be written through a dangling symlink at '" + prefix + "'",
             path);
      }
      fail_errno(errno, "mkdirat", prefix, "creating a parent directory");
    }
  }
  fd = open_in_root(root_, parent, O_PATH | O_DIRECTORY);
  if (fd < 0) fail_errno(-fd, "openat2", parent, "resolving a parent directory");
  return Fd(fd);
}

void Extractor::entry_begin(TarEntry& e) {
  pool_.check();
  cur_ = &e;
  if (split_) {
    split_->flush_segment();
    crc_.reset();
  }
  uids_.insert(static_cast<uint32_t>(e.uid));
  gids_.insert(static_cast<uint32_t>(e.gid));
  if (e.type != '2') storage_time(&e.mtime_sec, &e.mtime_nsec);
  place(e);
  // Content with no file to hold it (a whiteout's, an aufs metadata file's, a file naming the root) goes into the
  // tar-split as raw bytes, so the layer still rebuilds byte for byte.
  content_in_split_ = split_ && e.size > 0 && !file_.valid();
}

void Extractor::place(TarEntry& e) {
  std::vector<std::string> parts = clean_path(e.name, "entry path");
  cur_path_ = join_path(parts, parts.size());
  if (parts.empty()) {
    // The root stays the directory we were given (umoci CVE-2021-29136): never replaced, never re-moded.
    if (e.type != '5') skip(e.name, "names the layer root");
    return;
  }
  const std::string& base = parts.back();
  if (starts_with(base, kWhiteoutPrefix)) {
    // Checked in both formats: an aufs or fuse-overlayfs reader would take `.wh...` as a whiteout of "..".
    std::string target = base.substr(strlen(kWhiteoutPrefix));
    if (target.empty() || target == "." || target == "..") {
      fail("CARRIER_UNSAFE_PATH", "invalid whiteout '" + e.name + "'", e.name);
    }
    if (opts_.overlay_whiteouts) return whiteout(e, parts, cur_path_);
  }
  create(e, parts, cur_path_);
}

void Extractor::whiteout(TarEntry& e, const std::vector<std::string>& parts, const std::string& path) {
  const std::string& base = parts.back();
  if (base == kOpaqueMarker) {
    // Opaque directory: hides the lower layers' content of the parent, whatever the marker's position in the tar.
    parent_dir(parts, parts.size() - 1, path);  // creates the directory when the tar has not (yet)
    std::string dir = join_path(parts, parts.size() - 1);
    Fd fd(open_in_root(root_, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    if (!fd.valid()) fail_errno(-fd.release(), "openat2", dir, "opening an opaque directory");
    const char* attr = opts_.rootless ? "user.overlay.opaque" : "trusted.overlay.opaque";
    if (fsetxattr(fd.get(), attr, "y", 1, 0) != 0) fail_errno(errno, "fsetxattr", dir, "marking a directory opaque");
    return;
  }
  // Every other `.wh.NAME`, aufs metadata (`.wh..wh.plnk`) included, becomes a whiteout of NAME, as containers/storage
  // converts them for overlay.
  std::string target = base.substr(strlen(kWhiteoutPrefix));
  std::vector<std::string> hidden(parts.begin(), parts.end() - 1);
  hidden.push_back(target);
  std::string hidden_path = join_path(hidden, hidden.size());
  claim(hidden_path);
  int probe = open_in_root(root_, join_path(parts, parts.size() - 1), O_PATH | O_DIRECTORY);
  if (probe == -ENOTDIR) {
    // `rm -rf /foo/bar` makes some tools write /.wh.foo and then /foo/.wh.bar: the second whiteout has nothing to
    // hide once foo is one. containers/storage ignores it (its mknod fails with ENOTDIR); so does Carrier.
    skip(e.name, "whiteout under a non-directory (ignored, as containers/storage does)");
    return;
  }
  if (probe >= 0) close(probe);
  Fd parent = parent_dir(parts, parts.size() - 1, path);
  // A 0/0 character device: overlayfs's whiteout; unprivileged mknod of exactly this is allowed since Linux 5.8.
  if (mknodat(parent.get(), target.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
    if (errno == EEXIST) exists(hidden_path);
    fail_errno(errno, "mknodat", hidden_path, "creating a whiteout");
  }
  if (!opts_.rootless && fchownat(parent.get(), target.c_str(), static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid),
                                  AT_SYMLINK_NOFOLLOW) != 0) {
    fail_errno(errno, "fchownat", hidden_path);
  }
}

void Extractor::create(TarEntry& e, const std::vector<std::string>& parts, const std::string& path) {
  claim(path);
  const char* base = parts.back().c_str();
  Fd parent = parent_dir(parts, parts.size() - 1, path);
  uid_t uid = static_cast<uid_t>(e.uid);
  gid_t gid = static_cast<gid_t>(e.gid);
  struct timespec times[2] = {to_timespec(e.mtime_sec, e.mtime_nsec), to_timespec(e.mtime_sec, e.mtime_nsec)};

  switch (e.type) {
    case '0': {
      const bool may_clone = e.size > 0 && !opts_.clones.empty() && opts_.clones.count(e.name) > 0;
      if (may_clone && opts_.hardlink_clones && link_into(e, parent.get(), base, path)) {
        file_ = Fd(openat(parent.get(), base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!file_.valid()) fail_errno(errno, "openat", path, "opening a hard-linked file");
        linked_ = cloned_ = true;
        clone_at_ = 0;
        pooled_ = false;
        stage_len_ = 0;
        content_off_ = data_end_ = 0;
        return;  // content compared in entry_data
      }
      file_ = Fd(openat(parent.get(), base, (may_clone ? O_RDWR : O_WRONLY) | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!file_.valid()) {
        if (errno == EEXIST) exists(path);
        fail_errno(errno, "openat", path, "creating a file");
      }
      cloned_ = may_clone && clone_into(e);
      clone_at_ = 0;
      pooled_ = !cloned_ && e.size <= kPooledFileMax && e.xattrs.empty();
      if (pooled_) {
        content_.clear();
        content_.reserve(static_cast<size_t>(e.size));
      }
      stage_len_ = 0;
      content_off_ = data_end_ = 0;
      return;  // content, then metadata in entry_end
    }
    case '5': {
      if (mkdirat(parent.get(), base, 0755) != 0) {
        if (errno != EEXIST) fail_errno(errno, "mkdirat", path, "creating a directory");
        struct stat st;
        // Made earlier as an implied parent: fine. Anything else already there is a collision.
        if (fstatat(parent.get(), base, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) exists(path);
      }
      Fd dir(openat(parent.get(), base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dir.valid()) fail_errno(errno, "openat", path, "opening a directory");
      if (!opts_.rootless && fchown(dir.get(), uid, gid) != 0) fail_errno(errno, "fchown", path);
      apply_xattrs(dir.get(), nullptr, e, path);
      // Mode and mtime wait until the directory's contents exist (a 0555 directory could not be filled).
      dirs_.push_back({path, parts.size(), e.mode, e.mtime_sec, e.mtime_nsec});
      return;
    }
    case '2': {
      if (symlinkat(e.linkname.c_str(), parent.get(), base) != 0) {
        if (errno == EEXIST) exists(path);
        fail_errno(errno, "symlinkat", path, "creating a symlink");
      }
      if (!opts_.rootless && fchownat(parent.get(), base, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
        fail_errno(errno, "fchownat", path);
      }
      if (utimensat(parent.get(), base, times, AT_SYMLINK_NOFOLLOW) != 0) fail_errno(errno, "utimensat", path);
      apply_xattrs(parent.get(), base, e, path);
      return;
    }
    case '1': {
      std::vector<std::string> target = clean_path(e.linkname, "hardlink target");
      if (target.empty()) fail("CARRIER_UNSAFE_PATH", "hardlink '" + e.name + "' points at the layer root", path);
      std::string target_path = join_path(target, target.size());
      Fd tparent(open_in_root(root_, join_path(target, target.size() - 1), O_PATH | O_DIRECTORY));
      if (!tparent.valid()) {
        int err = -tparent.release();
        if (err == ENOENT || err == ENOTDIR) {
          fail("CARRIER_BAD_TAR", "hardlink '" + e.name + "' points at '" + e.linkname + "', which is not in the layer",
               path);
        }
        fail_errno(err, "openat2", target_path, "resolving a hardlink target");
      }
      // flags 0: a final symlink is linked as itself, never followed.
      if (linkat(tparent.get(), target.back().c_str(), parent.get(), base, 0) != 0) {
        if (errno == EEXIST) exists(path);
        if (errno == ENOENT) {
          fail("CARRIER_BAD_TAR", "hardlink '" + e.name + "' points at '" + e.linkname + "', which is not in the layer",
               path);
        }
        if (errno == EPERM) fail("CARRIER_BAD_TAR", "hardlink '" + e.name + "' points at a directory", path);
        fail_errno(errno, "linkat", path, "creating a hardlink");
      }
      links_.push_back({path, e});
      return;
    }
    case '3':
    case '4':
    case '6': {
      bool device = e.type != '6';
      if (device && opts_.rootless) {
        skip(e.name, "device node needs privilege (rootless)");
        return;
      }
      mode_t kind = e.type == '3' ? S_IFCHR : e.type == '4' ? S_IFBLK : S_IFIFO;
      dev_t dev = device ? makedev(e.devmajor, e.devminor) : 0;
      if (mknodat(parent.get(), base, kind | 0600, dev) != 0) {
        if (errno == EEXIST) exists(path);
        fail_errno(errno, "mknodat", path, device ? "creating a device node" : "creating a fifo");
      }
      // Opening a fifo or device could block or have effects: act on the name, which we just created exclusively.
      if (!opts_.rootless && fchownat(parent.get(), base, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
        fail_errno(errno, "fchownat", path);
      }
      if (fchmodat(parent.get(), base, e.mode, 0) != 0) fail_errno(errno, "fchmodat", path);
      if (utimensat(parent.get(), base, times, AT_SYMLINK_NOFOLLOW) != 0) fail_errno(errno, "utimensat", path);
      apply_xattrs(parent.get(), base, e, path);
      return;
    }
    default:  // TarReader refuses every other type before it gets here
      fail("CARRIER_BAD_TAR", std::string("unhandled tar header type '") + e.type + "'", path);
  }
}

// containers/storage applies a hardlink header's owner and xattrs, and (unless the inode is a symlink) its mode and
// mtime, to the inode it shares with the target: the last header naming an inode decides its metadata. Applied
// once every file's own metadata has landed (small files finish in the write pool), in the order of the headers.
void Extractor::hardlink_metadata(const LinkMeta& link) {
  const TarEntry& e = link.entry;
  const std::string& path = link.path;
  std::vector<std::string> parts = clean_path(path, "hardlink path");
  Fd parent(open_in_root(root_, join_path(parts, parts.size() - 1), O_PATH | O_DIRECTORY));
  if (!parent.valid()) fail_errno(-parent.release(), "openat2", path, "resolving a hardlink's directory");
  const char* base = parts.back().c_str();
  if (!opts_.rootless && fchownat(parent.get(), base, static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid),
                                  AT_SYMLINK_NOFOLLOW) != 0) {
    fail_errno(errno, "fchownat", path);
  }
  struct stat st;
  if (fstatat(parent.get(), base, &st, AT_SYMLINK_NOFOLLOW) != 0) fail_errno(errno, "fstatat", path);
  if (!S_ISLNK(st.st_mode)) {
    // Not a symlink (checked on the name, inside a directory nothing else changes): these act on the inode itself.
    if (fchmodat(parent.get(), base, e.mode, 0) != 0) fail_errno(errno, "fchmodat", path);
    struct timespec times[2] = {to_timespec(e.mtime_sec, e.mtime_nsec), to_timespec(e.mtime_sec, e.mtime_nsec)};
    if (utimensat(parent.get(), base, times, AT_SYMLINK_NOFOLLOW) != 0) fail_errno(errno, "utimensat", path);
  }
  apply_xattrs(parent.get(), base, e, path);
}

void Extractor::global_header(const std::string& name) {
  // Go hands a global header to containers/storage as an entry: it creates the parents of its name, and would
  // remove whatever already has that name (or, for the root, the whole layer so far). Those are refused.
  std::vector<std::string> parts = clean_path(name, "global header name");
  if (parts.empty()) fail("CARRIER_BAD_TAR", "a PAX global header names the layer root", name);
  std::string path = join_path(parts, parts.size());
  if (starts_with(parts.back(), kWhiteoutPrefix)) {
    fail("CARRIER_BAD_TAR", "a PAX global header is named like a whiteout ('" + name + "')", name);
  }
  int fd = open_in_root(root_, path, O_PATH | O_NOFOLLOW);
  if (fd >= 0) {
    close(fd);
    fail("CARRIER_BAD_TAR", "a PAX global header has the name of an entry before it ('" + path + "')", path);
  }
  if (parts.size() > 1) parent_dir(parts, parts.size() - 1, path);
}

// Sets the entry's xattrs as containers/storage does: on the open file or directory `fd`, or, when `base` is given,
// on that name inside the directory `fd` without following it (symlinks, fifos, devices: lsetxattr through the
// directory's /proc/self/fd link, so nothing is resolved from outside the layer). ENOTSUP is skipped, as podman
// ignores it; EPERM and EACCES are skipped rootless (podman ignores EPERM in a user namespace) and fail the layer
// otherwise, as they fail podman's pull.
void Extractor::apply_xattrs(int fd, const char* base, const TarEntry& e, const std::string& path) {
  std::string at = base ? "/proc/self/fd/" + std::to_string(fd) + "/" + base : std::string();
  for (const auto& kv : e.xattrs) {
    const std::string& name = kv.first;
    if (name == "security.selinux") {
      // containers/storage drops it (xattrsToIgnore): the label comes from the host's policy, not from the layer.
      skip(e.name, "xattr security.selinux is not taken from layers (as containers/storage)");
      continue;
    }
    if (starts_with(name, "trusted.overlay.") || starts_with(name, "user.overlay.")) {
      skip(e.name, "xattr " + name + " is reserved for overlayfs and not taken from layers");
      continue;
    }
    if (opts_.rootless && (starts_with(name, "trusted.") || name == "security.capability")) {
      skip(e.name, "xattr " + name + " needs privilege (rootless)");
      continue;
    }
    int rc = base ? lsetxattr(at.c_str(), name.c_str(), kv.second.data(), kv.second.size(), 0)
                  : fsetxattr(fd, name.c_str(), kv.second.data(), kv.second.size(), 0);
    if (rc != 0) {
      if (errno == ENOTSUP || (opts_.rootless && (errno == EPERM || errno == EACCES))) {
        skip(e.name, "xattr " + name + " not supported here: " + strerror(errno));
        continue;
      }
      fail_errno(errno, base ? "lsetxattr" : "fsetxattr", path, "setting xattr " + name);
    }
  }
}

// A reflink of the store file named for this entry, when it is a regular file of the entry's size and the
// filesystem can clone; false (the content is then written as usual) otherwise.
bool Extractor::clone_into(const TarEntry& e) {
  Fd src(open(opts_.clones.at(e.name).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st;
  if (!src.valid() || fstat(src.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != e.size) return false;
  return ioctl(file_.get(), FICLONE, src.get()) == 0;
}

// A hard link to the store file named for this entry when that file's owner, mode, mtime and xattrs (but
// security.selinux, which containers/storage ignores too) are exactly the entry's: the inode is shared, so nothing of
// it may differ from what the layer says, and nothing is set on it afterwards. containers/storage's rule for
// use_hard_links compares owner, mode and xattrs; the mtime is compared here too, so the layer's tree shows the times
// its tar gives. False (the file is then made as usual) when anything differs or the link cannot be made.
bool Extractor::link_into(const TarEntry& e, int parent, const char* base, const std::string& path) {
  Fd src(open(opts_.clones.at(e.name).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st;
  if (!src.valid() || fstat(src.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != e.size) return false;
  if (st.st_uid != static_cast<uid_t>(e.uid) || st.st_gid != static_cast<gid_t>(e.gid)) return false;
  if ((st.st_mode & 07777) != (e.mode & 07777)) return false;
  if (st.st_mtim.tv_sec != e.mtime_sec || st.st_mtim.tv_nsec != static_cast<long>(e.mtime_nsec)) return false;
  std::vector<std::pair<std::string, std::string>> want;
  for (const auto& kv : e.xattrs) {
    if (kv.first != "security.selinux") want.push_back(kv);
  }
  ssize_t len = flistxattr(src.get(), nullptr, 0);
  if (len < 0) return false;
  std::string names(static_cast<size_t>(len), '\0');
  if (len > 0 && (len = flistxattr(src.get(), &names[0], names.size())) < 0) return false;
  size_t have = 0;
  for (size_t at = 0; at < static_cast<size_t>(len); at += strlen(names.c_str() + at) + 1) {
    const char* name = names.c_str() + at;
    if (strcmp(name, "security.selinux") == 0) continue;
    auto it = std::find_if(want.begin(), want.end(), [&](const auto& kv) { return kv.first == name; });
    if (it == want.end()) return false;
    std::string value(it->second.size() + 1, '\0');
    ssize_t got = fgetxattr(src.get(), name, &value[0], value.size());
    if (got < 0 || static_cast<size_t>(got) != it->second.size() || value.compare(0, it->second.size(), it->second) != 0) return false;
    ++have;
  }
  if (have != want.size()) return false;
  std::string self = "/proc/self/fd/" + std::to_string(src.get());
  if (linkat(AT_FDCWD, self.c_str(), parent, base, AT_SYMLINK_FOLLOW) == 0) return true;
  if (errno == EEXIST) exists(path);
  return false;
}

// The tar's bytes must be the clone's: a store file that changed since it was indexed fails the layer.
void Extractor::compare_clone(const uint8_t* data, size_t n) {
  uint8_t buf[64 << 10];
  while (n > 0) {
    size_t k = std::min(n, sizeof buf);
    ssize_t got = pread(file_.get(), buf, k, clone_at_);
    if (got < 0) fail_errno(errno, "pread", cur_path_, "reading a cloned file back");
    if (static_cast<size_t>(got) != k || memcmp(buf, data, k) != 0) {
      fail("CARRIER_DIGEST_MISMATCH", "the store file cloned for '" + cur_path_ + "' does not hold the content the layer's tar carries", cur_path_);
    }
    clone_at_ += got;
    data += k;
    n -= k;
  }
}

void Extractor::entry_data(const uint8_t* data, size_t n) {
  if (content_in_split_) {
    split_->raw(data, n);
    return;
  }
  if (split_) crc_.update(data, n);
  if (!file_.valid()) return;
  if (cloned_) {
    compare_clone(data, n);
  } else if (pooled_) {
    content_.insert(content_.end(), data, data + n);
  } else {
    stream_content(data, n);
  }
}

// Gathers a streamed file's content into whole blocks at block-aligned offsets, so that a run of zeros is recognised
// wherever the parser's pieces happen to end.
void Extractor::stream_content(const uint8_t* data, size_t n) {
  while (n > 0) {
    if (stage_len_ == 0 && n >= kHoleBlock) {
      size_t whole = n - n % kHoleBlock;
      write_blocks(data, whole);
      data += whole;
      n -= whole;
      continue;
    }
    size_t k = std::min(kHoleBlock - stage_len_, n);
    memcpy(stage_ + stage_len_, data, k);
    stage_len_ += k;
    data += k;
    n -= k;
    if (stage_len_ == kHoleBlock) {
      write_blocks(stage_, kHoleBlock);
      stage_len_ = 0;
    }
  }
}

// Writes whole blocks (but for a file's last one) at content_off_, leaving holes for blocks of zeros (write_runs).
void Extractor::write_blocks(const uint8_t* data, size_t n) {
  WrittenRuns w = write_runs(file_.get(), data, n, content_off_, cur_path_, [this](size_t bytes) { charge(bytes); });
  if (w.bytes) data_end_ = w.end;
  content_off_ += static_cast<int64_t>(n);
}

// The last partial block, then the file's length, when it ends in a hole.
void Extractor::finish_streamed(int64_t size) {
  if (stage_len_ > 0) {
    write_blocks(stage_, stage_len_);
    stage_len_ = 0;
  }
  if (data_end_ < size && ftruncate(file_.get(), size) != 0) fail_errno(errno, "ftruncate", cur_path_);
}

void Extractor::entry_end() {
  TarEntry& e = *cur_;
  if (file_.valid() && pooled_) {
    charge(data_bytes(content_.data(), content_.size()));
    WriteTask task;
    task.fd = std::move(file_);
    task.content = std::move(content_);
    task.path = cur_path_;
    task.chown = !opts_.rootless;
    task.uid = static_cast<uint32_t>(e.uid);
    task.gid = static_cast<uint32_t>(e.gid);
    task.mode = e.mode;
    task.mtime_sec = e.mtime_sec;
    task.mtime_nsec = e.mtime_nsec;
    task.writeback = opts_.writeback;
    pool_.submit(std::move(task));
    content_ = std::vector<uint8_t>();
  } else if (file_.valid() && linked_) {
    if (clone_at_ != e.size) fail("CARRIER_DIGEST_MISMATCH", "the store file hard-linked for '" + cur_path_ + "' is not the size the layer's tar gives", cur_path_);
    file_.reset();
  } else if (file_.valid()) {
    if (!cloned_) finish_streamed(e.size);  // a clone holds its content already, sharing the store file's blocks
    if (opts_.writeback && !cloned_ && data_end_ > 0) sync_file_range(file_.get(), 0, 0, SYNC_FILE_RANGE_WRITE);  // a hint
    int fd = file_.get();
    if (!opts_.rootless) set_owner(fd, cur_path_, static_cast<uint32_t>(e.uid), static_cast<uint32_t>(e.gid));
    apply_xattrs(fd, nullptr, e, cur_path_);
    set_mode_and_times(fd, cur_path_, e.mode, e.mtime_sec, e.mtime_nsec);
    if (cloned_ && clone_at_ != e.size) fail("CARRIER_DIGEST_MISMATCH", "the store file cloned for '" + cur_path_ + "' is not the size the layer's tar gives", cur_path_);
    file_.reset();
  }
  cloned_ = linked_ = false;
  if (content_in_split_) {
    split_->file(e.name, 0, nullptr);
  } else if (split_) {
    uint8_t crc[8];
    crc_.big_endian(crc);
    split_->file(e.name, e.size, e.size ? crc : nullptr);
  }
  cur_ = nullptr;
}

void Extractor::finish() {
  pool_.drain();
  for (const LinkMeta& link : links_) hardlink_metadata(link);
  std::stable_sort(dirs_.begin(), dirs_.end(), [](const DirMeta& a, const DirMeta& b) { return a.depth > b.depth; });
  for (const DirMeta& d : dirs_) {
    Fd fd(open_in_root(root_, d.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    if (!fd.valid()) fail_errno(-fd.release(), "openat2", d.path, "opening a directory to set its mode");
    if (fchmod(fd.get(), d.mode) != 0) fail_errno(errno, "fchmod", d.path);
    struct timespec times[2] = {to_timespec(d.sec, d.nsec), to_timespec(d.sec, d.nsec)};
    if (futimens(fd.get(), times) != 0) fail_errno(errno, "futimens", d.path);
  }
}

}  // namespace carrier
