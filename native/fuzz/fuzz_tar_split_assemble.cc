// tar-split writer + assembly over arbitrary input. The first byte picks the mode:
//  - even: the rest is a tar. It is extracted with a TarSplitWriter; when that succeeds, the tar is rebuilt from the
//    tar-split file and the extracted tree (harness.h's assembler: real line parser, real open_in_root, CRC-64
//    check). The rebuild must succeed and be byte-identical to the input: a layer Carrier accepts always exports
//    again (content the extractor keeps no file for is recorded in the tar-split itself); a difference means
//    tar-split lost or invented bytes.
//  - odd: the rest is tar-split JSON lines, assembled against a fixed layer directory that holds symlinks pointing
//    out of it, next to a secret file. Any outcome is fine except reading the secret.
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "../common.h"
#include "../extractor.h"
#include "../fs_safe.h"
#include "../tar_reader.h"
#include "../tar_split.h"
#include "fuzz_common.h"
#include "harness.h"

using carrier_fuzz::invariant_failed;

namespace {

const char kSecret[] = "SECRET-OUTSIDE-THE-LAYER-7f3a9c";

struct Dirs {
  std::string work, root, fixed, secret, split;
};

Dirs& dirs() {
  static Dirs* d = [] {
    Dirs* x = new Dirs;
    x->work = carrier_harness::make_temp_dir("fuzz-assemble");
    x->root = x->work + "/root";
    x->fixed = x->work + "/fixed";
    x->secret = x->work + "/secret";
    x->split = x->work + "/split.gz";
    mkdir(x->fixed.c_str(), 0700);
    carrier_harness::write_file(x->secret, kSecret);
    carrier_harness::write_file(x->fixed + "/file", "inside the layer\n");
    symlink("../secret", (x->fixed + "/up").c_str());
    symlink(x->secret.c_str(), (x->fixed + "/abs").c_str());
    symlink(x->work.c_str(), (x->fixed + "/workdir").c_str());
    mkdir((x->fixed + "/d").c_str(), 0755);
    symlink("../..", (x->fixed + "/d/upup").c_str());
    atexit([] { carrier_harness::remove_tree(dirs().work); });
    return x;
  }();
  return *d;
}

void assemble_hostile_lines(const uint8_t* data, size_t size) {
  Dirs& d = dirs();
  carrier::Fd root = carrier::open_root(d.fixed);
  std::string lines(reinterpret_cast<const char*>(data), size);
  std::string out;
  try {
    out = carrier_harness::assemble_lines(lines, root.get());
  } catch (const carrier::Fail&) {
    return;
  }
  if (out.find(kSecret) != std::string::npos) invariant_failed("assembly read a file outside the layer directory");
}

void round_trip(const uint8_t* data, size_t size) {
  Dirs& d = dirs();
  if (mkdir(d.root.c_str(), 0700) != 0) invariant_failed("cannot create the layer root");
  carrier::Fd root = carrier::open_root(d.root);
  bool closed = false;
  {
    std::unique_ptr<carrier::TarSplitWriter> split(new carrier::TarSplitWriter(d.split));
    try {
      carrier::ExtractOptions opts;
      opts.rootless = true;
      opts.overlay_whiteouts = false;  // keep .wh. entries as files, so more inputs rebuild
      {
        carrier::Extractor x(root.get(), opts, split.get());
        carrier::TarReader reader(x, 64);
        carrier_fuzz::Chunker chunks(data, size);
        size_t fed = 0;
        while (fed < size) {
          size_t n = chunks.next(size - fed);
          reader.feed(data + fed, n);
          fed += n;
        }
        reader.finish();
        x.finish();
      }
      split->close();
      closed = true;
    } catch (const carrier::Fail&) {
      split->discard();
    }
  }
  if (closed) {
    std::string rebuilt;
    try {
      rebuilt = carrier_harness::assemble(d.split, root.get());
    } catch (const carrier::Fail& f) {
      fprintf(stderr, "assemble: %s\n", f.what());
      invariant_failed("an extracted layer cannot be rebuilt from its tar-split");
    }
    if (rebuilt.size() != size || memcmp(rebuilt.data(), data, size) != 0) {
      fprintf(stderr, "rebuilt %zu bytes from a %zu-byte tar\n", rebuilt.size(), size);
      invariant_failed("the tar rebuilt from tar-split differs from the extracted tar");
    }
  }
  unlink(d.split.c_str());
  try {
    carrier::empty_directory(root.get(), d.root);
  } catch (const carrier::Fail& f) {
    fprintf(stderr, "empty_directory: %s\n", f.what());
    invariant_failed("empty_directory failed on an extracted tree");
  }
  root.reset();
  chmod(d.root.c_str(), 0700);
  if (rmdir(d.root.c_str()) != 0) invariant_failed("the emptied layer root cannot be removed");
  if (carrier_harness::read_file(d.secret) != kSecret) invariant_failed("the secret next to the layer changed");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  if (data[0] & 1) assemble_hostile_lines(data + 1, size - 1);
  else round_trip(data + 1, size - 1);
  return 0;
}
