/// What the ratchet engine needs from a message of any suite: its header values, and how to
/// authenticate and decrypt it with the message key material of its suite.
protocol RatchetWireMessage: Sendable {
    var suite: CipherSuite { get }
    var ratchetKey: Curve25519.KeyAgreement.PublicKey { get }
    /// Whether the message's ratchet key is `key` (compared in place, without allocating).
    func hasRatchetKey(_ key: Curve25519.KeyAgreement.PublicKey) -> Bool
    var counter: UInt32 { get }
    /// A version error for a state of version `sessionVersion`, if the message's version
    /// does not match it (only Signal v3 has versions inside a suite).
    func versionError(forSessionVersion sessionVersion: UInt8) -> SignalProtocolError?
    /// Authenticates, then decrypts. `material` is the suite's message key material.
    /// Throws ``SignalProtocolError/badMAC`` when authentication fails.
    func open(material: UnsafeRawBufferPointer, sender: IdentityKey, receiver: IdentityKey) throws(SignalProtocolError) -> [UInt8]
}

extension SignalMessage: RatchetWireMessage {
    var suite: CipherSuite { .signalV3 }

    func hasRatchetKey(_ key: Curve25519.KeyAgreement.PublicKey) -> Bool {
        key.rawRepresentation.elementsEqual(serialized[ratchetKeyRange])
    }

    func versionError(forSessionVersion sessionVersion: UInt8) -> SignalProtocolError? {
        guard version != sessionVersion else { return nil }
        return version < sessionVersion ? .legacyVersion(version) : .invalidVersion(version)
    }

    func open(material: UnsafeRawBufferPointer, sender: IdentityKey, receiver: IdentityKey) throws(SignalProtocolError) -> [UInt8] {
        let cipherKey = UnsafeRawBufferPointer(rebasing: material[0..<32])
        let macKey = UnsafeRawBufferPointer(rebasing: material[32..<64])
        let iv = UnsafeRawBufferPointer(rebasing: material[64..<80])
        guard hasValidMAC(macKey: macKey, sender: sender, receiver: receiver) else { throw .badMAC }
        // AES-256-CBC-PKCS#7 straight into the plaintext's own buffer.
        let range = ciphertextRange
        var failed = false
        let plaintext = serialized.withUnsafeBytes { raw in
            [UInt8](unsafeUninitializedCapacity: range.count) { buffer, initialized in
                do {
                    initialized = try AES.CBC.decrypt256(UnsafeRawBufferPointer(rebasing: raw[range]), key: cipherKey, iv: iv,
                                                         into: UnsafeMutableRawBufferPointer(buffer))
                } catch {
                    failed = true
                    initialized = 0
                }
            }
        }
        // A padding error after a good MAC: a broken sender, not an attacker.
        if failed { throw .invalidCiphertext }
        return plaintext
    }
}

/// What Bob's half of X3DH needs from a prekey message of any suite.
protocol PreKeyWireMessage: Sendable {
    associatedtype Inner: RatchetWireMessage
    var suite: CipherSuite { get }
    var registrationID: UInt32 { get }
    var preKeyID: UInt32? { get }
    var signedPreKeyID: UInt32 { get }
    var baseKey: Curve25519.KeyAgreement.PublicKey { get }
    var identityKey: IdentityKey { get }
    var inner: Inner { get }
}

extension PreKeySignalMessage: PreKeyWireMessage {
    var suite: CipherSuite { .signalV3 }
    var inner: SignalMessage { message }
}

extension HushPreKeyMessage: PreKeyWireMessage {
    var suite: CipherSuite { .hush1 }
    var inner: HushMessage { message }
}
