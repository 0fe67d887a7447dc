/// Encrypts and decrypts the messages of pairwise sessions (Double Ratchet §3.4–3.5, with
/// Bob's half of X3DH §3.4 for PreKeySignalMessages).
///
/// Every operation loads what it needs from the stores, works on copies, and writes back only
/// after it succeeded: a message that fails to decrypt — tampered, replayed, from an
/// untrusted identity, for an unknown prekey — leaves every store exactly as it was.
///
/// Concurrency: the functions are synchronous and the stores are `Sendable`, so they can be
/// called from any task. Messages of an established session update the record through
/// ``SessionStore/updateSession(for:_:)``, which ``InMemorySignalProtocolStore`` runs under its
/// lock; so do PreKeySignalMessages (the whole X3DH, decryption and commit). Processing a
/// bundle loads and stores in separate steps. Unless your store's `updateSession` is atomic,
/// serialize the operations of one address (an actor that owns the stores is the simplest
/// way: see `Docs/usage.md`).
public enum SessionCipher {
    /// Encrypts `plaintext` for `address` with the current session and advances its sending
    /// chain. Until the peer has answered, the result is a ``PreKeySignalMessage``.
    ///
    /// - Throws: ``SignalProtocolError/noSession(_:)``,
    ///   ``SignalProtocolError/untrustedIdentity(_:identity:)`` (the app no longer trusts the
    ///   session's identity), ``SignalProtocolError/storeFailure(operation:message:)``.
    public static func encrypt(
        _ plaintext: some ContiguousByteBuffer, for address: ProtocolAddress,
        sessionStore: some SessionStore, identityStore: some IdentityKeyStore
    ) throws(SignalProtocolError) -> CiphertextMessage {
        try SignalProtocolError.store("updateSession") {
            try sessionStore.updateSession(for: address) { (record: inout SessionRecord?) throws(SignalProtocolError) -> CiphertextMessage in
                guard record != nil else { throw .noSession(address) }
                let remote = record!.current.remoteIdentity
                let trusted = try SignalProtocolError.store("isTrustedIdentity") {
                    try identityStore.isTrustedIdentity(remote, for: address, direction: .sending)
                }
                guard trusted else { throw .untrustedIdentity(address, identity: remote) }
                return try record!.current.encrypt(plaintext)
            }
        }
    }

    /// ``encrypt(_:for:sessionStore:identityStore:)`` with one combined store.
    public static func encrypt(
        _ plaintext: some ContiguousByteBuffer, for address: ProtocolAddress, store: some IdentityKeyStore & SessionStore
    ) throws(SignalProtocolError) -> CiphertextMessage {
        try encrypt(plaintext, for: address, sessionStore: store, identityStore: store)
    }

    /// Decrypts a message from `address`, of any kind.
    public static func decrypt(
        _ message: CiphertextMessage, from address: ProtocolAddress,
        store: some SignalProtocolStore, random: some RandomSource = SystemRandom()
    ) throws(SignalProtocolError) -> [UInt8] {
        switch message {
        case .signal(let m):
            return try decrypt(m, from: address, sessionStore: store, random: random)
        case .preKeySignal(let m):
            return try decrypt(m, from: address, sessionStore: store, identityStore: store,
                               preKeyStore: store, signedPreKeyStore: store, random: random)
        case .hush(let m):
            return try decrypt(m, from: address, sessionStore: store, random: random)
        case .hushPreKey(let m):
            return try decrypt(m, from: address, sessionStore: store, identityStore: store,
                               preKeyStore: store, signedPreKeyStore: store, random: random)
        }
    }

    /// Decrypts a ``SignalMessage`` from `address` (FORMAT §6.4): the current session state
    /// first, then the archived ones; a state that decrypts is committed (and becomes current).
    /// If the message starts a new ratchet chain, one key pair is drawn from `random`.
    ///
    /// - Throws: ``SignalProtocolError/noSession(_:)``, ``SignalProtocolError/badMAC``,
    ///   ``SignalProtocolError/duplicateMessage(counter:)``,
    ///   ``SignalProtocolError/tooFarInFuture(counter:chainIndex:limit:)``,
    ///   ``SignalProtocolError/invalidRatchetKey``, ``SignalProtocolError/invalidCiphertext``,
    ///   store and randomness failures. Nothing changes on failure.
    public static func decrypt(
        _ message: SignalMessage, from address: ProtocolAddress,
        sessionStore: some SessionStore, random: some RandomSource = SystemRandom()
    ) throws(SignalProtocolError) -> [UInt8] {
        try decryptEstablished(message, from: address, sessionStore: sessionStore, random: random)
    }

    /// Decrypts a ``HushMessage`` from `address`, exactly as ``decrypt(_:from:sessionStore:random:)``
    /// does a ``SignalMessage``; a message of the other suite is ``SignalProtocolError/suiteMismatch(expected:received:)``.
    public static func decrypt(
        _ message: HushMessage, from address: ProtocolAddress,
        sessionStore: some SessionStore, random: some RandomSource = SystemRandom()
    ) throws(SignalProtocolError) -> [UInt8] {
        try decryptEstablished(message, from: address, sessionStore: sessionStore, random: random)
    }

    static func decryptEstablished(
        _ message: some RatchetWireMessage, from address: ProtocolAddress,
        sessionStore: some SessionStore, random: some RandomSource
    ) throws(SignalProtocolError) -> [UInt8] {
        try SignalProtocolError.store("updateSession") {
            try sessionStore.updateSession(for: address) { (record: inout SessionRecord?) throws(SignalProtocolError) -> [UInt8] in
                guard record != nil else { throw .noSession(address) }
                return try record!.decrypt(message, random: random)
            }
        }
    }

    /// Decrypts a ``PreKeySignalMessage`` from `address` (FORMAT §6.5), building the session
    /// (Bob's half of X3DH) unless a state with the message's base key already exists.
    ///
    /// Order of checks: the sender's identity is trusted for `address`
    /// (``SignalProtocolError/untrustedIdentity(_:identity:)``). Then, if a state was built
    /// from the message's base key, the message's identity key must be that state's remote
    /// identity (else ``SignalProtocolError/badMAC``: the inner MAC is checked with the
    /// state's identity, so a different key in the header is not authenticated). Otherwise the
    /// prekeys named must exist (``SignalProtocolError/unknownPreKey(_:)``). Then decryption as
    /// for a ``SignalMessage``. If the message built a new state, its base key and identity key
    /// must be prime-order points (else ``SignalProtocolError/malformed(_:)`` with
    /// ``MalformedMessage/invalidKey(field:)`` 2 or 3): a torsioned copy of a base key has the
    /// same X3DH secrets, so without this check it would build a second session from one
    /// message (a replay) or use up a one-time prekey meant for the genuine message.
    ///
    /// Atomicity and commit order: everything runs inside one
    /// ``SessionStore/updateSession(for:_:)`` call, so a store that runs it under a lock
    /// (``InMemorySignalProtocolStore``) decrypts the messages of one address one at a time —
    /// a first message delivered twice at once builds one session, and the copy is a
    /// ``SignalProtocolError/duplicateMessage(counter:)``. After a successful decryption, still
    /// inside that call: (1) the identity is saved, (2) the one-time prekey is removed, (3) the
    /// record is returned for the store to keep. If (1) or (2) throws, nothing is kept and the
    /// same message can be decrypted again later. If the store's commit (3) throws, the removed
    /// one-time prekey is stored back, so a retry can again decrypt it; only if that also fails
    /// is the message lost — never silently: the error is returned. A one-time prekey is
    /// therefore removed whenever the session built from it is kept, and a replay of a message
    /// whose session is kept finds that session (by its base key) and is a duplicate.
    public static func decrypt(
        _ message: PreKeySignalMessage, from address: ProtocolAddress,
        sessionStore: some SessionStore, identityStore: some IdentityKeyStore,
        preKeyStore: some PreKeyStore, signedPreKeyStore: some SignedPreKeyStore,
        random: some RandomSource = SystemRandom()
    ) throws(SignalProtocolError) -> [UInt8] {
        try decryptPreKey(message, from: address, sessionStore: sessionStore, identityStore: identityStore,
                          preKeyStore: preKeyStore, signedPreKeyStore: signedPreKeyStore, random: random)
    }

    /// Decrypts a ``HushPreKeyMessage`` from `address`, exactly as
    /// ``decrypt(_:from:sessionStore:identityStore:preKeyStore:signedPreKeyStore:random:)`` does
    /// a ``PreKeySignalMessage``, building a hush-1 session.
    public static func decrypt(
        _ message: HushPreKeyMessage, from address: ProtocolAddress,
        sessionStore: some SessionStore, identityStore: some IdentityKeyStore,
        preKeyStore: some PreKeyStore, signedPreKeyStore: some SignedPreKeyStore,
        random: some RandomSource = SystemRandom()
    ) throws(SignalProtocolError) -> [UInt8] {
        try decryptPreKey(message, from: address, sessionStore: sessionStore, identityStore: identityStore,
                          preKeyStore: preKeyStore, signedPreKeyStore: signedPreKeyStore, random: random)
    }

    static func decryptPreKey(
        _ message: some PreKeyWireMessage, from address: ProtocolAddress,
        sessionStore: some SessionStore, identityStore: some IdentityKeyStore,
        preKeyStore: some PreKeyStore, signedPreKeyStore: some SignedPreKeyStore,
        random: some RandomSource, postQuantum: PostQuantumReceiver? = nil
    ) throws(SignalProtocolError) -> [UInt8] {
        let trusted = try SignalProtocolError.store("isTrustedIdentity") {
            try identityStore.isTrustedIdentity(message.identityKey, for: address, direction: .receiving)
        }
        guard trusted else { throw .untrustedIdentity(address, identity: message.identityKey) }

        var removedPreKey: PreKeyRecord?
        var consumedKyberPreKey: UInt32?
        var replacedIdentity: IdentityKey??
        do {
            return try SignalProtocolError.store("updateSession") {
                try sessionStore.updateSession(for: address) { (stored: inout SessionRecord?) throws(SignalProtocolError) -> [UInt8] in
                    var record = stored
                    var usedPreKey: PreKeyRecord?
                    var builtState = false
                    if let existing = record?.state(withBaseKey: message.baseKey) {
                        guard existing.remoteIdentity == message.identityKey else { throw .badMAC }
                    } else {
                        builtState = true
                        // PQXDH (HushPQ): without a receiver for it, a KEM prekey is unknown;
                        // an X3DH message is refused when the policy requires PQXDH. Checked
                        // only for new states: a retransmission of a kept session is fine.
                        if message.kyberPreKeyID == nil, postQuantum?.requirePostQuantum == true { throw .postQuantumRequired }
                        if let kyberID = message.kyberPreKeyID, postQuantum == nil { throw .unknownPreKey(.kyber(kyberID)) }
                        guard let signedPreKey = try SignalProtocolError.store("loadSignedPreKey", {
                            try signedPreKeyStore.loadSignedPreKey(id: message.signedPreKeyID)
                        }) else { throw .unknownPreKey(.signed(message.signedPreKeyID)) }
                        if let id = message.preKeyID {
                            guard let found = try SignalProtocolError.store("loadPreKey", { try preKeyStore.loadPreKey(id: id) }) else {
                                throw .unknownPreKey(.oneTime(id))
                            }
                            usedPreKey = found
                        }
                        let identity = try SignalProtocolError.store("identityKeyPair") { try identityStore.identityKeyPair() }
                        let registrationID = try SignalProtocolError.store("localRegistrationID") { try identityStore.localRegistrationID() }
                        var kemSecret: SecureBytes?
                        if let kyberID = message.kyberPreKeyID, let ciphertext = message.kyberCiphertext, let postQuantum {
                            kemSecret = try postQuantum.decapsulate(kyberID, ciphertext)
                        }
                        let state = try SessionState.responding(
                            identity: identity, localRegistrationID: registrationID, signedPreKey: signedPreKey.keyPair,
                            oneTimePreKey: usedPreKey?.keyPair, message: message, kemSecret: kemSecret)
                        if record == nil { record = SessionRecord(current: state) } else { record!.promote(state) }
                    }
                    let plaintext = try record!.decrypt(message.inner, random: random)
                    // The keys a new state was built from must be prime-order points. Checked
                    // after decryption, so that every message libsignal rejects is rejected with
                    // libsignal's error (and forged ones cost no check); what remains is a
                    // message that decrypted with a torsioned copy of its base key — a replay.
                    if builtState {
                        guard message.baseKey.isInPrimeOrderSubgroup else { throw .malformed(.invalidKey(field: 2)) }
                        guard message.identityKey.publicKey.isInPrimeOrderSubgroup else { throw .malformed(.invalidKey(field: 3)) }
                    }

                    // Commit (protocol.md §4 step 6, pqxdh.md §5.3 step 12): consume the prekeys,
                    // then save the identity, then keep the record; whatever fails, the steps
                    // before it are undone below.
                    if builtState, let kyberID = message.kyberPreKeyID, let postQuantum {
                        try postQuantum.markUsed(kyberID)
                        consumedKyberPreKey = kyberID
                    }
                    if let usedPreKey {
                        try SignalProtocolError.store("removePreKey") { try preKeyStore.removePreKey(id: usedPreKey.id) }
                        removedPreKey = usedPreKey
                    }
                    let previous = try SignalProtocolError.store("identity") { try identityStore.identity(for: address) }
                    if previous != message.identityKey {
                        _ = try SignalProtocolError.store("saveIdentity") { try identityStore.saveIdentity(message.identityKey, for: address) }
                        replacedIdentity = previous
                    }
                    stored = record
                    return plaintext
                }
            }
        } catch {
            // A later commit step, or the store's own commit, failed: the session was not
            // kept, so the prekeys go back and a replaced identity is restored. (A first
            // identity, recorded on first use, stays: it is the key this message
            // authenticated, and a retry records it again.)
            if let removedPreKey { try? preKeyStore.storePreKey(removedPreKey) }
            if let consumedKyberPreKey { postQuantum?.restore(consumedKyberPreKey) }
            if case .some(.some(let previous)) = replacedIdentity { _ = try? identityStore.saveIdentity(previous, for: address) }
            throw error
        }
    }
}
