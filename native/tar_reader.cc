#include "tar_reader.h"

#include <cstring>
#include <map>

#include "common.h"

namespace carrier {

namespace {

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

std::string field_string(const uint8_t* p, size_t n) {
  size_t len = 0;
  while (len < n && p[len]) ++len;
  return std::string(reinterpret_cast<const char*>(p), len);
}

// Go's parseOctal: leading and trailing spaces/NULs trimmed, the rest cut at its first NUL, then octal digits only
// (an empty field is 0). Values of 2^63 and more come out negative, as Go's int64 conversion makes them.
int64_t field_octal(const uint8_t* p, size_t n, const char* what) {
  size_t b = 0, e = n;
  while (b < e && (p[b] == ' ' || p[b] == 0)) ++b;
  while (e > b && (p[e - 1] == ' ' || p[e - 1] == 0)) --e;
  uint64_t v = 0;
  for (size_t i = b; i < e && p[i] != 0; ++i) {
    uint8_t c = p[i];
    if (c < '0' || c > '7') fail("CARRIER_BAD_TAR", std::string("invalid ") + what + " field in a tar header");
    if (v >> 61) fail("CARRIER_BAD_TAR", std::string(what) + " in a tar header overflows");
    v = (v << 3) | (c - '0');
  }
  return static_cast<int64_t>(v);
}

// A numeric header field as Go's archive/tar reads it (podman must see the same numbers): base-256 two's complement
// when the top bit of the first byte is set; otherwise octal text, trimmed of spaces and NULs at both ends and cut at
// the first NUL left inside. Fails CARRIER_BAD_TAR where Go fails with ErrHeader.
int64_t field_number(const uint8_t* p, size_t n, const char* what) {
  if (p[0] & 0x80) {
    uint8_t inv = (p[0] & 0x40) ? 0xff : 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) {
      uint8_t c = p[i] ^ inv;
      if (i == 0) c &= 0x7f;
      if (v >> 56) fail("CARRIER_BAD_TAR", std::string(what) + " in a tar header overflows");
      v = (v << 8) | c;
    }
    if (v >> 63) fail("CARRIER_BAD_TAR", std::string(what) + " in a tar header overflows");
    return inv ? ~static_cast<int64_t>(v) : static_cast<int64_t>(v);
  }
  return field_octal(p, n, what);
}

// Go's strconv.ParseInt(s, 10, 64): an optional sign, then decimal digits (leading zeros allowed, any count).
bool parse_decimal(const std::string& s, int64_t* out) {
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  if (i == s.size()) return false;
  uint64_t v = 0;
  const uint64_t limit = negative ? (1ull << 63) : (1ull << 63) - 1;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c < '0' || c > '9') return false;
    if (v > (limit - static_cast<uint64_t>(c - '0')) / 10) return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = negative ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
  return true;
}

int64_t pax_number(const std::string& s, const char* key) {
  int64_t v;
  if (!parse_decimal(s, &v)) fail("CARRIER_BAD_TAR", std::string("invalid PAX ") + key + " '" + s.substr(0, 64) + "'");
  return v;
}

// PAX times as Go parses them: [+-]seconds[.fraction], the fraction right-padded or truncated to nanoseconds; a
// leading '-' makes the fraction negative too.
void pax_time(const std::string& s, const char* key, int64_t* sec, uint32_t* nsec) {
  size_t dot = s.find('.');
  std::string whole = s.substr(0, dot);
  int64_t secs = pax_number(whole, key);
  uint32_t frac = 0;
  if (dot != std::string::npos) {
    std::string digits = s.substr(dot + 1);
    for (char c : digits)
      if (c < '0' || c > '9') fail("CARRIER_BAD_TAR", std::string("invalid PAX ") + key + " '" + s.substr(0, 64) + "'");
    for (size_t i = 0; i < 9; ++i) frac = frac * 10 + static_cast<uint32_t>(i < digits.size() ? digits[i] - '0' : 0);
  }
  if (!whole.empty() && whole[0] == '-' && frac) {
    if (secs == INT64_MIN) fail("CARRIER_BAD_TAR", std::string("invalid PAX ") + key + " '" + s.substr(0, 64) + "'");
    secs -= 1;
    frac = 1000000000u - frac;
  }
  *sec = secs;
  *nsec = frac;
}

bool is_ascii(const std::string& s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

bool header_only(char type) {
  return type == '1' || type == '2' || type == '3' || type == '4' || type == '5' || type == '6';
}

}  // namespace

void TarReader::feed(const uint8_t* data, size_t n) {
  while (n > 0) {
    switch (state_) {
      case State::Header:
      case State::SecondZero: {
        size_t k = std::min(n, sizeof(hdr_) - hdr_len_);
        memcpy(hdr_ + hdr_len_, data, k);
        hdr_len_ += k;
        data += k;
        n -= k;
        if (hdr_len_ == sizeof(hdr_)) {
          hdr_len_ = 0;
          h_.raw(hdr_, sizeof(hdr_));
          if (state_ == State::Header) {
            on_header();
          } else if (all_zero(hdr_, sizeof(hdr_))) {
            state_ = State::Trailer;
          } else {
            // Go's archive/tar (and so podman) refuses this too: entries hidden behind an end-of-archive marker.
            fail("CARRIER_BAD_TAR", "a zero block is followed by more entries (hidden after the end of the archive)");
          }
        }
        break;
      }
      case State::Meta: {
        size_t k = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(n), remaining_));
        meta_.append(reinterpret_cast<const char*>(data), k);
        h_.raw(data, k);
        data += k;
        n -= k;
        remaining_ -= static_cast<int64_t>(k);
        if (remaining_ == 0) on_meta_done();
        break;
      }
      case State::Content: {
        size_t k = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(n), remaining_));
        h_.entry_data(data, k);
        data += k;
        n -= k;
        remaining_ -= static_cast<int64_t>(k);
        if (remaining_ == 0) {
          h_.entry_end();
          begin_padding(entry_.size);
        }
        break;
      }
      case State::Padding: {
        size_t k = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(n), remaining_));
        h_.raw(data, k);
        data += k;
        n -= k;
        remaining_ -= static_cast<int64_t>(k);
        if (remaining_ == 0) state_ = State::Header;
        break;
      }
      case State::Trailer:
        // After the first zero block everything is end-of-archive padding; it is hashed and kept, never parsed.
        h_.raw(data, n);
        n = 0;
        break;
    }
  }
}

void TarReader::begin_padding(int64_t size) {
  remaining_ = (512 - size % 512) % 512;
  state_ = remaining_ ? State::Padding : State::Header;
}

namespace {

// What one 512-byte header says before any PAX or GNU record is applied, read as Go's archive/tar reads it.
struct RawHeader {
  char type;
  std::string name, linkname;
  int64_t size, mode, uid, gid, mtime, devmajor = 0, devminor = 0;
};

// The format decides where a name's prefix lives, as in Go (by the magic, whatever the version field says):
//   "ustar\0" + "tar\0" at 508   star: a 131-byte prefix (atime and ctime follow it)
//   "ustar\0"                    ustar/PAX: a 155-byte prefix
//   "ustar " + " \0"             GNU: no prefix, unless its atime/ctime fields do not parse and the bytes there are
//                                ASCII: then a pre-Go-1.8 writer put a ustar prefix there (Go's invalid-go17.tar)
//   anything else                v7: no prefix, no device numbers
RawHeader read_header(const uint8_t* h) {
  RawHeader r;
  r.type = static_cast<char>(h[156]);
  r.name = field_string(h, 100);
  r.linkname = field_string(h + 157, 100);
  r.size = field_number(h + 124, 12, "size");
  r.mode = field_number(h + 100, 8, "mode");
  r.uid = field_number(h + 108, 8, "uid");
  r.gid = field_number(h + 116, 8, "gid");
  r.mtime = field_number(h + 136, 12, "mtime");
  bool ustar_magic = memcmp(h + 257, "ustar\0", 6) == 0;
  bool gnu_magic = memcmp(h + 257, "ustar ", 6) == 0 && memcmp(h + 263, " \0", 2) == 0;
  if (!ustar_magic && !gnu_magic) return r;
  r.devmajor = field_number(h + 329, 8, "devmajor");
  r.devminor = field_number(h + 337, 8, "devminor");
  std::string prefix;
  if (ustar_magic && memcmp(h + 508, "tar\0", 4) == 0) {
    prefix = field_string(h + 345, 131);
    field_number(h + 476, 12, "atime");
    field_number(h + 488, 12, "ctime");
  } else if (ustar_magic) {
    prefix = field_string(h + 345, 155);
  } else {
    bool times_parse = true;
    for (size_t off : {345, 357}) {
      if (h[off] == 0) continue;
      try {
        field_number(h + off, 12, "time");
      } catch (const Fail&) {
        times_parse = false;
      }
    }
    if (!times_parse) {
      std::string old_prefix = field_string(h + 345, 155);
      if (is_ascii(old_prefix)) prefix = old_prefix;
    }
  }
  if (!prefix.empty()) r.name = prefix + "/" + r.name;
  return r;
}

// The entry types containers/storage extracts; it fails a layer on any other ("unhandled tar header type").
bool handled_type(char type) {
  return type == '0' || type == '1' || type == '2' || type == '3' || type == '4' || type == '5' || type == '6';
}

}  // namespace

void TarReader::on_header() {
  if (all_zero(hdr_, sizeof(hdr_))) {
    // Go's reader ends the archive here, dropping any extended header still pending (its pax-path-hdr.tar): the
    // header's bytes stay in the tar-split, so the layer still rebuilds byte for byte.
    clear_pending();
    state_ = State::SecondZero;
    return;
  }
  // Checksum: the sum of all header bytes with the checksum field read as spaces (unsigned, or signed as old tars).
  int64_t stored = field_octal(hdr_ + 148, 8, "checksum");
  uint64_t usum = 0;
  int64_t ssum = 0;
  for (size_t i = 0; i < sizeof(hdr_); ++i) {
    uint8_t c = (i >= 148 && i < 156) ? ' ' : hdr_[i];
    usum += c;
    ssum += static_cast<int8_t>(c);
  }
  if (stored != static_cast<int64_t>(usum) && stored != ssum) {
    fail("CARRIER_BAD_TAR", "tar header checksum mismatch (not a tar stream, or corrupted)");
  }

  RawHeader raw = read_header(hdr_);
  char type = raw.type;
  if (raw.size < 0 && !header_only(type)) fail("CARRIER_BAD_TAR", "negative size in a tar header");

  if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
    if (raw.size > static_cast<int64_t>(kMaxMetaBytes)) {
      fail("CARRIER_LIMIT_EXCEEDED", "a tar extended header of " + std::to_string(raw.size) +
                                         " bytes exceeds the 1 MiB limit");
    }
    meta_type_ = type;
    meta_.clear();
    meta_name_ = raw.name;
    remaining_ = raw.size;
    if (raw.size == 0) {
      on_meta_done();
    } else {
      state_ = State::Meta;
    }
    return;
  }
  if (has_sparse_) fail("CARRIER_BAD_TAR", "sparse files (PAX GNU.sparse) are not supported in layers");

  if (++entries_ > max_entries_) {
    fail("CARRIER_LIMIT_EXCEEDED", "the layer has more than " + std::to_string(max_entries_) + " entries");
  }

  TarEntry& e = entry_;
  e = TarEntry{};
  // Precedence as Go's archive/tar reads it (podman must see the same names): GNU long name, PAX, header. An empty
  // GNU name or PAX value keeps what the header says.
  e.name = has_gnu_name_ ? gnu_name_ : has_path_ ? pax_path_ : raw.name;
  e.linkname = has_gnu_linkname_ ? gnu_linkname_ : has_linkpath_ ? pax_linkpath_ : raw.linkname;
  if (type == '\0') type = (!e.name.empty() && e.name.back() == '/') ? '5' : '0';
  if (!handled_type(type)) {
    std::string shown = type >= 0x20 && type < 0x7f ? std::string(1, type) : "\\x" + std::to_string(
                                                                                          static_cast<uint8_t>(type));
    fail("CARRIER_BAD_TAR",
         "unhandled tar header type '" + shown + "' on '" + e.name +
             "' (containers/storage refuses such a layer; sparse, multi-volume, GNU dump and vendor types are "
             "not extracted)",
         e.name);
  }
  if (e.name.size() >= kMaxPathBytes) {
    // Linux opens no path of PATH_MAX bytes or more: the layer would extract (one component at a time) and then
    // never rebuild from its tar-split, neither for Carrier nor for podman. Refused while nothing depends on it.
    fail("CARRIER_LIMIT_EXCEEDED",
         "the path of an entry is " + std::to_string(e.name.size()) + " bytes, over Linux's limit of " +
             std::to_string(kMaxPathBytes - 1) + ": no tool could open it to export the layer ('" +
             e.name.substr(0, 200) + "...')",
         e.name.substr(0, 1024));
  }
  e.type = type;
  e.mode = static_cast<uint32_t>(raw.mode & 07777);
  e.uid = has_uid_ ? pax_uid_ : raw.uid;
  e.gid = has_gid_ ? pax_gid_ : raw.gid;
  if (has_mtime_) {
    e.mtime_sec = pax_mtime_sec_;
    e.mtime_nsec = pax_mtime_nsec_;
  } else {
    e.mtime_sec = raw.mtime;
  }
  if (type == '3' || type == '4') {
    e.devmajor = static_cast<uint32_t>(raw.devmajor);
    e.devminor = static_cast<uint32_t>(raw.devminor);
  }
  e.size = has_size_ ? pax_size_ : raw.size;
  if (header_only(type)) e.size = 0;  // as Go's archive/tar (and so podman) reads them
  if (e.size < 0) fail("CARRIER_BAD_TAR", "negative size in the PAX header of '" + e.name + "'", e.name);
  e.xattrs = std::move(pax_xattrs_);
  // Ids are 32-bit. Go hands larger ones to chown, which truncates them (4294967296 would become root): refused.
  // 4294967295 is kept: chown reads it as "leave the owner alone", as it does for podman.
  if (e.uid < 0 || e.uid > 0xffffffff || e.gid < 0 || e.gid > 0xffffffff) {
    fail("CARRIER_BAD_TAR", "uid/gid out of range in the header of '" + e.name + "'", e.name);
  }
  clear_pending();

  h_.entry_begin(e);
  if (e.size == 0) {
    h_.entry_end();
    state_ = State::Header;
  } else {
    remaining_ = e.size;
    state_ = State::Content;
  }
}

void TarReader::on_meta_done() {
  int64_t size = static_cast<int64_t>(meta_.size());
  switch (meta_type_) {
    case 'x':
      // A second PAX header replaces the first one's records, as in Go; GNU long names stay pending.
      has_path_ = has_linkpath_ = has_size_ = has_uid_ = has_gid_ = has_mtime_ = has_sparse_ = false;
      pax_xattrs_.clear();
      parse_pax(meta_);
      break;
    case 'g':
      // Global headers carry comments (git archive). Go hands them to its caller as an entry of their own, which
      // ends whatever was pending; they set nothing for later entries.
      clear_pending();
      h_.global_header(meta_name_);
      break;
    case 'L':
      gnu_name_ = meta_.substr(0, meta_.find('\0'));
      has_gnu_name_ = !gnu_name_.empty();
      break;
    case 'K':
      gnu_linkname_ = meta_.substr(0, meta_.find('\0'));
      has_gnu_linkname_ = !gnu_linkname_.empty();
      break;
  }
  meta_.clear();
  meta_.shrink_to_fit();
  begin_padding(size);
}

void TarReader::clear_pending() {
  has_path_ = has_linkpath_ = has_size_ = has_uid_ = has_gid_ = has_mtime_ = has_sparse_ = false;
  has_gnu_name_ = has_gnu_linkname_ = false;
  pax_xattrs_.clear();
  meta_type_ = 0;
}

void TarReader::parse_pax(const std::string& d) {
  // Records as Go's archive/tar parses them; a key given twice keeps its last value. A map: a 1 MiB header can hold
  // 200,000 records.
  std::map<std::string, std::string> records;
  std::string sparse_map;
  size_t sparse_parts = 0;
  size_t pos = 0;
  while (pos < d.size()) {
    // "<len> <key>=<value>\n", where len counts the whole record.
    size_t sp = d.find(' ', pos);
    if (sp == std::string::npos) fail("CARRIER_BAD_TAR", "malformed PAX record length");
    int64_t len;
    if (!parse_decimal(d.substr(pos, std::min<size_t>(sp - pos, 32)), &len) || sp - pos > 32 || len < 5 ||
        len > static_cast<int64_t>(d.size() - pos) || len <= static_cast<int64_t>(sp - pos + 1)) {
      fail("CARRIER_BAD_TAR", "PAX record length out of range");
    }
    size_t end = pos + static_cast<size_t>(len);
    if (d[end - 1] != '\n') fail("CARRIER_BAD_TAR", "PAX record does not end with a newline");
    size_t eq = d.find('=', sp + 1);
    if (eq == std::string::npos || eq >= end - 1 || eq == sp + 1) fail("CARRIER_BAD_TAR", "malformed PAX record");
    std::string key = d.substr(sp + 1, eq - sp - 1);
    std::string value = d.substr(eq + 1, end - 1 - (eq + 1));
    pos = end;
    if (key.find('\0') != std::string::npos) fail("CARRIER_BAD_TAR", "NUL byte in a PAX key");
    if ((key == "path" || key == "linkpath" || key == "uname" || key == "gname") &&
        value.find('\0') != std::string::npos) {
      fail("CARRIER_BAD_TAR", "NUL byte in the PAX " + key + " value");
    }
    if (key == "GNU.sparse.offset" || key == "GNU.sparse.numbytes") {
      // GNU sparse 0.0 spreads its map over alternating records; Go joins them (and checks their order).
      bool want_offset = sparse_parts % 2 == 0;
      if ((key == "GNU.sparse.offset") != want_offset || value.find(',') != std::string::npos) {
        fail("CARRIER_BAD_TAR", "malformed GNU sparse records in a PAX header");
      }
      sparse_map += (sparse_parts++ ? "," : "") + value;
      continue;
    }
    records[std::move(key)] = std::move(value);
  }

  std::string major, minor, map = sparse_map;
  for (const auto& kv : records) {
    const std::string& key = kv.first;
    const std::string& value = kv.second;
    if (key == "GNU.sparse.major") major = value;
    if (key == "GNU.sparse.minor") minor = value;
    if (key == "GNU.sparse.map" && sparse_parts == 0) map = value;
    if (value.empty()) continue;  // an empty value keeps what the ustar header says, as in Go
    if (key == "path") {
      pax_path_ = value;
      has_path_ = true;
    } else if (key == "linkpath") {
      pax_linkpath_ = value;
      has_linkpath_ = true;
    } else if (key == "size") {
      pax_size_ = pax_number(value, "size");
      has_size_ = true;
    } else if (key == "uid") {
      pax_uid_ = pax_number(value, "uid");
      has_uid_ = true;
    } else if (key == "gid") {
      pax_gid_ = pax_number(value, "gid");
      has_gid_ = true;
    } else if (key == "mtime") {
      pax_time(value, "mtime", &pax_mtime_sec_, &pax_mtime_nsec_);
      has_mtime_ = true;
    } else if (key == "atime" || key == "ctime") {
      int64_t sec;
      uint32_t nsec;
      pax_time(value, key.c_str(), &sec, &nsec);  // not applied, but Go refuses the header when they do not parse
    } else if (key.compare(0, 13, "SCHILY.xattr.") == 0) {
      std::string name = key.substr(13);
      if (name.empty()) fail("CARRIER_BAD_TAR", "empty xattr name in a PAX record");
      pax_xattrs_.emplace_back(std::move(name), value);
    }
    // Other keys (uname, gname, charset, comment, LIBARCHIVE.*) carry nothing Carrier applies.
  }
  // Go reads a file as GNU sparse for versions 0.0, 0.1 and 1.0, or a map without a version; other versions are
  // plain files to it.
  has_sparse_ = (major == "0" && (minor == "0" || minor == "1")) || (major == "1" && minor == "0") ||
                (major.empty() && minor.empty() && !map.empty());
}

void TarReader::finish() {
  switch (state_) {
    case State::Header:
      if (hdr_len_ != 0) fail("CARRIER_TRUNCATED", "the tar stream ends inside a header");
      // Missing end-of-archive blocks are tolerated, and an extended header with nothing after it is dropped, as
      // Go's archive/tar does.
      clear_pending();
      return;
    case State::Meta:
    case State::Content:
      fail("CARRIER_TRUNCATED", "the tar stream ends inside an entry ('" + entry_.name + "')");
    case State::Padding:
      fail("CARRIER_TRUNCATED", "the tar stream ends inside an entry's padding");
    case State::SecondZero:
      if (hdr_len_ != 0) fail("CARRIER_TRUNCATED", "the tar stream ends inside its end-of-archive marker");
      return;
    case State::Trailer:
      return;
  }
}

}  // namespace carrier
