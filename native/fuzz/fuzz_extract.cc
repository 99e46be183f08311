// TarReader + Extractor (rootless) + TarSplitWriter over arbitrary bytes, into a fresh directory per input that is
// emptied with carrier::empty_directory and removed afterwards. Checks beyond "no sanitizer report":
//  - nothing appears next to the layer root (a crude escape detector: the work directory holds only what we put),
//  - a tar-split file the writer closed successfully parses back line by line with parse_tar_split_line,
//  - empty_directory leaves the root empty and removable.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <memory>
#include <string>

#include "../common.h"
#include "../extractor.h"
#include "../fs_safe.h"
#include "../tar_reader.h"
#include "../tar_split.h"
#include "fuzz_common.h"

using carrier_fuzz::invariant_failed;

namespace {

std::string g_work;  // private work directory: holds "root" (per input) and "split.gz"

void setup_once() {
  if (!g_work.empty()) return;
  const char* tmp = getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/carrier-fuzz-extract-XXXXXX";
  char* made = mkdtemp(&tmpl[0]);
  if (!made) invariant_failed("mkdtemp failed");
  g_work = made;
  atexit([] {
    unlink((g_work + "/split.gz").c_str());
    rmdir((g_work + "/root").c_str());
    rmdir(g_work.c_str());
  });
}

// Names in the work directory other than "root" and "split.gz".
bool stray_entries() {
  DIR* d = opendir(g_work.c_str());
  if (!d) invariant_failed("cannot list the work directory");
  bool stray = false;
  while (struct dirent* de = readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != ".." && n != "root" && n != "split.gz") {
      fprintf(stderr, "stray entry next to the layer root: %s\n", n.c_str());
      stray = true;
    }
  }
  closedir(d);
  return stray;
}

void check_split_readable(const std::string& path) {
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) invariant_failed("cannot open the closed tar-split file");
  std::string all;
  char buf[65536];
  int n;
  while ((n = gzread(gz, buf, sizeof buf)) > 0) all.append(buf, static_cast<size_t>(n));
  int err = 0;
  gzerror(gz, &err);
  gzclose(gz);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) invariant_failed("the closed tar-split file is not valid gzip");
  size_t start = 0;
  while (start < all.size()) {
    size_t nl = all.find('\n', start);
    if (nl == std::string::npos) invariant_failed("the tar-split file does not end with a newline");
    std::string line = all.substr(start, nl - start);
    try {
      carrier::parse_tar_split_line(line);
    } catch (const carrier::Fail& f) {
      fprintf(stderr, "line: %s\nfailure: %s\n", line.c_str(), f.what());
      invariant_failed("a line the tar-split writer produced does not parse");
    }
    start = nl + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  setup_once();
  std::string root_path = g_work + "/root";
  std::string split_path = g_work + "/split.gz";
  if (mkdir(root_path.c_str(), 0700) != 0) invariant_failed("cannot create the layer root");
  carrier::Fd root = carrier::open_root(root_path);
  bool closed = false;
  {
    std::unique_ptr<carrier::TarSplitWriter> split(new carrier::TarSplitWriter(split_path));
    try {
      carrier::ExtractOptions opts;
      opts.rootless = true;
      opts.overlay_whiteouts = (size & 1) == 0;  // both whiteout styles, chosen by the input
      {
        carrier::Extractor extractor(root.get(), opts, split.get());
        carrier::TarReader reader(extractor, 64);
        carrier_fuzz::Chunker chunks(data, size);
        size_t fed = 0;
        while (fed < size) {
          size_t n = chunks.next(size - fed);
          reader.feed(data + fed, n);
          fed += n;
        }
        reader.finish();
        extractor.finish();
      }
      split->close();
      closed = true;
    } catch (const carrier::Fail&) {
      split->discard();
    }
  }
  if (closed) check_split_readable(split_path);
  unlink(split_path.c_str());
  if (stray_entries()) invariant_failed("the extraction created something outside its root");
  try {
    carrier::empty_directory(root.get(), root_path);
  } catch (const carrier::Fail& f) {
    fprintf(stderr, "empty_directory: %s\n", f.what());
    invariant_failed("empty_directory failed on an extracted tree");
  }
  root.reset();
  chmod(root_path.c_str(), 0700);
  if (rmdir(root_path.c_str()) != 0) invariant_failed("the emptied layer root cannot be removed");
  return 0;
}
