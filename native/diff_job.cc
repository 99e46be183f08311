// diffLayer: an overlay layer's upper directory becomes its layer blob in one pass on native threads — the walk and
// the tar (exactly the bytes src/drivers/overlay-diff.ts writes), the SHA-256 of the tar (diff_id), the compressor
// (gzip or zstd on several cores, or none), the SHA-256 of the blob (digest), and the blob written to a file.
//
// The archive, as containers/storage writes a layer and as the JS walk does (that one stays the reference):
//   - names in byte order, each directory's entries after its own; the root itself is not archived;
//   - a header per entry from its lstat: the whole st_mode, owner, whole-second mtime, size, link target, device
//     numbers; its xattrs (but overlay's own) as SCHILY.xattr PAX records in name order; PAX also for a name or link
//     target that ustar cannot hold, and for numbers too big for octal;
//   - a second name of an inode (not a directory) already archived becomes a hard-link entry;
//   - a 0/0 character device is a whiteout: `.wh.NAME`, mode 0, its owner and mtime — unless a `.wh.NAME` file sits
//     beside it (fuse-overlayfs may mark a deletion both ways), which is archived instead;
//   - a directory whose opaque xattr is "y" gets `.wh..wh..opq` (its permissions and owner, mtime 0) right after its
//     own entry, unless it holds such a file already; sockets are left out.
// Nothing is followed: every name is opened or examined relative to its directory's descriptor with O_NOFOLLOW /
// AT_SYMLINK_NOFOLLOW, and xattrs are read through the directory's /proc/self/fd link.
#include <dirent.h>
#include <fcntl.h>
#include <napi.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "apply_job.h"
#include "block_queue.h"
#include "common.h"
#include "napi_util.h"
#include "parallel_compressor.h"
#include "sha256.h"

namespace carrier {

namespace {

constexpr size_t kBlock = 512;
constexpr size_t kStage = 1 << 20;  // tar bytes gathered before they go to the hash and the compressor
// Staged blocks in all: the walking thread fills them while the one that hashes and writes (or compresses) empties
// them, so reading files and hashing/writing overlap.
constexpr size_t kStages = 4;

// ---- the tar header, as src/save/tar.ts writes it ---------------------------------------------------------------

struct Header {
  std::string name;
  char type = '0';
  uint64_t mode = 0;
  uint64_t uid = 0, gid = 0;
  uint64_t size = 0;
  int64_t mtime = 0;
  std::string linkname;
  uint64_t devmajor = 0, devminor = 0;
  const std::vector<std::pair<std::string, std::string>>* xattrs = nullptr;
};

bool fits_octal(uint64_t v, int len) {
  return len - 1 >= 22 || v < (uint64_t{1} << (3 * (len - 1)));
}

// An octal field of len bytes: len-1 digits (the first len-1 of a longer number) and a NUL.
void put_octal(uint8_t* b, size_t off, int len, uint64_t v) {
  char digits[32];
  int n = snprintf(digits, sizeof digits, "%0*llo", len - 1, static_cast<unsigned long long>(v));
  memcpy(b + off, digits, std::min(n, len - 1));
  b[off + len - 1] = 0;
}

bool portable(const std::string& s) {
  for (unsigned char c : s)
    if (c == 0 || c >= 0x80) return false;
  return true;
}

// Printable ASCII kept, every other byte '_': what goes into a field a reader does not rely on.
std::string printable(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '_';
  return out;
}

void pax_record(std::string& out, const std::string& key, const std::string& value) {
  size_t body = 1 + key.size() + 1 + value.size() + 1;  // " key=value\n"
  size_t len = body + 1;
  while (std::to_string(len).size() + body > len) ++len;
  out += std::to_string(len);
  out += ' ';
  out += key;
  out += '=';
  out += value;
  out += '\n';
}

struct Ustar {
  std::string name, prefix, linkname;
  uint64_t mode = 0, uid = 0, gid = 0, size = 0, mtime = 0, devmajor = 0, devminor = 0;
  char type = '0';
};

void ustar_block(std::string& out, const Ustar& f) {
  uint8_t b[kBlock] = {};
  memcpy(b, f.name.data(), std::min<size_t>(100, f.name.size()));
  put_octal(b, 100, 8, f.mode);
  put_octal(b, 108, 8, f.uid);
  put_octal(b, 116, 8, f.gid);
  put_octal(b, 124, 12, f.size);
  put_octal(b, 136, 12, f.mtime);
  b[156] = static_cast<uint8_t>(f.type);
  memcpy(b + 157, f.linkname.data(), std::min<size_t>(100, f.linkname.size()));
  memcpy(b + 257, "ustar\0" "00", 8);
  put_octal(b, 329, 8, f.devmajor);
  put_octal(b, 337, 8, f.devminor);
  memcpy(b + 345, f.prefix.data(), std::min<size_t>(155, f.prefix.size()));
  memset(b + 148, ' ', 8);
  unsigned sum = 0;
  for (uint8_t c : b) sum += c;
  char digits[16];
  snprintf(digits, sizeof digits, "%06o", sum);
  memcpy(b + 148, digits, 6);
  b[154] = 0;
  b[155] = ' ';
  out.append(reinterpret_cast<const char*>(b), kBlock);
}

void pad(std::string& out, size_t n) {
  if (n % kBlock) out.append(kBlock - n % kBlock, '\0');
}

// Appends the header block(s) of one entry: a PAX extended header first when some field needs it.
void tar_header(std::string& out, Header h) {
  if (h.type == '5' && (h.name.empty() || h.name.back() != '/')) h.name += '/';
  const std::string& name = h.name;
  uint64_t size = h.type == '0' ? h.size : 0;
  std::string records;
  std::optional<std::pair<std::string, std::string>> split;
  if (portable(name)) {
    if (name.size() <= 100) {
      split.emplace(std::string(), name);
    } else {
      for (size_t i = std::min<size_t>(name.size() - 2, 155); i > 0; --i) {
        if (name[i] == '/' && name.size() - i - 1 <= 100) {
          split.emplace(name.substr(0, i), name.substr(i + 1));
          break;
        }
      }
    }
  }
  if (!split) pax_record(records, "path", name);
  bool long_link = h.linkname.size() > 100 || !portable(h.linkname);
  if (long_link) pax_record(records, "linkpath", h.linkname);
  if (!fits_octal(h.uid, 8)) pax_record(records, "uid", std::to_string(h.uid));
  if (!fits_octal(h.gid, 8)) pax_record(records, "gid", std::to_string(h.gid));
  if (!fits_octal(size, 12)) pax_record(records, "size", std::to_string(size));
  bool mtime_fits = h.mtime >= 0 && fits_octal(static_cast<uint64_t>(h.mtime), 12);
  if (!mtime_fits) pax_record(records, "mtime", std::to_string(h.mtime));
  if (h.xattrs)
    for (const auto& kv : *h.xattrs) pax_record(records, "SCHILY.xattr." + kv.first, kv.second);

  Ustar main;
  if (split) {
    main.prefix = split->first;
    main.name = split->second;
  } else {
    std::string p = printable(name);
    main.name = p.size() > 100 ? p.substr(p.size() - 100) : p;
  }
  main.mode = h.mode & 0177777;
  main.uid = fits_octal(h.uid, 8) ? h.uid : 0;
  main.gid = fits_octal(h.gid, 8) ? h.gid : 0;
  main.size = fits_octal(size, 12) ? size : 0;
  main.mtime = mtime_fits ? static_cast<uint64_t>(h.mtime) : 0;
  main.type = h.type;
  if (!long_link) main.linkname = h.linkname;
  main.devmajor = h.devmajor;
  main.devminor = h.devminor;
  if (!records.empty()) {
    // The extended header's own name is informational: readers never extract it.
    std::string base = printable(name);
    while (!base.empty() && base.back() == '/') base.pop_back();
    size_t slash = base.rfind('/');
    if (slash != std::string::npos) base = base.substr(slash + 1);
    Ustar pax;
    pax.name = ("PaxHeaders.0/" + base).substr(0, 99);
    pax.mode = 0644;
    pax.size = records.size();
    pax.type = 'x';
    ustar_block(out, pax);
    out += records;
    pad(out, records.size());
  }
  ustar_block(out, main);
}

// ---- the walk ---------------------------------------------------------------------------------------------------

struct DiffConfig {
  std::string upper, out;
  Compression compression = Compression::None;
  int level = 0;
  int threads = 1;
  bool sync = false;
  // out is made a FIFO (it must not exist) that a reader opens: the tar streams through it, nothing is stored.
  bool fifo = false;
  // Start writing each file's dirty pages out once it is read (sync_file_range, asynchronous): a commit syncs the
  // file system afterwards, and container changes just written would otherwise all wait for that syncfs.
  bool writeback = false;
};

struct DiffResult {
  std::string diff_id, digest;
  uint64_t size = 0, uncompressed_size = 0, entries = 0;
};

struct DiffState {
  DiffConfig cfg;
  std::atomic<bool> abort{false};
  Napi::ThreadSafeFunction tsfn;
  std::optional<Napi::Promise::Deferred> deferred;
  std::optional<Napi::Promise::Deferred> ready;  // settles once the FIFO exists (fifo only)
  DiffResult result;
  std::optional<Failure> failure;
};

const char kWhiteoutPrefix[] = ".wh.";
const char kOpaqueMarker[] = ".wh..wh..opq";

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

// xattr names overlayfs (rootful, rootless) and fuse-overlayfs keep for themselves: never archived.
bool overlay_xattr(const std::string& name) {
  for (const char* ns : {"trusted.", "user."}) {
    if (!starts_with(name, ns)) continue;
    std::string rest = name.substr(strlen(ns));
    return starts_with(rest, "overlay.") || starts_with(rest, "fuseoverlayfs.");
  }
  return false;
}

using Xattrs = std::vector<std::pair<std::string, std::string>>;
class DiffWalker {
 public:
  // Takes a staged block and gives back an empty one.
  using Sink = std::function<Block(Block)>;
  DiffWalker(DiffState& s, Sink sink, Block first) : s_(s), sink_(std::move(sink)), buf_(std::move(first)) {}

  void run() {
    Fd root(open(s_.cfg.upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid()) fail_errno(errno, "open", s_.cfg.upper, "opening the layer directory");
    walk(root.get(), "");
    std::string end(2 * kBlock, '\0');
    emit(end);
    flush();
  }

  uint64_t entries() const { return entries_; }

 private:
  void check_abort() {
    if (s_.abort.load(std::memory_order_relaxed)) fail("ABORT_ERR", "the operation was aborted");
  }

  void flush() {
    if (buf_.len) buf_ = sink_(std::move(buf_));
  }

  void emit(const uint8_t* p, size_t n) {
    while (n > 0) {
      size_t k = std::min(n, buf_.cap - buf_.len);
      memcpy(buf_.data.get() + buf_.len, p, k);
      buf_.len += k;
      p += k;
      n -= k;
      if (buf_.len == buf_.cap) flush();
    }
  }
  void emit(const std::string& s) { emit(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

  static std::string join(const std::string& dir, const std::string& name) {
    return dir.empty() ? name : dir + "/" + name;
  }
  static std::string shown(const std::string& rel) { return rel.empty() ? "." : rel; }

  std::vector<std::string> names_of(int dirfd, const std::string& rel) {
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail_errno(errno, "openat", shown(rel), "reading a directory");
    DIR* d = fdopendir(fd);
    if (!d) {
      int err = errno;
      close(fd);
      fail_errno(err, "fdopendir", shown(rel), "reading a directory");
    }
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = readdir(d)) {
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
      errno = 0;
    }
    int err = errno;
    closedir(d);
    if (err) fail_errno(err, "readdir", shown(rel), "reading a directory");
    std::sort(names.begin(), names.end());  // char_traits<char> compares as unsigned char: byte order
    return names;
  }

  // Every xattr of `name` in `dirfd` (not followed), by name; empty when it has none or cannot have any.
  Xattrs xattrs_of(int dirfd, const std::string& name, const std::string& rel) {
    std::string at = "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
    Xattrs out;
    std::vector<char> list;
    for (;;) {
      ssize_t n = llistxattr(at.c_str(), nullptr, 0);
      if (n < 0) {
        if (errno == ENOTSUP || errno == ENOENT) return out;
        fail_errno(errno, "llistxattr", rel, "listing extended attributes");
      }
      if (n == 0) return out;
      list.resize(static_cast<size_t>(n));
      n = llistxattr(at.c_str(), list.data(), list.size());
      if (n >= 0) {
        list.resize(static_cast<size_t>(n));
        break;
      }
      if (errno != ERANGE) fail_errno(errno, "llistxattr", rel, "listing extended attributes");
    }
    for (size_t i = 0; i < list.size();) {
      std::string key(list.data() + i);
      i += key.size() + 1;
      if (key.empty()) continue;
      std::string value;
      for (;;) {
        ssize_t n = lgetxattr(at.c_str(), key.c_str(), nullptr, 0);
        if (n < 0) break;
        value.resize(static_cast<size_t>(n));
        n = n ? lgetxattr(at.c_str(), key.c_str(), &value[0], value.size()) : 0;
        if (n >= 0) {
          value.resize(static_cast<size_t>(n));
          out.emplace_back(key, value);
          break;
        }
        if (errno != ERANGE) break;  // gone meanwhile, or unreadable: left out, as getfattr leaves it
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  static bool opaque(const Xattrs& xs) {
    for (const auto& kv : xs) {
      if ((kv.first == "trusted.overlay.opaque" || kv.first == "user.overlay.opaque" ||
           kv.first == "user.fuseoverlayfs.opaque") &&
          kv.second == "y") {
        return true;
      }
    }
    return false;
  }

  // Node's BigIntStats.mtimeMs / 1000n: both divisions truncate toward zero.
  static int64_t mtime_of(const struct stat& st) {
    __int128 ns = static_cast<__int128>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    return static_cast<int64_t>(ns / 1000000 / 1000);
  }

  void walk(int dirfd, const std::string& rel) {
    std::vector<std::string> names = names_of(dirfd, rel);
    std::vector<std::string> aufs;
    for (const std::string& n : names)
      if (starts_with(n, kWhiteoutPrefix)) aufs.push_back(n);
    for (const std::string& name : names) {
      check_abort();
      std::string child = join(rel, name);
      struct stat st;
      if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        fail_errno(errno, "lstat", child);
      }
      if (S_ISCHR(st.st_mode) && st.st_rdev == 0) {
        if (std::binary_search(aufs.begin(), aufs.end(), kWhiteoutPrefix + name)) continue;
        Header h;
        h.name = join(rel, kWhiteoutPrefix + name);
        h.type = '0';
        h.uid = st.st_uid;
        h.gid = st.st_gid;
        h.mtime = mtime_of(st);
        ++entries_;
        std::string out;
        tar_header(out, h);
        emit(out);
        continue;
      }
      Xattrs own = xattrs_of(dirfd, name, child);
      entry(dirfd, name, child, st, own);
      if (S_ISDIR(st.st_mode)) {
        Fd sub(openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub.valid()) fail_errno(errno, "openat", child, "opening a directory");
        struct stat marker;
        if (opaque(own) && fstatat(sub.get(), kOpaqueMarker, &marker, AT_SYMLINK_NOFOLLOW) != 0) {
          if (errno != ENOENT) fail_errno(errno, "lstat", join(child, kOpaqueMarker));
          Header h;
          h.name = join(child, kOpaqueMarker);
          h.type = '0';
          h.mode = st.st_mode & 0777;
          h.uid = st.st_uid;
          h.gid = st.st_gid;
          ++entries_;
          std::string out;
          tar_header(out, h);
          emit(out);
        }
        walk(sub.get(), child);
      }
    }
  }

  void entry(int dirfd, const std::string& name, const std::string& rel, const struct stat& st, const Xattrs& all) {
    char type;
    switch (st.st_mode & S_IFMT) {
      case S_IFDIR: type = '5'; break;
      case S_IFREG: type = '0'; break;
      case S_IFLNK: type = '2'; break;
      case S_IFIFO: type = '6'; break;
      case S_IFCHR: type = '3'; break;
      case S_IFBLK: type = '4'; break;
      default: return;  // sockets are not archived
    }
    ++entries_;
    Xattrs kept;
    for (const auto& kv : all)
      if (!overlay_xattr(kv.first)) kept.push_back(kv);
    Header h;
    h.name = rel;
    h.type = type;
    h.mode = st.st_mode & 0177777;
    h.uid = st.st_uid;
    h.gid = st.st_gid;
    h.mtime = mtime_of(st);
    if (!kept.empty()) h.xattrs = &kept;
    std::string out;
    if (type != '5' && st.st_nlink > 1) {
      auto key = std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
      auto it = links_.find(key);
      if (it != links_.end()) {
        h.type = '1';
        h.linkname = it->second;
        tar_header(out, h);
        emit(out);
        return;
      }
      links_.emplace(key, rel);
    }
    switch (type) {
      case '2': {
        std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 0) + 1, '\0');
        for (;;) {
          ssize_t n = readlinkat(dirfd, name.c_str(), &target[0], target.size());
          if (n < 0) fail_errno(errno, "readlink", rel);
          if (static_cast<size_t>(n) < target.size()) {
            target.resize(static_cast<size_t>(n));
            break;
          }
          target.resize(target.size() * 2);
        }
        h.linkname = target;
        break;
      }
      case '3':
      case '4': {
        uint64_t rdev = st.st_rdev;
        h.devmajor = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~uint64_t{0xfff});
        h.devminor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
        break;
      }
      case '0':
        h.size = static_cast<uint64_t>(st.st_size);
        tar_header(out, h);
        emit(out);
        file_data(dirfd, name, rel, h.size);
        return;
      default:
        break;
    }
    tar_header(out, h);
    emit(out);
  }

  void file_data(int dirfd, const std::string& name, const std::string& rel, uint64_t size) {
    Fd fd(openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) fail_errno(errno, "open", rel);
    uint64_t done = 0;
    while (done < size) {
      check_abort();
      if (buf_.len == buf_.cap) flush();
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf_.cap - buf_.len, size - done));
      ssize_t n = pread(fd.get(), buf_.data.get() + buf_.len, want, static_cast<off_t>(done));
      if (n < 0) {
        if (errno == EINTR) continue;
        fail_errno(errno, "read", rel);
      }
      if (n == 0) fail("CARRIER_CHANGED", "file shrank while its layer was archived", rel);
      buf_.len += static_cast<size_t>(n);
      done += static_cast<uint64_t>(n);
    }
    if (s_.cfg.writeback && size > 0) sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);  // a hint: errors ignored
    std::string zeros;
    pad(zeros, static_cast<size_t>(size % kBlock));
    emit(zeros);
  }

  DiffState& s_;
  Sink sink_;
  Block buf_;
  uint64_t entries_ = 0;
  std::map<std::pair<uint64_t, uint64_t>, std::string> links_;
};

// Settles the job's `ready` promise on the JS thread: resolved, or rejected with `f`.
void post_ready(DiffState& s, std::optional<Failure> f) {
  s.tsfn.BlockingCall([&s, f](Napi::Env env, Napi::Function) {
    if (!s.ready) return;
    if (f) s.ready->Reject(failure_to_js(env, *f));
    else s.ready->Resolve(env.Undefined());
    s.ready.reset();
  });
}

// The FIFO's write end, once a reader has opened it (polled, so an abort is seen while nobody reads).
Fd open_fifo_writer(DiffState& s) {
  const std::string& path = s.cfg.out;
  for (;;) {
    int fd = open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
      int flags = fcntl(fd, F_GETFL);
      if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int err = errno;
        close(fd);
        fail_errno(err, "fcntl", path, "opening the layer FIFO");
      }
      // Bigger than the default 64 KiB: fewer wake-ups between this thread and the reader (best effort).
      fcntl(fd, F_SETPIPE_SZ, 1 << 20);
      return Fd(fd);
    }
    if (errno != ENXIO && errno != EINTR) fail_errno(errno, "open", path, "opening the layer FIFO");
    if (s.abort.load()) fail("ABORT_ERR", "the operation was aborted");
    usleep(1000);
  }
}

void run_diff(DiffState& s) {
  const DiffConfig& cfg = s.cfg;
  Fd out;
  if (cfg.fifo) {
    if (mkfifo(cfg.out.c_str(), 0600) != 0) {
      Failure f{errno_name(errno), std::string("mkfifo failed for '") + cfg.out + "': " + strerror(errno), cfg.out, "mkfifo", errno};
      post_ready(s, f);
      throw Fail(f);
    }
    post_ready(s, std::nullopt);
    out = open_fifo_writer(s);
  } else {
    out = Fd(open(cfg.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!out.valid()) fail_errno(errno, "open", cfg.out, "opening the layer blob");
  }
  Sha256 tar_sha, blob_sha;
  uint64_t tar_size = 0, blob_size = 0;
  auto write_out = [&](const uint8_t* p, size_t n) {
    blob_sha.update(p, n);
    blob_size += n;
    write_all(out.get(), p, n, cfg.out, "writing the layer blob");
  };
  std::unique_ptr<ParallelCompressor> compressor;
  if (cfg.compression != Compression::None) {
    compressor.reset(new ParallelCompressor(cfg.compression, cfg.level, cfg.threads, write_out));
  }
  // The walker fills staged blocks; the consumer hashes the tar and writes it (none) or hands it to the compressor,
  // then gives the block back. A consumer that fails cancels the queue with its failure, which the walker throws.
  BlockQueue handoff{kStages, kStage};
  auto next_empty = [&handoff] {
    Block b;
    if (!handoff.acquire(b)) {
      if (auto f = handoff.failure()) throw Fail(*f);
      fail("ABORT_ERR", "the operation was aborted");
    }
    return b;
  };
  DiffWalker walker(s, [&](Block b) {
    handoff.push(std::move(b));
    return next_empty();
  }, next_empty());
  std::thread consumer([&] {
    pthread_setname_np(pthread_self(), "carrier-diffout");
    try {
      Block b;
      while (handoff.take(b)) {
        if (!cfg.fifo) tar_sha.update(b.data.get(), b.len);  // the FIFO's reader hashes what it reads
        tar_size += b.len;
        if (compressor) compressor->write(b.data.get(), b.len);
        else write_all(out.get(), b.data.get(), b.len, cfg.out, "writing the layer blob");
        handoff.release(std::move(b));
      }
      if (!handoff.cancelled() && compressor) compressor->finish();
    } catch (...) {
      handoff.cancel(current_failure());
    }
  });
  try {
    walker.run();
    handoff.close();
  } catch (...) {
    handoff.cancel();
    if (compressor) compressor->cancel();
    consumer.join();
    throw;
  }
  consumer.join();
  if (auto f = handoff.failure()) throw Fail(*f);  // only the consumer gives a reason
  compressor.reset();
  if (cfg.sync && fsync(out.get()) != 0) fail_errno(errno, "fsync", cfg.out, "flushing the layer blob");
  DiffResult& r = s.result;
  r.diff_id = cfg.fifo ? std::string() : tar_sha.digest();
  r.uncompressed_size = tar_size;
  r.entries = walker.entries();
  if (cfg.compression == Compression::None) {
    r.digest = r.diff_id;
    r.size = tar_size;
  } else {
    r.digest = blob_sha.digest();
    r.size = blob_size;
  }
}

// diffLayer(upper, { out, compression, level, threads, sync, fifo }) -> { promise, abort(), ready? }: the promise resolves
// with { diffID, digest, size, uncompressedSize, entries } or rejects with a failure object (ABORT_ERR after abort());
// with fifo, `ready` resolves once the FIFO exists, so a reader may open it.
Napi::Value DiffLayer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) {
    throw Napi::TypeError::New(env, "diffLayer(upper: string, options: object)");
  }
  auto state = std::make_shared<DiffState>();
  DiffConfig& c = state->cfg;
  c.upper = info[0].As<Napi::String>().Utf8Value();
  Napi::Object o = info[1].As<Napi::Object>();
  c.out = string_option(o, "out");
  if (c.out.empty()) throw Napi::TypeError::New(env, "diffLayer: options.out is required");
  c.compression = parse_compression(string_option(o, "compression", "none"));
  if (c.compression == Compression::Auto) throw Napi::TypeError::New(env, "compression must be gzip, zstd or none");
  c.level = static_cast<int>(number_option(o, "level", c.compression == Compression::Zstd ? 3 : 6));
  c.threads = static_cast<int>(number_option(o, "threads", 1));
  if (c.threads < 1 || c.threads > 256) throw Napi::RangeError::New(env, "threads must be between 1 and 256");
  c.sync = o.Get("sync").ToBoolean().Value();
  c.fifo = o.Get("fifo").ToBoolean().Value();
  c.writeback = o.Get("writeback").ToBoolean().Value();
  if (c.fifo && c.compression != Compression::None) throw Napi::TypeError::New(env, "diffLayer: a FIFO carries the tar uncompressed");

  state->deferred.emplace(Napi::Promise::Deferred::New(env));
  state->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                              "carrier-diff-layer", 0, 1);
  Napi::Object job = Napi::Object::New(env);
  job.Set("promise", state->deferred->Promise());
  if (c.fifo) {
    state->ready.emplace(Napi::Promise::Deferred::New(env));
    job.Set("ready", state->ready->Promise());
  }
  std::weak_ptr<DiffState> weak = state;
  job.Set("abort", Napi::Function::New(env, [weak](const Napi::CallbackInfo&) {
            if (auto s = weak.lock()) s->abort.store(true);
          }, "abort"));
  std::thread([state] {
    pthread_setname_np(pthread_self(), "carrier-diff");
    try {
      run_diff(*state);
    } catch (...) {
      state->failure = current_failure();
      if (state->abort.load()) state->failure = Failure{"ABORT_ERR", "the operation was aborted", "", "", 0};
    }
    state->tsfn.BlockingCall([state](Napi::Env env, Napi::Function) {
      if (state->ready && state->failure) {  // failed before the FIFO was made
        state->ready->Reject(failure_to_js(env, *state->failure));
        state->ready.reset();
      }
      if (state->failure)
        state->deferred->Reject(failure_to_js(env, *state->failure));
      else
        state->deferred->Resolve(layer_result_to_js(env, state->result));
      state->deferred.reset();
      state->tsfn.Release();
    });
  }).detach();
  return job;
}

}  // namespace

void init_diff_job(Napi::Env env, Napi::Object exports) {
  exports.Set("diffLayer", Napi::Function::New(env, DiffLayer, "diffLayer"));
}

}  // namespace carrier
