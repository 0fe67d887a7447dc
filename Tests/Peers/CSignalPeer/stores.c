/*
 * In-memory stores for libsignal-protocol-c: sessions, one-time prekeys, signed prekeys,
 * identities (trust on first use per address) and sender keys. Records are kept
 * serialized, exactly as libsignal hands them over, in insertion order.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "peer_internal.h"

/* ---- peer_kv ---- */

static void entry_free(peer_kv_entry *entry)
{
    if (entry->key) {
        OPENSSL_cleanse(entry->key, entry->key_len);
        free(entry->key);
    }
    if (entry->value) {
        OPENSSL_cleanse(entry->value, entry->value_len);
        free(entry->value);
    }
    if (entry->extra) {
        OPENSSL_cleanse(entry->extra, entry->extra_len);
        free(entry->extra);
    }
    memset(entry, 0, sizeof *entry);
}

/* malloc(len) copy of data; len 0 gives a 1-byte allocation so that NULL means failure. */
static uint8_t *copy_bytes(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (copy && len > 0) {
        memcpy(copy, data, len);
    }
    return copy;
}

static size_t kv_find(const peer_kv *kv, const uint8_t *key, size_t key_len)
{
    for (size_t i = 0; i < kv->count; i++) {
        const peer_kv_entry *entry = &kv->entries[i];
        if (entry->key_len == key_len && memcmp(entry->key, key, key_len) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

int peer_kv_put(peer_kv *kv, const uint8_t *key, size_t key_len,
                const uint8_t *value, size_t value_len,
                const uint8_t *extra, size_t extra_len)
{
    peer_kv_entry fresh;
    size_t index;

    memset(&fresh, 0, sizeof fresh);
    fresh.key = copy_bytes(key, key_len);
    fresh.key_len = key_len;
    fresh.value = copy_bytes(value, value_len);
    fresh.value_len = value_len;
    if (extra) {
        fresh.extra = copy_bytes(extra, extra_len);
        fresh.extra_len = extra_len;
    }
    if (!fresh.key || !fresh.value || (extra && !fresh.extra)) {
        entry_free(&fresh);
        return SG_ERR_NOMEM;
    }

    index = kv_find(kv, key, key_len);
    if (index != SIZE_MAX) {
        entry_free(&kv->entries[index]);
        kv->entries[index] = fresh;
        return 0;
    }
    if (kv->count == kv->capacity) {
        size_t capacity = kv->capacity ? kv->capacity * 2 : 8;
        peer_kv_entry *entries;
        if (capacity > SIZE_MAX / sizeof *entries) {
            entry_free(&fresh);
            return SG_ERR_NOMEM;
        }
        entries = realloc(kv->entries, capacity * sizeof *entries);
        if (!entries) {
            entry_free(&fresh);
            return SG_ERR_NOMEM;
        }
        kv->entries = entries;
        kv->capacity = capacity;
    }
    kv->entries[kv->count++] = fresh;
    return 0;
}

const peer_kv_entry *peer_kv_get(const peer_kv *kv, const uint8_t *key, size_t key_len)
{
    size_t index = kv_find(kv, key, key_len);
    return index == SIZE_MAX ? NULL : &kv->entries[index];
}

int peer_kv_remove(peer_kv *kv, const uint8_t *key, size_t key_len)
{
    size_t index = kv_find(kv, key, key_len);
    if (index == SIZE_MAX) {
        return 0;
    }
    entry_free(&kv->entries[index]);
    memmove(&kv->entries[index], &kv->entries[index + 1],
            (kv->count - index - 1) * sizeof *kv->entries);
    kv->count--;
    return 1;
}

void peer_kv_clear(peer_kv *kv)
{
    for (size_t i = 0; i < kv->count; i++) {
        entry_free(&kv->entries[i]);
    }
    free(kv->entries);
    memset(kv, 0, sizeof *kv);
}

/* ---- keys ---- */

static void put_le32(uint8_t *out, uint32_t value)
{
    out[0] = (uint8_t)value;
    out[1] = (uint8_t)(value >> 8);
    out[2] = (uint8_t)(value >> 16);
    out[3] = (uint8_t)(value >> 24);
}

void peer_id_key(uint32_t id, uint8_t key[4])
{
    put_le32(key, id);
}

uint8_t *peer_address_key(const char *name, size_t name_len, int32_t device_id, size_t *key_len)
{
    uint8_t *key;
    if (name_len > UINT32_MAX || name_len > SIZE_MAX - 8 || (name_len > 0 && !name)) {
        return NULL;
    }
    key = malloc(name_len + 8);
    if (!key) {
        return NULL;
    }
    put_le32(key, (uint32_t)name_len);
    if (name_len > 0) {
        memcpy(key + 4, name, name_len);
    }
    put_le32(key + 4 + name_len, (uint32_t)device_id);
    *key_len = name_len + 8;
    return key;
}

uint8_t *peer_sender_key_name_key(const signal_protocol_sender_key_name *name, size_t *key_len)
{
    size_t address_len = 0;
    uint8_t *address = peer_address_key(name->sender.name, name->sender.name_len,
                                        name->sender.device_id, &address_len);
    uint8_t *key;
    if (!address) {
        return NULL;
    }
    if (name->group_id_len > UINT32_MAX || name->group_id_len > SIZE_MAX - 4 - address_len ||
        (name->group_id_len > 0 && !name->group_id)) {
        free(address);
        return NULL;
    }
    key = malloc(4 + name->group_id_len + address_len);
    if (!key) {
        free(address);
        return NULL;
    }
    put_le32(key, (uint32_t)name->group_id_len);
    if (name->group_id_len > 0) {
        memcpy(key + 4, name->group_id, name->group_id_len);
    }
    memcpy(key + 4 + name->group_id_len, address, address_len);
    *key_len = 4 + name->group_id_len + address_len;
    free(address);
    return key;
}

static uint8_t *address_key(const signal_protocol_address *address, size_t *key_len)
{
    return peer_address_key(address->name, address->name_len, address->device_id, key_len);
}

/* Copies an entry's value (and user record) into fresh signal_buffers for libsignal. */
static int export_entry(const peer_kv_entry *entry, signal_buffer **record, signal_buffer **user_record)
{
    signal_buffer *value = signal_buffer_create(entry->value, entry->value_len);
    signal_buffer *extra = NULL;
    if (!value) {
        return SG_ERR_NOMEM;
    }
    if (user_record && entry->extra) {
        extra = signal_buffer_create(entry->extra, entry->extra_len);
        if (!extra) {
            signal_buffer_bzero_free(value);
            return SG_ERR_NOMEM;
        }
    }
    *record = value;
    if (extra) {
        *user_record = extra;
    }
    return 0;
}

/* ---- session store ---- */

static int session_load(signal_buffer **record, signal_buffer **user_record,
                        const signal_protocol_address *address, void *user_data)
{
    signal_peer *peer = user_data;
    size_t key_len = 0;
    uint8_t *key = address_key(address, &key_len);
    const peer_kv_entry *entry;
    int result;
    if (!key) {
        return SG_ERR_NOMEM;
    }
    entry = peer_kv_get(&peer->sessions, key, key_len);
    free(key);
    if (!entry) {
        return 0;
    }
    result = export_entry(entry, record, user_record);
    return result < 0 ? result : 1;
}

/* Sessions of `name`: the address key starts with le32(name_len) || name and has exactly
 * 4 more bytes (the device id). */
static int key_matches_name(const peer_kv_entry *entry, const char *name, size_t name_len,
                            int32_t *device_id)
{
    size_t prefix_len = 0;
    uint8_t *prefix;
    int match;
    if (entry->key_len != name_len + 8) {
        return 0;
    }
    prefix = peer_address_key(name, name_len, 0, &prefix_len);
    if (!prefix) {
        return -1;
    }
    match = memcmp(entry->key, prefix, 4 + name_len) == 0;
    free(prefix);
    if (match && device_id) {
        const uint8_t *d = entry->key + 4 + name_len;
        *device_id = (int32_t)((uint32_t)d[0] | ((uint32_t)d[1] << 8) |
                               ((uint32_t)d[2] << 16) | ((uint32_t)d[3] << 24));
    }
    return match;
}

static int session_sub_devices(signal_int_list **sessions, const char *name, size_t name_len, void *user_data)
{
    signal_peer *peer = user_data;
    signal_int_list *list = signal_int_list_alloc();
    int count = 0;
    if (!list) {
        return SG_ERR_NOMEM;
    }
    for (size_t i = 0; i < peer->sessions.count; i++) {
        int32_t device_id = 0;
        int match = key_matches_name(&peer->sessions.entries[i], name, name_len, &device_id);
        if (match < 0) {
            signal_int_list_free(list);
            return SG_ERR_NOMEM;
        }
        if (match) {
            if (signal_int_list_push_back(list, device_id) < 0) {
                signal_int_list_free(list);
                return SG_ERR_NOMEM;
            }
            count++;
        }
    }
    *sessions = list;
    return count;
}

static int session_store(const signal_protocol_address *address, uint8_t *record, size_t record_len,
                         uint8_t *user_record, size_t user_record_len, void *user_data)
{
    signal_peer *peer = user_data;
    size_t key_len = 0;
    uint8_t *key = address_key(address, &key_len);
    int result;
    if (!key) {
        return SG_ERR_NOMEM;
    }
    result = peer_kv_put(&peer->sessions, key, key_len, record, record_len, user_record, user_record_len);
    free(key);
    return result;
}

static int session_contains(const signal_protocol_address *address, void *user_data)
{
    signal_peer *peer = user_data;
    size_t key_len = 0;
    uint8_t *key = address_key(address, &key_len);
    int found;
    if (!key) {
        return 0;
    }
    found = peer_kv_get(&peer->sessions, key, key_len) != NULL;
    free(key);
    return found;
}

static int session_delete(const signal_protocol_address *address, void *user_data)
{
    signal_peer *peer = user_data;
    size_t key_len = 0;
    uint8_t *key = address_key(address, &key_len);
    int removed;
    if (!key) {
        return SG_ERR_NOMEM;
    }
    removed = peer_kv_remove(&peer->sessions, key, key_len);
    free(key);
    return removed;
}

static int session_delete_all(const char *name, size_t name_len, void *user_data)
{
    signal_peer *peer = user_data;
    int deleted = 0;
    size_t i = 0;
    while (i < peer->sessions.count) {
        peer_kv_entry *entry = &peer->sessions.entries[i];
        int match = key_matches_name(entry, name, name_len, NULL);
        if (match < 0) {
            return SG_ERR_NOMEM;
        }
        if (match) {
            uint8_t *key = malloc(entry->key_len);
            size_t key_len = entry->key_len;
            if (!key) {
                return SG_ERR_NOMEM;
            }
            memcpy(key, entry->key, key_len);
            peer_kv_remove(&peer->sessions, key, key_len);
            free(key);
            deleted++;
        }
        else {
            i++;
        }
    }
    return deleted;
}

/* ---- one-time prekeys and signed prekeys (same shape) ---- */

static int id_load(peer_kv *kv, signal_buffer **record, uint32_t id)
{
    uint8_t key[4];
    const peer_kv_entry *entry;
    peer_id_key(id, key);
    entry = peer_kv_get(kv, key, sizeof key);
    if (!entry) {
        return SG_ERR_INVALID_KEY_ID;
    }
    return export_entry(entry, record, NULL) < 0 ? SG_ERR_NOMEM : SG_SUCCESS;
}

static int id_store(peer_kv *kv, uint32_t id, const uint8_t *record, size_t record_len)
{
    uint8_t key[4];
    peer_id_key(id, key);
    return peer_kv_put(kv, key, sizeof key, record, record_len, NULL, 0);
}

static int id_contains(peer_kv *kv, uint32_t id)
{
    uint8_t key[4];
    peer_id_key(id, key);
    return peer_kv_get(kv, key, sizeof key) != NULL;
}

static int id_remove(peer_kv *kv, uint32_t id)
{
    uint8_t key[4];
    peer_id_key(id, key);
    peer_kv_remove(kv, key, sizeof key);
    return 0;
}

static int pre_key_load(signal_buffer **record, uint32_t id, void *user_data)
{
    return id_load(&((signal_peer *)user_data)->pre_keys, record, id);
}

static int pre_key_store(uint32_t id, uint8_t *record, size_t record_len, void *user_data)
{
    return id_store(&((signal_peer *)user_data)->pre_keys, id, record, record_len);
}

static int pre_key_contains(uint32_t id, void *user_data)
{
    return id_contains(&((signal_peer *)user_data)->pre_keys, id);
}

static int pre_key_remove(uint32_t id, void *user_data)
{
    return id_remove(&((signal_peer *)user_data)->pre_keys, id);
}

static int signed_pre_key_load(signal_buffer **record, uint32_t id, void *user_data)
{
    return id_load(&((signal_peer *)user_data)->signed_pre_keys, record, id);
}

static int signed_pre_key_store(uint32_t id, uint8_t *record, size_t record_len, void *user_data)
{
    return id_store(&((signal_peer *)user_data)->signed_pre_keys, id, record, record_len);
}

static int signed_pre_key_contains(uint32_t id, void *user_data)
{
    return id_contains(&((signal_peer *)user_data)->signed_pre_keys, id);
}

static int signed_pre_key_remove(uint32_t id, void *user_data)
{
    return id_remove(&((signal_peer *)user_data)->signed_pre_keys, id);
}

/* ---- identity store ---- */

static int identity_key_pair(signal_buffer **public_data, signal_buffer **private_data, void *user_data)
{
    signal_peer *peer = user_data;
    signal_buffer *pub = NULL;
    signal_buffer *priv = NULL;
    int result;
    if (!peer->identity) {
        return SG_ERR_UNKNOWN;
    }
    result = ec_public_key_serialize(&pub, ratchet_identity_key_pair_get_public(peer->identity));
    if (result < 0) {
        return result;
    }
    result = ec_private_key_serialize(&priv, ratchet_identity_key_pair_get_private(peer->identity));
    if (result < 0) {
        signal_buffer_free(pub);
        return result;
    }
    *public_data = pub;
    *private_data = priv;
    return 0;
}

static int identity_registration_id(void *user_data, uint32_t *registration_id)
{
    *registration_id = ((signal_peer *)user_data)->registration_id;
    return 0;
}

static int identity_save(const signal_protocol_address *address, uint8_t *key_data, size_t key_len, void *user_data)
{
    signal_peer *peer = user_data;
    size_t akey_len = 0;
    uint8_t *akey = address_key(address, &akey_len);
    int result = 0;
    if (!akey) {
        return SG_ERR_NOMEM;
    }
    if (key_data) {
        result = peer_kv_put(&peer->identities, akey, akey_len, key_data, key_len, NULL, 0);
    }
    else {
        peer_kv_remove(&peer->identities, akey, akey_len);
    }
    free(akey);
    return result;
}

/* Trust on first use: an unknown address is trusted, a known one only with the same key. */
static int identity_is_trusted(const signal_protocol_address *address, uint8_t *key_data, size_t key_len, void *user_data)
{
    signal_peer *peer = user_data;
    size_t akey_len = 0;
    uint8_t *akey = address_key(address, &akey_len);
    const peer_kv_entry *entry;
    int trusted;
    if (!akey) {
        return SG_ERR_NOMEM;
    }
    entry = peer_kv_get(&peer->identities, akey, akey_len);
    free(akey);
    if (!entry) {
        return 1;
    }
    trusted = entry->value_len == key_len && key_data && memcmp(entry->value, key_data, key_len) == 0;
    return trusted ? 1 : 0;
}

/* ---- sender key store ---- */

static int sender_key_store(const signal_protocol_sender_key_name *name, uint8_t *record, size_t record_len,
                            uint8_t *user_record, size_t user_record_len, void *user_data)
{
    signal_peer *peer = user_data;
    size_t key_len = 0;
    uint8_t *key = peer_sender_key_name_key(name, &key_len);
    int result;
    if (!key) {
        return SG_ERR_NOMEM;
    }
    result = peer_kv_put(&peer->sender_keys, key, key_len, record, record_len, user_record, user_record_len);
    free(key);
    return result;
}

static int sender_key_load(signal_buffer **record, signal_buffer **user_record,
                           const signal_protocol_sender_key_name *name, void *user_data)
{
    signal_peer *peer = user_data;
    size_t key_len = 0;
    uint8_t *key = peer_sender_key_name_key(name, &key_len);
    const peer_kv_entry *entry;
    int result;
    if (!key) {
        return SG_ERR_NOMEM;
    }
    entry = peer_kv_get(&peer->sender_keys, key, key_len);
    free(key);
    if (!entry) {
        return 0;
    }
    result = export_entry(entry, record, user_record);
    return result < 0 ? result : 1;
}

/* ---- installation ---- */

int peer_stores_install(signal_peer *peer)
{
    signal_protocol_session_store sessions;
    signal_protocol_pre_key_store pre_keys;
    signal_protocol_signed_pre_key_store signed_pre_keys;
    signal_protocol_identity_key_store identities;
    signal_protocol_sender_key_store sender_keys;
    int result;

    memset(&sessions, 0, sizeof sessions);
    sessions.load_session_func = session_load;
    sessions.get_sub_device_sessions_func = session_sub_devices;
    sessions.store_session_func = session_store;
    sessions.contains_session_func = session_contains;
    sessions.delete_session_func = session_delete;
    sessions.delete_all_sessions_func = session_delete_all;
    sessions.user_data = peer;

    memset(&pre_keys, 0, sizeof pre_keys);
    pre_keys.load_pre_key = pre_key_load;
    pre_keys.store_pre_key = pre_key_store;
    pre_keys.contains_pre_key = pre_key_contains;
    pre_keys.remove_pre_key = pre_key_remove;
    pre_keys.user_data = peer;

    memset(&signed_pre_keys, 0, sizeof signed_pre_keys);
    signed_pre_keys.load_signed_pre_key = signed_pre_key_load;
    signed_pre_keys.store_signed_pre_key = signed_pre_key_store;
    signed_pre_keys.contains_signed_pre_key = signed_pre_key_contains;
    signed_pre_keys.remove_signed_pre_key = signed_pre_key_remove;
    signed_pre_keys.user_data = peer;

    memset(&identities, 0, sizeof identities);
    identities.get_identity_key_pair = identity_key_pair;
    identities.get_local_registration_id = identity_registration_id;
    identities.save_identity = identity_save;
    identities.is_trusted_identity = identity_is_trusted;
    identities.user_data = peer;

    memset(&sender_keys, 0, sizeof sender_keys);
    sender_keys.store_sender_key = sender_key_store;
    sender_keys.load_sender_key = sender_key_load;
    sender_keys.user_data = peer;

    /* No destroy_func: the peer owns the stores' memory and frees it in signal_peer_free. */
    if ((result = signal_protocol_store_context_set_session_store(peer->store, &sessions)) < 0 ||
        (result = signal_protocol_store_context_set_pre_key_store(peer->store, &pre_keys)) < 0 ||
        (result = signal_protocol_store_context_set_signed_pre_key_store(peer->store, &signed_pre_keys)) < 0 ||
        (result = signal_protocol_store_context_set_identity_key_store(peer->store, &identities)) < 0 ||
        (result = signal_protocol_store_context_set_sender_key_store(peer->store, &sender_keys)) < 0) {
        return result;
    }
    return 0;
}

void peer_stores_clear(signal_peer *peer)
{
    peer_kv_clear(&peer->sessions);
    peer_kv_clear(&peer->pre_keys);
    peer_kv_clear(&peer->signed_pre_keys);
    peer_kv_clear(&peer->identities);
    peer_kv_clear(&peer->sender_keys);
}
