#include "tar_reader.h"

#include <cstring>

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

// A numeric header field: octal text, or base-256 (two's complement) when the top bit of the first byte is set.
// Only times may be negative (GNU tar writes pre-1970 mtimes that way, and Go reads them).
int64_t field_number(const uint8_t* p, size_t n, const char* what, bool may_be_negative = false) {
  if (p[0] & 0x80) {
    uint8_t inv = (p[0] & 0x40) ? 0xff : 0;
    if (inv && !may_be_negative) fail("CARRIER_BAD_TAR", std::string("negative ") + what + " in a tar header");
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) {
      uint8_t c = p[i] ^ inv;
      if (i == 0) c &= 0x7f;
      if (v >> 55) fail("CARRIER_BAD_TAR", std::string(what) + " in a tar header overflows");
      v = (v << 8) | c;
    }
    if (v >> 63) fail("CARRIER_BAD_TAR", std::string(what) + " in a tar header overflows");
    return inv ? ~static_cast<int64_t>(v) : static_cast<int64_t>(v);
  }
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == 0)) ++i;
  uint64_t v = 0;
  for (; i < n; ++i) {
    uint8_t c = p[i];
    if (c == ' ' || c == 0) break;
    if (c < '0' || c > '7') fail("CARRIER_BAD_TAR", std::string("invalid ") + what + " field in a tar header");
    if (v >> 60) fail("CARRIER_BAD_TAR", std::string(what) + " in a tar header overflows");
    v = (v << 3) | (c - '0');
  }
  for (; i < n; ++i) {
    if (p[i] != ' ' && p[i] != 0) fail("CARRIER_BAD_TAR", std::string("invalid ") + what + " field in a tar header");
  }
  return static_cast<int64_t>(v);
}

// A non-negative decimal from a PAX record.
int64_t pax_number(const std::string& s, const char* key) {
  if (s.empty() || s.size() > 18) fail("CARRIER_BAD_TAR", std::string("invalid PAX ") + key + " '" + s + "'");
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') fail("CARRIER_BAD_TAR", std::string("invalid PAX ") + key + " '" + s + "'");
    v = v * 10 + (c - '0');
  }
  return v;
}

// PAX times: [-]seconds[.fraction], fractions beyond nanoseconds truncated.
void pax_time(const std::string& s, int64_t* sec, uint32_t* nsec) {
  size_t dot = s.find('.');
  std::string whole = s.substr(0, dot);
  bool negative = !whole.empty() && whole[0] == '-';
  if (negative) whole.erase(0, 1);
  int64_t secs = pax_number(whole, "mtime");
  uint32_t frac = 0;
  if (dot != std::string::npos) {
    std::string digits = s.substr(dot + 1);
    if (digits.empty()) fail("CARRIER_BAD_TAR", "invalid PAX mtime '" + s + "'");
    for (size_t i = 0; i < 9; ++i) {
      char c = i < digits.size() ? digits[i] : '0';
      if (c < '0' || c > '9') fail("CARRIER_BAD_TAR", "invalid PAX mtime '" + s + "'");
      frac = frac * 10 + (c - '0');
    }
    for (size_t i = 9; i < digits.size(); ++i)
      if (digits[i] < '0' || digits[i] > '9') fail("CARRIER_BAD_TAR", "invalid PAX mtime '" + s + "'");
  }
  if (negative) {
    secs = -secs;
    if (frac) {
      secs -= 1;
      frac = 1000000000u - frac;
    }
  }
  *sec = secs;
  *nsec = frac;
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

void TarReader::on_header() {
  if (all_zero(hdr_, sizeof(hdr_))) {
    if (meta_type_) fail("CARRIER_BAD_TAR", "the archive ends right after an extended header");
    state_ = State::SecondZero;
    return;
  }
  // Checksum: the sum of all header bytes with the checksum field read as spaces (unsigned, or signed as old tars).
  int64_t stored = field_number(hdr_ + 148, 8, "checksum");
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

  char type = static_cast<char>(hdr_[156]);
  int64_t size = field_number(hdr_ + 124, 12, "size");

  if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
    if (size > static_cast<int64_t>(kMaxMetaBytes)) {
      fail("CARRIER_LIMIT_EXCEEDED", "a tar extended header of " + std::to_string(size) +
                                         " bytes exceeds the 1 MiB limit");
    }
    meta_type_ = type;
    meta_.clear();
    remaining_ = size;
    if (size == 0) {
      on_meta_done();
    } else {
      state_ = State::Meta;
    }
    return;
  }
  if (type == 'S' || type == 'M' || type == 'V') {
    fail("CARRIER_BAD_TAR", std::string("unsupported tar entry type '") + type + "' (sparse/multi-volume)");
  }

  if (++entries_ > max_entries_) {
    fail("CARRIER_LIMIT_EXCEEDED", "the layer has more than " + std::to_string(max_entries_) + " entries");
  }

  TarEntry& e = entry_;
  e = TarEntry{};
  bool ustar = memcmp(hdr_ + 257, "ustar\0", 6) == 0 && memcmp(hdr_ + 263, "00", 2) == 0;
  std::string name = field_string(hdr_, 100);
  if (ustar) {
    std::string prefix = field_string(hdr_ + 345, 155);
    if (!prefix.empty()) name = prefix + "/" + name;
  }
  if (type == '\0') type = (!name.empty() && name.back() == '/') ? '5' : '0';
  if (type == '7') type = '0';
  e.type = type;
  // Precedence as Go's archive/tar reads it (podman must see the same names): GNU long name, PAX, header.
  e.name = has_gnu_name_ ? gnu_name_ : has_path_ ? pax_path_ : name;
  e.linkname = has_gnu_linkname_ ? gnu_linkname_ : has_linkpath_ ? pax_linkpath_ : field_string(hdr_ + 157, 100);
  e.mode = static_cast<uint32_t>(field_number(hdr_ + 100, 8, "mode") & 07777);
  e.uid = has_uid_ ? pax_uid_ : field_number(hdr_ + 108, 8, "uid");
  e.gid = has_gid_ ? pax_gid_ : field_number(hdr_ + 116, 8, "gid");
  if (has_mtime_) {
    e.mtime_sec = pax_mtime_sec_;
    e.mtime_nsec = pax_mtime_nsec_;
  } else {
    e.mtime_sec = field_number(hdr_ + 136, 12, "mtime", true);
  }
  if (type == '3' || type == '4') {
    e.devmajor = static_cast<uint32_t>(field_number(hdr_ + 329, 8, "devmajor"));
    e.devminor = static_cast<uint32_t>(field_number(hdr_ + 337, 8, "devminor"));
  }
  e.size = has_size_ ? pax_size_ : size;
  if (header_only(type)) e.size = 0;  // as Go's archive/tar (and so podman) reads them
  e.xattrs = std::move(pax_xattrs_);
  if (e.uid < 0 || e.uid > 0xfffffffe || e.gid < 0 || e.gid > 0xfffffffe) {
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
      has_path_ = has_linkpath_ = has_size_ = has_uid_ = has_gid_ = has_mtime_ = false;
      pax_xattrs_.clear();
      parse_pax(meta_);
      break;
    case 'g':
      // Global headers carry comments (git archive). Go hands them to its caller as an entry of their own, which
      // ends whatever was pending; they set nothing for later entries.
      clear_pending();
      break;
    case 'L':
      gnu_name_ = meta_.substr(0, meta_.find('\0'));
      has_gnu_name_ = true;
      break;
    case 'K':
      gnu_linkname_ = meta_.substr(0, meta_.find('\0'));
      has_gnu_linkname_ = true;
      break;
  }
  meta_.clear();
  meta_.shrink_to_fit();
  begin_padding(size);
}

void TarReader::clear_pending() {
  has_path_ = has_linkpath_ = has_size_ = has_uid_ = has_gid_ = has_mtime_ = false;
  has_gnu_name_ = has_gnu_linkname_ = false;
  pax_xattrs_.clear();
  meta_type_ = 0;
}

void TarReader::parse_pax(const std::string& d) {
  size_t pos = 0;
  while (pos < d.size()) {
    // "<len> <key>=<value>\n", where len counts the whole record.
    size_t sp = d.find(' ', pos);
    if (sp == std::string::npos || sp == pos || sp - pos > 8) fail("CARRIER_BAD_TAR", "malformed PAX record length");
    int64_t len = pax_number(d.substr(pos, sp - pos), "record length");
    if (len <= static_cast<int64_t>(sp - pos + 1) || pos + static_cast<size_t>(len) > d.size()) {
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

    bool is_xattr = key.compare(0, 13, "SCHILY.xattr.") == 0;
    if (!is_xattr && value.find('\0') != std::string::npos) {
      fail("CARRIER_BAD_TAR", "NUL byte in the PAX " + key + " value");
    }
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
      pax_time(value, &pax_mtime_sec_, &pax_mtime_nsec_);
      has_mtime_ = true;
    } else if (is_xattr) {
      std::string name = key.substr(13);
      if (name.empty()) fail("CARRIER_BAD_TAR", "empty xattr name in a PAX record");
      bool replaced = false;
      for (auto& kv : pax_xattrs_) {
        if (kv.first == name) {
          kv.second = value;
          replaced = true;
        }
      }
      if (!replaced) pax_xattrs_.emplace_back(std::move(name), std::move(value));
    } else if (key.compare(0, 11, "GNU.sparse.") == 0) {
      fail("CARRIER_BAD_TAR", "sparse files (PAX GNU.sparse) are not supported in layers");
    }
    // Other keys (atime, ctime, uname, gname, charset, LIBARCHIVE.*) carry nothing Carrier applies.
  }
}

void TarReader::finish() {
  switch (state_) {
    case State::Header:
      if (hdr_len_ != 0) fail("CARRIER_TRUNCATED", "the tar stream ends inside a header");
      if (meta_type_) fail("CARRIER_TRUNCATED", "the tar stream ends after an extended header");
      return;  // missing end-of-archive blocks are tolerated, as Go's archive/tar does
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
