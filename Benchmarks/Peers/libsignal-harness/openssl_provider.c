// See openssl_provider.h.
#include "openssl_provider.h"

#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define POOL_SIZE 8
#define AES_BLOCK 16

enum { MODE_CBC = 0, MODE_CTR = 1 };

struct openssl_provider {
    EVP_MAC *hmac;
    EVP_MD *sha512;
    EVP_CIPHER *ciphers[2][3];      // [mode][AES-128, AES-192, AES-256]
    EVP_CIPHER_CTX *contexts[2][3]; // one context per cipher, re-keyed on every call
    EVP_MAC_CTX *hmac_pool[POOL_SIZE];
    int hmac_pool_count;
    EVP_MD_CTX *sha512_pool[POOL_SIZE];
    int sha512_pool_count;
};

// MARK: - random

static int random_bytes(uint8_t *data, size_t len, void *user_data) {
    (void)user_data;
    while (len > 0) {
        int chunk = len > INT_MAX ? INT_MAX : (int)len;
        if (RAND_bytes(data, chunk) != 1) return SG_ERR_UNKNOWN;
        data += chunk;
        len -= (size_t)chunk;
    }
    return SG_SUCCESS;
}

// MARK: - HMAC-SHA256

static int hmac_init(void **context, const uint8_t *key, size_t key_len, void *user_data) {
    openssl_provider *p = user_data;
    EVP_MAC_CTX *ctx;
    if (p->hmac_pool_count > 0) {
        ctx = p->hmac_pool[--p->hmac_pool_count];
    } else {
        ctx = EVP_MAC_CTX_new(p->hmac);
        if (!ctx) return SG_ERR_NOMEM;
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
            OSSL_PARAM_construct_end(),
        };
        if (EVP_MAC_CTX_set_params(ctx, params) != 1) {
            EVP_MAC_CTX_free(ctx);
            return SG_ERR_UNKNOWN;
        }
    }
    // An empty HMAC key equals a single zero byte (keys are zero-padded to the block size).
    static const uint8_t zero = 0;
    if (key_len == 0) {
        key = &zero;
        key_len = 1;
    }
    if (EVP_MAC_init(ctx, key, key_len, NULL) != 1) {
        EVP_MAC_CTX_free(ctx);
        return SG_ERR_UNKNOWN;
    }
    *context = ctx;
    return SG_SUCCESS;
}

static int hmac_update(void *context, const uint8_t *data, size_t data_len, void *user_data) {
    (void)user_data;
    return EVP_MAC_update(context, data, data_len) == 1 ? SG_SUCCESS : SG_ERR_UNKNOWN;
}

static int hmac_final(void *context, signal_buffer **output, void *user_data) {
    (void)user_data;
    signal_buffer *buffer = signal_buffer_alloc(32);
    if (!buffer) return SG_ERR_NOMEM;
    size_t written = 0;
    if (EVP_MAC_final(context, signal_buffer_data(buffer), &written, 32) != 1 || written != 32) {
        signal_buffer_free(buffer);
        return SG_ERR_UNKNOWN;
    }
    *output = buffer;
    return SG_SUCCESS;
}

static void hmac_cleanup(void *context, void *user_data) {
    openssl_provider *p = user_data;
    if (!context) return;
    if (p->hmac_pool_count < POOL_SIZE) p->hmac_pool[p->hmac_pool_count++] = context;
    else EVP_MAC_CTX_free(context);
}

// MARK: - SHA-512

static int sha512_init(void **context, void *user_data) {
    openssl_provider *p = user_data;
    EVP_MD_CTX *ctx = p->sha512_pool_count > 0 ? p->sha512_pool[--p->sha512_pool_count] : EVP_MD_CTX_new();
    if (!ctx) return SG_ERR_NOMEM;
    if (EVP_DigestInit_ex2(ctx, p->sha512, NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return SG_ERR_UNKNOWN;
    }
    *context = ctx;
    return SG_SUCCESS;
}

static int sha512_update(void *context, const uint8_t *data, size_t data_len, void *user_data) {
    (void)user_data;
    return EVP_DigestUpdate(context, data, data_len) == 1 ? SG_SUCCESS : SG_ERR_UNKNOWN;
}

static int sha512_final(void *context, signal_buffer **output, void *user_data) {
    openssl_provider *p = user_data;
    signal_buffer *buffer = signal_buffer_alloc(64);
    if (!buffer) return SG_ERR_NOMEM;
    unsigned int written = 0;
    // libsignal reuses the context after final (fingerprints hash iteratively): re-initialise it.
    if (EVP_DigestFinal_ex(context, signal_buffer_data(buffer), &written) != 1 || written != 64 ||
        EVP_DigestInit_ex2(context, p->sha512, NULL) != 1) {
        signal_buffer_free(buffer);
        return SG_ERR_UNKNOWN;
    }
    *output = buffer;
    return SG_SUCCESS;
}

static void sha512_cleanup(void *context, void *user_data) {
    openssl_provider *p = user_data;
    if (!context) return;
    if (p->sha512_pool_count < POOL_SIZE) p->sha512_pool[p->sha512_pool_count++] = context;
    else EVP_MD_CTX_free(context);
}

// MARK: - AES

/// Re-keys the context kept for this cipher (passing a NULL cipher after the first use keeps
/// OpenSSL from freeing and re-allocating the provider context). Padding stays off: CBC's
/// PKCS#7 padding is done here so that the output goes straight into the final buffer.
static EVP_CIPHER_CTX *cipher_context(openssl_provider *p, int cipher, size_t key_len, const uint8_t *key,
                                      const uint8_t *iv, size_t iv_len, int encrypt) {
    int mode = cipher == SG_CIPHER_AES_CBC_PKCS5 ? MODE_CBC : cipher == SG_CIPHER_AES_CTR_NOPADDING ? MODE_CTR : -1;
    int size = key_len == 16 ? 0 : key_len == 24 ? 1 : key_len == 32 ? 2 : -1;
    if (mode < 0 || size < 0 || iv_len != AES_BLOCK) return NULL;
    EVP_CIPHER_CTX *ctx = p->contexts[mode][size];
    if (!ctx) {
        ctx = EVP_CIPHER_CTX_new();
        if (!ctx) return NULL;
        if (EVP_CipherInit_ex2(ctx, p->ciphers[mode][size], key, iv, encrypt, NULL) != 1 ||
            EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
            EVP_CIPHER_CTX_free(ctx);
            return NULL;
        }
        p->contexts[mode][size] = ctx;
        return ctx;
    }
    return EVP_CipherInit_ex2(ctx, NULL, key, iv, encrypt, NULL) == 1 ? ctx : NULL;
}

static int update_exact(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t len) {
    if (len > INT_MAX) return 0;
    int written = 0;
    return EVP_CipherUpdate(ctx, out, &written, in, (int)len) == 1 && (size_t)written == len;
}

static int aes_encrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len, const uint8_t *iv,
                       size_t iv_len, const uint8_t *plaintext, size_t plaintext_len, void *user_data) {
    openssl_provider *p = user_data;
    EVP_CIPHER_CTX *ctx = cipher_context(p, cipher, key_len, key, iv, iv_len, 1);
    if (!ctx) return SG_ERR_UNKNOWN;
    if (cipher == SG_CIPHER_AES_CTR_NOPADDING) {
        signal_buffer *buffer = signal_buffer_alloc(plaintext_len);
        if (!buffer) return SG_ERR_NOMEM;
        if (!update_exact(ctx, signal_buffer_data(buffer), plaintext, plaintext_len)) {
            signal_buffer_free(buffer);
            return SG_ERR_UNKNOWN;
        }
        *output = buffer;
        return SG_SUCCESS;
    }
    size_t full = plaintext_len & ~(size_t)(AES_BLOCK - 1), rest = plaintext_len - full;
    signal_buffer *buffer = signal_buffer_alloc(full + AES_BLOCK);
    if (!buffer) return SG_ERR_NOMEM;
    uint8_t *out = signal_buffer_data(buffer);
    uint8_t last[AES_BLOCK];
    memcpy(last, plaintext + full, rest);
    memset(last + rest, (int)(AES_BLOCK - rest), AES_BLOCK - rest);
    int ok = (full == 0 || update_exact(ctx, out, plaintext, full)) && update_exact(ctx, out + full, last, AES_BLOCK);
    OPENSSL_cleanse(last, sizeof(last));
    if (!ok) {
        signal_buffer_free(buffer);
        return SG_ERR_UNKNOWN;
    }
    *output = buffer;
    return SG_SUCCESS;
}

static int aes_decrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len, const uint8_t *iv,
                       size_t iv_len, const uint8_t *ciphertext, size_t ciphertext_len, void *user_data) {
    openssl_provider *p = user_data;
    if (cipher == SG_CIPHER_AES_CTR_NOPADDING) {
        EVP_CIPHER_CTX *ctx = cipher_context(p, cipher, key_len, key, iv, iv_len, 0);
        if (!ctx) return SG_ERR_UNKNOWN;
        signal_buffer *buffer = signal_buffer_alloc(ciphertext_len);
        if (!buffer) return SG_ERR_NOMEM;
        if (!update_exact(ctx, signal_buffer_data(buffer), ciphertext, ciphertext_len)) {
            signal_buffer_free(buffer);
            return SG_ERR_UNKNOWN;
        }
        *output = buffer;
        return SG_SUCCESS;
    }
    if (ciphertext_len == 0 || ciphertext_len % AES_BLOCK != 0 || iv_len != AES_BLOCK) return SG_ERR_INVAL;
    // CBC: decrypt the last block first (its IV is the block before it) to learn the padding,
    // so that the rest can be decrypted straight into a buffer of the exact plaintext length.
    size_t head = ciphertext_len - AES_BLOCK;
    const uint8_t *last_iv = head ? ciphertext + head - AES_BLOCK : iv;
    EVP_CIPHER_CTX *ctx = cipher_context(p, cipher, key_len, key, last_iv, iv_len, 0);
    if (!ctx) return SG_ERR_UNKNOWN;
    uint8_t last[AES_BLOCK];
    if (!update_exact(ctx, last, ciphertext + head, AES_BLOCK)) return SG_ERR_UNKNOWN;
    unsigned pad = last[AES_BLOCK - 1], bad = (pad == 0) | (pad > AES_BLOCK);
    for (unsigned i = 0; i < AES_BLOCK; i++) bad |= (i >= AES_BLOCK - pad) & (last[i] != pad);
    if (bad) {
        OPENSSL_cleanse(last, sizeof(last));
        return SG_ERR_INVALID_MESSAGE;
    }
    signal_buffer *buffer = signal_buffer_alloc(ciphertext_len - pad);
    if (!buffer) return SG_ERR_NOMEM;
    uint8_t *out = signal_buffer_data(buffer);
    int ok = 1;
    if (head) // same key, back to the message's IV
        ok = EVP_CipherInit_ex2(ctx, NULL, NULL, iv, 0, NULL) == 1 && update_exact(ctx, out, ciphertext, head);
    memcpy(out + head, last, AES_BLOCK - pad);
    OPENSSL_cleanse(last, sizeof(last));
    if (!ok) {
        signal_buffer_bzero_free(buffer);
        return SG_ERR_UNKNOWN;
    }
    *output = buffer;
    return SG_SUCCESS;
}

// MARK: - lifecycle

openssl_provider *openssl_provider_create(signal_crypto_provider *out) {
    openssl_provider *p = OPENSSL_zalloc(sizeof(*p));
    if (!p) return NULL;
    static const char *names[2][3] = {
        {"AES-128-CBC", "AES-192-CBC", "AES-256-CBC"},
        {"AES-128-CTR", "AES-192-CTR", "AES-256-CTR"},
    };
    p->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    p->sha512 = EVP_MD_fetch(NULL, "SHA512", NULL);
    int ok = p->hmac && p->sha512;
    for (int m = 0; m < 2; m++)
        for (int s = 0; s < 3; s++) ok = (p->ciphers[m][s] = EVP_CIPHER_fetch(NULL, names[m][s], NULL)) && ok;
    if (!ok) {
        openssl_provider_free(p);
        return NULL;
    }
    memset(out, 0, sizeof(*out));
    out->random_func = random_bytes;
    out->hmac_sha256_init_func = hmac_init;
    out->hmac_sha256_update_func = hmac_update;
    out->hmac_sha256_final_func = hmac_final;
    out->hmac_sha256_cleanup_func = hmac_cleanup;
    out->sha512_digest_init_func = sha512_init;
    out->sha512_digest_update_func = sha512_update;
    out->sha512_digest_final_func = sha512_final;
    out->sha512_digest_cleanup_func = sha512_cleanup;
    out->encrypt_func = aes_encrypt;
    out->decrypt_func = aes_decrypt;
    out->user_data = p;
    return p;
}

void openssl_provider_free(openssl_provider *p) {
    if (!p) return;
    for (int i = 0; i < p->hmac_pool_count; i++) EVP_MAC_CTX_free(p->hmac_pool[i]);
    for (int i = 0; i < p->sha512_pool_count; i++) EVP_MD_CTX_free(p->sha512_pool[i]);
    for (int m = 0; m < 2; m++)
        for (int s = 0; s < 3; s++) {
            EVP_CIPHER_CTX_free(p->contexts[m][s]);
            EVP_CIPHER_free(p->ciphers[m][s]);
        }
    EVP_MAC_free(p->hmac);
    EVP_MD_free(p->sha512);
    OPENSSL_free(p);
}
