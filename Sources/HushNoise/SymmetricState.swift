import HushCrypto

/// The `SymmetricState` object of Noise revision 34, §5.2: a ``CipherState``, the chaining key
/// `ck` (in ``SecureBytes``) and the handshake hash `h`, with SHA256 (§12.5).
///
/// `h` is not secret (it is exposed as the handshake hash for channel binding, §11.2) and is
/// kept in a plain array, updated in place.
struct SymmetricState: Sendable {
    var cipher = CipherState()
    /// `ck`.
    private(set) var chainingKey: SecureBytes
    /// `h`.
    private(set) var hash: [UInt8]

    /// `InitializeSymmetric(protocol_name)` (§5.2): `h` is the name zero-padded to `HASHLEN`
    /// if it fits, else `HASH(protocol_name)`; `ck = h`; the key is empty.
    init(protocolName: String) {
        let name = Array(protocolName.utf8)
        let h = name.count <= NoiseConstants.hashLength
            ? name + [UInt8](repeating: 0, count: NoiseConstants.hashLength - name.count)
            : SHA256.hash(name)
        hash = h
        chainingKey = SecureBytes(copying: h)
    }

    /// `MixKey(input_key_material)` (§5.2): `ck, temp_k = HKDF(ck, input_key_material, 2)`,
    /// then `InitializeKey(temp_k)` (HASHLEN is 32, so no truncation).
    mutating func mixKey(_ inputKeyMaterial: UnsafeRawBufferPointer) {
        let (ck, tempK) = NoiseHKDF.derive2(chainingKey: chainingKey, inputKeyMaterial: inputKeyMaterial)
        chainingKey = ck
        cipher.initializeKey(tempK)
    }

    /// `MixHash(data)` (§5.2): `h = HASH(h || data)`, in place.
    mutating func mixHash(_ data: UnsafeRawBufferPointer) {
        hash.withUnsafeMutableBytes { h in
            SHA256.hash(UnsafeRawBufferPointer(h), data, into: h)
        }
    }

    /// `EncryptAndHash(plaintext)` (§5.2) into `out` (`plaintext.count + cipher.overhead` bytes):
    /// `ciphertext = EncryptWithAd(h, plaintext)`, then `MixHash(ciphertext)`.
    mutating func encryptAndHash(_ plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) throws(NoiseError) {
        try hash.withUnsafeBytes { (h: UnsafeRawBufferPointer) throws(NoiseError) in
            try cipher.encrypt(ad: h, plaintext: plaintext, into: out)
        }
        mixHash(UnsafeRawBufferPointer(out))
    }

    /// `DecryptAndHash(ciphertext)` (§5.2) into `out` (`ciphertext.count - cipher.overhead`
    /// bytes): `plaintext = DecryptWithAd(h, ciphertext)`, then `MixHash(ciphertext)`.
    /// `out` must not overlap `ciphertext` (the ciphertext is hashed after decryption).
    mutating func decryptAndHash(_ ciphertext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) throws(NoiseError) {
        try hash.withUnsafeBytes { (h: UnsafeRawBufferPointer) throws(NoiseError) in
            try cipher.decrypt(ad: h, ciphertext: ciphertext, into: out)
        }
        mixHash(ciphertext)
    }

    /// `Split()` (§5.2): `temp_k1, temp_k2 = HKDF(ck, zerolen, 2)`; two CipherStates keyed with
    /// them, `c1` for initiator-to-responder messages, `c2` for the other direction.
    func split() -> (CipherState, CipherState) {
        let (k1, k2) = NoiseHKDF.derive2(chainingKey: chainingKey, inputKeyMaterial: UnsafeRawBufferPointer(start: nil, count: 0))
        return (CipherState(key: k1), CipherState(key: k2))
    }
}
