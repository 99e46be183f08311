// tar-split: how containers/storage remembers the exact bytes of a layer's tar that are not file content, so the
// tar can be rebuilt byte for byte from the extracted files. A gzip of newline-separated JSON objects:
//   {"type":2,"payload":<base64 raw bytes>,"position":N}                         a segment
//   {"type":1,"name":"a/b","size":N,"payload":<base64 CRC-64 BE>,"position":N}   a file (name_raw if not UTF-8)
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>

#include "common.h"

namespace carrier {

class TarSplitWriter {
 public:
  explicit TarSplitWriter(std::string path);
  ~TarSplitWriter();
  TarSplitWriter(const TarSplitWriter&) = delete;
  TarSplitWriter& operator=(const TarSplitWriter&) = delete;

  void raw(const uint8_t* data, size_t n) { pending_.append(reinterpret_cast<const char*>(data), n); }
  // Emits the raw bytes gathered since the last entry as one segment.
  void flush_segment();
  void file(const std::string& name, int64_t size, const uint8_t* crc_be /* 8 bytes, or null when size is 0 */);
  // Final segment, gzip trailer, close (not synced: see close()).
  void close();
  // Failure: remove the partial file.
  void discard();

 private:
  void line(const std::string& json);
  // One deflate call, its output written; true while there is more to do.
  bool deflate_once(int flush);

  std::string path_;
  Fd fd_;
  z_stream zs_{};
  bool zs_init_ = false;
  std::string pending_;
  std::string out_;
  uint64_t position_ = 0;
};

// One entry read back from a tar-split file.
struct TarSplitEntry {
  int type = 0;
  std::string name;     // from "name" or the decoded "name_raw"
  int64_t size = 0;
  std::string payload;  // decoded bytes; empty for null
};

// Parses one JSON line of a tar-split file; fails with CARRIER_BAD_TAR_SPLIT on anything malformed.
TarSplitEntry parse_tar_split_line(const std::string& line);

std::string base64_encode(const uint8_t* data, size_t n);

// Appends s as a JSON string, escaped as Go's encoding/json writes it.
void json_string(std::string& out, const std::string& s);

// One tar-split line each (newline included): a segment of raw bytes, and a file entry (crc_be: 8 bytes or null).
std::string tar_split_segment_line(const std::string& raw, uint64_t position);
std::string tar_split_file_line(const std::string& name, int64_t size, const uint8_t* crc_be, uint64_t position);

}  // namespace carrier
