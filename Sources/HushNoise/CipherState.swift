import HushCrypto

/// The `CipherState` object of Noise revision 34, §5.1: a key `k` (or empty) and a nonce `n`,
/// with the ChaChaPoly cipher functions of §12.3.
///
/// `k` lives in ``SecureBytes``. Encryption and decryption write into caller buffers (no
/// allocation); a failed decryption leaves `n` as it was (§5.1: "If an authentication failure
/// occurs in DECRYPT() then n is not incremented").
struct CipherState: Sendable {
    /// `k`; `nil` is the spec's `empty`.
    private(set) var key: SecureBytes?
    /// `n`, the nonce of the next encryption or decryption.
    var nonce: UInt64 = 0

    /// A CipherState with an empty key.
    init() {}

    /// `InitializeKey(key)` (§5.1): `k = key`, `n = 0`.
    init(key: SecureBytes) {
        precondition(key.count == NoiseConstants.keyLength)
        self.key = key
    }

    /// `HasKey()` (§5.1).
    var hasKey: Bool { key != nil }

    /// `InitializeKey(key)` (§5.1).
    mutating func initializeKey(_ key: SecureBytes) {
        self = CipherState(key: key)
    }

    /// The bytes `EncryptWithAd` adds to a plaintext: the tag when there is a key, else none.
    var overhead: Int { hasKey ? NoiseLimits.tagLength : 0 }

    /// `EncryptWithAd(ad, plaintext)` (§5.1) into `out` (`plaintext.count + overhead` bytes).
    /// `out` and `plaintext` must be the same memory or not overlap at all.
    ///
    /// - Throws: ``NoiseError/nonceExhausted`` when `n` is the reserved 2^64-1.
    mutating func encrypt(ad: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) throws(NoiseError) {
        precondition(out.count == plaintext.count + overhead)
        guard let key else {
            // No key: the "ciphertext" is the plaintext.
            if plaintext.count > 0, UnsafeRawPointer(out.baseAddress) != plaintext.baseAddress { out.copyMemory(from: plaintext) }
            return
        }
        guard nonce != NoiseConstants.reservedNonce else { throw .nonceExhausted }
        Self.withNonce(nonce) { n in
            key.withUnsafeBytes { k in
                ChaChaPoly.encrypt(plaintext, key: k, nonce: n, associatedData: ad, into: out)
            }
        }
        nonce += 1
    }

    /// `DecryptWithAd(ad, ciphertext)` (§5.1) into `out` (`ciphertext.count - overhead` bytes).
    /// `out` and `ciphertext` must start at the same address or not overlap at all. On any
    /// error `n` is unchanged and `out` holds zeros (or, without a key, is untouched).
    ///
    /// - Throws: ``NoiseError/nonceExhausted``, ``NoiseError/messageTooShort(length:minimum:)``
    ///   below the tag length, ``NoiseError/decryptionFailed`` when the tag does not verify.
    mutating func decrypt(ad: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) throws(NoiseError) {
        guard let key else {
            precondition(out.count == ciphertext.count)
            if ciphertext.count > 0, UnsafeRawPointer(out.baseAddress) != ciphertext.baseAddress { out.copyMemory(from: ciphertext) }
            return
        }
        guard nonce != NoiseConstants.reservedNonce else { throw .nonceExhausted }
        guard ciphertext.count >= NoiseLimits.tagLength else {
            throw .messageTooShort(length: ciphertext.count, minimum: NoiseLimits.tagLength)
        }
        precondition(out.count == ciphertext.count - NoiseLimits.tagLength)
        let ok = Self.withNonce(nonce) { n in
            key.withUnsafeBytes { k in
                do {
                    try ChaChaPoly.decrypt(ciphertext, key: k, nonce: n, associatedData: ad, into: out)
                    return true
                } catch {
                    return false
                }
            }
        }
        guard ok else { throw .decryptionFailed }
        nonce += 1
    }

    /// `Rekey()` (§5.1): `k = REKEY(k)`, where REKEY is §4.2's default — the first 32 bytes of
    /// `ENCRYPT(k, maxnonce, zerolen, zeros)` with `maxnonce` = 2^64-1 and `zeros` 32 zero
    /// bytes. ChaChaPoly defines no REKEY of its own (§12.3). `n` is not reset (§11.3). An empty
    /// key stays empty.
    mutating func rekey() {
        guard let key else { return }
        self.key = Self.rekeyed(key)
    }

    /// REKEY(k) (§4.2) into new wiped storage.
    static func rekeyed(_ key: SecureBytes) -> SecureBytes {
        let length = NoiseConstants.keyLength
        let encrypted = SecureBytes(count: length + NoiseLimits.tagLength) { (out: UnsafeMutableRawBufferPointer) in
            withUnsafeTemporaryAllocation(byteCount: length, alignment: 16) { zeros in
                zeros.initializeMemory(as: UInt8.self, repeating: 0)
                withNonce(NoiseConstants.reservedNonce) { n in
                    key.withUnsafeBytes { k in
                        ChaChaPoly.encrypt(UnsafeRawBufferPointer(zeros), key: k, nonce: n,
                                           associatedData: UnsafeRawBufferPointer(start: nil, count: 0), into: out)
                    }
                }
            }
        }
        return encrypted.slice(0..<length)
    }

    /// The 96-bit ChaChaPoly nonce of §12.3: 32 bits of zeros, then `n` little-endian. On the
    /// stack.
    @inline(__always)
    static func withNonce<R>(_ n: UInt64, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        var words: (UInt32, UInt32, UInt32) = (0, UInt32(truncatingIfNeeded: n).littleEndian, UInt32(truncatingIfNeeded: n >> 32).littleEndian)
        return withUnsafeBytes(of: &words) { body($0) }
    }
}
