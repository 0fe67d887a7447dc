/// Sender keys (libsignal's group messaging, FORMAT §8): each member creates a sender key
/// for a group and sends its ``SenderKeyDistributionMessage`` to every other member through
/// their pairwise sessions; then each group message is encrypted and signed once for all.
///
/// Security properties, plainly: members can read every message sent with a sender key from
/// the iteration they received on, and not before (forward secrecy per message key); a
/// member removed from the group can read everything until every remaining member rotates
/// (creates a new sender key and distributes it). See `Docs/groups.md`.
public enum GroupSessionBuilder {
    /// The distribution message of this device's sender key for `name` (whose `sender` is
    /// this device), creating the key first if there is none (drawing, in libsignal's order,
    /// 4 bytes for the key id, 32 for the chain key, 32 for the signing key).
    ///
    /// Later calls re-export the same key at its current iteration: a member who joins late
    /// can read from there on, not before. To stop a removed member from reading, use
    /// ``rotateSenderKey(for:store:random:)`` instead.
    public static func distributionMessage(
        for name: SenderKeyName, store: some SenderKeyStore, random: some RandomSource = SystemRandom()
    ) throws(SignalProtocolError) -> SenderKeyDistributionMessage {
        try update(name, store) { (record: inout SenderKeyRecord?) throws(SignalProtocolError) -> SenderKeyDistributionMessage in
            if record?.states.first?.signingPrivateKey == nil {
                record = SenderKeyRecord(states: [try newState(avoiding: [], random: random)])
            }
            return record!.states[0].distributionMessage
        }
    }

    /// Replaces this device's sender key for `name` with a new one (new key id, chain key and
    /// signing key, drawn as ``distributionMessage(for:store:random:)`` draws them) and
    /// returns its distribution message. Send it to the members that remain — never to one who
    /// left: from then on, ``GroupCipher/encrypt(_:for:store:random:)`` uses the new key, and a
    /// member without its distribution message cannot read (``SignalProtocolError/noSenderKey(_:keyID:)``).
    ///
    /// Members keep the states of earlier keys (up to ``SignalConstants/maximumSenderKeyStates``
    /// per sender, with their skipped keys), so messages sent before the rotation that arrive
    /// late still decrypt. On this device the earlier states lose their signing private key:
    /// nothing can be sent with them any more. A record without a key of this device gets one.
    public static func rotateSenderKey(
        for name: SenderKeyName, store: some SenderKeyStore, random: some RandomSource = SystemRandom()
    ) throws(SignalProtocolError) -> SenderKeyDistributionMessage {
        try update(name, store) { (record: inout SenderKeyRecord?) throws(SignalProtocolError) -> SenderKeyDistributionMessage in
            var rotated = record ?? SenderKeyRecord(states: [])
            let state = try newState(avoiding: Set(rotated.states.map(\.keyID)), random: random)
            for index in rotated.states.indices { rotated.states[index].signingPrivateKey = nil }
            rotated.add(state)
            record = rotated
            return state.distributionMessage
        }
    }

    /// A fresh sender key state whose key id is not in `used` (drawn again on a collision).
    private static func newState(avoiding used: Set<UInt32>, random: some RandomSource) throws(SignalProtocolError) -> SenderKeyState {
        try SignalProtocolError.crypto { () throws(CryptoError) -> SenderKeyState in
            var keyID: UInt32
            repeat {
                var idBytes: UInt32 = 0
                try withUnsafeMutableBytes(of: &idBytes) { (b: UnsafeMutableRawBufferPointer) throws(CryptoError) in try random.fill(b) }
                keyID = (UInt32(littleEndian: idBytes) & 0x7FFF_FFFF) % 0x7FFF_FFFF
            } while used.contains(keyID)
            let chainKey = try random.secureBytes(count: 32)
            let signing = try Curve25519.KeyAgreement.PrivateKey(using: random)
            return SenderKeyState(
                keyID: keyID, chainKey: SenderChainKey(key: chainKey, iteration: 0),
                signingPublicKey: signing.publicKey, signingPrivateKey: signing, skippedKeys: [])
        }
    }

    /// Stores the sender key of `name.sender` from its distribution message, as the newest
    /// state of the record (at most ``SignalConstants/maximumSenderKeyStates`` are kept).
    ///
    /// Call it only with a distribution message that arrived through the pairwise session with
    /// `name.sender`: the message itself is not authenticated.
    ///
    /// - Throws: ``SignalProtocolError/chainExhausted(counter:)`` for an iteration of
    ///   `UInt32.max` (no message could be read with it), store failures.
    public static func process(
        _ message: SenderKeyDistributionMessage, from name: SenderKeyName, store: some SenderKeyStore
    ) throws(SignalProtocolError) {
        guard message.iteration < UInt32.max else { throw .chainExhausted(counter: message.iteration) }
        try update(name, store) { (record: inout SenderKeyRecord?) in
            var updated = record ?? SenderKeyRecord(states: [])
            updated.add(SenderKeyState(
                keyID: message.keyID, chainKey: SenderChainKey(key: message.chainKey, iteration: message.iteration),
                signingPublicKey: message.signingKey, signingPrivateKey: nil, skippedKeys: []))
            record = updated
        }
    }

    /// ``SenderKeyStore/updateSenderKey(for:_:)`` with store errors as ``SignalProtocolError/storeFailure(operation:message:)``.
    static func update<R>(
        _ name: SenderKeyName, _ store: some SenderKeyStore, _ body: (inout SenderKeyRecord?) throws(SignalProtocolError) -> R
    ) throws(SignalProtocolError) -> R {
        try SignalProtocolError.store("updateSenderKey") { try store.updateSenderKey(for: name, body) }
    }
}

/// Encrypts and decrypts group messages with sender keys.
///
/// Every operation runs inside one ``SenderKeyStore/updateSenderKey(for:_:)`` call: with a
/// store that makes it atomic (``InMemorySignalProtocolStore``), concurrent encryptions get
/// distinct iterations and a message decrypted concurrently twice succeeds once.
public enum GroupCipher {
    /// Encrypts `plaintext` with this device's sender key for `name` and signs it (64 random
    /// bytes drawn from `random`).
    ///
    /// - Throws: ``SignalProtocolError/noSenderKey(_:keyID:)`` if this device has not created
    ///   its sender key (``GroupSessionBuilder/distributionMessage(for:store:random:)``);
    ///   ``SignalProtocolError/chainExhausted(counter:)`` at iteration `UInt32.max` (rotate).
    public static func encrypt(
        _ plaintext: some ContiguousByteBuffer, for name: SenderKeyName,
        store: some SenderKeyStore, random: some RandomSource = SystemRandom()
    ) throws(SignalProtocolError) -> SenderKeyMessage {
        try GroupSessionBuilder.update(name, store) { (record: inout SenderKeyRecord?) throws(SignalProtocolError) -> SenderKeyMessage in
            guard let state = record?.states.first, let signing = state.signingPrivateKey else {
                throw .noSenderKey(name, keyID: nil)
            }
            let chainKey = state.chainKey
            guard chainKey.iteration < UInt32.max else { throw .chainExhausted(counter: chainKey.iteration) }
            let messageKey = chainKey.messageKey()
            let ciphertext = try messageKey.withKeys { (iv, key) throws(SignalProtocolError) -> [UInt8] in
                try SignalProtocolError.crypto { () throws(CryptoError) in try AES.CBC.encrypt(plaintext, key: key, iv: iv) }
            }
            let message = try SenderKeyMessage(
                keyID: state.keyID, iteration: chainKey.iteration, ciphertext: ciphertext, signingKey: signing, random: random)
            record!.states[0].chainKey = chainKey.next()
            return message
        }
    }

    /// Decrypts a group message from `name.sender` (FORMAT §8): finds the state with the
    /// message's key id, checks the signature first, then derives the key for the iteration.
    /// Nothing changes on failure.
    ///
    /// - Throws: ``SignalProtocolError/noSenderKey(_:keyID:)``, ``SignalProtocolError/badSignature``,
    ///   ``SignalProtocolError/duplicateMessage(counter:)``,
    ///   ``SignalProtocolError/tooFarInFuture(counter:chainIndex:limit:)``,
    ///   ``SignalProtocolError/chainExhausted(counter:)``,
    ///   ``SignalProtocolError/invalidCiphertext``.
    public static func decrypt(
        _ message: SenderKeyMessage, from name: SenderKeyName, store: some SenderKeyStore
    ) throws(SignalProtocolError) -> [UInt8] {
        try GroupSessionBuilder.update(name, store) { (stored: inout SenderKeyRecord?) throws(SignalProtocolError) -> [UInt8] in
            guard var record = stored else { throw .noSenderKey(name, keyID: message.keyID) }
            guard let index = record.stateIndex(for: message.keyID) else { throw .noSenderKey(name, keyID: message.keyID) }
            guard message.hasValidSignature(by: record.states[index].signingPublicKey) else { throw .badSignature }
            let messageKey = try record.states[index].messageKey(for: message.iteration)
            let plaintext = try messageKey.withKeys { (iv, key) throws(SignalProtocolError) -> [UInt8] in
                do { return try AES.CBC.decrypt(message.ciphertext, key: key, iv: iv) } catch { throw .invalidCiphertext }
            }
            stored = record
            return plaintext
        }
    }

    /// Parses and decrypts `bytes`.
    public static func decrypt(
        _ bytes: some ContiguousByteBuffer, from name: SenderKeyName, store: some SenderKeyStore
    ) throws(SignalProtocolError) -> [UInt8] {
        try decrypt(try SenderKeyMessage(serialized: bytes), from: name, store: store)
    }
}

extension SenderKeyState {
    /// The distribution message of this state at its current iteration.
    var distributionMessage: SenderKeyDistributionMessage {
        SenderKeyDistributionMessage(keyID: keyID, iteration: chainKey.iteration, chainKey: chainKey.key, signingKey: signingPublicKey)
    }
}
