// A partial pull's layer tar, rebuilt on a native thread straight into the apply pipeline (apply_job.cc), so the
// layer's bytes never pass through JS: the tar-split's raw segments, each file's content read from the store file that
// holds it or decoded from the zstd frames fetched from the registry, every file hashed against its TOC digest.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "decoder.h"

namespace carrier {

struct RebuildFile {
  std::string name;    // tar name (messages)
  int64_t size = 0;
  std::string digest;  // "sha256:<hex>" the TOC gives
  std::string path;    // the store file holding it; empty: its frames come from the registry (pushed from JS)
  bool claimed = false;  // the store file is known only by an unverified claim: a mismatch is a stale index
};

struct RebuildPlan {
  std::string layer;              // the layer's blob digest (messages)
  std::vector<uint8_t> segments;  // the tar-split's raw segments, concatenated in order
  // The tar in order: a segment (file < 0) of `bytes` bytes from `segments`, or the content of files[file].
  struct Step {
    int64_t file;
    uint64_t bytes;
  };
  std::vector<Step> steps;
  std::vector<RebuildFile> files;
};

// The compressed frames of the remote contents, in tar order: false once they have all come. May block, may throw.
using RemoteInput = std::function<bool(std::vector<uint8_t>& chunk)>;

// Writes the tar to `sink` (which may block or throw); throws CARRIER_DIGEST_MISMATCH (or CARRIER_STALE_INDEX for a
// claimed store file) for content that does not match its TOC digest and size, ENOENT for a store file gone meanwhile,
// CARRIER_BAD_TOC when the fetched frames decode to more than the remote files hold. `check` is called between files
// and reads, and throws to stop.
void rebuild_tar(const RebuildPlan& plan, const RemoteInput& remote, DecodeSink& sink, const std::function<void()>& check);

}  // namespace carrier
