/// A symmetric-key ratchet chain key (Double Ratchet §2.2) with its index: the key for
/// message number `index` of its chain.
///
/// `KDF_CK` (§5.2) as libsignal v3 realises it: the message key seed is `HMAC(CK, 0x01)`,
/// the next chain key `HMAC(CK, 0x02)`.
struct ChainKey: Sendable {
    /// The 32-byte chain key.
    let key: SecureBytes
    /// The number of the message whose key this chain key yields.
    let index: UInt32

    /// The message keys for message `index` (FORMAT §6.2):
    /// `HKDF(HMAC(CK, 0x01), salt = 0*32, "WhisperMessageKeys", 80)`.
    func messageKeys() -> MessageKeys {
        let seed = HMACSHA256.secureAuthenticationCode(for: [SignalConstants.messageKeySeed], using: key)
        let material = try! HKDF.deriveKey(
            inputKeyMaterial: seed, salt: [UInt8](), info: SignalConstants.messageKeysInfo,
            outputByteCount: SignalConstants.messageKeyMaterialByteCount)
        return MessageKeys(material: material, counter: index)
    }

    /// The chain key for message `index + 1`.
    func next() -> ChainKey {
        ChainKey(key: HMACSHA256.secureAuthenticationCode(for: [SignalConstants.chainKeySeed], using: key), index: index &+ 1)
    }
}

/// The keys of one message (Double Ratchet §5.2 "ENCRYPT" for libsignal v3): an AES-256 key,
/// an HMAC-SHA256 key and a CBC IV, expanded from the message key by HKDF.
struct MessageKeys: Sendable {
    /// cipher key (32) || MAC key (32) || IV (16).
    let material: SecureBytes
    /// The message number these keys belong to.
    let counter: UInt32

    func withKeys<R, E: Error>(
        _ body: (_ cipherKey: UnsafeRawBufferPointer, _ macKey: UnsafeRawBufferPointer, _ iv: UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try material.withUnsafeBytes { (m: UnsafeRawBufferPointer) throws(E) -> R in
            try body(UnsafeRawBufferPointer(rebasing: m[0..<32]),
                     UnsafeRawBufferPointer(rebasing: m[32..<64]),
                     UnsafeRawBufferPointer(rebasing: m[64..<80]))
        }
    }
}

/// The root key of the Diffie-Hellman ratchet (Double Ratchet §2.3).
struct RootKey: Sendable {
    let key: SecureBytes

    /// `KDF_RK` (§5.2, libsignal v3): `RK' || CK = HKDF(DH(ours, theirs), salt = RK,
    /// "WhisperRatchet", 64)`.
    ///
    /// - Throws: ``SignalProtocolError/invalidRatchetKey`` when the DH output is all zero.
    func step(ours: Curve25519.KeyAgreement.PrivateKey, theirs: Curve25519.KeyAgreement.PublicKey) throws(SignalProtocolError) -> (RootKey, ChainKey) {
        let shared: Curve25519.KeyAgreement.SharedSecret
        do { shared = try ours.sharedSecretFromKeyAgreement(with: theirs) } catch { throw .invalidRatchetKey }
        let derived = try! HKDF.deriveKey(inputKeyMaterial: shared, salt: key, info: SignalConstants.ratchetInfo, outputByteCount: 64)
        return (RootKey(key: derived.slice(0..<32)), ChainKey(key: derived.slice(32..<64), index: 0))
    }
}
