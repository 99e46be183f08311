// Turns tar entries into files under a layer root, safely: every path is resolved with openat2(RESOLVE_IN_ROOT)
// from the root fd, every creation is exclusive and acts on one basename with the *at() calls, nothing follows a
// final symlink, and no path state is cached between entries. Also records the tar-split file when asked.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "budget.h"
#include "common.h"
#include "crc64.h"
#include "tar_reader.h"
#include "tar_split.h"
#include "write_pool.h"

namespace carrier {

struct ExtractOptions {
  bool rootless = true;
  bool overlay_whiteouts = true;  // false: aufs, keep .wh. entries as plain files
  // Regular files (by tar name) whose content a file already in the store holds (a partial pull): the new file is
  // a reflink of it, and the content the tar carries is compared with the clone instead of written.
  std::unordered_map<std::string, std::string> clones;
  // The user opted in (containers-storage's use_hard_links): a clone source whose owner, mode, mtime and xattrs are
  // the entry's is hard-linked instead of reflinked or copied.
  bool hardlink_clones = false;
  std::shared_ptr<ByteBudget> budget;  // charged with every content byte written (none: no budget)
  // The store syncs the file system once the layer is in place: start each file's writeback as soon as it is written
  // (sync_file_range, asynchronous), so the disk works while the layer is extracted and that sync finds little left.
  bool writeback = false;
};

struct SkippedEntry {
  std::string path;
  std::string reason;
};

class Extractor : public TarHandler {
 public:
  static constexpr size_t kMaxDepth = 1024;
  // Files up to this size are buffered and finished by the write pool; larger ones stream from the parser.
  static constexpr int64_t kPooledFileMax = 1 << 20;
  // Most content of small files queued for the write pool's thread. When the store will sync, that thread also starts
  // each file's writeback (sync_file_range, which allocates the file's blocks and submits its I/O in the call), falls
  // behind the parser and the queue fills to this bound: a layer in flight holds this, its decoded blocks (4 MiB) and
  // its pushed input (4 MiB, stream_job.h). At 16 MiB the queues of a three-layer pull held 48 MiB at once and its peak
  // RSS was 184-228 MiB (--no-sync: 159-205); at 4 MiB, 160-180 MiB (--no-sync: 155-178), and as fast in paired runs:
  // the device sets the pace.
  static constexpr size_t kPoolQueueBytes = 4 << 20;

  Extractor(int rootfd, ExtractOptions options, TarSplitWriter* tar_split)
      : root_(rootfd), opts_(options), split_(tar_split) {}

  void raw(const uint8_t* data, size_t n) override;
  void entry_begin(TarEntry& entry) override;
  void entry_data(const uint8_t* data, size_t n) override;
  void entry_end() override;
  void global_header(const std::string& name) override;
  // Directory modes and mtimes, deepest first, after all their contents exist.
  void finish();

  const std::set<uint32_t>& uids() const { return uids_; }
  const std::set<uint32_t>& gids() const { return gids_; }
  const std::vector<SkippedEntry>& skipped() const { return skipped_; }

 private:
  struct DirMeta {
    std::string path;
    size_t depth;
    uint32_t mode;
    int64_t sec;
    uint32_t nsec;
  };

  void place(TarEntry& e);
  void create(TarEntry& e, const std::vector<std::string>& parts, const std::string& path);
  void whiteout(TarEntry& e, const std::vector<std::string>& parts, const std::string& path);
  Fd parent_dir(const std::vector<std::string>& parts, size_t count, const std::string& path);
  void claim(const std::string& path);
  bool clone_into(const TarEntry& e);
  bool link_into(const TarEntry& e, int parent, const char* base, const std::string& path);
  void compare_clone(const uint8_t* data, size_t n);
  void apply_xattrs(int fd, const char* base, const TarEntry& e, const std::string& path);
  struct LinkMeta {
    std::string path;
    TarEntry entry;
  };
  void hardlink_metadata(const LinkMeta& link);
  void skip(const std::string& path, std::string reason) { skipped_.push_back({path, std::move(reason)}); }
  void stream_content(const uint8_t* data, size_t n);
  void write_blocks(const uint8_t* data, size_t n);
  void finish_streamed(int64_t size);
  void charge(size_t n) {
    if (opts_.budget) opts_.budget->charge(n, cur_path_);
  }

  int root_;
  ExtractOptions opts_;
  TarSplitWriter* split_;
  Crc64 crc_;

  // The entry in progress.
  TarEntry* cur_ = nullptr;
  std::string cur_path_;
  Fd file_;  // open regular file receiving content
  bool pooled_ = false;
  bool cloned_ = false;      // file_ is a reflink of a store file: content is compared, not written
  bool linked_ = false;      // file_ is a hard link to a store file: compared, and its metadata left as it is
  int64_t clone_at_ = 0;     // bytes of a cloned file compared so far
  bool content_in_split_ = false;  // the entry's content is recorded as raw tar-split bytes, not kept in a file
  std::vector<uint8_t> content_;  // a pooled file's content
  // A streamed file: the block being gathered (content arrives in pieces of any size), the offset it starts at,
  // and the end of the last bytes written (past it, only holes).
  uint8_t stage_[kHoleBlock];
  size_t stage_len_ = 0;
  int64_t content_off_ = 0;
  int64_t data_end_ = 0;

  std::unordered_set<std::string> seen_;
  std::vector<DirMeta> dirs_;
  std::vector<LinkMeta> links_;  // hardlinks whose header metadata is applied in finish()
  std::set<uint32_t> uids_, gids_;
  std::vector<SkippedEntry> skipped_;
  WritePool pool_{1, kPoolQueueBytes};  // last: its threads stop before anything above goes away
};

// Lexically cleans a tar path into components inside the root: leading '/' dropped, '.' and empty parts removed,
// '..' applied; fails CARRIER_UNSAFE_PATH if it climbs above the root, CARRIER_LIMIT_EXCEEDED if deeper than 1024.
// A rooted path cannot climb: "/../x" is "x", as Go's filepath.Clean has it (and podman extracts it there). A relative
// one that climbs is refused, though podman, extracting inside a chroot, would put it at the root: such a name only
// comes from a hostile layer.
std::vector<std::string> clean_path(const std::string& name, const char* what);
std::string join_path(const std::vector<std::string>& parts, size_t count);

}  // namespace carrier
