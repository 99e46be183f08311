// TarReader over arbitrary bytes, fed in input-derived chunks. The handler keeps nothing but checks the parser's
// contract: every byte it was fed comes back exactly once and in order (as raw() or entry_data(), which is what
// makes tar-split byte-exact), entries are properly bracketed, and an entry gets exactly `size` content bytes.
#include <cstring>

#include "../common.h"
#include "../tar_reader.h"
#include "fuzz_common.h"

using carrier_fuzz::invariant_failed;

namespace {

class CheckingHandler : public carrier::TarHandler {
 public:
  CheckingHandler(const uint8_t* input, size_t size) : in_(input), size_(size) {}

  void raw(const uint8_t* data, size_t n) override { consume(data, n, "raw() bytes differ from the input"); }
  void entry_begin(carrier::TarEntry& entry) override {
    if (in_entry_) invariant_failed("entry_begin() inside an entry");
    if (entry.size < 0) invariant_failed("negative entry size");
    in_entry_ = true;
    want_ = entry.size;
    got_ = 0;
  }
  void entry_data(const uint8_t* data, size_t n) override {
    if (!in_entry_) invariant_failed("entry_data() outside an entry");
    got_ += static_cast<int64_t>(n);
    if (got_ > want_) invariant_failed("more content than the entry's size");
    consume(data, n, "entry_data() bytes differ from the input");
  }
  void entry_end() override {
    if (!in_entry_) invariant_failed("entry_end() outside an entry");
    if (got_ != want_) invariant_failed("entry_end() before all of the entry's content");
    in_entry_ = false;
  }
  size_t delivered() const { return pos_; }
  bool in_entry() const { return in_entry_; }

 private:
  void consume(const uint8_t* data, size_t n, const char* what) {
    if (n > size_ - pos_) invariant_failed("handler got more bytes than were fed");
    if (n && memcmp(data, in_ + pos_, n) != 0) invariant_failed(what);
    pos_ += n;
  }
  const uint8_t* in_;
  size_t size_;
  size_t pos_ = 0;
  bool in_entry_ = false;
  int64_t want_ = 0, got_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckingHandler handler(data, size);
  carrier::TarReader reader(handler, 1000);
  carrier_fuzz::Chunker chunks(data, size);
  size_t fed = 0;
  try {
    while (fed < size) {
      size_t n = chunks.next(size - fed);
      reader.feed(data + fed, n);
      fed += n;
      if (handler.delivered() > fed) invariant_failed("handler got bytes not yet fed");
    }
    reader.finish();
    if (handler.delivered() != size) invariant_failed("finish() succeeded but not every byte reached the handler");
    if (handler.in_entry()) invariant_failed("finish() succeeded inside an entry");
  } catch (const carrier::Fail&) {
    // Rejected input: the expected outcome for most of it.
  }
  return 0;
}
