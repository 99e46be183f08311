// A budget of bytes shared by the layers of one image while they are applied on their own threads: every byte of
// file content a layer writes to disk (the holes left for runs of zeros excluded) is charged, and the layer that goes
// past the limit fails. JS holds it as an ImageBudget object (budget.cc), handed to each layer's ApplyJob.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "common.h"

namespace carrier {

struct ByteBudget {
  explicit ByteBudget(uint64_t max) : limit(max) {}
  const uint64_t limit;
  std::atomic<uint64_t> used{0};

  // Charges `n` bytes written for `path`; fails CARRIER_LIMIT_EXCEEDED once the total passes the limit.
  void charge(uint64_t n, const std::string& path) {
    if (used.fetch_add(n) + n <= limit) return;
    fail("CARRIER_LIMIT_EXCEEDED", "the image's layers write more than its budget of " + std::to_string(limit) +
                                       " bytes to disk (maxImageBytes), passed while writing '" + path.substr(0, 256) +
                                       "'; raise maxImageBytes if the image is genuine",
         path);
  }
};

}  // namespace carrier
