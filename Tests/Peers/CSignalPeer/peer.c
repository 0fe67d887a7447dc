/*
 * signal_peer: the public API (see include/signal_peer.h). Every libsignal object made
 * here is released with SIGNAL_UNREF (or the matching *_free) on every path.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <curve.h>
#include <group_cipher.h>
#include <group_session_builder.h>
#include <key_helper.h>
#include <protocol.h>
#include <ratchet.h>
#include <sender_key.h>
#include <sender_key_record.h>
#include <sender_key_state.h>
#include <session_builder.h>
#include <session_cipher.h>
#include <session_pre_key.h>
#include <session_record.h>
#include <session_state.h>
#include <signal_protocol.h>

#include "peer_internal.h"

_Static_assert(SIGNAL_PEER_ERR_NOMEM == SG_ERR_NOMEM, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_ERR_INVAL == SG_ERR_INVAL, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_ERR_UNKNOWN == SG_ERR_UNKNOWN, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_ERR_DUPLICATE_MESSAGE == SG_ERR_DUPLICATE_MESSAGE, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_ERR_INVALID_KEY == SG_ERR_INVALID_KEY, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_ERR_INVALID_KEY_ID == SG_ERR_INVALID_KEY_ID, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_ERR_INVALID_MAC == SG_ERR_INVALID_MAC, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_ERR_INVALID_MESSAGE == SG_ERR_INVALID_MESSAGE, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_ERR_INVALID_VERSION == SG_ERR_INVALID_VERSION, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_ERR_LEGACY_MESSAGE == SG_ERR_LEGACY_MESSAGE, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_ERR_NO_SESSION == SG_ERR_NO_SESSION, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_ERR_STALE_KEY_EXCHANGE == SG_ERR_STALE_KEY_EXCHANGE, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_ERR_UNTRUSTED_IDENTITY == SG_ERR_UNTRUSTED_IDENTITY, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_ERR_VRF_SIG_VERIF_FAILED == SG_ERR_VRF_SIG_VERIF_FAILED, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_ERR_INVALID_PROTO_BUF == SG_ERR_INVALID_PROTO_BUF, "error codes follow libsignal");
_Static_assert(SIGNAL_PEER_MESSAGE_WHISPER == CIPHERTEXT_SIGNAL_TYPE, "message types follow libsignal");
_Static_assert(SIGNAL_PEER_MESSAGE_PREKEY == CIPHERTEXT_PREKEY_TYPE, "message types follow libsignal");
_Static_assert(SIGNAL_PEER_LOG_ERROR == SG_LOG_ERROR && SIGNAL_PEER_LOG_DEBUG == SG_LOG_DEBUG, "log levels follow libsignal");

#define PEER_LOG_MAX_LINES 4096

/* libsignal asserts on NULL data pointers even for zero lengths: use this instead. */
static const uint8_t empty_bytes[1] = {0};

/* ---- log ---- */

static void peer_log(int level, const char *message, size_t len, void *user_data)
{
    signal_peer *peer = user_data;
    char *text;
    if (!peer || !message || peer->log_count >= PEER_LOG_MAX_LINES || len > SIZE_MAX - 1) {
        return;
    }
    if (peer->log_count == peer->log_capacity) {
        size_t capacity = peer->log_capacity ? peer->log_capacity * 2 : 16;
        peer_log_line *lines = realloc(peer->log, capacity * sizeof *lines);
        if (!lines) {
            return;
        }
        peer->log = lines;
        peer->log_capacity = capacity;
    }
    text = malloc(len + 1);
    if (!text) {
        return;
    }
    memcpy(text, message, len);
    text[len] = '\0';
    peer->log[peer->log_count].level = level;
    peer->log[peer->log_count].text = text;
    peer->log_count++;
}

void peer_log_clear(signal_peer *peer)
{
    for (size_t i = 0; i < peer->log_count; i++) {
        free(peer->log[i].text);
    }
    peer->log_count = 0;
}

static void peer_log_note(signal_peer *peer, const char *text)
{
    peer_log(SG_LOG_WARNING, text, strlen(text), peer);
}

size_t signal_peer_log_count(const signal_peer *peer)
{
    return peer ? peer->log_count : 0;
}

const char *signal_peer_log_line(const signal_peer *peer, size_t index)
{
    if (!peer || index >= peer->log_count) {
        return NULL;
    }
    return peer->log[index].text;
}

int signal_peer_log_level(const signal_peer *peer, size_t index)
{
    if (!peer || index >= peer->log_count) {
        return SG_ERR_INVAL;
    }
    return peer->log[index].level;
}

/* ---- helpers ---- */

static int export_bytes(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (!copy) {
        return SG_ERR_NOMEM;
    }
    if (len > 0) {
        memcpy(copy, data, len);
    }
    *out = copy;
    *out_len = len;
    return 0;
}

void signal_peer_bytes_free(uint8_t *bytes, size_t len)
{
    if (bytes) {
        OPENSSL_cleanse(bytes, len);
        free(bytes);
    }
}

static int write_public(const ec_public_key *key, uint8_t out[SIGNAL_PEER_PUBLIC_KEY_LEN])
{
    signal_buffer *buffer = NULL;
    int result = ec_public_key_serialize(&buffer, key);
    if (result < 0) {
        return result;
    }
    if (signal_buffer_len(buffer) != SIGNAL_PEER_PUBLIC_KEY_LEN) {
        signal_buffer_free(buffer);
        return SG_ERR_UNKNOWN;
    }
    if (out) {
        memcpy(out, signal_buffer_data(buffer), SIGNAL_PEER_PUBLIC_KEY_LEN);
    }
    signal_buffer_free(buffer);
    return 0;
}

static int write_private(const ec_private_key *key, uint8_t out[SIGNAL_PEER_PRIVATE_KEY_LEN])
{
    signal_buffer *buffer = NULL;
    int result = ec_private_key_serialize(&buffer, key);
    if (result < 0) {
        return result;
    }
    if (signal_buffer_len(buffer) != SIGNAL_PEER_PRIVATE_KEY_LEN) {
        signal_buffer_bzero_free(buffer);
        return SG_ERR_UNKNOWN;
    }
    if (out) {
        memcpy(out, signal_buffer_data(buffer), SIGNAL_PEER_PRIVATE_KEY_LEN);
    }
    signal_buffer_bzero_free(buffer);
    return 0;
}

/* A key pair from a 32-byte private key, used as is. */
static int key_pair_from_private(signal_context *global, const uint8_t *private_key, size_t len,
                                 ec_key_pair **pair)
{
    ec_private_key *priv = NULL;
    ec_public_key *pub = NULL;
    int result;
    if (!private_key || len != SIGNAL_PEER_PRIVATE_KEY_LEN) {
        return SG_ERR_INVAL;
    }
    result = curve_decode_private_point(&priv, private_key, len, global);
    if (result < 0) {
        goto complete;
    }
    result = curve_generate_public_key(&pub, priv);
    if (result < 0) {
        goto complete;
    }
    result = ec_key_pair_create(pair, pub, priv);
complete:
    SIGNAL_UNREF(pub);
    SIGNAL_UNREF(priv);
    return result;
}

static size_t name_length(const char *name)
{
    return name ? strlen(name) : 0;
}

static signal_protocol_address make_address(const char *name, int32_t device_id)
{
    signal_protocol_address address;
    address.name = name;
    address.name_len = name_length(name);
    address.device_id = device_id;
    return address;
}

static signal_protocol_sender_key_name make_sender_key_name(const uint8_t *group_id, size_t group_id_len,
                                                            const char *name, int32_t device_id)
{
    signal_protocol_sender_key_name key_name;
    key_name.group_id = group_id_len > 0 ? (const char *)group_id : (const char *)empty_bytes;
    key_name.group_id_len = group_id_len;
    key_name.sender = make_address(name, device_id);
    return key_name;
}

/* A context for stateless helpers (parsing, public keys). */
static int temp_context(signal_context **global)
{
    signal_crypto_provider provider;
    int result = signal_context_create(global, NULL);
    if (result < 0) {
        return result;
    }
    peer_crypto_provider(NULL, &provider);
    result = signal_context_set_crypto_provider(*global, &provider);
    if (result < 0) {
        signal_context_destroy(*global);
        *global = NULL;
    }
    return result;
}

/* ---- parties ---- */

static int peer_new(signal_peer **out, const char *name, int32_t device_id,
                    signal_peer_random_fn random, void *random_ctx)
{
    signal_peer *peer;
    signal_crypto_provider provider;
    size_t name_len;
    int result;

    if (!out || !name) {
        return SG_ERR_INVAL;
    }
    *out = NULL;
    peer = calloc(1, sizeof *peer);
    if (!peer) {
        return SG_ERR_NOMEM;
    }
    name_len = strlen(name);
    peer->name = malloc(name_len + 1);
    if (!peer->name) {
        free(peer);
        return SG_ERR_NOMEM;
    }
    memcpy(peer->name, name, name_len + 1);
    peer->name_len = name_len;
    peer->device_id = device_id;
    peer->random = random;
    peer->random_ctx = random_ctx;

    if ((result = peer_crypto_init(peer)) < 0 ||
        (result = signal_context_create(&peer->global, peer)) < 0) {
        goto fail;
    }
    peer_crypto_provider(peer, &provider);
    if ((result = signal_context_set_crypto_provider(peer->global, &provider)) < 0 ||
        (result = signal_context_set_log_function(peer->global, peer_log)) < 0 ||
        (result = signal_protocol_store_context_create(&peer->store, peer->global)) < 0 ||
        (result = peer_stores_install(peer)) < 0) {
        goto fail;
    }
    *out = peer;
    return 0;

fail:
    signal_peer_free(peer);
    return result;
}

void signal_peer_free(signal_peer *peer)
{
    if (!peer) {
        return;
    }
    if (peer->store) {
        signal_protocol_store_context_destroy(peer->store);
        peer->store = NULL;
    }
    if (peer->identity) {
        SIGNAL_UNREF(peer->identity);
    }
    if (peer->global) {
        signal_context_destroy(peer->global);
        peer->global = NULL;
    }
    peer_stores_clear(peer);
    peer_log_clear(peer);
    free(peer->log);
    peer_crypto_cleanup(peer);
    free(peer->name);
    free(peer);
}

int signal_peer_create_random(signal_peer **out, const char *name, int32_t device_id,
                              signal_peer_random_fn random, void *random_ctx)
{
    signal_peer *peer = NULL;
    int result = peer_new(&peer, name, device_id, random, random_ctx);
    if (result < 0) {
        return result;
    }
    result = signal_protocol_key_helper_generate_identity_key_pair(&peer->identity, peer->global);
    if (result >= 0) {
        result = signal_protocol_key_helper_generate_registration_id(&peer->registration_id, 0, peer->global);
    }
    if (result < 0) {
        signal_peer_free(peer);
        return result;
    }
    *out = peer;
    return 0;
}

int signal_peer_create_with_keys(signal_peer **out, const char *name, int32_t device_id,
                                 const uint8_t *identity_private, size_t identity_private_len,
                                 uint32_t registration_id,
                                 signal_peer_random_fn random, void *random_ctx)
{
    signal_peer *peer = NULL;
    ec_key_pair *pair = NULL;
    int result;

    if (!identity_private || identity_private_len != SIGNAL_PEER_PRIVATE_KEY_LEN) {
        return SG_ERR_INVAL;
    }
    result = peer_new(&peer, name, device_id, random, random_ctx);
    if (result < 0) {
        return result;
    }
    result = key_pair_from_private(peer->global, identity_private, identity_private_len, &pair);
    if (result >= 0) {
        result = ratchet_identity_key_pair_create(&peer->identity,
                                                  ec_key_pair_get_public(pair),
                                                  ec_key_pair_get_private(pair));
    }
    SIGNAL_UNREF(pair);
    if (result < 0) {
        signal_peer_free(peer);
        return result;
    }
    peer->registration_id = registration_id;
    *out = peer;
    return 0;
}

int signal_peer_generate_signed_prekey(signal_peer *peer, uint32_t id, uint64_t timestamp)
{
    session_signed_pre_key *signed_pre_key = NULL;
    int result;
    if (!peer) {
        return SG_ERR_INVAL;
    }
    result = signal_protocol_key_helper_generate_signed_pre_key(&signed_pre_key, peer->identity,
                                                                id, timestamp, peer->global);
    if (result < 0) {
        return result;
    }
    result = signal_protocol_signed_pre_key_store_key(peer->store, signed_pre_key);
    SIGNAL_UNREF(signed_pre_key);
    return result < 0 ? result : 0;
}

int signal_peer_generate_one_time_prekeys(signal_peer *peer, uint32_t start, uint32_t count)
{
    signal_protocol_key_helper_pre_key_list_node *head = NULL;
    signal_protocol_key_helper_pre_key_list_node *node;
    int result;
    if (!peer || start == 0) {
        return SG_ERR_INVAL;
    }
    if (count == 0) {
        return 0;
    }
    result = signal_protocol_key_helper_generate_pre_keys(&head, start, count, peer->global);
    if (result < 0) {
        return result;
    }
    for (node = head; node; node = signal_protocol_key_helper_key_list_next(node)) {
        result = signal_protocol_pre_key_store_key(peer->store, signal_protocol_key_helper_key_list_element(node));
        if (result < 0) {
            break;
        }
    }
    signal_protocol_key_helper_key_list_free(head);
    return result < 0 ? result : 0;
}

int signal_peer_add_signed_prekey(signal_peer *peer, uint32_t id, uint64_t timestamp,
                                  const uint8_t *private_key, size_t private_key_len,
                                  const uint8_t *signature, size_t signature_len)
{
    ec_key_pair *pair = NULL;
    session_signed_pre_key *signed_pre_key = NULL;
    int result;
    if (!peer || !signature || signature_len == 0) {
        return SG_ERR_INVAL;
    }
    result = key_pair_from_private(peer->global, private_key, private_key_len, &pair);
    if (result < 0) {
        return result;
    }
    result = session_signed_pre_key_create(&signed_pre_key, id, timestamp, pair, signature, signature_len);
    if (result >= 0) {
        result = signal_protocol_signed_pre_key_store_key(peer->store, signed_pre_key);
    }
    SIGNAL_UNREF(signed_pre_key);
    SIGNAL_UNREF(pair);
    return result < 0 ? result : 0;
}

int signal_peer_add_one_time_prekey(signal_peer *peer, uint32_t id,
                                    const uint8_t *private_key, size_t private_key_len)
{
    ec_key_pair *pair = NULL;
    session_pre_key *pre_key = NULL;
    int result;
    if (!peer) {
        return SG_ERR_INVAL;
    }
    result = key_pair_from_private(peer->global, private_key, private_key_len, &pair);
    if (result < 0) {
        return result;
    }
    result = session_pre_key_create(&pre_key, id, pair);
    if (result >= 0) {
        result = signal_protocol_pre_key_store_key(peer->store, pre_key);
    }
    SIGNAL_UNREF(pre_key);
    SIGNAL_UNREF(pair);
    return result < 0 ? result : 0;
}

/* ---- exports ---- */

uint32_t signal_peer_registration_id(const signal_peer *peer)
{
    return peer ? peer->registration_id : 0;
}

int32_t signal_peer_device_id(const signal_peer *peer)
{
    return peer ? peer->device_id : 0;
}

const char *signal_peer_name(const signal_peer *peer)
{
    return peer ? peer->name : NULL;
}

int signal_peer_identity_key(const signal_peer *peer, uint8_t private_out[32], uint8_t public_out[33])
{
    int result;
    if (!peer || !peer->identity) {
        return SG_ERR_INVAL;
    }
    result = write_private(ratchet_identity_key_pair_get_private(peer->identity), private_out);
    if (result < 0) {
        return result;
    }
    return write_public(ratchet_identity_key_pair_get_public(peer->identity), public_out);
}

size_t signal_peer_signed_prekey_count(const signal_peer *peer)
{
    return peer ? peer->signed_pre_keys.count : 0;
}

int signal_peer_signed_prekey_at(const signal_peer *peer, size_t index, uint32_t *id,
                                 uint64_t *timestamp, uint8_t private_out[32],
                                 uint8_t public_out[33], uint8_t *signature_out,
                                 size_t signature_capacity, size_t *signature_len)
{
    const peer_kv_entry *entry;
    session_signed_pre_key *signed_pre_key = NULL;
    ec_key_pair *pair;
    size_t sig_len;
    int result;

    if (!peer || index >= peer->signed_pre_keys.count) {
        return SG_ERR_INVAL;
    }
    entry = &peer->signed_pre_keys.entries[index];
    result = session_signed_pre_key_deserialize(&signed_pre_key, entry->value, entry->value_len, peer->global);
    if (result < 0) {
        return result;
    }
    pair = session_signed_pre_key_get_key_pair(signed_pre_key);
    sig_len = session_signed_pre_key_get_signature_len(signed_pre_key);
    if (signature_len) {
        *signature_len = sig_len;
    }
    if (signature_out && sig_len > signature_capacity) {
        result = SG_ERR_INVAL;
        goto complete;
    }
    if (signature_out) {
        memcpy(signature_out, session_signed_pre_key_get_signature(signed_pre_key), sig_len);
    }
    if (id) {
        *id = session_signed_pre_key_get_id(signed_pre_key);
    }
    if (timestamp) {
        *timestamp = session_signed_pre_key_get_timestamp(signed_pre_key);
    }
    if ((result = write_private(ec_key_pair_get_private(pair), private_out)) < 0) {
        goto complete;
    }
    result = write_public(ec_key_pair_get_public(pair), public_out);
complete:
    SIGNAL_UNREF(signed_pre_key);
    return result;
}

size_t signal_peer_one_time_prekey_count(const signal_peer *peer)
{
    return peer ? peer->pre_keys.count : 0;
}

int signal_peer_one_time_prekey_at(const signal_peer *peer, size_t index, uint32_t *id,
                                   uint8_t private_out[32], uint8_t public_out[33])
{
    const peer_kv_entry *entry;
    session_pre_key *pre_key = NULL;
    ec_key_pair *pair;
    int result;

    if (!peer || index >= peer->pre_keys.count) {
        return SG_ERR_INVAL;
    }
    entry = &peer->pre_keys.entries[index];
    result = session_pre_key_deserialize(&pre_key, entry->value, entry->value_len, peer->global);
    if (result < 0) {
        return result;
    }
    pair = session_pre_key_get_key_pair(pre_key);
    if (id) {
        *id = session_pre_key_get_id(pre_key);
    }
    result = write_private(ec_key_pair_get_private(pair), private_out);
    if (result >= 0) {
        result = write_public(ec_key_pair_get_public(pair), public_out);
    }
    SIGNAL_UNREF(pre_key);
    return result;
}

int signal_peer_has_one_time_prekey(const signal_peer *peer, uint32_t id)
{
    uint8_t key[4];
    if (!peer) {
        return 0;
    }
    peer_id_key(id, key);
    return peer_kv_get(&peer->pre_keys, key, sizeof key) != NULL;
}

int signal_peer_public_key(const uint8_t *private_key, size_t private_key_len, uint8_t public_out[33])
{
    signal_context *global = NULL;
    ec_key_pair *pair = NULL;
    int result;
    if (!public_out) {
        return SG_ERR_INVAL;
    }
    result = temp_context(&global);
    if (result < 0) {
        return result;
    }
    result = key_pair_from_private(global, private_key, private_key_len, &pair);
    if (result >= 0) {
        result = write_public(ec_key_pair_get_public(pair), public_out);
    }
    SIGNAL_UNREF(pair);
    signal_context_destroy(global);
    return result;
}

/* ---- pairwise sessions ---- */

int signal_peer_bundle(signal_peer *peer, uint32_t signed_prekey_id,
                       int with_one_time_prekey, uint32_t one_time_prekey_id,
                       uint32_t *registration_id, int32_t *device_id,
                       uint8_t identity_key_out[33], uint8_t signed_prekey_out[33],
                       uint8_t signed_prekey_signature_out[64],
                       uint8_t one_time_prekey_out[33])
{
    session_signed_pre_key *signed_pre_key = NULL;
    session_pre_key *pre_key = NULL;
    uint8_t identity[SIGNAL_PEER_PUBLIC_KEY_LEN];
    uint8_t spk[SIGNAL_PEER_PUBLIC_KEY_LEN];
    uint8_t otk[SIGNAL_PEER_PUBLIC_KEY_LEN];
    int result;

    if (!peer || !peer->identity) {
        return SG_ERR_INVAL;
    }
    result = signal_protocol_signed_pre_key_load_key(peer->store, &signed_pre_key, signed_prekey_id);
    if (result < 0) {
        goto complete;
    }
    if (session_signed_pre_key_get_signature_len(signed_pre_key) != SIGNAL_PEER_SIGNATURE_LEN) {
        result = SG_ERR_INVAL; /* a bundle carries a 64-byte signature */
        goto complete;
    }
    if (with_one_time_prekey) {
        result = signal_protocol_pre_key_load_key(peer->store, &pre_key, one_time_prekey_id);
        if (result < 0) {
            goto complete;
        }
        result = write_public(ec_key_pair_get_public(session_pre_key_get_key_pair(pre_key)), otk);
        if (result < 0) {
            goto complete;
        }
    }
    if ((result = write_public(ratchet_identity_key_pair_get_public(peer->identity), identity)) < 0 ||
        (result = write_public(ec_key_pair_get_public(session_signed_pre_key_get_key_pair(signed_pre_key)), spk)) < 0) {
        goto complete;
    }
    if (registration_id) {
        *registration_id = peer->registration_id;
    }
    if (device_id) {
        *device_id = peer->device_id;
    }
    if (identity_key_out) {
        memcpy(identity_key_out, identity, sizeof identity);
    }
    if (signed_prekey_out) {
        memcpy(signed_prekey_out, spk, sizeof spk);
    }
    if (signed_prekey_signature_out) {
        memcpy(signed_prekey_signature_out, session_signed_pre_key_get_signature(signed_pre_key),
               SIGNAL_PEER_SIGNATURE_LEN);
    }
    if (with_one_time_prekey && one_time_prekey_out) {
        memcpy(one_time_prekey_out, otk, sizeof otk);
    }
    result = 0;
complete:
    SIGNAL_UNREF(pre_key);
    SIGNAL_UNREF(signed_pre_key);
    return result;
}

int signal_peer_process_bundle(signal_peer *peer, const char *name, int32_t device_id,
                               uint32_t registration_id, int32_t bundle_device_id,
                               const uint8_t *identity_key, size_t identity_key_len,
                               uint32_t signed_prekey_id,
                               const uint8_t *signed_prekey, size_t signed_prekey_len,
                               const uint8_t *signature, size_t signature_len,
                               uint32_t one_time_prekey_id,
                               const uint8_t *one_time_prekey, size_t one_time_prekey_len)
{
    signal_protocol_address address = make_address(name, device_id);
    ec_public_key *identity = NULL;
    ec_public_key *spk = NULL;
    ec_public_key *otk = NULL;
    session_pre_key_bundle *bundle = NULL;
    session_builder *builder = NULL;
    int result;

    if (!peer || !name || !identity_key || !signed_prekey || !signature) {
        return SG_ERR_INVAL;
    }
    peer_log_clear(peer);
    if ((result = curve_decode_point(&identity, identity_key, identity_key_len, peer->global)) < 0 ||
        (result = curve_decode_point(&spk, signed_prekey, signed_prekey_len, peer->global)) < 0) {
        goto complete;
    }
    if (one_time_prekey) {
        result = curve_decode_point(&otk, one_time_prekey, one_time_prekey_len, peer->global);
        if (result < 0) {
            goto complete;
        }
    }
    result = session_pre_key_bundle_create(&bundle, registration_id, bundle_device_id,
                                           otk ? one_time_prekey_id : 0, otk,
                                           signed_prekey_id, spk,
                                           signature_len > 0 ? signature : empty_bytes, signature_len,
                                           identity);
    if (result < 0) {
        goto complete;
    }
    result = session_builder_create(&builder, peer->store, &address, peer->global);
    if (result < 0) {
        goto complete;
    }
    result = session_builder_process_pre_key_bundle(builder, bundle);
complete:
    if (builder) {
        session_builder_free(builder);
    }
    SIGNAL_UNREF(bundle);
    SIGNAL_UNREF(otk);
    SIGNAL_UNREF(spk);
    SIGNAL_UNREF(identity);
    return result < 0 ? result : 0;
}

int signal_peer_encrypt(signal_peer *peer, const char *name, int32_t device_id,
                        const uint8_t *plaintext, size_t plaintext_len,
                        uint8_t **out, size_t *out_len, int *type)
{
    signal_protocol_address address = make_address(name, device_id);
    session_cipher *cipher = NULL;
    ciphertext_message *message = NULL;
    signal_buffer *serialized;
    int result;

    if (!peer || !name || !out || !out_len || (plaintext_len > 0 && !plaintext)) {
        return SG_ERR_INVAL;
    }
    *out = NULL;
    *out_len = 0;
    peer_log_clear(peer);
    result = signal_protocol_session_contains_session(peer->store, &address);
    if (result < 0) {
        return result;
    }
    if (result == 0) {
        peer_log_note(peer, "signal_peer: no session to encrypt with");
        return SG_ERR_NO_SESSION;
    }
    result = session_cipher_create(&cipher, peer->store, &address, peer->global);
    if (result < 0) {
        return result;
    }
    result = session_cipher_encrypt(cipher, plaintext_len > 0 ? plaintext : empty_bytes, plaintext_len, &message);
    if (result < 0) {
        goto complete;
    }
    serialized = ciphertext_message_get_serialized(message);
    result = export_bytes(signal_buffer_data(serialized), signal_buffer_len(serialized), out, out_len);
    if (result >= 0 && type) {
        *type = ciphertext_message_get_type(message);
    }
complete:
    SIGNAL_UNREF(message);
    session_cipher_free(cipher);
    return result < 0 ? result : 0;
}

int signal_peer_decrypt(signal_peer *peer, const char *name, int32_t device_id, int type,
                        const uint8_t *ciphertext, size_t ciphertext_len,
                        uint8_t **out, size_t *out_len)
{
    signal_protocol_address address = make_address(name, device_id);
    session_cipher *cipher = NULL;
    pre_key_signal_message *pre_key_message = NULL;
    signal_message *message = NULL;
    signal_buffer *plaintext = NULL;
    const uint8_t *data = ciphertext_len > 0 ? ciphertext : empty_bytes;
    int result;

    if (!peer || !name || !out || !out_len || (ciphertext_len > 0 && !ciphertext)) {
        return SG_ERR_INVAL;
    }
    if (type != SIGNAL_PEER_MESSAGE_PREKEY && type != SIGNAL_PEER_MESSAGE_WHISPER) {
        return SG_ERR_INVAL;
    }
    *out = NULL;
    *out_len = 0;
    peer_log_clear(peer);
    if (type == SIGNAL_PEER_MESSAGE_PREKEY) {
        result = pre_key_signal_message_deserialize(&pre_key_message, data, ciphertext_len, peer->global);
    }
    else {
        result = signal_message_deserialize(&message, data, ciphertext_len, peer->global);
    }
    if (result < 0) {
        goto complete;
    }
    result = session_cipher_create(&cipher, peer->store, &address, peer->global);
    if (result < 0) {
        goto complete;
    }
    if (type == SIGNAL_PEER_MESSAGE_PREKEY) {
        result = session_cipher_decrypt_pre_key_signal_message(cipher, pre_key_message, NULL, &plaintext);
    }
    else {
        result = session_cipher_decrypt_signal_message(cipher, message, NULL, &plaintext);
    }
    if (result < 0) {
        goto complete;
    }
    result = export_bytes(signal_buffer_data(plaintext), signal_buffer_len(plaintext), out, out_len);
complete:
    if (plaintext) {
        signal_buffer_bzero_free(plaintext);
    }
    if (cipher) {
        session_cipher_free(cipher);
    }
    SIGNAL_UNREF(message);
    SIGNAL_UNREF(pre_key_message);
    return result < 0 ? result : 0;
}

int signal_peer_has_session(const signal_peer *peer, const char *name, int32_t device_id)
{
    signal_protocol_address address = make_address(name, device_id);
    if (!peer || !name) {
        return 0;
    }
    return signal_protocol_session_contains_session(peer->store, &address) == 1;
}

int signal_peer_delete_session(signal_peer *peer, const char *name, int32_t device_id)
{
    signal_protocol_address address = make_address(name, device_id);
    if (!peer || !name) {
        return SG_ERR_INVAL;
    }
    return signal_protocol_session_delete_session(peer->store, &address);
}

int signal_peer_session_info(signal_peer *peer, const char *name, int32_t device_id,
                             uint8_t ratchet_private_out[32], uint8_t ratchet_public_out[33],
                             uint32_t *counter, uint32_t *previous_counter,
                             int *unacknowledged_prekey, size_t *archived_states)
{
    signal_protocol_address address = make_address(name, device_id);
    session_record *record = NULL;
    session_state *state;
    ec_key_pair *pair;
    ratchet_chain_key *chain;
    size_t archived = 0;
    int result;

    if (!peer || !name) {
        return SG_ERR_INVAL;
    }
    result = signal_protocol_session_contains_session(peer->store, &address);
    if (result <= 0) {
        return result < 0 ? result : SG_ERR_NO_SESSION;
    }
    result = signal_protocol_session_load_session(peer->store, &record, &address);
    if (result < 0) {
        return result;
    }
    state = session_record_get_state(record);
    if (!state || !session_state_has_sender_chain(state)) {
        result = SG_ERR_NO_SESSION;
        goto complete;
    }
    pair = session_state_get_sender_ratchet_key_pair(state);
    chain = session_state_get_sender_chain_key(state);
    if (!pair || !chain) {
        result = SG_ERR_NO_SESSION;
        goto complete;
    }
    if ((result = write_private(ec_key_pair_get_private(pair), ratchet_private_out)) < 0 ||
        (result = write_public(ec_key_pair_get_public(pair), ratchet_public_out)) < 0) {
        goto complete;
    }
    for (session_record_state_node *node = session_record_get_previous_states_head(record); node;
         node = session_record_get_previous_states_next(node)) {
        archived++;
    }
    if (counter) {
        *counter = ratchet_chain_key_get_index(chain);
    }
    if (previous_counter) {
        *previous_counter = session_state_get_previous_counter(state);
    }
    if (unacknowledged_prekey) {
        *unacknowledged_prekey = session_state_has_unacknowledged_pre_key_message(state) ? 1 : 0;
    }
    if (archived_states) {
        *archived_states = archived;
    }
    result = 0;
complete:
    SIGNAL_UNREF(record);
    return result;
}

int signal_peer_set_trusted_identity(signal_peer *peer, const char *name, int32_t device_id,
                                     const uint8_t *key, size_t key_len)
{
    size_t akey_len = 0;
    uint8_t *akey;
    int result = 0;
    if (!peer || !name || (key && key_len == 0)) {
        return SG_ERR_INVAL;
    }
    akey = peer_address_key(name, strlen(name), device_id, &akey_len);
    if (!akey) {
        return SG_ERR_NOMEM;
    }
    if (key) {
        result = peer_kv_put(&peer->identities, akey, akey_len, key, key_len, NULL, 0);
    }
    else {
        peer_kv_remove(&peer->identities, akey, akey_len);
    }
    free(akey);
    return result;
}

int signal_peer_trusted_identity(const signal_peer *peer, const char *name, int32_t device_id,
                                 uint8_t key_out[33])
{
    size_t akey_len = 0;
    uint8_t *akey;
    const peer_kv_entry *entry;
    if (!peer || !name) {
        return SG_ERR_INVAL;
    }
    akey = peer_address_key(name, strlen(name), device_id, &akey_len);
    if (!akey) {
        return SG_ERR_NOMEM;
    }
    entry = peer_kv_get(&peer->identities, akey, akey_len);
    free(akey);
    if (!entry) {
        return 0;
    }
    if (entry->value_len != SIGNAL_PEER_PUBLIC_KEY_LEN) {
        return SG_ERR_INVAL;
    }
    if (key_out) {
        memcpy(key_out, entry->value, SIGNAL_PEER_PUBLIC_KEY_LEN);
    }
    return 1;
}

/* ---- groups ---- */

int signal_peer_group_create(signal_peer *peer, const uint8_t *group_id, size_t group_id_len,
                             uint8_t **out, size_t *out_len)
{
    signal_protocol_sender_key_name key_name;
    group_session_builder *builder = NULL;
    sender_key_distribution_message *message = NULL;
    signal_buffer *serialized;
    int result;

    if (!peer || !out || !out_len || (group_id_len > 0 && !group_id)) {
        return SG_ERR_INVAL;
    }
    *out = NULL;
    *out_len = 0;
    peer_log_clear(peer);
    key_name = make_sender_key_name(group_id, group_id_len, peer->name, peer->device_id);
    result = group_session_builder_create(&builder, peer->store, peer->global);
    if (result < 0) {
        return result;
    }
    result = group_session_builder_create_session(builder, &message, &key_name);
    if (result < 0) {
        goto complete;
    }
    serialized = ciphertext_message_get_serialized((ciphertext_message *)message);
    result = export_bytes(signal_buffer_data(serialized), signal_buffer_len(serialized), out, out_len);
complete:
    SIGNAL_UNREF(message);
    group_session_builder_free(builder);
    return result < 0 ? result : 0;
}

int signal_peer_group_process(signal_peer *peer, const uint8_t *group_id, size_t group_id_len,
                              const char *name, int32_t device_id,
                              const uint8_t *message_data, size_t message_len)
{
    signal_protocol_sender_key_name key_name;
    group_session_builder *builder = NULL;
    sender_key_distribution_message *message = NULL;
    int result;

    if (!peer || !name || (group_id_len > 0 && !group_id) || (message_len > 0 && !message_data)) {
        return SG_ERR_INVAL;
    }
    peer_log_clear(peer);
    key_name = make_sender_key_name(group_id, group_id_len, name, device_id);
    result = sender_key_distribution_message_deserialize(&message, message_len > 0 ? message_data : empty_bytes,
                                                         message_len, peer->global);
    if (result < 0) {
        return result;
    }
    result = group_session_builder_create(&builder, peer->store, peer->global);
    if (result >= 0) {
        result = group_session_builder_process_session(builder, &key_name, message);
        group_session_builder_free(builder);
    }
    SIGNAL_UNREF(message);
    return result < 0 ? result : 0;
}

int signal_peer_group_encrypt(signal_peer *peer, const uint8_t *group_id, size_t group_id_len,
                              const uint8_t *plaintext, size_t plaintext_len,
                              uint8_t **out, size_t *out_len)
{
    signal_protocol_sender_key_name key_name;
    group_cipher *cipher = NULL;
    ciphertext_message *message = NULL;
    signal_buffer *serialized;
    int result;

    if (!peer || !out || !out_len || (group_id_len > 0 && !group_id) || (plaintext_len > 0 && !plaintext)) {
        return SG_ERR_INVAL;
    }
    *out = NULL;
    *out_len = 0;
    peer_log_clear(peer);
    key_name = make_sender_key_name(group_id, group_id_len, peer->name, peer->device_id);
    result = group_cipher_create(&cipher, peer->store, &key_name, peer->global);
    if (result < 0) {
        return result;
    }
    result = group_cipher_encrypt(cipher, plaintext_len > 0 ? plaintext : empty_bytes, plaintext_len, &message);
    if (result < 0) {
        goto complete;
    }
    serialized = ciphertext_message_get_serialized(message);
    result = export_bytes(signal_buffer_data(serialized), signal_buffer_len(serialized), out, out_len);
complete:
    SIGNAL_UNREF(message);
    group_cipher_free(cipher);
    return result < 0 ? result : 0;
}

int signal_peer_group_decrypt(signal_peer *peer, const uint8_t *group_id, size_t group_id_len,
                              const char *name, int32_t device_id,
                              const uint8_t *ciphertext, size_t ciphertext_len,
                              uint8_t **out, size_t *out_len)
{
    signal_protocol_sender_key_name key_name;
    group_cipher *cipher = NULL;
    sender_key_message *message = NULL;
    signal_buffer *plaintext = NULL;
    int result;

    if (!peer || !name || !out || !out_len || (group_id_len > 0 && !group_id) ||
        (ciphertext_len > 0 && !ciphertext)) {
        return SG_ERR_INVAL;
    }
    *out = NULL;
    *out_len = 0;
    peer_log_clear(peer);
    key_name = make_sender_key_name(group_id, group_id_len, name, device_id);
    result = sender_key_message_deserialize(&message, ciphertext_len > 0 ? ciphertext : empty_bytes,
                                            ciphertext_len, peer->global);
    if (result < 0) {
        return result;
    }
    result = group_cipher_create(&cipher, peer->store, &key_name, peer->global);
    if (result < 0) {
        goto complete;
    }
    result = group_cipher_decrypt(cipher, message, NULL, &plaintext);
    if (result < 0) {
        goto complete;
    }
    result = export_bytes(signal_buffer_data(plaintext), signal_buffer_len(plaintext), out, out_len);
complete:
    if (plaintext) {
        signal_buffer_bzero_free(plaintext);
    }
    if (cipher) {
        group_cipher_free(cipher);
    }
    SIGNAL_UNREF(message);
    return result < 0 ? result : 0;
}

int signal_peer_group_own_state(signal_peer *peer, const uint8_t *group_id, size_t group_id_len,
                                uint32_t *key_id, uint32_t *iteration,
                                uint8_t chain_key_out[32], uint8_t signing_private_out[32],
                                uint8_t signing_public_out[33])
{
    signal_protocol_sender_key_name key_name;
    sender_key_record *record = NULL;
    sender_key_state *state = NULL; /* owned by the record */
    sender_chain_key *chain;
    signal_buffer *seed;
    ec_private_key *signing_private;
    int result;

    if (!peer || (group_id_len > 0 && !group_id)) {
        return SG_ERR_INVAL;
    }
    key_name = make_sender_key_name(group_id, group_id_len, peer->name, peer->device_id);
    result = signal_protocol_sender_key_load_key(peer->store, &record, &key_name);
    if (result < 0) {
        return result;
    }
    if (!record || sender_key_record_is_empty(record)) {
        result = SG_ERR_NO_SESSION;
        goto complete;
    }
    result = sender_key_record_get_sender_key_state(record, &state);
    if (result < 0) {
        goto complete;
    }
    chain = sender_key_state_get_chain_key(state);
    seed = chain ? sender_chain_key_get_seed(chain) : NULL;
    signing_private = sender_key_state_get_signing_key_private(state);
    if (!seed || signal_buffer_len(seed) != SIGNAL_PEER_SENDER_CHAIN_KEY_LEN || !signing_private) {
        result = SG_ERR_NO_SESSION;
        goto complete;
    }
    if ((result = write_private(signing_private, signing_private_out)) < 0 ||
        (result = write_public(sender_key_state_get_signing_key_public(state), signing_public_out)) < 0) {
        goto complete;
    }
    if (chain_key_out) {
        memcpy(chain_key_out, signal_buffer_data(seed), SIGNAL_PEER_SENDER_CHAIN_KEY_LEN);
    }
    if (key_id) {
        *key_id = sender_key_state_get_key_id(state);
    }
    if (iteration) {
        *iteration = sender_chain_key_get_iteration(chain);
    }
    result = 0;
complete:
    SIGNAL_UNREF(record);
    return result;
}

int signal_peer_parse_distribution_message(const uint8_t *data, size_t len,
                                           uint32_t *key_id, uint32_t *iteration,
                                           uint8_t chain_key_out[32],
                                           uint8_t signing_public_out[33])
{
    signal_context *global = NULL;
    sender_key_distribution_message *message = NULL;
    signal_buffer *chain_key;
    int result;

    if (len > 0 && !data) {
        return SG_ERR_INVAL;
    }
    result = temp_context(&global);
    if (result < 0) {
        return result;
    }
    result = sender_key_distribution_message_deserialize(&message, len > 0 ? data : empty_bytes, len, global);
    if (result < 0) {
        goto complete;
    }
    chain_key = sender_key_distribution_message_get_chain_key(message);
    if (!chain_key || signal_buffer_len(chain_key) != SIGNAL_PEER_SENDER_CHAIN_KEY_LEN) {
        result = SG_ERR_INVALID_MESSAGE;
        goto complete;
    }
    result = write_public(sender_key_distribution_message_get_signature_key(message), signing_public_out);
    if (result < 0) {
        goto complete;
    }
    if (chain_key_out) {
        memcpy(chain_key_out, signal_buffer_data(chain_key), SIGNAL_PEER_SENDER_CHAIN_KEY_LEN);
    }
    if (key_id) {
        *key_id = sender_key_distribution_message_get_id(message);
    }
    if (iteration) {
        *iteration = sender_key_distribution_message_get_iteration(message);
    }
complete:
    SIGNAL_UNREF(message);
    signal_context_destroy(global);
    return result < 0 ? result : 0;
}

int signal_peer_parse_sender_key_message(const uint8_t *data, size_t len,
                                         uint32_t *key_id, uint32_t *iteration)
{
    signal_context *global = NULL;
    sender_key_message *message = NULL;
    int result;

    if (len > 0 && !data) {
        return SG_ERR_INVAL;
    }
    result = temp_context(&global);
    if (result < 0) {
        return result;
    }
    result = sender_key_message_deserialize(&message, len > 0 ? data : empty_bytes, len, global);
    if (result >= 0) {
        if (key_id) {
            *key_id = sender_key_message_get_key_id(message);
        }
        if (iteration) {
            *iteration = sender_key_message_get_iteration(message);
        }
    }
    SIGNAL_UNREF(message);
    signal_context_destroy(global);
    return result < 0 ? result : 0;
}

/* ---- errors ---- */

const char *signal_peer_error_name(int code)
{
    switch (code) {
    case SG_SUCCESS: return "SG_SUCCESS";
    case SG_ERR_NOMEM: return "SG_ERR_NOMEM";
    case SG_ERR_INVAL: return "SG_ERR_INVAL";
    case SG_ERR_UNKNOWN: return "SG_ERR_UNKNOWN";
    case SG_ERR_DUPLICATE_MESSAGE: return "SG_ERR_DUPLICATE_MESSAGE";
    case SG_ERR_INVALID_KEY: return "SG_ERR_INVALID_KEY";
    case SG_ERR_INVALID_KEY_ID: return "SG_ERR_INVALID_KEY_ID";
    case SG_ERR_INVALID_MAC: return "SG_ERR_INVALID_MAC";
    case SG_ERR_INVALID_MESSAGE: return "SG_ERR_INVALID_MESSAGE";
    case SG_ERR_INVALID_VERSION: return "SG_ERR_INVALID_VERSION";
    case SG_ERR_LEGACY_MESSAGE: return "SG_ERR_LEGACY_MESSAGE";
    case SG_ERR_NO_SESSION: return "SG_ERR_NO_SESSION";
    case SG_ERR_STALE_KEY_EXCHANGE: return "SG_ERR_STALE_KEY_EXCHANGE";
    case SG_ERR_UNTRUSTED_IDENTITY: return "SG_ERR_UNTRUSTED_IDENTITY";
    case SG_ERR_VRF_SIG_VERIF_FAILED: return "SG_ERR_VRF_SIG_VERIF_FAILED";
    case SG_ERR_INVALID_PROTO_BUF: return "SG_ERR_INVALID_PROTO_BUF";
    case SG_ERR_FP_VERSION_MISMATCH: return "SG_ERR_FP_VERSION_MISMATCH";
    case SG_ERR_FP_IDENT_MISMATCH: return "SG_ERR_FP_IDENT_MISMATCH";
    default: return "SG_ERR_UNKNOWN_CODE";
    }
}

static int any_line(const char *const *lines, size_t count, const char *needle)
{
    for (size_t i = 0; i < count; i++) {
        if (lines[i] && strstr(lines[i], needle)) {
            return 1;
        }
    }
    return 0;
}

/* "Message version V, but session version S" with V below 3: a legacy (v2) message body. */
static int session_version_mismatch(const char *const *lines, size_t count, int *legacy)
{
    static const char prefix[] = "Message version ";
    int found = 0;
    *legacy = 0;
    for (size_t i = 0; i < count; i++) {
        const char *at = lines[i] ? strstr(lines[i], prefix) : NULL;
        if (at && strstr(at, "but session version")) {
            long version = strtol(at + sizeof prefix - 1, NULL, 10);
            found = 1;
            if (version < 3) {
                *legacy = 1;
            }
        }
    }
    return found;
}

const char *signal_peer_canonical_error(int code, const char *const *lines, size_t count)
{
    int legacy = 0;
    if (!lines) {
        count = 0;
    }
    switch (code) {
    case SG_SUCCESS: return "ok";
    case SG_ERR_DUPLICATE_MESSAGE: return "duplicate_message";
    case SG_ERR_NO_SESSION: return "no_session";
    case SG_ERR_UNTRUSTED_IDENTITY: return "untrusted_identity";
    case SG_ERR_INVALID_KEY_ID: return "unknown_prekey";
    case SG_ERR_LEGACY_MESSAGE: return "legacy_version";
    case SG_ERR_INVALID_VERSION: return "invalid_version";
    case SG_ERR_INVALID_MAC: return "bad_mac";
    case SG_ERR_INVAL:
    case SG_ERR_INVALID_PROTO_BUF: return "malformed";
    case SG_ERR_INVALID_KEY:
        /* process_bundle: the signed prekey signature does not verify. */
        if (any_line(lines, count, "invalid signature on device key")) {
            return "bad_signature";
        }
        return "malformed";
    case SG_ERR_INVALID_MESSAGE:
        /* One line per failed attempt (current state, then archived states): a version
         * mismatch wins over too-far, which wins over a bad MAC (FORMAT.md §6.4). */
        if (any_line(lines, count, "Invalid signature!")) {
            return "bad_signature";
        }
        if (any_line(lines, count, "Unknown version") || any_line(lines, count, "Inner message version mismatch")) {
            return "invalid_version";
        }
        if (session_version_mismatch(lines, count, &legacy)) {
            return legacy ? "legacy_version" : "invalid_version";
        }
        if (any_line(lines, count, "Over 2000 messages into the future!")) {
            return "too_far_in_future";
        }
        if (any_line(lines, count, "Bad MAC")) {
            return "bad_mac";
        }
        if (any_line(lines, count, "Incomplete message") || any_line(lines, count, "MAC length mismatch") ||
            any_line(lines, count, "Message body does not exist")) {
            return "malformed";
        }
        return "invalid_message";
    case SG_ERR_STALE_KEY_EXCHANGE: return "stale_key_exchange";
    case SG_ERR_NOMEM: return "out_of_memory";
    default: return "unknown";
    }
}

const char *signal_peer_last_canonical_error(const signal_peer *peer, int code)
{
    const char **lines = NULL;
    const char *name;
    size_t count = 0;
    if (peer && peer->log_count > 0) {
        lines = malloc(peer->log_count * sizeof *lines);
        if (lines) {
            for (size_t i = 0; i < peer->log_count; i++) {
                lines[count++] = peer->log[i].text;
            }
        }
    }
    /* Without memory for the list the code alone decides (lines NULL, count 0). */
    name = signal_peer_canonical_error(code, lines, count);
    free(lines);
    return name;
}
