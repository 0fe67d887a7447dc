/*
 * The crypto provider libsignal-protocol-c needs (it does no symmetric crypto itself):
 * random bytes (the caller's callback), HMAC-SHA256, SHA-512 and AES-CBC/CTR, all on
 * OpenSSL 3 libcrypto (EVP).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "peer_internal.h"

int peer_crypto_init(signal_peer *peer)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac) {
        return SG_ERR_UNKNOWN;
    }
    peer->hmac = mac;
    return 0;
}

void peer_crypto_cleanup(signal_peer *peer)
{
    if (peer->hmac) {
        EVP_MAC_free((EVP_MAC *)peer->hmac);
        peer->hmac = NULL;
    }
}

/* ---- random ---- */

static int provider_random(uint8_t *data, size_t len, void *user_data)
{
    signal_peer *peer = user_data;
    if (len == 0) {
        return 0;
    }
    if (peer && peer->random) {
        return peer->random(peer->random_ctx, data, len) == 0 ? 0 : SG_ERR_UNKNOWN;
    }
    if (len > INT_MAX) {
        return SG_ERR_INVAL;
    }
    return RAND_bytes(data, (int)len) == 1 ? 0 : SG_ERR_UNKNOWN;
}

/* ---- HMAC-SHA256 ---- */

static int provider_hmac_init(void **hmac_context, const uint8_t *key, size_t key_len, void *user_data)
{
    signal_peer *peer = user_data;
    EVP_MAC *fetched = NULL;
    EVP_MAC *mac = peer ? (EVP_MAC *)peer->hmac : NULL;
    EVP_MAC_CTX *ctx = NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[2];
    static const uint8_t empty_key[1] = {0};

    if (!mac) {
        fetched = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (!fetched) {
            return SG_ERR_UNKNOWN;
        }
        mac = fetched;
    }
    ctx = EVP_MAC_CTX_new(mac); /* holds its own reference to mac */
    EVP_MAC_free(fetched);
    if (!ctx) {
        return SG_ERR_NOMEM;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    /* A NULL key would mean "keep the previous key" to OpenSSL: pass an empty one. */
    if (EVP_MAC_init(ctx, key_len > 0 ? key : empty_key, key_len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return SG_ERR_UNKNOWN;
    }
    *hmac_context = ctx;
    return 0;
}

static int provider_hmac_update(void *hmac_context, const uint8_t *data, size_t data_len, void *user_data)
{
    (void)user_data;
    if (data_len == 0) {
        return 0;
    }
    return EVP_MAC_update((EVP_MAC_CTX *)hmac_context, data, data_len) == 1 ? 0 : SG_ERR_UNKNOWN;
}

static int provider_hmac_final(void *hmac_context, signal_buffer **output, void *user_data)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    signal_buffer *buffer;
    (void)user_data;
    if (EVP_MAC_final((EVP_MAC_CTX *)hmac_context, mac, &mac_len, sizeof mac) != 1) {
        return SG_ERR_UNKNOWN;
    }
    buffer = signal_buffer_create(mac, mac_len);
    OPENSSL_cleanse(mac, sizeof mac);
    if (!buffer) {
        return SG_ERR_NOMEM;
    }
    *output = buffer;
    return 0;
}

static void provider_hmac_cleanup(void *hmac_context, void *user_data)
{
    (void)user_data;
    EVP_MAC_CTX_free((EVP_MAC_CTX *)hmac_context);
}

/* ---- SHA-512 ---- */

static int provider_sha512_init(void **digest_context, void *user_data)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    (void)user_data;
    if (!ctx) {
        return SG_ERR_NOMEM;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return SG_ERR_UNKNOWN;
    }
    *digest_context = ctx;
    return 0;
}

static int provider_sha512_update(void *digest_context, const uint8_t *data, size_t data_len, void *user_data)
{
    (void)user_data;
    if (data_len == 0) {
        return 0;
    }
    return EVP_DigestUpdate((EVP_MD_CTX *)digest_context, data, data_len) == 1 ? 0 : SG_ERR_UNKNOWN;
}

/* libsignal reuses the context after final: it must be ready for a new digest. */
static int provider_sha512_final(void *digest_context, signal_buffer **output, void *user_data)
{
    EVP_MD_CTX *ctx = digest_context;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    signal_buffer *buffer;
    (void)user_data;
    if (EVP_DigestFinal_ex(ctx, md, &md_len) != 1) {
        return SG_ERR_UNKNOWN;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) != 1) {
        OPENSSL_cleanse(md, sizeof md);
        return SG_ERR_UNKNOWN;
    }
    buffer = signal_buffer_create(md, md_len);
    OPENSSL_cleanse(md, sizeof md);
    if (!buffer) {
        return SG_ERR_NOMEM;
    }
    *output = buffer;
    return 0;
}

static void provider_sha512_cleanup(void *digest_context, void *user_data)
{
    (void)user_data;
    EVP_MD_CTX_free((EVP_MD_CTX *)digest_context);
}

/* ---- AES ---- */

static const EVP_CIPHER *aes_cipher(int mode, size_t key_len)
{
    if (mode == SG_CIPHER_AES_CBC_PKCS5) {
        switch (key_len) {
        case 16: return EVP_aes_128_cbc();
        case 24: return EVP_aes_192_cbc();
        case 32: return EVP_aes_256_cbc();
        default: return NULL;
        }
    }
    if (mode == SG_CIPHER_AES_CTR_NOPADDING) {
        switch (key_len) {
        case 16: return EVP_aes_128_ctr();
        case 24: return EVP_aes_192_ctr();
        case 32: return EVP_aes_256_ctr();
        default: return NULL;
        }
    }
    return NULL;
}

static int aes_run(int encrypt, signal_buffer **output, int mode,
                   const uint8_t *key, size_t key_len, const uint8_t *iv, size_t iv_len,
                   const uint8_t *input, size_t input_len)
{
    const EVP_CIPHER *cipher = aes_cipher(mode, key_len);
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *out = NULL;
    size_t out_capacity;
    int len1 = 0, len2 = 0;
    int result = 0;
    signal_buffer *buffer;

    if (!cipher || iv_len != 16 || !key || !iv || (input_len > 0 && !input)) {
        return SG_ERR_INVAL;
    }
    if (input_len > (size_t)INT_MAX - 32) {
        return SG_ERR_INVAL;
    }
    out_capacity = input_len + 16 + 1; /* one block of padding, and never 0 bytes */
    out = malloc(out_capacity);
    ctx = EVP_CIPHER_CTX_new();
    if (!out || !ctx) {
        result = SG_ERR_NOMEM;
        goto complete;
    }
    if (EVP_CipherInit_ex(ctx, cipher, NULL, key, iv, encrypt) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx, mode == SG_CIPHER_AES_CBC_PKCS5 ? 1 : 0) != 1) {
        result = SG_ERR_UNKNOWN;
        goto complete;
    }
    if (input_len > 0 && EVP_CipherUpdate(ctx, out, &len1, input, (int)input_len) != 1) {
        result = SG_ERR_UNKNOWN;
        goto complete;
    }
    if (EVP_CipherFinal_ex(ctx, out + len1, &len2) != 1) {
        result = SG_ERR_UNKNOWN; /* e.g. bad padding on decryption */
        goto complete;
    }
    buffer = signal_buffer_create(out, (size_t)len1 + (size_t)len2);
    if (!buffer) {
        result = SG_ERR_NOMEM;
        goto complete;
    }
    *output = buffer;

complete:
    if (out) {
        OPENSSL_cleanse(out, out_capacity);
        free(out);
    }
    EVP_CIPHER_CTX_free(ctx);
    return result;
}

static int provider_encrypt(signal_buffer **output, int cipher,
                            const uint8_t *key, size_t key_len, const uint8_t *iv, size_t iv_len,
                            const uint8_t *plaintext, size_t plaintext_len, void *user_data)
{
    (void)user_data;
    return aes_run(1, output, cipher, key, key_len, iv, iv_len, plaintext, plaintext_len);
}

static int provider_decrypt(signal_buffer **output, int cipher,
                            const uint8_t *key, size_t key_len, const uint8_t *iv, size_t iv_len,
                            const uint8_t *ciphertext, size_t ciphertext_len, void *user_data)
{
    (void)user_data;
    return aes_run(0, output, cipher, key, key_len, iv, iv_len, ciphertext, ciphertext_len);
}

void peer_crypto_provider(signal_peer *peer, signal_crypto_provider *provider)
{
    memset(provider, 0, sizeof *provider);
    provider->random_func = provider_random;
    provider->hmac_sha256_init_func = provider_hmac_init;
    provider->hmac_sha256_update_func = provider_hmac_update;
    provider->hmac_sha256_final_func = provider_hmac_final;
    provider->hmac_sha256_cleanup_func = provider_hmac_cleanup;
    provider->sha512_digest_init_func = provider_sha512_init;
    provider->sha512_digest_update_func = provider_sha512_update;
    provider->sha512_digest_final_func = provider_sha512_final;
    provider->sha512_digest_cleanup_func = provider_sha512_cleanup;
    provider->encrypt_func = provider_encrypt;
    provider->decrypt_func = provider_decrypt;
    provider->user_data = peer;
}

int signal_peer_sha256(const uint8_t *data, size_t len, uint8_t out[32])
{
    unsigned int out_len = 0;
    static const uint8_t empty[1] = {0};
    if (!out || (len > 0 && !data)) {
        return SG_ERR_INVAL;
    }
    if (EVP_Digest(len > 0 ? data : empty, len, out, &out_len, EVP_sha256(), NULL) != 1 || out_len != 32) {
        return SG_ERR_UNKNOWN;
    }
    return 0;
}
