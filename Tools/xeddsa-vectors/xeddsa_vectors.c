/*
 * Writes TestVectors/xeddsa-libsignal.json: XEdDSA signature vectors made by Debian's
 * libsignal-protocol-c 2.3.3 (not by Hush), so that Hush is checked against an
 * implementation nobody here wrote.
 *
 *   libsignal variant:     curve25519_sign / curve25519_verify  (what libsignal-c uses for
 *                          signed prekeys and sender keys; FORMAT.md §5.2)
 *   specification variant: xed25519_sign / xed25519_verify      (XEdDSA spec §2.3-2.6)
 *
 * Keys and randomness come from a deterministic stream:
 *   block_i = SHA-256("hush-xeddsa-vectors" || le64(seed) || le64(i)).
 * Public keys are computed with OpenSSL's X25519, independently of both libraries.
 *
 * Build and run: Tools/xeddsa-vectors/generate.sh  (needs libsignal-protocol-c-dev, libssl-dev)
 */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Not in libsignal-protocol-c's public headers, but exported by the shared library. */
int curve25519_sign(unsigned char *signature_out, const unsigned char *curve25519_privkey,
                    const unsigned char *msg, const unsigned long msg_len, const unsigned char *random);
int curve25519_verify(const unsigned char *signature, const unsigned char *curve25519_pubkey,
                      const unsigned char *msg, const unsigned long msg_len);
int xed25519_sign(unsigned char *signature_out, const unsigned char *curve25519_privkey,
                  const unsigned char *msg, const unsigned long msg_len, const unsigned char *random);
int xed25519_verify(const unsigned char *signature, const unsigned char *curve25519_pubkey,
                    const unsigned char *msg, const unsigned long msg_len);

static uint64_t seed = 1, block_index = 0;
static unsigned char block[32];
static size_t block_used = 32;

static void stream(unsigned char *out, size_t len) {
    while (len > 0) {
        if (block_used == 32) {
            unsigned char input[19 + 16];
            memcpy(input, "hush-xeddsa-vectors", 19);
            for (int i = 0; i < 8; i++) input[19 + i] = (unsigned char)(seed >> (8 * i));
            for (int i = 0; i < 8; i++) input[27 + i] = (unsigned char)(block_index >> (8 * i));
            SHA256(input, sizeof input, block);
            block_index++;
            block_used = 0;
        }
        *out++ = block[block_used++];
        len--;
    }
}

static void public_key(unsigned char pub[32], const unsigned char priv[32]) {
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
    size_t len = 32;
    EVP_PKEY_get_raw_public_key(key, pub, &len);
    EVP_PKEY_free(key);
}

static void hex(const char *name, const unsigned char *data, size_t len, int comma) {
    printf("\"%s\": \"", name);
    for (size_t i = 0; i < len; i++) printf("%02x", data[i]);
    printf("\"%s", comma ? ", " : "");
}

static int case_id = 0;

static void emit(const char *comment, const char *variant, const char *policy, int valid,
                 const unsigned char *priv, const unsigned char *pub, const unsigned char *msg, size_t msg_len,
                 const unsigned char *random, const unsigned char *sig, size_t sig_len) {
    printf("%s    {\"id\": %d, \"comment\": \"%s\", \"result\": \"%s\", \"variant\": \"%s\", \"policy\": \"%s\", ",
           case_id ? ",\n" : "", case_id + 1, comment, valid ? "valid" : "invalid", variant, policy);
    case_id++;
    if (priv) hex("private", priv, 32, 1);
    if (random) hex("random", random, 64, 1);
    hex("public", pub, 32, 1);
    hex("message", msg, msg_len, 1);
    hex("signature", sig, sig_len, 0);
    printf("}");
}

int main(void) {
    printf("{\n  \"format\": \"hush-kat/1\",\n  \"algorithm\": \"xeddsa\",\n");
    printf("  \"source\": \"libsignal-protocol-c 2.3.3 (Debian 2.3.3-3): curve25519_sign/curve25519_verify and "
           "xed25519_sign/xed25519_verify, via Tools/xeddsa-vectors (seed %llu)\",\n", (unsigned long long)seed);
    printf("  \"description\": \"XEdDSA signatures in both forms; every expected result is libsignal-c's own verdict\",\n");
    printf("  \"cases\": [\n");
    int sign_bit_cases[2] = {0, 0};
    for (int i = 0; i < 16; i++) {
        unsigned char priv[32], pub[32], other_priv[32], other_pub[32], z[64], msg[100], sig[64], bad[64];
        stream(priv, 32);
        priv[0] &= 248; priv[31] &= 127; priv[31] |= 64;
        public_key(pub, priv);
        size_t msg_len = (size_t[]){0, 1, 33, 100}[i % 4];
        stream(msg, msg_len);
        if (msg_len == 33) msg[0] = 0x05; /* a Signal-form public key, as signed prekeys sign */
        stream(z, 64);

        if (curve25519_sign(sig, priv, msg, msg_len, z) != 0 || curve25519_verify(sig, pub, msg, msg_len) != 0) {
            fprintf(stderr, "libsignal failed to sign/verify case %d\n", i);
            return 1;
        }
        int sign_bit = (sig[63] & 0x80) != 0;
        sign_bit_cases[sign_bit]++;
        emit(sign_bit ? "libsignal form, Edwards sign bit 1 (carried in sig[63] bit 7)" : "libsignal form, Edwards sign bit 0",
             "libsignal", "libsignal-compatible", 1, priv, pub, msg, msg_len, z, sig, 64);

        unsigned char spec[64];
        if (xed25519_sign(spec, priv, msg, msg_len, z) != 0 || xed25519_verify(spec, pub, msg, msg_len) != 0) {
            fprintf(stderr, "libsignal failed to sign/verify spec case %d\n", i);
            return 1;
        }
        /* xed25519_sign hashes a = -k mod q when the sign bit is 1 (as the spec says), but the
         * unreduced k when it is 0 (the spec says k mod q): only the former reproduces the
         * specification's bytes, so only it lists the private key and randomness. */
        emit(sign_bit ? "specification form (a = -k mod q); reproducible" : "specification form; verify only (libsignal hashes unreduced k)",
             "specification", "specification-only", 1, sign_bit ? priv : NULL, pub, msg, msg_len, sign_bit ? z : NULL, spec, 64);
        emit("specification form, accepted by the libsignal-compatible policy", "specification", "libsignal-compatible", 1,
             NULL, pub, msg, msg_len, NULL, spec, 64);
        if (sign_bit) {
            /* A libsignal-form signature with sign bit 1 is not a specification signature. */
            emit("libsignal form with sign bit 1 under the specification-only policy", "libsignal", "specification-only",
                 xed25519_verify(sig, pub, msg, msg_len) == 0, NULL, pub, msg, msg_len, NULL, sig, 64);
        }

        if (i < 4) {
            struct { const char *what; int byte; unsigned char mask; } flips[] = {
                {"R bit flipped", 0, 0x01}, {"R last byte flipped", 31, 0x40}, {"s bit flipped", 40, 0x10},
                {"sign bit flipped", 63, 0x80}, {"s high bit set", 63, 0x40},
            };
            for (size_t f = 0; f < sizeof flips / sizeof flips[0]; f++) {
                memcpy(bad, sig, 64);
                bad[flips[f].byte] ^= flips[f].mask;
                char comment[96];
                snprintf(comment, sizeof comment, "libsignal form, %s", flips[f].what);
                emit(comment, "libsignal", "libsignal-compatible", curve25519_verify(bad, pub, msg, msg_len) == 0,
                     NULL, pub, msg, msg_len, NULL, bad, 64);
            }
            unsigned char msg2[101];
            memcpy(msg2, msg, msg_len);
            msg2[msg_len] = 0x00;
            emit("libsignal form, message extended by one byte", "libsignal", "libsignal-compatible",
                 curve25519_verify(sig, pub, msg2, msg_len + 1) == 0, NULL, pub, msg2, msg_len + 1, NULL, sig, 64);
            stream(other_priv, 32);
            other_priv[0] &= 248; other_priv[31] &= 127; other_priv[31] |= 64;
            public_key(other_pub, other_priv);
            emit("libsignal form, wrong public key", "libsignal", "libsignal-compatible",
                 curve25519_verify(sig, other_pub, msg, msg_len) == 0, NULL, other_pub, msg, msg_len, NULL, sig, 64);
            emit("libsignal form, truncated to 63 bytes", "libsignal", "libsignal-compatible", 0,
                 NULL, pub, msg, msg_len, NULL, sig, 63);
            memcpy(bad, spec, 64);
            bad[63] ^= 0x80;
            emit("specification form with the sign bit set", "specification", "specification-only",
                 xed25519_verify(bad, pub, msg, msg_len) == 0, NULL, pub, msg, msg_len, NULL, bad, 64);
        }
    }
    printf("\n  ]\n}\n");
    if (sign_bit_cases[0] == 0 || sign_bit_cases[1] == 0) {
        fprintf(stderr, "need both sign bit cases\n");
        return 1;
    }
    return 0;
}
