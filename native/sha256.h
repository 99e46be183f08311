// SHA-256 through the OpenSSL that Node itself links and exports (uses SHA-NI where the CPU has it).
#pragma once

#include <openssl/evp.h>

#include <string>

#include "common.h"

namespace carrier {

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const uint8_t* data, size_t len) {
    if (len) EVP_DigestUpdate(ctx_, data, len);
  }
  // "sha256:<hex>"; call once.
  std::string digest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, md, &n);
    return "sha256:" + hex(md, n);
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace carrier
