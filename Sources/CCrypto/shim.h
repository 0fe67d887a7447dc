#ifndef HUSH_CCRYPTO_SHIM_H
#define HUSH_CCRYPTO_SHIM_H
// OpenSSL 3 libcrypto, as Hush uses it: EVP digests, MACs and ciphers (fetched once and
// reused, see HushCrypto/OpenSSL.swift) and BIGNUM for the one field inversion XEdDSA needs.
// The low-level SHA-256 interface (SHA256_Init/Update/Final) is deprecated in OpenSSL 3 but
// kept and still SHA-extension accelerated; HushCrypto's HMAC uses it to avoid EVP's
// per-call allocations (see HushCrypto/Hashing/HMAC.swift).
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

// OSSL_PARAM builders are macros or take non-const pointers; these wrappers keep Swift simple.
static inline OSSL_PARAM hush_ossl_param_utf8(const char *key, char *value) {
    return OSSL_PARAM_construct_utf8_string(key, value, 0);
}
static inline OSSL_PARAM hush_ossl_param_end(void) {
    return OSSL_PARAM_construct_end();
}
#endif
