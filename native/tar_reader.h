// A push parser for tar streams that reads every header as Go's archive/tar does (so podman, sharing the layer by id,
// sees the same tree): ustar/star prefixes by the magic, GNU long names/links, PAX extended headers (path, linkpath,
// size, uid, gid, mtime with fractions, SCHILY.xattr.*), and only the entry types containers/storage extracts. It
// never touches the disk: it hands entries, their content, and every non-content byte (headers, padding, end blocks)
// to a handler, so the handler can both extract and record tar-split.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace carrier {

struct TarEntry {
  char type = '0';       // '0' file, '1' hardlink, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo, else other
  std::string name;      // as the archive spells it, after PAX/GNU overrides
  std::string linkname;
  uint32_t mode = 0;     // permission bits incl. setuid/setgid/sticky
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t size = 0;      // content bytes that follow this header
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  uint32_t devmajor = 0;
  uint32_t devminor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

class TarHandler {
 public:
  virtual ~TarHandler() = default;
  virtual void raw(const uint8_t* data, size_t n) = 0;  // bytes that are not file content
  virtual void entry_begin(TarEntry& entry) = 0;
  virtual void entry_data(const uint8_t* data, size_t n) = 0;
  virtual void entry_end() = 0;
  // A PAX global header ('g'), which Go hands to its caller as an entry of its own, under this name.
  virtual void global_header(const std::string& name) { (void)name; }
};

class TarReader {
 public:
  static constexpr size_t kMaxMetaBytes = 1 << 20;  // PAX and GNU long-name records
  static constexpr size_t kMaxPathBytes = 4096;      // PATH_MAX, its NUL included: longer names cannot be opened

  explicit TarReader(TarHandler& handler, uint64_t max_entries) : h_(handler), max_entries_(max_entries) {}
  void feed(const uint8_t* data, size_t n);
  // End of the stream: fails with CARRIER_TRUNCATED unless it stopped between entries.
  void finish();
  uint64_t entries() const { return entries_; }

 private:
  enum class State { Header, SecondZero, Meta, Content, Padding, Trailer };
  void on_header();
  void on_meta_done();
  void parse_pax(const std::string& data);
  void begin_padding(int64_t size);
  void clear_pending();

  TarHandler& h_;
  uint64_t max_entries_;
  uint64_t entries_ = 0;
  State state_ = State::Header;
  uint8_t hdr_[512];
  size_t hdr_len_ = 0;
  int64_t remaining_ = 0;  // bytes left in the current Meta/Content/Padding region
  char meta_type_ = 0;
  std::string meta_, meta_name_;

  // Overrides gathered from meta headers, applied to the next real entry only.
  bool has_path_ = false, has_linkpath_ = false, has_size_ = false, has_uid_ = false, has_gid_ = false,
       has_mtime_ = false, has_sparse_ = false;
  std::string pax_path_, pax_linkpath_, gnu_name_, gnu_linkname_;
  bool has_gnu_name_ = false, has_gnu_linkname_ = false;
  int64_t pax_size_ = 0, pax_uid_ = 0, pax_gid_ = 0, pax_mtime_sec_ = 0;
  uint32_t pax_mtime_nsec_ = 0;
  std::vector<std::pair<std::string, std::string>> pax_xattrs_;
  TarEntry entry_;
};

}  // namespace carrier
