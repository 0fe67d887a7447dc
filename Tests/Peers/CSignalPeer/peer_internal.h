#ifndef SIGNAL_PEER_INTERNAL_H
#define SIGNAL_PEER_INTERNAL_H
/* Shared between the three parts of CSignalPeer: crypto.c (the crypto provider over
 * OpenSSL libcrypto), stores.c (in-memory stores), peer.c (the public API). */
#include <stddef.h>
#include <stdint.h>

#include <signal_protocol.h>

#include "signal_peer.h"

/* ---- A small insertion-ordered map from byte strings to byte strings ---- */

typedef struct peer_kv_entry {
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
    uint8_t *extra; /* libsignal's "user record"; may be NULL */
    size_t extra_len;
} peer_kv_entry;

typedef struct peer_kv {
    peer_kv_entry *entries;
    size_t count;
    size_t capacity;
} peer_kv;

/* Insert or replace (keeping the position of an existing key). 0 or SG_ERR_NOMEM. */
int peer_kv_put(peer_kv *kv, const uint8_t *key, size_t key_len,
                const uint8_t *value, size_t value_len,
                const uint8_t *extra, size_t extra_len);
const peer_kv_entry *peer_kv_get(const peer_kv *kv, const uint8_t *key, size_t key_len);
/* 1 if removed, 0 if absent. */
int peer_kv_remove(peer_kv *kv, const uint8_t *key, size_t key_len);
/* Zeroes and frees everything. */
void peer_kv_clear(peer_kv *kv);

/* ---- Store keys ---- */

/* Byte keys: le32(name_len) || name || le32(device_id) for addresses,
 * le32(group_id_len) || group_id || address key for sender key names, le32(id) for prekeys.
 * Returns a malloc'd key (caller frees) or NULL on allocation failure/overflow. */
uint8_t *peer_address_key(const char *name, size_t name_len, int32_t device_id, size_t *key_len);
uint8_t *peer_sender_key_name_key(const signal_protocol_sender_key_name *name, size_t *key_len);
void peer_id_key(uint32_t id, uint8_t key[4]);

/* ---- The peer ---- */

typedef struct peer_log_line {
    int level;
    char *text;
} peer_log_line;

struct signal_peer {
    signal_context *global;
    signal_protocol_store_context *store;

    char *name;
    size_t name_len;
    int32_t device_id;
    uint32_t registration_id;
    ratchet_identity_key_pair *identity;

    signal_peer_random_fn random;
    void *random_ctx;

    peer_kv sessions;
    peer_kv pre_keys;
    peer_kv signed_pre_keys;
    peer_kv identities;
    peer_kv sender_keys;

    peer_log_line *log;
    size_t log_count;
    size_t log_capacity;

    /* OpenSSL objects fetched once per peer (crypto.c). */
    void *hmac; /* EVP_MAC * */
};

/* crypto.c: fills a provider whose user_data is `peer` (NULL: random from RAND_bytes). */
int peer_crypto_init(signal_peer *peer);
void peer_crypto_cleanup(signal_peer *peer);
void peer_crypto_provider(signal_peer *peer, signal_crypto_provider *provider);

/* stores.c: registers the five stores of `peer` with peer->store. */
int peer_stores_install(signal_peer *peer);
void peer_stores_clear(signal_peer *peer);

/* peer.c: the log callback (user_data is the peer). */
void peer_log_clear(signal_peer *peer);

#endif /* SIGNAL_PEER_INTERNAL_H */
