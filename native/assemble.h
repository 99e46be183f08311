// Rebuilding a layer's tar from its tar-split and its diff directory (assemble_job.cc), for the threads that want the
// bytes themselves: AssembleJob hands them to JS, CompressJob compresses them without a trip through JS.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace carrier {

// Receives the tar in order, ~1 MiB at a time; may take the vector's contents (move from it), may block, may throw.
using TarSink = std::function<void(std::vector<uint8_t>& chunk)>;

// Runs on the caller's thread until the tar's last byte has gone to `sink`; throws a Fail on any failure (a file
// that does not match its recorded CRC-64 or size, a bad tar-split) or whatever `sink` throws.
void assemble_tar(const std::string& tar_split, const std::string& dir, const TarSink& sink);

}  // namespace carrier
