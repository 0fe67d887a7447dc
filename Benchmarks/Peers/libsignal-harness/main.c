// libsignal-harness: libsignal-protocol-c (Debian's 2.3.3) measured with the shared harness
// protocol (see PeerHarness/include/peer_harness.h and Benchmarks/Peers/README.md).
//
// Two parties, Alice and Bob, each with in-memory stores (memory_store.c) over one signal_context
// whose crypto provider is OpenSSL libcrypto (openssl_provider.c). Every libsignal call is
// checked; every object is released. Timed regions include creating and freeing the library
// objects an operation needs (builders, ciphers, messages, plaintext buffers), as an
// application would; untimed are only the preparations that the operation's definition
// excludes (bundle generation, resetting stores between fresh handshakes, pre-encryption).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../CLibSignalProtocolC/clibsignal_shim.h" // SwiftPM passes C targets the module map, not its folder
#include "memory_store.h"
#include "openssl_provider.h"
#include "peer_harness.h"

#define CHECK_AS(call, what)                                       \
    do {                                                           \
        int check_result_ = (call);                                \
        if (check_result_ < 0) return ph_fail(what, check_result_); \
    } while (0)
#define CHECK(call) CHECK_AS(call, #call)

static signal_context *g_context;
static const signal_protocol_address ALICE = {"alice", 5, 1};
static const signal_protocol_address BOB = {"bob", 3, 1};
static const char GROUP[] = "hush-bench-group";
static uint8_t g_plain[65536]; // message bodies: a fixed pattern, checked after decryption

// MARK: - parties and fixtures

typedef struct party {
    ratchet_identity_key_pair *identity;
    memory_store *store;
    signal_protocol_store_context *context;
} party;

typedef struct fixture {
    party alice, bob;
    session_pre_key *bob_pre_key;     // Bob's one-time pre key (id 1)
    session_pre_key_bundle *bundle;   // Bob's bundle as Alice fetched it
    session_cipher *alice_cipher;     // Alice → Bob
    session_cipher *bob_cipher;       // Bob → Alice
    ph_blobs messages;                // prepared before a batch
    session_record *record;           // record_* ops
    signal_buffer *serialized;        // record_deserialize_*, xeddsa_verify
    ec_key_pair *signing_key;         // xeddsa_*
    uint8_t digest[32];               // xeddsa_*: the signed message
    group_cipher *group_alice, *group_bob;
    signal_protocol_sender_key_name sender_name;
    int turn;                         // ping_pong: 0 = Alice sends next
} fixture;

static int party_init(party *p) {
    uint32_t registration_id;
    CHECK(signal_protocol_key_helper_generate_identity_key_pair(&p->identity, g_context));
    CHECK(signal_protocol_key_helper_generate_registration_id(&registration_id, 0, g_context));
    if (!(p->store = memory_store_create(p->identity, registration_id))) return ph_fail("memory_store_create", 0);
    CHECK(signal_protocol_store_context_create(&p->context, g_context));
    CHECK(memory_store_install(p->store, p->context));
    return 0;
}

static void party_free(party *p) {
    if (p->context) signal_protocol_store_context_destroy(p->context);
    memory_store_free(p->store);
    if (p->identity) SIGNAL_UNREF(p->identity);
}

static void fixture_free(void *state) {
    fixture *f = state;
    if (!f) return;
    if (f->alice_cipher) session_cipher_free(f->alice_cipher);
    if (f->bob_cipher) session_cipher_free(f->bob_cipher);
    if (f->group_alice) group_cipher_free(f->group_alice);
    if (f->group_bob) group_cipher_free(f->group_bob);
    if (f->bob_pre_key) SIGNAL_UNREF(f->bob_pre_key);
    if (f->bundle) SIGNAL_UNREF(f->bundle);
    if (f->record) SIGNAL_UNREF(f->record);
    if (f->signing_key) SIGNAL_UNREF(f->signing_key);
    signal_buffer_free(f->serialized);
    ph_blobs_free(&f->messages);
    party_free(&f->alice);
    party_free(&f->bob);
    free(f);
}

/// Alice and Bob with their stores; Bob has signed pre key 1 and one-time pre key 1 stored and
/// published as a bundle; both have a session_cipher toward the other (no session yet).
static int fixture_init(fixture *f) {
    CHECK(party_init(&f->alice));
    CHECK(party_init(&f->bob));
    session_signed_pre_key *signed_pre_key = NULL;
    ec_key_pair *one_time = NULL;
    CHECK(signal_protocol_key_helper_generate_signed_pre_key(&signed_pre_key, f->bob.identity, 1, 1700000000000ull,
                                                              g_context));
    int r = signal_protocol_signed_pre_key_store_key(f->bob.context, signed_pre_key);
    if (r >= 0) r = curve_generate_key_pair(g_context, &one_time);
    if (r >= 0) r = session_pre_key_create(&f->bob_pre_key, 1, one_time);
    if (r >= 0) r = signal_protocol_pre_key_store_key(f->bob.context, f->bob_pre_key);
    if (r >= 0) {
        uint32_t bob_registration_id;
        r = signal_protocol_identity_get_local_registration_id(f->bob.context, &bob_registration_id);
        if (r >= 0)
            r = session_pre_key_bundle_create(
                &f->bundle, bob_registration_id, BOB.device_id, 1, ec_key_pair_get_public(one_time), 1,
                ec_key_pair_get_public(session_signed_pre_key_get_key_pair(signed_pre_key)),
                session_signed_pre_key_get_signature(signed_pre_key),
                session_signed_pre_key_get_signature_len(signed_pre_key),
                ratchet_identity_key_pair_get_public(f->bob.identity));
    }
    if (one_time) SIGNAL_UNREF(one_time);
    SIGNAL_UNREF(signed_pre_key);
    if (r < 0) return ph_fail("Bob's pre keys and bundle", r);
    CHECK(session_cipher_create(&f->alice_cipher, f->alice.context, &BOB, g_context));
    CHECK(session_cipher_create(&f->bob_cipher, f->bob.context, &ALICE, g_context));
    return 0;
}

static int check_plaintext(signal_buffer *plaintext, size_t expected) {
    if (signal_buffer_len(plaintext) != expected || memcmp(signal_buffer_data(plaintext), g_plain, expected) != 0)
        return ph_fail("plaintext check", (long)signal_buffer_len(plaintext));
    return 0;
}

/// Alice builds a new session from Bob's bundle (dropping any earlier one) and encrypts `size`
/// bytes; the prekey message's bytes are appended to `out`.
static int alice_first_message(fixture *f, size_t size, ph_blobs *out) {
    memory_store_delete_session(f->alice.store, &BOB);
    session_builder *builder = NULL;
    CHECK(session_builder_create(&builder, f->alice.context, &BOB, g_context));
    int r = session_builder_process_pre_key_bundle(builder, f->bundle);
    session_builder_free(builder);
    CHECK_AS(r, "session_builder_process_pre_key_bundle");
    ciphertext_message *message = NULL;
    CHECK(session_cipher_encrypt(f->alice_cipher, g_plain, size, &message));
    signal_buffer *bytes = ciphertext_message_get_serialized(message);
    r = ciphertext_message_get_type(message) == CIPHERTEXT_PREKEY_TYPE ? 0 : -1;
    if (r == 0) r = ph_blobs_append(out, signal_buffer_data(bytes), signal_buffer_len(bytes));
    SIGNAL_UNREF(message);
    return r == 0 ? 0 : ph_fail("prekey message", r);
}

/// Bob takes a prekey message as a new session (dropping any earlier one, his one-time pre key
/// restored).
static int bob_first_decrypt(fixture *f, const uint8_t *bytes, size_t len, size_t size) {
    memory_store_delete_session(f->bob.store, &ALICE);
    CHECK(signal_protocol_pre_key_store_key(f->bob.context, f->bob_pre_key));
    pre_key_signal_message *message = NULL;
    CHECK(pre_key_signal_message_deserialize(&message, bytes, len, g_context));
    signal_buffer *plaintext = NULL;
    int r = session_cipher_decrypt_pre_key_signal_message(f->bob_cipher, message, NULL, &plaintext);
    SIGNAL_UNREF(message);
    CHECK_AS(r, "session_cipher_decrypt_pre_key_signal_message");
    r = check_plaintext(plaintext, size);
    signal_buffer_free(plaintext);
    return r;
}

/// Encrypts `size` bytes of a whisper (non-prekey) message; appends its bytes to `out` if given.
static int encrypt_message(session_cipher *cipher, size_t size, ph_blobs *out) {
    ciphertext_message *message = NULL;
    CHECK(session_cipher_encrypt(cipher, g_plain, size, &message));
    int r = ciphertext_message_get_type(message) == CIPHERTEXT_SIGNAL_TYPE ? 0 : -1;
    if (r == 0 && out) {
        signal_buffer *bytes = ciphertext_message_get_serialized(message);
        r = ph_blobs_append(out, signal_buffer_data(bytes), signal_buffer_len(bytes));
    }
    SIGNAL_UNREF(message);
    return r == 0 ? 0 : ph_fail("whisper message", r);
}

static int decrypt_message(session_cipher *cipher, const uint8_t *bytes, size_t len, size_t size) {
    signal_message *message = NULL;
    CHECK(signal_message_deserialize(&message, bytes, len, g_context));
    signal_buffer *plaintext = NULL;
    int r = session_cipher_decrypt_signal_message(cipher, message, NULL, &plaintext);
    SIGNAL_UNREF(message);
    CHECK_AS(r, "session_cipher_decrypt_signal_message");
    r = signal_buffer_len(plaintext) == size ? 0 : ph_fail("plaintext length", (long)signal_buffer_len(plaintext));
    signal_buffer_free(plaintext);
    return r;
}

/// One message from `from` to `to`, checked in full.
static int exchange(session_cipher *from, session_cipher *to, size_t size, ph_blobs *scratch) {
    ph_blobs_clear(scratch);
    CHECK(encrypt_message(from, size, scratch));
    size_t len;
    uint8_t *bytes = ph_blobs_at(scratch, 0, &len);
    signal_message *message = NULL;
    CHECK(signal_message_deserialize(&message, bytes, len, g_context));
    signal_buffer *plaintext = NULL;
    int r = session_cipher_decrypt_signal_message(to, message, NULL, &plaintext);
    SIGNAL_UNREF(message);
    CHECK_AS(r, "session_cipher_decrypt_signal_message");
    r = check_plaintext(plaintext, size);
    signal_buffer_free(plaintext);
    return r;
}

/// X3DH and Alice's first (prekey) message to Bob; if `established`, Bob's reply too: both
/// sides have sent and received (as Hush's benchmarks' establishedPair), and Alice's next
/// message starts a new chain.
static int establish(fixture *f, int established) {
    ph_blobs_clear(&f->messages);
    CHECK(alice_first_message(f, 100, &f->messages));
    size_t len;
    uint8_t *bytes = ph_blobs_at(&f->messages, 0, &len);
    CHECK(bob_first_decrypt(f, bytes, len, 100));
    if (!established) return 0;
    CHECK(exchange(f->bob_cipher, f->alice_cipher, 100, &f->messages));
    return 0;
}

static fixture *new_fixture(int session) {
    fixture *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    if (fixture_init(f) != 0 || (session && establish(f, session == 2) != 0)) {
        fixture_free(f);
        return NULL;
    }
    return f;
}

static void *setup_bare(void) { return new_fixture(0); }
static void *setup_established(void) { return new_fixture(2); }

// MARK: - X3DH

static int run_x3dh_initiator(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    for (size_t i = 0; i < n; i++) {
        memory_store_delete_session(f->alice.store, &BOB); // a fresh session every time (untimed)
        uint64_t t0 = ph_now_ns();
        session_builder *builder = NULL;
        CHECK(session_builder_create(&builder, f->alice.context, &BOB, g_context));
        int r = session_builder_process_pre_key_bundle(builder, f->bundle);
        session_builder_free(builder);
        CHECK_AS(r, "session_builder_process_pre_key_bundle");
        session_cipher *cipher = NULL;
        CHECK(session_cipher_create(&cipher, f->alice.context, &BOB, g_context));
        ciphertext_message *message = NULL;
        r = session_cipher_encrypt(cipher, g_plain, 100, &message);
        session_cipher_free(cipher);
        CHECK_AS(r, "session_cipher_encrypt");
        int type = ciphertext_message_get_type(message);
        SIGNAL_UNREF(message);
        *elapsed += ph_now_ns() - t0;
        if (type != CIPHERTEXT_PREKEY_TYPE) return ph_fail("prekey message type", type);
    }
    return 0;
}

static int run_x3dh_responder(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    for (size_t i = 0; i < n; i++) {
        // Untimed: Alice's first message, Bob's old session dropped, his one-time pre key back.
        ph_blobs_clear(&f->messages);
        CHECK(alice_first_message(f, 100, &f->messages));
        memory_store_delete_session(f->bob.store, &ALICE);
        CHECK(signal_protocol_pre_key_store_key(f->bob.context, f->bob_pre_key));
        size_t len;
        uint8_t *bytes = ph_blobs_at(&f->messages, 0, &len);

        uint64_t t0 = ph_now_ns();
        pre_key_signal_message *message = NULL;
        CHECK(pre_key_signal_message_deserialize(&message, bytes, len, g_context));
        session_cipher *cipher = NULL;
        int r = session_cipher_create(&cipher, f->bob.context, &ALICE, g_context);
        signal_buffer *plaintext = NULL;
        if (r >= 0) {
            r = session_cipher_decrypt_pre_key_signal_message(cipher, message, NULL, &plaintext);
            session_cipher_free(cipher);
        }
        SIGNAL_UNREF(message);
        size_t plain_len = plaintext ? signal_buffer_len(plaintext) : 0;
        signal_buffer_free(plaintext);
        *elapsed += ph_now_ns() - t0;
        CHECK_AS(r, "session_cipher_decrypt_pre_key_signal_message");
        if (plain_len != 100) return ph_fail("plaintext length", (long)plain_len);
    }
    return 0;
}

// MARK: - steady state

static int run_encrypt_100(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        ciphertext_message *message = NULL;
        CHECK(session_cipher_encrypt(f->alice_cipher, g_plain, 100, &message));
        SIGNAL_UNREF(message);
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

static int prepare_decrypt_100(void *state, size_t n) {
    fixture *f = state;
    ph_blobs_clear(&f->messages);
    for (size_t i = 0; i < n; i++) CHECK(encrypt_message(f->alice_cipher, 100, &f->messages));
    return 0;
}

static int run_decrypt_100(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *bytes = ph_blobs_at(&f->messages, i, &len);
        CHECK(decrypt_message(f->bob_cipher, bytes, len, 100));
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

/// Strict alternation starting with Alice (Bob spoke last): every message carries a new ratchet
/// key, so every decrypt is a DH ratchet step (and the next encrypt on that side uses the new
/// chain).
static int run_ping_pong(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        session_cipher *from = f->turn ? f->bob_cipher : f->alice_cipher;
        session_cipher *to = f->turn ? f->alice_cipher : f->bob_cipher;
        f->turn ^= 1;
        ciphertext_message *sent = NULL;
        CHECK(session_cipher_encrypt(from, g_plain, 100, &sent));
        signal_buffer *bytes = ciphertext_message_get_serialized(sent);
        signal_message *received = NULL;
        int r = signal_message_deserialize(&received, signal_buffer_data(bytes), signal_buffer_len(bytes), g_context);
        SIGNAL_UNREF(sent);
        CHECK_AS(r, "signal_message_deserialize");
        signal_buffer *plaintext = NULL;
        r = session_cipher_decrypt_signal_message(to, received, NULL, &plaintext);
        SIGNAL_UNREF(received);
        CHECK_AS(r, "session_cipher_decrypt_signal_message");
        size_t plain_len = signal_buffer_len(plaintext);
        signal_buffer_free(plaintext);
        if (plain_len != 100) return ph_fail("plaintext length", (long)plain_len);
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

static int roundtrip(fixture *f, size_t n, size_t size, uint64_t *elapsed) {
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        ciphertext_message *sent = NULL;
        CHECK(session_cipher_encrypt(f->alice_cipher, g_plain, size, &sent));
        signal_buffer *bytes = ciphertext_message_get_serialized(sent);
        signal_message *received = NULL;
        int r = signal_message_deserialize(&received, signal_buffer_data(bytes), signal_buffer_len(bytes), g_context);
        SIGNAL_UNREF(sent);
        CHECK_AS(r, "signal_message_deserialize");
        signal_buffer *plaintext = NULL;
        r = session_cipher_decrypt_signal_message(f->bob_cipher, received, NULL, &plaintext);
        SIGNAL_UNREF(received);
        CHECK_AS(r, "session_cipher_decrypt_signal_message");
        // Full comparison on the first message of a batch, length on the others.
        r = i == 0 ? check_plaintext(plaintext, size) : signal_buffer_len(plaintext) == size ? 0 : -1;
        signal_buffer_free(plaintext);
        if (r != 0) return ph_fail("roundtrip plaintext", r);
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

static int run_roundtrip_1k(void *state, size_t n, uint64_t *elapsed) { return roundtrip(state, n, 1024, elapsed); }
static int run_roundtrip_64k(void *state, size_t n, uint64_t *elapsed) { return roundtrip(state, n, 65536, elapsed); }

// MARK: - session records

/// Alice's record right after the handshake (X3DH, Alice → Bob, Bob → Alice).
static void *setup_record_fresh(void) {
    fixture *f = new_fixture(2);
    if (!f) return NULL;
    int r = signal_protocol_session_load_session(f->alice.context, &f->record, &BOB);
    if (r < 0) r = ph_fail("load Alice's session", r);
    if (r >= 0) r = session_record_serialize(&f->serialized, f->record);
    if (r < 0) {
        fixture_free(f);
        return NULL;
    }
    return f;
}

/// Bob's record after Alice's message with counter 2000 on a new chain arrived first: 2000
/// skipped message keys (counters 0–1999) are stored.
static void *setup_record_2000(void) {
    fixture *f = new_fixture(2); // Alice sends on a new chain
    if (!f) return NULL;
    int r = 0;
    for (int i = 0; r == 0 && i <= 2000; i++) {
        ph_blobs_clear(&f->messages);
        r = encrypt_message(f->alice_cipher, 100, &f->messages);
    }
    size_t len;
    uint8_t *bytes = r == 0 ? ph_blobs_at(&f->messages, 0, &len) : NULL;
    if (r == 0) r = decrypt_message(f->bob_cipher, bytes, len, 100);
    if (r == 0) r = signal_protocol_session_load_session(f->bob.context, &f->record, &ALICE);
    if (r < 0) r = ph_fail("Bob's record with 2000 skipped keys", r);
    if (r >= 0) r = session_record_serialize(&f->serialized, f->record);
    if (r < 0) {
        fixture_free(f);
        return NULL;
    }
    return f;
}

static int run_record_serialize(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    size_t expected = signal_buffer_len(f->serialized);
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        signal_buffer *bytes = NULL;
        CHECK(session_record_serialize(&bytes, f->record));
        size_t len = signal_buffer_len(bytes);
        signal_buffer_free(bytes);
        if (len != expected) return ph_fail("serialized length", (long)len);
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

static int run_record_deserialize(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    const uint8_t *bytes = signal_buffer_data(f->serialized);
    size_t len = signal_buffer_len(f->serialized);
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        session_record *record = NULL;
        CHECK(session_record_deserialize(&record, bytes, len, g_context));
        SIGNAL_UNREF(record);
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

// MARK: - XEdDSA

static void *setup_xeddsa(void) {
    fixture *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    int r = curve_generate_key_pair(g_context, &f->signing_key);
    for (int i = 0; i < 32; i++) f->digest[i] = (uint8_t)(i * 37 + 11);
    if (r >= 0)
        r = curve_calculate_signature(g_context, &f->serialized, ec_key_pair_get_private(f->signing_key), f->digest, 32);
    if (r < 0) {
        ph_fail("XEdDSA set-up", r);
        fixture_free(f);
        return NULL;
    }
    return f;
}

static int run_xeddsa_sign(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    const ec_private_key *key = ec_key_pair_get_private(f->signing_key);
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        signal_buffer *signature = NULL;
        CHECK(curve_calculate_signature(g_context, &signature, key, f->digest, 32));
        signal_buffer_free(signature);
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

static int run_xeddsa_verify(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    const ec_public_key *key = ec_key_pair_get_public(f->signing_key);
    const uint8_t *signature = signal_buffer_data(f->serialized);
    size_t signature_len = signal_buffer_len(f->serialized);
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        int valid = curve_verify_signature(key, f->digest, 32, signature, signature_len);
        if (valid != 1) return ph_fail("curve_verify_signature", valid);
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

// MARK: - sender keys

/// Alice creates her sender key for the group; Bob processes her distribution message.
static void *setup_sender_keys(void) {
    fixture *f = new_fixture(0);
    if (!f) return NULL;
    f->sender_name = (signal_protocol_sender_key_name){GROUP, sizeof(GROUP) - 1, ALICE};
    group_session_builder *alice_builder = NULL, *bob_builder = NULL;
    sender_key_distribution_message *created = NULL, *received = NULL;
    int r = group_session_builder_create(&alice_builder, f->alice.context, g_context);
    if (r >= 0) r = group_session_builder_create_session(alice_builder, &created, &f->sender_name);
    if (r >= 0) {
        signal_buffer *bytes = ciphertext_message_get_serialized((ciphertext_message *)created);
        r = sender_key_distribution_message_deserialize(&received, signal_buffer_data(bytes), signal_buffer_len(bytes),
                                                        g_context);
    }
    if (r >= 0) r = group_session_builder_create(&bob_builder, f->bob.context, g_context);
    if (r >= 0) r = group_session_builder_process_session(bob_builder, &f->sender_name, received);
    if (r >= 0) r = group_cipher_create(&f->group_alice, f->alice.context, &f->sender_name, g_context);
    if (r >= 0) r = group_cipher_create(&f->group_bob, f->bob.context, &f->sender_name, g_context);
    if (alice_builder) group_session_builder_free(alice_builder);
    if (bob_builder) group_session_builder_free(bob_builder);
    if (created) SIGNAL_UNREF(created);
    if (received) SIGNAL_UNREF(received);
    if (r < 0) {
        ph_fail("sender key set-up", r);
        fixture_free(f);
        return NULL;
    }
    return f;
}

static int run_senderkey_encrypt_100(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        ciphertext_message *message = NULL;
        CHECK(group_cipher_encrypt(f->group_alice, g_plain, 100, &message));
        SIGNAL_UNREF(message);
    }
    *elapsed = ph_now_ns() - t0;
    return 0;
}

static int prepare_senderkey_decrypt_100(void *state, size_t n) {
    fixture *f = state;
    ph_blobs_clear(&f->messages);
    for (size_t i = 0; i < n; i++) {
        ciphertext_message *message = NULL;
        CHECK(group_cipher_encrypt(f->group_alice, g_plain, 100, &message));
        signal_buffer *bytes = ciphertext_message_get_serialized(message);
        int r = ph_blobs_append(&f->messages, signal_buffer_data(bytes), signal_buffer_len(bytes));
        SIGNAL_UNREF(message);
        if (r != 0) return ph_fail("out of memory", r);
    }
    return 0;
}

static int run_senderkey_decrypt_100(void *state, size_t n, uint64_t *elapsed) {
    fixture *f = state;
    uint64_t t0 = ph_now_ns();
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *bytes = ph_blobs_at(&f->messages, i, &len);
        sender_key_message *message = NULL;
        CHECK(sender_key_message_deserialize(&message, bytes, len, g_context));
        signal_buffer *plaintext = NULL;
        int r = group_cipher_decrypt(f->group_bob, message, NULL, &plaintext);
        SIGNAL_UNREF(message);
        CHECK_AS(r, "group_cipher_decrypt");
        size_t plain_len = signal_buffer_len(plaintext);
        signal_buffer_free(plaintext);
        if (plain_len != 100) return ph_fail("plaintext length", (long)plain_len);
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
    {"xeddsa_sign", setup_xeddsa, NULL, run_xeddsa_sign, fixture_free, 0},
    {"xeddsa_verify", setup_xeddsa, NULL, run_xeddsa_verify, fixture_free, 0},
    {"senderkey_encrypt_100", setup_sender_keys, NULL, run_senderkey_encrypt_100, fixture_free, 0},
    {"senderkey_decrypt_100", setup_sender_keys, prepare_senderkey_decrypt_100, run_senderkey_decrypt_100,
     fixture_free, 100000},
};

int main(int argc, char **argv) {
    for (size_t i = 0; i < sizeof(g_plain); i++) g_plain[i] = (uint8_t)(i * 131 + 7);
    signal_crypto_provider provider;
    openssl_provider *openssl = openssl_provider_create(&provider);
    if (!openssl) {
        fprintf(stderr, "libsignal-harness: could not fetch the OpenSSL algorithms\n");
        return 1;
    }
    int r = signal_context_create(&g_context, NULL);
    if (r == 0) r = signal_context_set_crypto_provider(g_context, &provider);
    if (r != 0) {
        fprintf(stderr, "libsignal-harness: signal_context set-up failed (%d)\n", r);
        if (g_context) signal_context_destroy(g_context);
        openssl_provider_free(openssl);
        return 1;
    }
    int status = ph_main(argc, argv, "libsignal-protocol-c", OPS, sizeof(OPS) / sizeof(OPS[0]));
    signal_context_destroy(g_context);
    openssl_provider_free(openssl);
    return status;
}
