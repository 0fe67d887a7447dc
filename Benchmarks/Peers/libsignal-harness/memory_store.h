// In-memory stores (sessions, pre keys, signed pre keys, identities, sender keys) for one party,
// as libsignal-protocol-c's callback tables. Records are kept as byte strings in buffers that
// grow but are reused, so a store costs one copy in and one copy out per access — the minimum
// the callback API allows (libsignal frees what a load returns).
#ifndef MEMORY_STORE_H
#define MEMORY_STORE_H

#include "../CLibSignalProtocolC/clibsignal_shim.h" // SwiftPM passes C targets the module map, not its folder

typedef struct memory_store memory_store;

/// A party's store with its identity key pair and registration id.
memory_store *memory_store_create(ratchet_identity_key_pair *identity, uint32_t registration_id);
/// Installs the callback tables on `context` (the store stays owned by the caller).
int memory_store_install(memory_store *store, signal_protocol_store_context *context);
void memory_store_free(memory_store *store);

/// Drops the session with `address` (returns 1 if there was one).
int memory_store_delete_session(memory_store *store, const signal_protocol_address *address);

#endif
