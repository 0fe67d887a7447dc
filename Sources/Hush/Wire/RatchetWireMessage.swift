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
        RatchetKeyComparison.equals(key, serialized, at: ratchetKeyRange)
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
    var kyberPreKeyID: UInt32? { get }
    var kyberCiphertext: [UInt8]? { get }
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

/// Compares a state's ratchet key with the 32 key bytes inside a message, as four 64-bit words
/// (public values: no need for constant time). `elementsEqual` over an array and a slice went
/// byte by byte through generic iteration, several times per received message.
enum RatchetKeyComparison {
    @inline(__always)
    static func equals(_ key: Curve25519.KeyAgreement.PublicKey, _ bytes: [UInt8], at range: Range<Int>) -> Bool {
        guard range.count == 32, range.lowerBound >= 0, range.upperBound <= bytes.count else { return false }
        return key.rawRepresentation.withUnsafeBytes { k in
            bytes.withUnsafeBytes { m in
                guard k.count == 32 else { return false }
                var difference: UInt64 = 0
                for word in 0..<4 {
                    difference |= k.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self)
                        ^ m.loadUnaligned(fromByteOffset: range.lowerBound + word * 8, as: UInt64.self)
                }
                return difference == 0
            }
        }
    }
}
