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
    /// can read from there on, not before.
    public static func distributionMessage(
        for name: SenderKeyName, store: some SenderKeyStore, random: some RandomSource = SystemRandom()
    ) throws(SignalProtocolError) -> SenderKeyDistributionMessage {
        var record = try SignalProtocolError.store("loadSenderKey") { try store.loadSenderKey(for: name) }
        if record?.states.first?.signingPrivateKey == nil {
            let state = try SignalProtocolError.crypto { () throws(CryptoError) -> SenderKeyState in
                var idBytes: UInt32 = 0
                try withUnsafeMutableBytes(of: &idBytes) { (b: UnsafeMutableRawBufferPointer) throws(CryptoError) in try random.fill(b) }
                let keyID = (UInt32(littleEndian: idBytes) & 0x7FFF_FFFF) % 0x7FFF_FFFF
                let chainKey = try random.secureBytes(count: 32)
                let signing = try Curve25519.KeyAgreement.PrivateKey(using: random)
                return SenderKeyState(
                    keyID: keyID, chainKey: SenderChainKey(key: chainKey, iteration: 0),
                    signingPublicKey: signing.publicKey, signingPrivateKey: signing, skippedKeys: [])
            }
            record = SenderKeyRecord(states: [state])
            try SignalProtocolError.store("storeSenderKey") { try store.storeSenderKey(record!, for: name) }
        }
        let state = record!.states[0]
        return SenderKeyDistributionMessage(
            keyID: state.keyID, iteration: state.chainKey.iteration, chainKey: state.chainKey.key, signingKey: state.signingPublicKey)
    }

    /// Stores the sender key of `name.sender` from its distribution message, as the newest
    /// state of the record (at most ``SignalConstants/maximumSenderKeyStates`` are kept).
    ///
    /// Call it only with a distribution message that arrived through the pairwise session with
    /// `name.sender`: the message itself is not authenticated.
    public static func process(
        _ message: SenderKeyDistributionMessage, from name: SenderKeyName, store: some SenderKeyStore
    ) throws(SignalProtocolError) {
        var record = try SignalProtocolError.store("loadSenderKey") { try store.loadSenderKey(for: name) } ?? SenderKeyRecord(states: [])
        record.add(SenderKeyState(
            keyID: message.keyID, chainKey: SenderChainKey(key: message.chainKey, iteration: message.iteration),
            signingPublicKey: message.signingKey, signingPrivateKey: nil, skippedKeys: []))
        try SignalProtocolError.store("storeSenderKey") { try store.storeSenderKey(record, for: name) }
    }
}

/// Encrypts and decrypts group messages with sender keys.
public enum GroupCipher {
    /// Encrypts `plaintext` with this device's sender key for `name` and signs it (64 random
    /// bytes drawn from `random`).
    ///
    /// - Throws: ``SignalProtocolError/noSenderKey(_:keyID:)`` if this device has not created
    ///   its sender key (``GroupSessionBuilder/distributionMessage(for:store:random:)``).
    public static func encrypt(
        _ plaintext: some ContiguousByteBuffer, for name: SenderKeyName,
        store: some SenderKeyStore, random: some RandomSource = SystemRandom()
    ) throws(SignalProtocolError) -> SenderKeyMessage {
        guard var record = try SignalProtocolError.store("loadSenderKey", { try store.loadSenderKey(for: name) }),
              let signing = record.states.first?.signingPrivateKey else {
            throw .noSenderKey(name, keyID: nil)
        }
        let chainKey = record.states[0].chainKey
        let messageKey = chainKey.messageKey()
        let ciphertext = try messageKey.withKeys { (iv, key) throws(SignalProtocolError) -> [UInt8] in
            try SignalProtocolError.crypto { () throws(CryptoError) in try AES.CBC.encrypt(plaintext, key: key, iv: iv) }
        }
        let message = try SenderKeyMessage(
            keyID: record.states[0].keyID, iteration: chainKey.iteration, ciphertext: ciphertext, signingKey: signing, random: random)
        record.states[0].chainKey = chainKey.next()
        try SignalProtocolError.store("storeSenderKey") { try store.storeSenderKey(record, for: name) }
        return message
    }

    /// Decrypts a group message from `name.sender` (FORMAT §8): finds the state with the
    /// message's key id, checks the signature first, then derives the key for the iteration.
    /// Nothing changes on failure.
    ///
    /// - Throws: ``SignalProtocolError/noSenderKey(_:keyID:)``, ``SignalProtocolError/badSignature``,
    ///   ``SignalProtocolError/duplicateMessage(counter:)``,
    ///   ``SignalProtocolError/tooFarInFuture(counter:chainIndex:limit:)``,
    ///   ``SignalProtocolError/invalidCiphertext``.
    public static func decrypt(
        _ message: SenderKeyMessage, from name: SenderKeyName, store: some SenderKeyStore
    ) throws(SignalProtocolError) -> [UInt8] {
        guard var record = try SignalProtocolError.store("loadSenderKey", { try store.loadSenderKey(for: name) }) else {
            throw .noSenderKey(name, keyID: message.keyID)
        }
        guard let index = record.stateIndex(for: message.keyID) else { throw .noSenderKey(name, keyID: message.keyID) }
        guard message.hasValidSignature(by: record.states[index].signingPublicKey) else { throw .badSignature }
        let messageKey = try record.states[index].messageKey(for: message.iteration)
        let plaintext = try messageKey.withKeys { (iv, key) throws(SignalProtocolError) -> [UInt8] in
            do { return try AES.CBC.decrypt(message.ciphertext, key: key, iv: iv) } catch { throw .invalidCiphertext }
        }
        try SignalProtocolError.store("storeSenderKey") { try store.storeSenderKey(record, for: name) }
        return plaintext
    }

    /// Parses and decrypts `bytes`.
    public static func decrypt(
        _ bytes: some ContiguousByteBuffer, from name: SenderKeyName, store: some SenderKeyStore
    ) throws(SignalProtocolError) -> [UInt8] {
        try decrypt(try SenderKeyMessage(serialized: bytes), from: name, store: store)
    }
}
