// A signal_crypto_provider for libsignal-protocol-c on OpenSSL 3 libcrypto, built for speed:
// EVP_MAC/EVP_MD/EVP_CIPHER fetched once, HMAC and SHA-512 contexts kept in free lists and
// re-keyed instead of re-created, one reused cipher context, AES-CBC output written straight
// into the signal_buffer the library receives (no intermediate copy), RAND_bytes for randomness.
#ifndef OPENSSL_PROVIDER_H
#define OPENSSL_PROVIDER_H

#include "../CLibSignalProtocolC/clibsignal_shim.h" // SwiftPM passes C targets the module map, not its folder

typedef struct openssl_provider openssl_provider;

/// Fetches the algorithms and fills `out` (its user_data points at the returned object).
/// Returns NULL on failure.
openssl_provider *openssl_provider_create(signal_crypto_provider *out);
void openssl_provider_free(openssl_provider *provider);

#endif
