// olm-harness: libolm (Debian's 3.2.13, Olm double ratchet + Megolm, its own crypto) measured
// with the shared harness protocol (see PeerHarness/include/peer_harness.h and
// Benchmarks/Peers/README.md).
//
// libolm takes its randomness from the caller: the timed regions include getrandom(2) for the
// bytes an operation needs, as an application must supply them. Several libolm calls decode
// their base64 input in place (olm_decrypt, olm_create_inbound_session, olm_unpickle_session,
// olm_group_decrypt, olm_ed25519_verify): each input is used once, or copied first (the copy is
// untimed where noted). Sizes come from the *_length functions and are checked against the
// buffers. Every result is compared with olm_error().
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "../COlm/colm_shim.h" // SwiftPM passes C targets the module map, not its folder
#include "peer_harness.h"

#define BUFFER_SIZE (160 * 1024) // > a base64 Olm message of 64 KiB (~87.5 KiB) and its plaintext
#define KEY_TEXT 64              // > a base64 Curve25519/Ed25519 key (43 characters)
#define PICKLE_KEY "hush-bench pickle key, 32 bytes"

static uint8_t g_plain[65536];

static int fail(const char *what, const char *error) {
    fprintf(stderr, "libolm %s: %s failed (%s)\n", ph_current_op, what, error);
    return -1;
}

#define CHECK_ACCOUNT(call, account) \
    do { if ((call) == olm_error()) return fail(#call, olm_account_last_error(account)); } while (0)
#define CHECK_SESSION(call, session) \
    do { if ((call) == olm_error()) return fail(#call, olm_session_last_error(session)); } while (0)

static int random_fill(uint8_t *buffer, size_t len) {
    while (len > 0) {
        ssize_t got = getrandom(buffer, len, 0);
        if (got <= 0) return fail("getrandom", "no randomness");
        buffer += got;
        len -= (size_t)got;
    }
    return 0;
}

/// The value of "key":"value" in libolm's JSON (the first occurrence after `after`, if given).
static int json_string(const char *json, const char *after, const char *key, char *out, size_t *out_len) {
    const char *p = json;
    if (after && !(p = strstr(p, after))) return fail("JSON", after);
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "\"%s\":\"", key);
    if (!(p = strstr(p, pattern))) return fail("JSON", key);
    p += strlen(pattern);
    const char *end = strchr(p, '"');
    if (!end || (size_t)(end - p) >= KEY_TEXT) return fail("JSON", key);
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = 0;
    *out_len = (size_t)(end - p);
    return 0;
}

// MARK: - fixtures

typedef struct fixture {
    OlmAccount *alice_account, *bob_account;
    OlmSession *alice, *bob;  // the pair's sessions
    OlmSession *scratch;      // fresh sessions of the x3dh ops, unpickled sessions
    OlmSession *scratch_record; // the session the record_* ops pickle (alice or bob, not owned)
    OlmUtility *utility;
    OlmOutboundGroupSession *group_out;
    OlmInboundGroupSession *group_in;
    char bob_curve25519[KEY_TEXT], bob_ed25519[KEY_TEXT], bob_one_time_key[KEY_TEXT];
    size_t bob_curve25519_len, bob_ed25519_len, bob_one_time_key_len;
    uint8_t *message, *copy, *plain, *pickle, *work; // BUFFER_SIZE each
    size_t message_len, pickle_len;
    uint8_t random[256];
    uint8_t digest[32];
    ph_blobs messages;
    int turn; // ping_pong: 0 = Alice sends next
} fixture;

static void fixture_free(void *state) {
    fixture *f = state;
    if (!f) return;
    if (f->alice_account) olm_clear_account(f->alice_account);
    if (f->bob_account) olm_clear_account(f->bob_account);
    if (f->alice) olm_clear_session(f->alice);
    if (f->bob) olm_clear_session(f->bob);
    if (f->scratch) olm_clear_session(f->scratch);
    if (f->utility) olm_clear_utility(f->utility);
    if (f->group_out) olm_clear_outbound_group_session(f->group_out);
    if (f->group_in) olm_clear_inbound_group_session(f->group_in);
    // libolm constructs its objects at the start of the memory it is given.
    void *objects[] = {f->alice_account, f->bob_account, f->alice, f->bob, f->scratch, f->utility, f->group_out, f->group_in,
                       f->message, f->copy, f->plain, f->pickle, f->work};
    for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) free(objects[i]);
    ph_blobs_free(&f->messages);
    free(f);
}

static int new_account(OlmAccount **out, fixture *f) {
    void *memory = malloc(olm_account_size());
    if (!memory) return fail("malloc", "account");
    OlmAccount *account = olm_account(memory);
    *out = account;
    size_t len = olm_create_account_random_length(account);
    if (len > sizeof(f->random)) return fail("account random", "too long");
    if (random_fill(f->random, len) != 0) return -1;
    CHECK_ACCOUNT(olm_create_account(account, f->random, len), account);
    return 0;
}

static int new_session(OlmSession **out) {
    void *memory = malloc(olm_session_size());
    if (!memory) return fail("malloc", "session");
    *out = olm_session(memory);
    return 0;
}

/// Bob publishes one new one-time key (stored in bob_one_time_key).
static int bob_new_one_time_key(fixture *f) {
    OlmAccount *bob = f->bob_account;
    size_t len = olm_account_generate_one_time_keys_random_length(bob, 1);
    if (len > sizeof(f->random)) return fail("one-time key random", "too long");
    if (random_fill(f->random, len) != 0) return -1;
    CHECK_ACCOUNT(olm_account_generate_one_time_keys(bob, 1, f->random, len), bob);
    size_t json_len = olm_account_one_time_keys_length(bob);
    if (json_len >= BUFFER_SIZE) return fail("one-time keys", "too long");
    size_t written;
    CHECK_ACCOUNT(written = olm_account_one_time_keys(bob, f->work, json_len), bob);
    f->work[written] = 0;
    const char *json = (const char *)f->work;
    const char *key_start = strstr(json, "\"curve25519\":{\"");
    if (!key_start || !(key_start = strstr(key_start + 15, "\":\""))) return fail("one-time keys JSON", json);
    key_start += 3;
    const char *end = strchr(key_start, '"');
    if (!end || (size_t)(end - key_start) >= KEY_TEXT) return fail("one-time keys JSON", json);
    f->bob_one_time_key_len = (size_t)(end - key_start);
    memcpy(f->bob_one_time_key, key_start, f->bob_one_time_key_len);
    CHECK_ACCOUNT(olm_account_mark_keys_as_published(bob), bob);
    return 0;
}

static int fixture_init(fixture *f) {
    uint8_t **buffers[] = {&f->message, &f->copy, &f->plain, &f->pickle, &f->work};
    for (size_t i = 0; i < sizeof(buffers) / sizeof(buffers[0]); i++)
        if (!(*buffers[i] = malloc(BUFFER_SIZE))) return fail("malloc", "buffers");
    if (new_account(&f->alice_account, f) != 0 || new_account(&f->bob_account, f) != 0) return -1;
    if (new_session(&f->alice) != 0 || new_session(&f->bob) != 0 || new_session(&f->scratch) != 0) return -1;
    void *memory = malloc(olm_utility_size());
    if (!memory) return fail("malloc", "utility");
    f->utility = olm_utility(memory);
    size_t len = olm_account_identity_keys_length(f->bob_account);
    if (len >= BUFFER_SIZE) return fail("identity keys", "too long");
    size_t written;
    CHECK_ACCOUNT(written = olm_account_identity_keys(f->bob_account, f->work, len), f->bob_account);
    f->work[written] = 0;
    if (json_string((const char *)f->work, NULL, "curve25519", f->bob_curve25519, &f->bob_curve25519_len) != 0 ||
        json_string((const char *)f->work, NULL, "ed25519", f->bob_ed25519, &f->bob_ed25519_len) != 0)
        return -1;
    for (int i = 0; i < 32; i++) f->digest[i] = (uint8_t)(i * 37 + 11);
    return bob_new_one_time_key(f);
}

/// Encrypts `size` bytes into f->message (f->message_len), random bytes as the session asks.
static int encrypt_message(fixture *f, OlmSession *session, size_t size, size_t expected_type) {
    size_t type = olm_encrypt_message_type(session);
    if (type != expected_type) return fail("message type", type ? "message" : "pre-key");
    size_t random_len = olm_encrypt_random_length(session);
    if (random_len > sizeof(f->random)) return fail("encrypt random", "too long");
    if (random_len && random_fill(f->random, random_len) != 0) return -1;
    size_t len = olm_encrypt_message_length(session, size);
    if (len > BUFFER_SIZE) return fail("message length", "too long");
    CHECK_SESSION(f->message_len = olm_encrypt(session, g_plain, size, f->random, random_len, f->message, len), session);
    return 0;
}

/// Decrypts (and destroys) `message`; checks the plaintext (in full if `full`).
static int decrypt_message(fixture *f, OlmSession *session, size_t type, uint8_t *message, size_t len, size_t size,
                           int full) {
    size_t plain_len = olm_decrypt(session, type, message, len, f->plain, BUFFER_SIZE);
    if (plain_len == olm_error()) return fail("olm_decrypt", olm_session_last_error(session));
    if (plain_len != size || (full && memcmp(f->plain, g_plain, size) != 0)) return fail("plaintext check", "mismatch");
    return 0;
}

/// Alice starts a new session `session` toward Bob's identity and current one-time key and
/// encrypts `size` bytes (a pre-key message in f->message).
static int alice_first_message(fixture *f, OlmSession *session, size_t size) {
    olm_session(session);
    size_t len = olm_create_outbound_session_random_length(session);
    if (len > sizeof(f->random)) return fail("outbound random", "too long");
    if (random_fill(f->random, len) != 0) return -1;
    CHECK_SESSION(olm_create_outbound_session(session, f->alice_account, f->bob_curve25519, f->bob_curve25519_len,
                                              f->bob_one_time_key, f->bob_one_time_key_len, f->random, len),
                  session);
    return encrypt_message(f, session, size, OLM_MESSAGE_TYPE_PRE_KEY);
}

/// Bob creates `session` from the pre-key message in f->message, decrypts it and removes the
/// one-time key it used.
static int bob_first_decrypt(fixture *f, OlmSession *session, size_t size) {
    memcpy(f->copy, f->message, f->message_len); // both calls decode their input in place
    olm_session(session);
    CHECK_SESSION(olm_create_inbound_session(session, f->bob_account, f->copy, f->message_len), session);
    if (decrypt_message(f, session, OLM_MESSAGE_TYPE_PRE_KEY, f->message, f->message_len, size, 1) != 0) return -1;
    CHECK_ACCOUNT(olm_remove_one_time_keys(f->bob_account, session), f->bob_account);
    return 0;
}

static int exchange(fixture *f, OlmSession *from, OlmSession *to, size_t size) {
    if (encrypt_message(f, from, size, OLM_MESSAGE_TYPE_MESSAGE) != 0) return -1;
    return decrypt_message(f, to, OLM_MESSAGE_TYPE_MESSAGE, f->message, f->message_len, size, 1);
}

static fixture *new_fixture(int session) {
    fixture *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    int r = fixture_init(f);
    if (r == 0 && session) r = alice_first_message(f, f->alice, 100);
    if (r == 0 && session) r = bob_first_decrypt(f, f->bob, 100);
    if (r == 0 && session == 2) r = exchange(f, f->bob, f->alice, 100); // both have sent and received
    if (r != 0) {
        fixture_free(f);
        return NULL;
    }
    return f;
}

static void *setup_bare(void) { return new_fixture(0); }
static void *setup_established(void) { return new_fixture(2); }

// MARK: - X3DH-like (Olm's triple DH with a one-time key; no signed pre key)

static int run_x3dh_initiator(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        if (alice_first_message(f, f->scratch, 100) != 0) return -1;
        olm_clear_session(f->scratch);
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

static int run_x3dh_responder(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    for (size_t i = 0; i < n; i++) {
        // Untimed: a new one-time key from Bob, Alice's first message to it, two copies of it.
        if (bob_new_one_time_key(f) != 0 || alice_first_message(f, f->alice, 100) != 0) return -1;
        memcpy(f->copy, f->message, f->message_len);
        memcpy(f->work, f->message, f->message_len);
        size_t len = f->message_len;

        uint64_t t0 = ph_now_ns();
        OlmSession *bob = olm_session(f->bob);
        size_t created = olm_create_inbound_session(bob, f->bob_account, f->copy, len);
        size_t plain_len = created == olm_error() ? created : olm_decrypt(bob, OLM_MESSAGE_TYPE_PRE_KEY, f->work, len, f->plain, BUFFER_SIZE);
        size_t removed = plain_len == olm_error() ? plain_len : olm_remove_one_time_keys(f->bob_account, bob);
        *elapsed += ph_now_ns() - t0;
        if (created == olm_error()) return fail("olm_create_inbound_session", olm_session_last_error(bob));
        if (plain_len == olm_error()) return fail("olm_decrypt", olm_session_last_error(bob));
        if (removed == olm_error()) return fail("olm_remove_one_time_keys", olm_account_last_error(f->bob_account));
        if (plain_len != 100) return fail("plaintext check", "length");
        olm_clear_session(bob);
    }
    return 0;
}

// MARK: - steady state

static int run_encrypt_100(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++)
        if (encrypt_message(f, f->alice, 100, OLM_MESSAGE_TYPE_MESSAGE) != 0) return -1;
    *elapsed = ph_now_ns() - t0;
    return 0;
}

static int prepare_decrypt_100(void *state, size_t n) {
    fixture *f = state;
    ph_blobs_clear(&f->messages);
    for (size_t i = 0; i < n; i++) {
        if (encrypt_message(f, f->alice, 100, OLM_MESSAGE_TYPE_MESSAGE) != 0) return -1;
        if (ph_blobs_append(&f->messages, f->message, f->message_len) != 0) return fail("malloc", "messages");
    }
    return 0;
}

static int run_decrypt_100(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *message = ph_blobs_at(&f->messages, i, &len);
        if (decrypt_message(f, f->bob, OLM_MESSAGE_TYPE_MESSAGE, message, len, 100, 0) != 0) return -1;
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

/// Strict alternation starting with Alice (Bob spoke last): every encrypt makes a new ratchet
/// key (32 random bytes) and every decrypt does the matching DH ratchet step.
static int run_ping_pong(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        OlmSession *from = f->turn ? f->bob : f->alice, *to = f->turn ? f->alice : f->bob;
        f->turn ^= 1;
        if (encrypt_message(f, from, 100, OLM_MESSAGE_TYPE_MESSAGE) != 0 ||
            decrypt_message(f, to, OLM_MESSAGE_TYPE_MESSAGE, f->message, f->message_len, 100, 0) != 0)
            return -1;
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

static int roundtrip(fixture *f, size_t n, size_t size, uint64_t *elapsed) {
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        if (encrypt_message(f, f->alice, size, OLM_MESSAGE_TYPE_MESSAGE) != 0 ||
            decrypt_message(f, f->bob, OLM_MESSAGE_TYPE_MESSAGE, f->message, f->message_len, size, i == 0) != 0)
            return -1;
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

static int run_roundtrip_1k(void *state, size_t n, uint64_t *elapsed) { return roundtrip(state, n, 1024, elapsed); }
static int run_roundtrip_64k(void *state, size_t n, uint64_t *elapsed) { return roundtrip(state, n, 65536, elapsed); }

// MARK: - session pickles (libolm's records: AES-256-CBC + HMAC under a key, base64)

/// The session `record_*` ops pickle: Alice's for *_fresh, Bob's for *_2000.
static int pickle_record(fixture *f, OlmSession *session) {
    size_t len = olm_pickle_session_length(session);
    if (len > BUFFER_SIZE) return fail("pickle length", "too long");
    CHECK_SESSION(f->pickle_len = olm_pickle_session(session, PICKLE_KEY, 32, f->pickle, len), session);
    f->scratch_record = session;
    return 0;
}

/// Alice's session right after the handshake (Alice → Bob, Bob → Alice).
static void *setup_record_fresh(void) {
    fixture *f = new_fixture(2);
    if (f && pickle_record(f, f->alice) != 0) {
        fixture_free(f);
        return NULL;
    }
    return f;
}

/// Bob's session after Alice's message with counter 2000 on a new chain arrived first. libolm
/// keeps at most 40 skipped message keys (MAX_MESSAGE_KEYS), so its pickle holds 40, not 2000.
static void *setup_record_2000(void) {
    fixture *f = new_fixture(2); // Alice sends on a new chain
    if (!f) return NULL;
    int r = 0;
    for (int i = 0; r == 0 && i <= 2000; i++) r = encrypt_message(f, f->alice, 100, OLM_MESSAGE_TYPE_MESSAGE);
    if (r == 0) r = decrypt_message(f, f->bob, OLM_MESSAGE_TYPE_MESSAGE, f->message, f->message_len, 100, 1);
    if (r == 0) r = pickle_record(f, f->bob);
    if (r != 0) {
        fixture_free(f);
        return NULL;
    }
    return f;
}

static int run_record_serialize(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        size_t len = olm_pickle_session_length(f->scratch_record);
        if (len > BUFFER_SIZE) return fail("pickle length", "too long");
        CHECK_SESSION(olm_pickle_session(f->scratch_record, PICKLE_KEY, 32, f->work, len), f->scratch_record);
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

static int run_record_deserialize(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    for (size_t i = 0; i < n; i++) {
        memcpy(f->work, f->pickle, f->pickle_len); // untimed: olm_unpickle_session decodes in place
        uint64_t t0 = ph_now_ns();
        OlmSession *session = olm_session(f->scratch);
        size_t result = olm_unpickle_session(session, PICKLE_KEY, 32, f->work, f->pickle_len);
        *elapsed += ph_now_ns() - t0;
        if (result == olm_error()) return fail("olm_unpickle_session", olm_session_last_error(session));
    }
    return 0;
}

// MARK: - signatures (libolm signs with Ed25519, not XEdDSA)

static void *setup_signatures(void) {
    fixture *f = new_fixture(0);
    if (!f) return NULL;
    size_t len = olm_account_signature_length(f->bob_account);
    size_t written = len <= BUFFER_SIZE ? olm_account_sign(f->bob_account, f->digest, 32, f->pickle, len) : olm_error();
    if (written == olm_error()) {
        fail("olm_account_sign", olm_account_last_error(f->bob_account));
        fixture_free(f);
        return NULL;
    }
    f->pickle_len = written;
    return f;
}

static int run_sign(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        size_t len = olm_account_signature_length(f->bob_account);
        if (len > BUFFER_SIZE) return fail("signature length", "too long");
        CHECK_ACCOUNT(olm_account_sign(f->bob_account, f->digest, 32, f->work, len), f->bob_account);
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

static int run_verify(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        memcpy(f->work, f->pickle, f->pickle_len); // timed (86 bytes): the signature is decoded in place
        if (olm_ed25519_verify(f->utility, f->bob_ed25519, f->bob_ed25519_len, f->digest, 32, f->work, f->pickle_len) ==
            olm_error())
            return fail("olm_ed25519_verify", olm_utility_last_error(f->utility));
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

// MARK: - Megolm (group sessions)

static void *setup_megolm(void) {
    fixture *f = new_fixture(0);
    if (!f) return NULL;
    const char *error = NULL;
    void *out_memory = malloc(olm_outbound_group_session_size());
    void *in_memory = malloc(olm_inbound_group_session_size());
    if (out_memory) f->group_out = olm_outbound_group_session(out_memory);
    if (in_memory) f->group_in = olm_inbound_group_session(in_memory);
    if (!out_memory || !in_memory) {
        free(out_memory);
        free(in_memory);
        f->group_out = NULL;
        f->group_in = NULL;
        error = "malloc";
    }
    if (!error) {
        size_t len = olm_init_outbound_group_session_random_length(f->group_out);
        if (len > sizeof(f->random) || random_fill(f->random, len) != 0) error = "random";
        else if (olm_init_outbound_group_session(f->group_out, f->random, len) == olm_error())
            error = olm_outbound_group_session_last_error(f->group_out);
    }
    size_t key_len = 0;
    if (!error) {
        size_t len = olm_outbound_group_session_key_length(f->group_out);
        if (len > BUFFER_SIZE) error = "session key too long";
        else if ((key_len = olm_outbound_group_session_key(f->group_out, f->work, len)) == olm_error())
            error = olm_outbound_group_session_last_error(f->group_out);
    }
    if (!error && olm_init_inbound_group_session(f->group_in, f->work, key_len) == olm_error())
        error = olm_inbound_group_session_last_error(f->group_in);
    if (error) {
        fail("Megolm set-up", error);
        fixture_free(f);
        return NULL;
    }
    return f;
}

static int group_encrypt(fixture *f) {
    size_t len = olm_group_encrypt_message_length(f->group_out, 100);
    if (len > BUFFER_SIZE) return fail("group message length", "too long");
    f->message_len = olm_group_encrypt(f->group_out, g_plain, 100, f->message, len);
    if (f->message_len == olm_error()) return fail("olm_group_encrypt", olm_outbound_group_session_last_error(f->group_out));
    return 0;
}

static int run_senderkey_encrypt_100(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++)
        if (group_encrypt(f) != 0) return -1;
    *elapsed = ph_now_ns() - t0;
    return 0;
}

static int prepare_senderkey_decrypt_100(void *state, size_t n) {
    fixture *f = state;
    ph_blobs_clear(&f->messages);
    for (size_t i = 0; i < n; i++) {
        if (group_encrypt(f) != 0) return -1;
        if (ph_blobs_append(&f->messages, f->message, f->message_len) != 0) return fail("malloc", "messages");
    }
    return 0;
}

static int run_senderkey_decrypt_100(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *message = ph_blobs_at(&f->messages, i, &len);
        uint32_t index;
        size_t plain_len = olm_group_decrypt(f->group_in, message, len, f->plain, BUFFER_SIZE, &index);
        if (plain_len == olm_error()) return fail("olm_group_decrypt", olm_inbound_group_session_last_error(f->group_in));
        if (plain_len != 100) return fail("plaintext check", "length");
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

// MARK: - main

static const ph_op OPS[] = {
    {"x3dh_initiator", setup_bare, NULL, run_x3dh_initiator, fixture_free, 0},
    {"x3dh_responder", setup_bare, NULL, run_x3dh_responder, fixture_free, 0},
    {"encrypt_100", setup_established, NULL, run_encrypt_100, fixture_free, 0},
    {"decrypt_100", setup_established, prepare_decrypt_100, run_decrypt_100, fixture_free, 100000},
    {"ping_pong", setup_established, NULL, run_ping_pong, fixture_free, 0},
    {"roundtrip_1k", setup_established, NULL, run_roundtrip_1k, fixture_free, 0},
    {"roundtrip_64k", setup_established, NULL, run_roundtrip_64k, fixture_free, 0},
    {"record_serialize_fresh", setup_record_fresh, NULL, run_record_serialize, fixture_free, 0},
    {"record_deserialize_fresh", setup_record_fresh, NULL, run_record_deserialize, fixture_free, 0},
    {"record_serialize_2000", setup_record_2000, NULL, run_record_serialize, fixture_free, 0},
    {"record_deserialize_2000", setup_record_2000, NULL, run_record_deserialize, fixture_free, 0},
    {"xeddsa_sign", setup_signatures, NULL, run_sign, fixture_free, 0},
    {"xeddsa_verify", setup_signatures, NULL, run_verify, fixture_free, 0},
    {"senderkey_encrypt_100", setup_megolm, NULL, run_senderkey_encrypt_100, fixture_free, 0},
    {"senderkey_decrypt_100", setup_megolm, prepare_senderkey_decrypt_100, run_senderkey_decrypt_100, fixture_free,
     100000},
};

int main(int argc, char **argv) {
    for (size_t i = 0; i < sizeof(g_plain); i++) g_plain[i] = (uint8_t)(i * 131 + 7);
    return ph_main(argc, argv, "libolm", OPS, sizeof(OPS) / sizeof(OPS[0]));
}
