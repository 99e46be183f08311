// parse_tar_split_line on arbitrary lines: the input is split on '\n' and every piece (and the whole input, which
// may hold NULs and newlines) is parsed. Only CARRIER failures are acceptable outcomes.
#include <string>

#include "../common.h"
#include "../tar_split.h"

namespace {

void parse(const std::string& line) {
  try {
    carrier::TarSplitEntry e = carrier::parse_tar_split_line(line);
    if (e.size < 0 && e.type == 1) {
      // Not an invariant the parser promises to check; just touch the fields so nothing is optimised away.
      (void)e.name.size();
    }
    (void)e.payload.size();
  } catch (const carrier::Fail&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string all(reinterpret_cast<const char*>(data), size);
  parse(all);
  size_t start = 0;
  while (start < all.size()) {
    size_t nl = all.find('\n', start);
    if (nl == std::string::npos) nl = all.size();
    if (start != 0 || nl != all.size()) parse(all.substr(start, nl - start));
    start = nl + 1;
  }
  return 0;
}
