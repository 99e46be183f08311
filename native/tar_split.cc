#include "tar_split.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace carrier {

namespace {

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool valid_utf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

// JSON string escaping the way Go's encoding/json writes it (HTML-safe), so files read the same in podman.
void json_string(std::string& out, const std::string& s) {
  static const char digits[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == '<' || c == '>' || c == '&') {
          out += "\\u00";
          out += digits[c >> 4];
          out += digits[c & 15];
        } else if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                   (static_cast<unsigned char>(s[i + 2]) == 0xa8 || static_cast<unsigned char>(s[i + 2]) == 0xa9)) {
          out += static_cast<unsigned char>(s[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029";
          i += 2;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}


std::string base64_encode(const uint8_t* d, size_t n) {
  // Sized once and filled by index: every header of every layer passes through here (appending a char at a time
  // showed up at ~2% of a small-files pull's profile).
  std::string out((n + 2) / 3 * 4, '=');
  char* o = out.data();
  size_t i = 0;
  for (; i + 2 < n; i += 3, o += 4) {
    uint32_t v = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
    o[0] = kB64[v >> 18];
    o[1] = kB64[(v >> 12) & 63];
    o[2] = kB64[(v >> 6) & 63];
    o[3] = kB64[v & 63];
  }
  if (i < n) {  // one or two bytes left: the '=' padding is already in place
    uint32_t v = (d[i] << 16) | (i + 1 < n ? d[i + 1] << 8 : 0);
    o[0] = kB64[v >> 18];
    o[1] = kB64[(v >> 12) & 63];
    if (i + 1 < n) o[2] = kB64[(v >> 6) & 63];
  }
  return out;
}

TarSplitWriter::TarSplitWriter(std::string path) : path_(std::move(path)) {
  fd_ = Fd(open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd_.valid()) fail_errno(errno, "open", path_, "creating the tar-split file");
  // Level 1: the JSON is mostly base64 headers; the gain of higher levels is small and it is on the hot path.
  if (deflateInit2(&zs_, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    fail("ENOMEM", "cannot initialise gzip compression for tar-split");
  }
  zs_init_ = true;
}

TarSplitWriter::~TarSplitWriter() {
  if (zs_init_) deflateEnd(&zs_);
}

std::string tar_split_segment_line(const std::string& raw, uint64_t position) {
  std::string json = "{\"type\":2,\"payload\":\"";
  json += base64_encode(reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
  json += "\",\"position\":" + std::to_string(position) + "}\n";
  return json;
}

std::string tar_split_file_line(const std::string& name, int64_t size, const uint8_t* crc_be, uint64_t position) {
  std::string json = "{\"type\":1,";
  if (valid_utf8(name)) {
    json += "\"name\":";
    json_string(json, name);
  } else {
    json += "\"name_raw\":\"" + base64_encode(reinterpret_cast<const uint8_t*>(name.data()), name.size()) + "\"";
  }
  if (size) json += ",\"size\":" + std::to_string(size);
  json += ",\"payload\":";
  json += crc_be ? "\"" + base64_encode(crc_be, 8) + "\"" : std::string("null");
  json += ",\"position\":" + std::to_string(position) + "}\n";
  return json;
}

void TarSplitWriter::flush_segment() {
  if (pending_.empty()) return;
  line(tar_split_segment_line(pending_, position_++));
  pending_.clear();
}

void TarSplitWriter::file(const std::string& name, int64_t size, const uint8_t* crc_be) {
  line(tar_split_file_line(name, size, crc_be, position_++));
}

void TarSplitWriter::line(const std::string& json) {
  zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(json.data()));
  zs_.avail_in = static_cast<uInt>(json.size());
  while (deflate_once(Z_NO_FLUSH)) {
  }
}

bool TarSplitWriter::deflate_once(int flush) {
  uint8_t buf[65536];
  zs_.next_out = buf;
  zs_.avail_out = sizeof(buf);
  int ret = deflate(&zs_, flush);
  if (ret == Z_STREAM_ERROR) fail("EIO", "tar-split compression failed", path_);
  write_all(fd_.get(), buf, sizeof(buf) - zs_.avail_out, path_, "writing the tar-split file");
  return flush == Z_FINISH ? ret != Z_STREAM_END : zs_.avail_out == 0;
}

void TarSplitWriter::close() {
  flush_segment();
  zs_.next_in = nullptr;
  zs_.avail_in = 0;
  while (deflate_once(Z_FINISH)) {
  }
  // No fsync here: the layer's files are not synced one by one either. Whoever commits the layer makes it durable
  // once (syncfs) before clearing its incomplete flag, which covers this file too.
  if (::close(fd_.release()) != 0) fail_errno(errno, "close", path_, "closing the tar-split file");
}

void TarSplitWriter::discard() {
  fd_.reset();
  unlink(path_.c_str());
}

// ---- reading -------------------------------------------------------------------------------------------------

namespace {

[[noreturn]] void bad(const std::string& why) { fail("CARRIER_BAD_TAR_SPLIT", "malformed tar-split entry: " + why); }

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::string base64_decode(const std::string& s) {
  std::string out;
  out.reserve(s.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 0;
  for (; i < s.size() && s[i] != '='; ++i) {
    int v = b64_value(s[i]);
    if (v < 0) bad("invalid base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  for (; i < s.size(); ++i)
    if (s[i] != '=') bad("invalid base64 padding");
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

class JsonCursor {
 public:
  explicit JsonCursor(const std::string& s) : s_(s) {}
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) bad(std::string("expected '") + c + "'");
  }
  bool at_end() {
    ws();
    return i_ == s_.size();
  }
  bool null() {
    ws();
    if (s_.compare(i_, 4, "null") == 0) {
      i_ += 4;
      return true;
    }
    return false;
  }
  uint32_t hex4() {
    if (i_ + 4 > s_.size()) bad("short \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else bad("bad \\u escape");
    }
    return v;
  }
  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) bad("unterminated string");
      char c = s_[i_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) bad("unterminated escape");
      char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xd800 && cp < 0xdc00 && i_ + 1 < s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
            i_ += 2;
            uint32_t lo = hex4();
            if (lo >= 0xdc00 && lo < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            else bad("bad surrogate pair");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          bad("bad escape");
      }
    }
  }
  int64_t integer() {
    ws();
    bool neg = eat('-');
    if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9') bad("expected a number");
    int64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      if (v > (INT64_MAX - 9) / 10) bad("number overflows");
      v = v * 10 + (s_[i_++] - '0');
    }
    return neg ? -v : v;
  }
  void skip_value() {
    ws();
    if (i_ >= s_.size()) bad("missing value");
    char c = s_[i_];
    if (c == '"') {
      string();
    } else if (c == '{' || c == '[') {
      bad("unexpected nested value");
    } else {
      while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != '}') ++i_;
    }
  }

 private:
  const std::string& s_;
  size_t i_ = 0;
};

}  // namespace

TarSplitEntry parse_tar_split_line(const std::string& line) {
  TarSplitEntry e;
  JsonCursor j(line);
  j.expect('{');
  bool has_name_raw = false;
  std::string name_raw;
  if (!j.eat('}')) {
    do {
      std::string key = j.string();
      j.expect(':');
      if (key == "type") {
        e.type = static_cast<int>(j.integer());
      } else if (key == "name") {
        e.name = j.null() ? std::string() : j.string();
      } else if (key == "name_raw") {
        if (!j.null()) {
          name_raw = base64_decode(j.string());
          has_name_raw = true;
        }
      } else if (key == "size") {
        e.size = j.integer();
      } else if (key == "payload") {
        if (!j.null()) e.payload = base64_decode(j.string());
      } else {
        j.skip_value();  // "position" and anything newer
      }
    } while (j.eat(','));
    j.expect('}');
  }
  if (!j.at_end()) bad("trailing bytes");
  if (has_name_raw) e.name = name_raw;
  if (e.type != 1 && e.type != 2) bad("unknown type " + std::to_string(e.type));
  if (e.size < 0) bad("negative size");
  return e;
}

}  // namespace carrier
