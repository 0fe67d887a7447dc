#ifndef SIGNAL_PEER_H
#define SIGNAL_PEER_H
/*
 * signal_peer: a test-only Signal party running Debian's libsignal-protocol-c 2.3.3.
 *
 * Plain C, no libsignal types: every libsignal object is created, used and released
 * (SIGNAL_UNREF) inside CSignalPeer. In and out go byte arrays and integers only.
 *
 * Conventions
 *   - Functions returning int return 0 on success or a negative libsignal error code
 *     (SIGNAL_PEER_ERR_*, numerically identical to libsignal's SG_ERR_*).
 *   - Public keys are 33 bytes (0x05 || X25519 u), private keys 32 bytes (the clamped
 *     scalar as libsignal stores it), signatures 64 bytes. Fixed-size outputs are written
 *     to caller arrays of exactly the documented size.
 *   - Variable-length outputs are allocated by the peer (*out, *out_len) and must be
 *     released with signal_peer_bytes_free(). On failure *out is NULL and *out_len 0.
 *   - A remote party is named by its address (name, device_id); `name` is a NUL-terminated
 *     string. Group ids are byte strings (group_id, group_id_len).
 *   - All randomness libsignal consumes comes from the caller's random callback, one call
 *     per libsignal draw (identity key 32, registration id 4, signed prekey 32 then its
 *     signature 64, one-time prekey 32, base key 32, ratchet key 32, sender key id 4,
 *     sender chain key 32, sender signing key 32, group signature 64).
 *   - Operations that run the protocol (process_bundle, encrypt, decrypt, group_*) clear
 *     the peer's log first; afterwards signal_peer_log_* return what libsignal logged.
 *   - A signal_peer is not thread-safe; distinct peers may be used from distinct threads.
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SIGNAL_PEER_PRIVATE_KEY_LEN 32
#define SIGNAL_PEER_PUBLIC_KEY_LEN 33
#define SIGNAL_PEER_SIGNATURE_LEN 64
#define SIGNAL_PEER_SENDER_CHAIN_KEY_LEN 32

/* Message types (libsignal's CIPHERTEXT_*_TYPE). */
#define SIGNAL_PEER_MESSAGE_WHISPER 2
#define SIGNAL_PEER_MESSAGE_PREKEY 3

/* Error codes: libsignal's SG_ERR_* values (checked at compile time in peer.c). */
#define SIGNAL_PEER_OK 0
#define SIGNAL_PEER_ERR_NOMEM -12
#define SIGNAL_PEER_ERR_INVAL -22
#define SIGNAL_PEER_ERR_UNKNOWN -1000
#define SIGNAL_PEER_ERR_DUPLICATE_MESSAGE -1001
#define SIGNAL_PEER_ERR_INVALID_KEY -1002
#define SIGNAL_PEER_ERR_INVALID_KEY_ID -1003
#define SIGNAL_PEER_ERR_INVALID_MAC -1004
#define SIGNAL_PEER_ERR_INVALID_MESSAGE -1005
#define SIGNAL_PEER_ERR_INVALID_VERSION -1006
#define SIGNAL_PEER_ERR_LEGACY_MESSAGE -1007
#define SIGNAL_PEER_ERR_NO_SESSION -1008
#define SIGNAL_PEER_ERR_STALE_KEY_EXCHANGE -1009
#define SIGNAL_PEER_ERR_UNTRUSTED_IDENTITY -1010
#define SIGNAL_PEER_ERR_VRF_SIG_VERIF_FAILED -1011
#define SIGNAL_PEER_ERR_INVALID_PROTO_BUF -1100

/* libsignal log levels (SG_LOG_*). */
#define SIGNAL_PEER_LOG_ERROR 0
#define SIGNAL_PEER_LOG_WARNING 1
#define SIGNAL_PEER_LOG_NOTICE 2
#define SIGNAL_PEER_LOG_INFO 3
#define SIGNAL_PEER_LOG_DEBUG 4

/*
 * Random source: fill out[0..len) and return 0, or return nonzero to fail the operation
 * (libsignal then reports SIGNAL_PEER_ERR_UNKNOWN). NULL means OpenSSL's RAND_bytes.
 */
typedef int (*signal_peer_random_fn)(void *ctx, uint8_t *out, size_t len);

typedef struct signal_peer signal_peer;

/* ---- Parties ------------------------------------------------------------------------ */

/* A party with a fresh identity key pair and then a fresh registration id (in that order,
 * as libsignal's key helper draws them). Its address is (name, device_id). */
int signal_peer_create_random(signal_peer **peer, const char *name, int32_t device_id,
                              signal_peer_random_fn random, void *random_ctx);

/* A party with the given identity private key (32 bytes, used as is) and registration id. */
int signal_peer_create_with_keys(signal_peer **peer, const char *name, int32_t device_id,
                                 const uint8_t *identity_private, size_t identity_private_len,
                                 uint32_t registration_id,
                                 signal_peer_random_fn random, void *random_ctx);

void signal_peer_free(signal_peer *peer);

/* Fresh signed prekey `id`: key pair, then the signature of its 33-byte public key by the
 * identity key (libsignal's key helper). Replaces an existing signed prekey with that id. */
int signal_peer_generate_signed_prekey(signal_peer *peer, uint32_t id, uint64_t timestamp);

/* `count` fresh one-time prekeys with ids start, start+1, ... (libsignal's key helper). */
int signal_peer_generate_one_time_prekeys(signal_peer *peer, uint32_t start, uint32_t count);

/* Signed prekey from given private key (32) and signature (any length, not verified). */
int signal_peer_add_signed_prekey(signal_peer *peer, uint32_t id, uint64_t timestamp,
                                  const uint8_t *private_key, size_t private_key_len,
                                  const uint8_t *signature, size_t signature_len);

/* One-time prekey from a given private key (32). */
int signal_peer_add_one_time_prekey(signal_peer *peer, uint32_t id,
                                    const uint8_t *private_key, size_t private_key_len);

/* ---- Exports ------------------------------------------------------------------------ */

uint32_t signal_peer_registration_id(const signal_peer *peer);
int32_t signal_peer_device_id(const signal_peer *peer);
const char *signal_peer_name(const signal_peer *peer);

int signal_peer_identity_key(const signal_peer *peer, uint8_t private_out[32], uint8_t public_out[33]);

/* Signed prekeys in the store, in insertion order. */
size_t signal_peer_signed_prekey_count(const signal_peer *peer);
int signal_peer_signed_prekey_at(const signal_peer *peer, size_t index, uint32_t *id,
                                 uint64_t *timestamp, uint8_t private_out[32],
                                 uint8_t public_out[33], uint8_t *signature_out,
                                 size_t signature_capacity, size_t *signature_len);

/* One-time prekeys still in the store (libsignal removes one when a PreKeySignalMessage
 * that used it decrypts), in insertion order. */
size_t signal_peer_one_time_prekey_count(const signal_peer *peer);
int signal_peer_one_time_prekey_at(const signal_peer *peer, size_t index, uint32_t *id,
                                   uint8_t private_out[32], uint8_t public_out[33]);
int signal_peer_has_one_time_prekey(const signal_peer *peer, uint32_t id);

/* X25519 public key (33 bytes) of a private key (32 bytes). */
int signal_peer_public_key(const uint8_t *private_key, size_t private_key_len, uint8_t public_out[33]);

/* SHA-256 (OpenSSL), for test tooling such as seeded random streams. */
int signal_peer_sha256(const uint8_t *data, size_t len, uint8_t out[32]);

/* ---- Pairwise sessions ---------------------------------------------------------------- */

/* This party's prekey bundle with signed prekey `signed_prekey_id` and, if
 * with_one_time_prekey, one-time prekey `one_time_prekey_id` (else one_time_prekey_out is
 * untouched and may be NULL). SIGNAL_PEER_ERR_INVALID_KEY_ID if a key is not in the store. */
int signal_peer_bundle(signal_peer *peer, uint32_t signed_prekey_id,
                       int with_one_time_prekey, uint32_t one_time_prekey_id,
                       uint32_t *registration_id, int32_t *device_id,
                       uint8_t identity_key_out[33], uint8_t signed_prekey_out[33],
                       uint8_t signed_prekey_signature_out[64],
                       uint8_t one_time_prekey_out[33]);

/* Alice's side of X3DH: process the bundle of the party at address (name, device_id).
 * one_time_prekey == NULL means a bundle without one-time prekey. Draws base key, then
 * ratchet key (after the trust and signature checks). */
int signal_peer_process_bundle(signal_peer *peer, const char *name, int32_t device_id,
                               uint32_t registration_id, int32_t bundle_device_id,
                               const uint8_t *identity_key, size_t identity_key_len,
                               uint32_t signed_prekey_id,
                               const uint8_t *signed_prekey, size_t signed_prekey_len,
                               const uint8_t *signature, size_t signature_len,
                               uint32_t one_time_prekey_id,
                               const uint8_t *one_time_prekey, size_t one_time_prekey_len);

/* Encrypt for (name, device_id). *type is SIGNAL_PEER_MESSAGE_PREKEY or _WHISPER.
 * SIGNAL_PEER_ERR_NO_SESSION if there is no session for that address. */
int signal_peer_encrypt(signal_peer *peer, const char *name, int32_t device_id,
                        const uint8_t *plaintext, size_t plaintext_len,
                        uint8_t **out, size_t *out_len, int *type);

/* Decrypt a message of `type` (SIGNAL_PEER_MESSAGE_PREKEY or _WHISPER) from (name, device_id). */
int signal_peer_decrypt(signal_peer *peer, const char *name, int32_t device_id, int type,
                        const uint8_t *ciphertext, size_t ciphertext_len,
                        uint8_t **out, size_t *out_len);

/* 1 if a session record is stored for the address, else 0. */
int signal_peer_has_session(const signal_peer *peer, const char *name, int32_t device_id);

/* Delete the session record of the address: 1 if one was deleted, 0 if none, or an error. */
int signal_peer_delete_session(signal_peer *peer, const char *name, int32_t device_id);

/* The current session state with the address: sending ratchet key pair, sending chain
 * index (the counter of the next message), previous counter, whether PreKeySignalMessages
 * are still sent, and how many archived states the record holds.
 * SIGNAL_PEER_ERR_NO_SESSION if there is no session or the state has no sending chain. */
int signal_peer_session_info(signal_peer *peer, const char *name, int32_t device_id,
                             uint8_t ratchet_private_out[32], uint8_t ratchet_public_out[33],
                             uint32_t *counter, uint32_t *previous_counter,
                             int *unacknowledged_prekey, size_t *archived_states);

/* Trusted identity store (trust on first use per address). `key` NULL forgets the address
 * (it will be trusted on first use again); otherwise the key replaces the stored one. */
int signal_peer_set_trusted_identity(signal_peer *peer, const char *name, int32_t device_id,
                                     const uint8_t *key, size_t key_len);

/* 1 and the key (33 bytes) if an identity is stored for the address, 0 if none. */
int signal_peer_trusted_identity(const signal_peer *peer, const char *name, int32_t device_id,
                                 uint8_t key_out[33]);

/* ---- Groups (sender keys) -------------------------------------------------------------- */

/* Create (first call: draws key id 4, chain key 32, signing key 32) or re-export this
 * party's sender key for the group as a SenderKeyDistributionMessage. */
int signal_peer_group_create(signal_peer *peer, const uint8_t *group_id, size_t group_id_len,
                             uint8_t **out, size_t *out_len);

/* Process a SenderKeyDistributionMessage from sender (name, device_id) for the group. */
int signal_peer_group_process(signal_peer *peer, const uint8_t *group_id, size_t group_id_len,
                              const char *name, int32_t device_id,
                              const uint8_t *message, size_t message_len);

/* SenderKeyMessage for the group with this party's sender key (draws 64 signature bytes). */
int signal_peer_group_encrypt(signal_peer *peer, const uint8_t *group_id, size_t group_id_len,
                              const uint8_t *plaintext, size_t plaintext_len,
                              uint8_t **out, size_t *out_len);

/* Decrypt a SenderKeyMessage of sender (name, device_id) in the group. */
int signal_peer_group_decrypt(signal_peer *peer, const uint8_t *group_id, size_t group_id_len,
                              const char *name, int32_t device_id,
                              const uint8_t *ciphertext, size_t ciphertext_len,
                              uint8_t **out, size_t *out_len);

/* This party's own current sender key state for the group: key id, iteration, chain key,
 * signing key pair. SIGNAL_PEER_ERR_NO_SESSION if it has none. */
int signal_peer_group_own_state(signal_peer *peer, const uint8_t *group_id, size_t group_id_len,
                                uint32_t *key_id, uint32_t *iteration,
                                uint8_t chain_key_out[32], uint8_t signing_private_out[32],
                                uint8_t signing_public_out[33]);

/* Fields of a serialized SenderKeyDistributionMessage. */
int signal_peer_parse_distribution_message(const uint8_t *message, size_t message_len,
                                           uint32_t *key_id, uint32_t *iteration,
                                           uint8_t chain_key_out[32],
                                           uint8_t signing_public_out[33]);

/* Key id and iteration of a serialized SenderKeyMessage. */
int signal_peer_parse_sender_key_message(const uint8_t *message, size_t message_len,
                                         uint32_t *key_id, uint32_t *iteration);

/* ---- Logs and errors ------------------------------------------------------------------- */

/* Lines libsignal logged during the last protocol operation of this peer. The pointer
 * stays valid until the next protocol operation or signal_peer_free. */
size_t signal_peer_log_count(const signal_peer *peer);
const char *signal_peer_log_line(const signal_peer *peer, size_t index);
int signal_peer_log_level(const signal_peer *peer, size_t index);

/* libsignal's name of an error code ("SG_ERR_INVALID_MESSAGE"; "SG_SUCCESS" for 0;
 * "SG_ERR_UNKNOWN_CODE" for codes libsignal does not define). Static string. */
const char *signal_peer_error_name(int code);

/*
 * Canonical error name (FORMAT.md §7) of a failed operation, from libsignal's code and the
 * lines it logged: "duplicate_message", "bad_mac", "too_far_in_future", "invalid_version",
 * "legacy_version", "malformed", "no_session", "untrusted_identity", "unknown_prekey",
 * "bad_signature"; otherwise "invalid_key", "invalid_message", "stale_key_exchange",
 * "out_of_memory" or "unknown". "ok" for code 0. Static string.
 */
const char *signal_peer_canonical_error(int code, const char *const *log_lines, size_t log_count);

/* signal_peer_canonical_error with this peer's log of its last protocol operation. */
const char *signal_peer_last_canonical_error(const signal_peer *peer, int code);

/* Zeroes and frees a buffer returned by the peer (NULL is fine). */
void signal_peer_bytes_free(uint8_t *bytes, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* SIGNAL_PEER_H */
