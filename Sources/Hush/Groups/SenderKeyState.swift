/// The chain of a sender key: like a Double Ratchet sending chain without DH steps
/// (FORMAT §8): `seed = HMAC(CK, 0x01)`, `IV || key = HKDF(seed, 0*32, "WhisperGroup", 48)`,
/// next `CK = HMAC(CK, 0x02)`.
struct SenderChainKey: Sendable {
    let key: SecureBytes
    let iteration: UInt32

    func messageKey() -> SenderMessageKey {
        let seed = HMACSHA256.secureAuthenticationCode(for: [SignalConstants.messageKeySeed], using: key)
        let material = try! HKDF.deriveKey(inputKeyMaterial: seed, salt: [UInt8](), info: SignalConstants.groupMessageKeysInfo, outputByteCount: 48)
        return SenderMessageKey(material: material, iteration: iteration)
    }

    /// The chain key of the next iteration. Callers make sure `iteration < UInt32.max`
    /// (``SignalProtocolError/chainExhausted(counter:)`` otherwise).
    func next() -> SenderChainKey {
        SenderChainKey(key: HMACSHA256.secureAuthenticationCode(for: [SignalConstants.chainKeySeed], using: key), iteration: iteration &+ 1)
    }
}

/// The keys of one group message: IV (16) || AES-256 key (32) — IV first, unlike pairwise
/// message keys.
struct SenderMessageKey: Sendable {
    let material: SecureBytes
    let iteration: UInt32

    func withKeys<R, E: Error>(_ body: (_ iv: UnsafeRawBufferPointer, _ cipherKey: UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try material.withUnsafeBytes { (m: UnsafeRawBufferPointer) throws(E) -> R in
            try body(UnsafeRawBufferPointer(rebasing: m[0..<16]), UnsafeRawBufferPointer(rebasing: m[16..<48]))
        }
    }
}

/// One sender key: id, chain, signing key and the keys skipped on the chain.
struct SenderKeyState: Sendable {
    var keyID: UInt32
    var chainKey: SenderChainKey
    var signingPublicKey: Curve25519.KeyAgreement.PublicKey
    /// Only on the sender's own device.
    var signingPrivateKey: Curve25519.KeyAgreement.PrivateKey?
    /// Oldest first, at most ``SignalConstants/maximumStoredMessageKeys``.
    var skippedKeys: [SenderMessageKey]

    /// The key for `iteration` (the same rules as a pairwise receiving chain, FORMAT §8).
    mutating func messageKey(for iteration: UInt32) throws(SignalProtocolError) -> SenderMessageKey {
        if iteration < chainKey.iteration {
            guard let index = skippedKeys.firstIndex(where: { $0.iteration == iteration }) else {
                throw .duplicateMessage(counter: iteration)
            }
            return skippedKeys.remove(at: index)
        }
        guard iteration - chainKey.iteration <= SignalConstants.maximumSkippedMessages else {
            throw .tooFarInFuture(counter: iteration, chainIndex: chainKey.iteration, limit: SignalConstants.maximumSkippedMessages)
        }
        // No chain key follows iteration UInt32.max.
        guard iteration < UInt32.max else { throw .chainExhausted(counter: iteration) }
        var current = chainKey
        while current.iteration < iteration {
            skippedKeys.append(current.messageKey())
            current = current.next()
        }
        if skippedKeys.count > SignalConstants.maximumStoredMessageKeys {
            skippedKeys.removeFirst(skippedKeys.count - SignalConstants.maximumStoredMessageKeys)
        }
        chainKey = current.next()
        return current.messageKey()
    }
}

/// All sender key states for one (group, sender), newest first (at most
/// ``SignalConstants/maximumSenderKeyStates``). A sender's own record holds its signing
/// private key; a member's holds only the public key.
public struct SenderKeyRecord: Sendable, CustomStringConvertible, CustomReflectable {
    var states: [SenderKeyState]

    init(states: [SenderKeyState]) { self.states = states }

    /// The newest state's key id, if any.
    public var currentKeyID: UInt32? { states.first?.keyID }
    /// The number of states kept.
    public var stateCount: Int { states.count }

    mutating func add(_ state: SenderKeyState) {
        states.insert(state, at: 0)
        if states.count > SignalConstants.maximumSenderKeyStates {
            states.removeLast(states.count - SignalConstants.maximumSenderKeyStates)
        }
    }

    func stateIndex(for keyID: UInt32) -> Int? { states.firstIndex { $0.keyID == keyID } }

    /// Key ids and signing public keys only: never chain or private keys.
    public var description: String {
        "SenderKeyRecord(keyIDs: \(states.map(\.keyID)), signingKeys: \(states.map { Hex.encode($0.signingPublicKey.rawRepresentation) }))"
    }

    /// Mirrors key ids only, so `dump` cannot print keys.
    public var customMirror: Mirror { Mirror(self, children: ["keyIDs": states.map(\.keyID)], displayStyle: .struct) }
}
