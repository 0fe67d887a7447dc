// See memory_store.h.
#include "memory_store.h"

#include <stdlib.h>
#include <string.h>

// MARK: - a small table of byte-string keys and values

typedef struct blob {
    uint8_t *data;
    size_t len, cap;
} blob;

typedef struct entry {
    blob key, value;
} entry;

typedef struct table {
    entry *entries;
    size_t count, cap;
} table;

static int blob_set(blob *b, const uint8_t *data, size_t len) {
    if (len > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < len) cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown) return -1;
        b->data = grown;
        b->cap = cap;
    }
    if (len) memcpy(b->data, data, len);
    b->len = len;
    return 0;
}

static entry *table_find(table *t, const uint8_t *key, size_t key_len) {
    for (size_t i = 0; i < t->count; i++)
        if (t->entries[i].key.len == key_len && memcmp(t->entries[i].key.data, key, key_len) == 0)
            return &t->entries[i];
    return NULL;
}

static int table_put(table *t, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len) {
    entry *e = table_find(t, key, key_len);
    if (!e) {
        if (t->count == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 8;
            entry *grown = realloc(t->entries, cap * sizeof(entry));
            if (!grown) return SG_ERR_NOMEM;
            t->entries = grown;
            t->cap = cap;
        }
        e = &t->entries[t->count];
        memset(e, 0, sizeof(*e));
        if (blob_set(&e->key, key, key_len) != 0) return SG_ERR_NOMEM;
        t->count++;
    }
    return blob_set(&e->value, value, value_len) == 0 ? SG_SUCCESS : SG_ERR_NOMEM;
}

static void entry_free(entry *e) {
    free(e->key.data);
    if (e->value.data) memset(e->value.data, 0, e->value.cap);
    free(e->value.data);
}

static int table_remove(table *t, const uint8_t *key, size_t key_len) {
    entry *e = table_find(t, key, key_len);
    if (!e) return 0;
    entry_free(e);
    *e = t->entries[--t->count];
    return 1;
}

static void table_free(table *t) {
    for (size_t i = 0; i < t->count; i++) entry_free(&t->entries[i]);
    free(t->entries);
    memset(t, 0, sizeof(*t));
}

/// A copy the library owns (it frees what a load returns).
static int table_load(table *t, const uint8_t *key, size_t key_len, signal_buffer **out) {
    entry *e = table_find(t, key, key_len);
    if (!e) return 0;
    *out = signal_buffer_create(e->value.data, e->value.len);
    return *out ? 1 : SG_ERR_NOMEM;
}

// MARK: - keys

#define KEY_MAX 512

/// device id (4 bytes) then the name.
static size_t address_key(uint8_t *out, const char *name, size_t name_len, int32_t device_id) {
    if (name_len > KEY_MAX - 4) return 0;
    memcpy(out, &device_id, 4);
    memcpy(out + 4, name, name_len);
    return 4 + name_len;
}

static size_t id_key(uint8_t *out, uint32_t id) {
    memcpy(out, &id, 4);
    return 4;
}

/// device id, group id length (8 bytes), group id, sender name.
static size_t sender_key_key(uint8_t *out, const signal_protocol_sender_key_name *n) {
    if (n->group_id_len + n->sender.name_len > KEY_MAX - 12) return 0;
    uint64_t group_len = n->group_id_len;
    memcpy(out, &n->sender.device_id, 4);
    memcpy(out + 4, &group_len, 8);
    memcpy(out + 12, n->group_id, n->group_id_len);
    memcpy(out + 12 + n->group_id_len, n->sender.name, n->sender.name_len);
    return 12 + n->group_id_len + n->sender.name_len;
}

// MARK: - the store

struct memory_store {
    table sessions, pre_keys, signed_pre_keys, identities, sender_keys;
    signal_buffer *identity_public, *identity_private;
    uint32_t registration_id;
};

static int load_session(signal_buffer **record, signal_buffer **user_record, const signal_protocol_address *address,
                        void *user_data) {
    (void)user_record;
    memory_store *s = user_data;
    uint8_t key[KEY_MAX];
    size_t key_len = address_key(key, address->name, address->name_len, address->device_id);
    if (!key_len) return SG_ERR_INVAL;
    return table_load(&s->sessions, key, key_len, record);
}

static int get_sub_device_sessions(signal_int_list **sessions, const char *name, size_t name_len, void *user_data) {
    memory_store *s = user_data;
    signal_int_list *list = signal_int_list_alloc();
    if (!list) return SG_ERR_NOMEM;
    for (size_t i = 0; i < s->sessions.count; i++) {
        const blob *k = &s->sessions.entries[i].key;
        if (k->len == 4 + name_len && memcmp(k->data + 4, name, name_len) == 0) {
            int32_t device_id;
            memcpy(&device_id, k->data, 4);
            if (signal_int_list_push_back(list, device_id) != 0) {
                signal_int_list_free(list);
                return SG_ERR_NOMEM;
            }
        }
    }
    *sessions = list;
    return (int)signal_int_list_size(list);
}

static int store_session(const signal_protocol_address *address, uint8_t *record, size_t record_len,
                         uint8_t *user_record, size_t user_record_len, void *user_data) {
    (void)user_record, (void)user_record_len;
    memory_store *s = user_data;
    uint8_t key[KEY_MAX];
    size_t key_len = address_key(key, address->name, address->name_len, address->device_id);
    if (!key_len) return SG_ERR_INVAL;
    return table_put(&s->sessions, key, key_len, record, record_len);
}

static int contains_session(const signal_protocol_address *address, void *user_data) {
    memory_store *s = user_data;
    uint8_t key[KEY_MAX];
    size_t key_len = address_key(key, address->name, address->name_len, address->device_id);
    return key_len && table_find(&s->sessions, key, key_len) != NULL;
}

static int delete_session(const signal_protocol_address *address, void *user_data) {
    return memory_store_delete_session(user_data, address);
}

static int delete_all_sessions(const char *name, size_t name_len, void *user_data) {
    memory_store *s = user_data;
    int deleted = 0;
    for (size_t i = s->sessions.count; i-- > 0;) {
        entry *e = &s->sessions.entries[i];
        if (e->key.len == 4 + name_len && memcmp(e->key.data + 4, name, name_len) == 0) {
            entry_free(e);
            *e = s->sessions.entries[--s->sessions.count];
            deleted++;
        }
    }
    return deleted;
}

static int load_pre_key(signal_buffer **record, uint32_t id, void *user_data) {
    memory_store *s = user_data;
    uint8_t key[4];
    int found = table_load(&s->pre_keys, key, id_key(key, id), record);
    return found == 1 ? SG_SUCCESS : found == 0 ? SG_ERR_INVALID_KEY_ID : found;
}

static int store_pre_key(uint32_t id, uint8_t *record, size_t record_len, void *user_data) {
    memory_store *s = user_data;
    uint8_t key[4];
    return table_put(&s->pre_keys, key, id_key(key, id), record, record_len);
}

static int contains_pre_key(uint32_t id, void *user_data) {
    memory_store *s = user_data;
    uint8_t key[4];
    return table_find(&s->pre_keys, key, id_key(key, id)) != NULL;
}

static int remove_pre_key(uint32_t id, void *user_data) {
    memory_store *s = user_data;
    uint8_t key[4];
    table_remove(&s->pre_keys, key, id_key(key, id));
    return SG_SUCCESS;
}

static int load_signed_pre_key(signal_buffer **record, uint32_t id, void *user_data) {
    memory_store *s = user_data;
    uint8_t key[4];
    int found = table_load(&s->signed_pre_keys, key, id_key(key, id), record);
    return found == 1 ? SG_SUCCESS : found == 0 ? SG_ERR_INVALID_KEY_ID : found;
}

static int store_signed_pre_key(uint32_t id, uint8_t *record, size_t record_len, void *user_data) {
    memory_store *s = user_data;
    uint8_t key[4];
    return table_put(&s->signed_pre_keys, key, id_key(key, id), record, record_len);
}

static int contains_signed_pre_key(uint32_t id, void *user_data) {
    memory_store *s = user_data;
    uint8_t key[4];
    return table_find(&s->signed_pre_keys, key, id_key(key, id)) != NULL;
}

static int remove_signed_pre_key(uint32_t id, void *user_data) {
    memory_store *s = user_data;
    uint8_t key[4];
    table_remove(&s->signed_pre_keys, key, id_key(key, id));
    return SG_SUCCESS;
}

static int get_identity_key_pair(signal_buffer **public_data, signal_buffer **private_data, void *user_data) {
    memory_store *s = user_data;
    signal_buffer *pub = signal_buffer_copy(s->identity_public);
    signal_buffer *priv = signal_buffer_copy(s->identity_private);
    if (!pub || !priv) {
        signal_buffer_free(pub);
        signal_buffer_bzero_free(priv);
        return SG_ERR_NOMEM;
    }
    *public_data = pub;
    *private_data = priv;
    return SG_SUCCESS;
}

static int get_local_registration_id(void *user_data, uint32_t *registration_id) {
    *registration_id = ((memory_store *)user_data)->registration_id;
    return SG_SUCCESS;
}

static int save_identity(const signal_protocol_address *address, uint8_t *key_data, size_t key_len, void *user_data) {
    memory_store *s = user_data;
    uint8_t key[KEY_MAX];
    size_t key_len_ = address_key(key, address->name, address->name_len, address->device_id);
    if (!key_len_) return SG_ERR_INVAL;
    if (!key_data) {
        table_remove(&s->identities, key, key_len_);
        return SG_SUCCESS;
    }
    return table_put(&s->identities, key, key_len_, key_data, key_len);
}

/// Trust on first use: trusted if unknown or equal to the saved key.
static int is_trusted_identity(const signal_protocol_address *address, uint8_t *key_data, size_t key_len,
                               void *user_data) {
    memory_store *s = user_data;
    uint8_t key[KEY_MAX];
    size_t key_len_ = address_key(key, address->name, address->name_len, address->device_id);
    if (!key_len_) return SG_ERR_INVAL;
    entry *e = table_find(&s->identities, key, key_len_);
    return !e || (e->value.len == key_len && memcmp(e->value.data, key_data, key_len) == 0);
}

static int store_sender_key(const signal_protocol_sender_key_name *name, uint8_t *record, size_t record_len,
                            uint8_t *user_record, size_t user_record_len, void *user_data) {
    (void)user_record, (void)user_record_len;
    memory_store *s = user_data;
    uint8_t key[KEY_MAX];
    size_t key_len = sender_key_key(key, name);
    if (!key_len) return SG_ERR_INVAL;
    return table_put(&s->sender_keys, key, key_len, record, record_len);
}

static int load_sender_key(signal_buffer **record, signal_buffer **user_record,
                           const signal_protocol_sender_key_name *name, void *user_data) {
    (void)user_record;
    memory_store *s = user_data;
    uint8_t key[KEY_MAX];
    size_t key_len = sender_key_key(key, name);
    if (!key_len) return SG_ERR_INVAL;
    return table_load(&s->sender_keys, key, key_len, record);
}

memory_store *memory_store_create(ratchet_identity_key_pair *identity, uint32_t registration_id) {
    memory_store *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->registration_id = registration_id;
    if (ec_public_key_serialize(&s->identity_public, ratchet_identity_key_pair_get_public(identity)) != 0 ||
        ec_private_key_serialize(&s->identity_private, ratchet_identity_key_pair_get_private(identity)) != 0) {
        memory_store_free(s);
        return NULL;
    }
    return s;
}

int memory_store_install(memory_store *s, signal_protocol_store_context *context) {
    signal_protocol_session_store sessions = {
        .load_session_func = load_session,
        .get_sub_device_sessions_func = get_sub_device_sessions,
        .store_session_func = store_session,
        .contains_session_func = contains_session,
        .delete_session_func = delete_session,
        .delete_all_sessions_func = delete_all_sessions,
        .user_data = s,
    };
    signal_protocol_pre_key_store pre_keys = {
        .load_pre_key = load_pre_key,
        .store_pre_key = store_pre_key,
        .contains_pre_key = contains_pre_key,
        .remove_pre_key = remove_pre_key,
        .user_data = s,
    };
    signal_protocol_signed_pre_key_store signed_pre_keys = {
        .load_signed_pre_key = load_signed_pre_key,
        .store_signed_pre_key = store_signed_pre_key,
        .contains_signed_pre_key = contains_signed_pre_key,
        .remove_signed_pre_key = remove_signed_pre_key,
        .user_data = s,
    };
    signal_protocol_identity_key_store identities = {
        .get_identity_key_pair = get_identity_key_pair,
        .get_local_registration_id = get_local_registration_id,
        .save_identity = save_identity,
        .is_trusted_identity = is_trusted_identity,
        .user_data = s,
    };
    signal_protocol_sender_key_store sender_keys = {
        .store_sender_key = store_sender_key,
        .load_sender_key = load_sender_key,
        .user_data = s,
    };
    int r;
    if ((r = signal_protocol_store_context_set_session_store(context, &sessions)) != 0) return r;
    if ((r = signal_protocol_store_context_set_pre_key_store(context, &pre_keys)) != 0) return r;
    if ((r = signal_protocol_store_context_set_signed_pre_key_store(context, &signed_pre_keys)) != 0) return r;
    if ((r = signal_protocol_store_context_set_identity_key_store(context, &identities)) != 0) return r;
    return signal_protocol_store_context_set_sender_key_store(context, &sender_keys);
}

int memory_store_delete_session(memory_store *s, const signal_protocol_address *address) {
    uint8_t key[KEY_MAX];
    size_t key_len = address_key(key, address->name, address->name_len, address->device_id);
    return key_len ? table_remove(&s->sessions, key, key_len) : 0;
}

void memory_store_free(memory_store *s) {
    if (!s) return;
    table_free(&s->sessions);
    table_free(&s->pre_keys);
    table_free(&s->signed_pre_keys);
    table_free(&s->identities);
    table_free(&s->sender_keys);
    signal_buffer_free(s->identity_public);
    signal_buffer_bzero_free(s->identity_private);
    free(s);
}
