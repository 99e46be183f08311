// Helpers shared by the sanitized unit tests (carrier_native_tests.cc) and the tar-split assembly fuzz target:
// a small tar writer, gzip/zstd compression of test data, temporary directories, and an assembler that rebuilds a
// tar from a tar-split file and a layer directory.
//
// The assembler mirrors the loop of the addon's assembleLayer producer (native/assemble_job.cc), which cannot be
// linked without a Node runtime (it lives behind N-API thread-safe functions): each line is parsed with the real
// parse_tar_split_line, segments are emitted verbatim, and every file's content is opened with the real
// open_in_root(O_RDONLY | O_NOFOLLOW), read for exactly its recorded size and checked against its CRC-64.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../common.h"
#include "../crc64.h"
#include "../fs_safe.h"
#include "../tar_split.h"

namespace carrier_harness {

// ---- tar writing ----------------------------------------------------------------------------------------------

inline void put_octal(std::string& h, size_t off, size_t width, uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%0*llo", static_cast<int>(width - 1), static_cast<unsigned long long>(v));
  memcpy(&h[off], buf, width - 1);
  h[off + width - 1] = '\0';
}

inline void set_checksum(std::string& h) {
  memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (size_t i = 0; i < 512; i++) sum += static_cast<unsigned char>(h[i]);
  char buf[8];
  snprintf(buf, sizeof buf, "%06o", sum);
  memcpy(&h[148], buf, 6);
  h[154] = '\0';
  h[155] = ' ';
}

struct Header {
  std::string name;
  char type = '0';
  uint64_t size = 0;
  std::string linkname;
  uint32_t mode = 0644;
  uint64_t mtime = 1577934245;  // 2020-01-02T03:04:05Z
  uint32_t devmajor = 0, devminor = 0;
};

// One 512-byte ustar header (name and linkname cut to 100 bytes; use pax()/gnu_long() for longer ones).
inline std::string header(const Header& hd) {
  std::string h(512, '\0');
  memcpy(&h[0], hd.name.data(), std::min<size_t>(hd.name.size(), 100));
  put_octal(h, 100, 8, hd.mode);
  put_octal(h, 108, 8, 0);
  put_octal(h, 116, 8, 0);
  put_octal(h, 124, 12, hd.size);
  put_octal(h, 136, 12, hd.mtime);
  h[156] = hd.type;
  memcpy(&h[157], hd.linkname.data(), std::min<size_t>(hd.linkname.size(), 100));
  memcpy(&h[257], "ustar\0" "00", 8);
  put_octal(h, 329, 8, hd.devmajor);
  put_octal(h, 337, 8, hd.devminor);
  set_checksum(h);
  return h;
}

inline std::string padded(const std::string& data) {
  std::string out = data;
  out.resize((data.size() + 511) / 512 * 512, '\0');
  return out;
}

// A header followed by its padded content.
inline std::string entry(Header hd, const std::string& content = {}) {
  if (hd.type == '0' || hd.type == 'x' || hd.type == 'L' || hd.type == 'K') hd.size = content.size();
  return header(hd) + padded(content);
}

inline std::string pax_record(const std::string& key, const std::string& value) {
  std::string body = " " + key + "=" + value + "\n";
  size_t len = body.size() + 1;
  while (std::to_string(len).size() + body.size() != len) len = std::to_string(len).size() + body.size();
  return std::to_string(len) + body;
}

// A PAX extended header ('x') carrying `records` (already formatted with pax_record).
inline std::string pax(const std::string& records) {
  Header hd;
  hd.name = "PaxHeaders/entry";
  hd.type = 'x';
  return entry(hd, records);
}

// A GNU long name ('L') or long link ('K') header.
inline std::string gnu_long(char type, const std::string& name) {
  Header hd;
  hd.name = "././@LongLink";
  hd.type = type;
  return entry(hd, name + std::string(1, '\0'));
}

inline std::string end_blocks() { return std::string(1024, '\0'); }

inline Header file(const std::string& name, uint32_t mode = 0644) {
  Header h;
  h.name = name;
  h.mode = mode;
  return h;
}
inline Header dir(const std::string& name, uint32_t mode = 0755) {
  Header h;
  h.name = name;
  h.type = '5';
  h.mode = mode;
  return h;
}
inline Header link(char type, const std::string& name, const std::string& target) {
  Header h;
  h.name = name;
  h.type = type;
  h.linkname = target;
  h.mode = 0777;
  return h;
}

// ---- compression ----------------------------------------------------------------------------------------------

inline std::string gzip(const std::string& in, int level = 6) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) abort();
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// One zstd frame; `checksum` adds the frame's content checksum (so corruption is detected, not just decoded).
inline std::string zstd(const std::string& in, int level = 3, bool checksum = false) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, checksum ? 1 : 0);
  size_t n = ZSTD_compress2(c, &out[0], out.size(), in.data(), in.size());
  ZSTD_freeCCtx(c);
  if (ZSTD_isError(n)) abort();
  out.resize(n);
  return out;
}

// ---- files ----------------------------------------------------------------------------------------------------

inline std::string make_temp_dir(const char* tag) {
  const char* tmp = getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/carrier-" + tag + "-XXXXXX";
  if (!mkdtemp(&tmpl[0])) {
    perror("mkdtemp");
    abort();
  }
  return tmpl;
}

// rm -rf that never follows symlinks (and makes read-only directories writable first).
inline void remove_tree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    chmod(path.c_str(), 0700);
    if (DIR* d = opendir(path.c_str())) {
      std::vector<std::string> names;
      while (struct dirent* de = readdir(d)) {
        std::string n = de->d_name;
        if (n != "." && n != "..") names.push_back(n);
      }
      closedir(d);
      for (const auto& n : names) remove_tree(path + "/" + n);
    }
    rmdir(path.c_str());
  } else {
    unlink(path.c_str());
  }
}

inline std::string read_file(const std::string& path) {
  std::string out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

inline void write_file(const std::string& path, const std::string& data, mode_t mode = 0644) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    perror(path.c_str());
    abort();
  }
  if (!data.empty() && write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) abort();
  close(fd);
}

inline std::string gunzip_file(const std::string& path) {
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) carrier::fail("CARRIER_BAD_TAR_SPLIT", "cannot open the tar-split file");
  std::string all;
  char buf[65536];
  int n;
  while ((n = gzread(gz, buf, sizeof buf)) > 0) all.append(buf, static_cast<size_t>(n));
  int err = 0;
  gzerror(gz, &err);
  gzclose(gz);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) carrier::fail("CARRIER_BAD_TAR_SPLIT", "the tar-split file is not valid gzip");
  return all;
}

// ---- assembly -------------------------------------------------------------------------------------------------

// Rebuilds the tar from uncompressed tar-split lines and the layer directory `rootfd` (see the note at the top).
inline std::string assemble_lines(const std::string& lines, int rootfd) {
  std::string out;
  size_t start = 0;
  while (start < lines.size()) {
    size_t nl = lines.find('\n', start);
    if (nl == std::string::npos) nl = lines.size();
    std::string line = lines.substr(start, nl - start);
    start = nl + 1;
    if (line.empty()) continue;
    carrier::TarSplitEntry e = carrier::parse_tar_split_line(line);
    if (e.type == 2) {
      out += e.payload;
      continue;
    }
    if (e.size == 0) continue;
    int fd = carrier::open_in_root(rootfd, e.name, O_RDONLY | O_NOFOLLOW);
    if (fd < 0) carrier::fail_errno(-fd, "openat2", e.name, "opening a layer file to rebuild the tar");
    carrier::Fd owned(fd);
    carrier::Crc64 crc;
    int64_t left = e.size;
    char buf[65536];
    while (left > 0) {
      size_t want = static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(sizeof buf)));
      ssize_t n = read(fd, buf, want);
      if (n < 0) carrier::fail_errno(errno, "read", e.name);
      if (n == 0) carrier::fail("CARRIER_DIGEST_MISMATCH", "'" + e.name + "' is shorter than the tar-split records", e.name);
      crc.update(reinterpret_cast<const uint8_t*>(buf), static_cast<size_t>(n));
      out.append(buf, static_cast<size_t>(n));
      left -= n;
    }
    char extra;
    if (read(fd, &extra, 1) > 0) carrier::fail("CARRIER_DIGEST_MISMATCH", "'" + e.name + "' is longer than the tar-split records", e.name);
    if (e.payload.size() == 8) {
      uint8_t be[8];
      crc.big_endian(be);
      if (memcmp(be, e.payload.data(), 8) != 0) carrier::fail("CARRIER_DIGEST_MISMATCH", "'" + e.name + "' does not match its CRC-64", e.name);
    }
  }
  return out;
}

inline std::string assemble(const std::string& split_gz_path, int rootfd) {
  return assemble_lines(gunzip_file(split_gz_path), rootfd);
}

}  // namespace carrier_harness
