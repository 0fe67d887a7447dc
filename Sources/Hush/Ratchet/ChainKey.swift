/// A symmetric-key ratchet chain key (Double Ratchet §2.2) with its index: the key for
/// message number `index` of its chain.
///
/// `KDF_CK` (§5.2) as libsignal v3 realises it: the message key seed is `HMAC(CK, 0x01)`,
/// the next chain key `HMAC(CK, 0x02)`.
struct ChainKey: Sendable {
    /// The 32-byte chain key.
    private(set) var key: SecureBytes
    /// The number of the message whose key this chain key yields.
    private(set) var index: UInt32

    init(key: SecureBytes, index: UInt32) {
        self.key = key
        self.index = index
    }

    /// Calls `body` with the message key material for message `index`:
    /// `HKDF(HMAC(CK, 0x01), salt = 0*32, info = suite label, L)` (FORMAT §6.2 for v3: cipher
    /// key, MAC key and IV, L = 80; hush-1: XChaCha20-Poly1305 key and nonce, L = 56). The
    /// material lives in stack scratch that is wiped (``SecureBytes/wipe(_:)``, which the
    /// optimizer cannot remove) when `body` returns: the hot path of encrypt and decrypt
    /// allocates nothing for it.
    func withMessageKeys<R, E: Error>(
        suite: CipherSuite, _ body: (_ material: UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        let length = suite.messageKeyMaterialByteCount
        return try withUnsafeTemporaryAllocation(byteCount: 32 + length, alignment: 16) {
            (scratch: UnsafeMutableRawBufferPointer) throws(E) -> R in
            defer { SecureBytes.wipe(scratch) }
            let material = UnsafeMutableRawBufferPointer(rebasing: scratch[32...])
            key.withUnsafeBytes { k in
                Self.deriveMessageKeys(from: k, suite: suite, seed: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<32]), into: material)
            }
            return try body(UnsafeRawBufferPointer(material))
        }
    }

    /// The message keys for message `index`, in wiped storage (for skipped keys).
    func messageKeys(suite: CipherSuite) -> MessageKeys {
        key.withUnsafeBytes { k in Self.messageKeys(chainKey: k, index: index, suite: suite) }
    }

    /// The message keys derived from the 32-byte chain key `chainKey` of message `index`.
    static func messageKeys(chainKey: UnsafeRawBufferPointer, index: UInt32, suite: CipherSuite) -> MessageKeys {
        let material = SecureBytes(count: suite.messageKeyMaterialByteCount) { out in
            withUnsafeTemporaryAllocation(byteCount: 32, alignment: 16) { seed in
                defer { SecureBytes.wipe(seed) }
                deriveMessageKeys(from: chainKey, suite: suite, seed: seed, into: out)
            }
        }
        return MessageKeys(material: material, counter: index)
    }

    private static func deriveMessageKeys(from key: UnsafeRawBufferPointer, suite: CipherSuite, seed: UnsafeMutableRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
        withUnsafeBytes(of: SignalConstants.messageKeySeed) { one in
            try! HMACSHA256.compute(into: seed, key: key, parts: one)
        }
        suite.messageKeysInfo.withUnsafeBytes { info in
            HKDF.deriveKey(into: out, inputKeyMaterial: UnsafeRawBufferPointer(seed),
                           salt: UnsafeRawBufferPointer(start: nil, count: 0), info: info)
        }
    }

    /// Steps to the chain key for message `index + 1` in place (no allocation when this value
    /// owns its key storage alone). The caller makes sure `index < UInt32.max` (a message
    /// numbered `UInt32.max` is ``SignalProtocolError/chainExhausted(counter:)``).
    mutating func advance() {
        withUnsafeTemporaryAllocation(byteCount: SignalConstants.keyByteCount, alignment: 16) { next in
            defer { SecureBytes.wipe(next) }
            key.withUnsafeBytes { k in
                withUnsafeBytes(of: SignalConstants.chainKeySeed) { two in try! HMACSHA256.compute(into: next, key: k, parts: two) }
            }
            key.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(next)) }
        }
        index &+= 1
    }

    /// The chain key for message `index + 1`.
    func next() -> ChainKey {
        let nextKey = SecureBytes(count: SignalConstants.keyByteCount) { out in
            key.withUnsafeBytes { k in
                withUnsafeBytes(of: SignalConstants.chainKeySeed) { two in try! HMACSHA256.compute(into: out, key: k, parts: two) }
            }
        }
        return ChainKey(key: nextKey, index: index &+ 1)
    }
}

/// The keys of one message, kept while its message is outstanding (skipped keys): the
/// suite's message key material (v3: cipher key || MAC key || IV; hush-1: key || nonce).
struct MessageKeys: Sendable {
    let material: SecureBytes
    /// The message number these keys belong to.
    let counter: UInt32
}

/// The root key of the Diffie-Hellman ratchet (Double Ratchet §2.3).
struct RootKey: Sendable {
    let key: SecureBytes

    /// `KDF_RK` (§5.2): `RK' || CK = HKDF(DH(ours, theirs), salt = RK, info, 64)` with the
    /// suite's label ("WhisperRatchet" for v3, "hush-1/root").
    ///
    /// - Throws: ``SignalProtocolError/invalidRatchetKey`` when the DH output is all zero.
    func step(ours: Curve25519.KeyAgreement.PrivateKey, theirs: Curve25519.KeyAgreement.PublicKey, suite: CipherSuite) throws(SignalProtocolError) -> (RootKey, ChainKey) {
        let shared: Curve25519.KeyAgreement.SharedSecret
        do { shared = try ours.sharedSecretFromKeyAgreement(with: theirs) } catch { throw .invalidRatchetKey }
        let derived = try! HKDF.deriveKey(inputKeyMaterial: shared, salt: key, info: suite.ratchetInfo, outputByteCount: 64)
        return (RootKey(key: derived.slice(0..<32)), ChainKey(key: derived.slice(32..<64), index: 0))
    }
}
