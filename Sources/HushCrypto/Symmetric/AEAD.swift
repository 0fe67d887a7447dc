import CSodium

/// An AEAD construction (``ChaChaPoly``, ``XChaChaPoly``): its sizes and, through the
/// shared extension, `seal`/`open` and the low-level `encrypt`/`decrypt`.
public protocol AEADAlgorithm {
    /// Key length in bytes.
    static var keyByteCount: Int { get }
    /// Nonce length in bytes.
    static var nonceByteCount: Int { get }
    /// Tag length in bytes.
    static var tagByteCount: Int { get }
    /// The libsodium functions behind the algorithm (not for use outside HushCrypto).
    static var _implementation: AEADImplementation { get }
}

/// The libsodium entry points of an ``AEADAlgorithm``. Opaque outside HushCrypto.
public struct AEADImplementation: Sendable {
    typealias Encrypt = @convention(c) (
        UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<UInt64>?,
        UnsafePointer<UInt8>?, UInt64, UnsafePointer<UInt8>?, UInt64, UnsafePointer<UInt8>?,
        UnsafePointer<UInt8>, UnsafePointer<UInt8>) -> Int32
    typealias Decrypt = @convention(c) (
        UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt8>?, UnsafePointer<UInt8>, UInt64,
        UnsafePointer<UInt8>, UnsafePointer<UInt8>?, UInt64, UnsafePointer<UInt8>,
        UnsafePointer<UInt8>) -> Int32
    let encrypt: Encrypt
    let decrypt: Decrypt
}

extension AEADAlgorithm {
    static func check(key: some ContiguousByteBuffer, nonce: some ContiguousByteBuffer) throws(CryptoError) {
        guard key.byteCount == keyByteCount else { throw .invalidKeySize(actual: key.byteCount, allowed: [keyByteCount]) }
        guard nonce.byteCount == nonceByteCount else { throw .invalidNonceSize(actual: nonce.byteCount, expected: nonceByteCount) }
    }

    /// Encrypts and authenticates `plaintext`, and authenticates `associatedData`.
    /// A fresh random nonce is drawn from `random` unless `nonce` is given; never reuse a
    /// nonce with the same key.
    public static func seal(
        _ plaintext: some ContiguousByteBuffer, using key: SymmetricKey,
        nonce: [UInt8]? = nil, authenticating associatedData: some ContiguousByteBuffer = [UInt8](),
        random: some RandomSource = SystemRandom()
    ) throws(CryptoError) -> AEADSealedBox {
        let n: [UInt8]
        if let nonce { n = nonce } else { n = try random.secureBytes(count: nonceByteCount).bytes }
        let combined = try encrypt(plaintext, key: key, nonce: n, associatedData: associatedData)
        return AEADSealedBox(nonce: n, ciphertext: Array(combined.dropLast(tagByteCount)), tag: Array(combined.suffix(tagByteCount)))
    }

    /// Verifies and decrypts. Throws ``CryptoError/authenticationFailure`` for any
    /// modification of the box, the key or the associated data.
    public static func open(
        _ box: AEADSealedBox, using key: SymmetricKey,
        authenticating associatedData: some ContiguousByteBuffer = [UInt8]()
    ) throws(CryptoError) -> [UInt8] {
        try decrypt(box.ciphertext + box.tag, key: key, nonce: box.nonce, associatedData: associatedData)
    }

    /// Low-level form: returns `ciphertext || tag` for an explicit nonce.
    public static func encrypt(
        _ plaintext: some ContiguousByteBuffer, key: some ContiguousByteBuffer,
        nonce: some ContiguousByteBuffer, associatedData: some ContiguousByteBuffer
    ) throws(CryptoError) -> [UInt8] {
        Sodium.ensureInitialized()
        try check(key: key, nonce: nonce)
        let seal = _implementation.encrypt
        return plaintext.withUnsafeBytes { m in
            associatedData.withUnsafeBytes { ad in
                nonce.withUnsafeBytes { n in
                    key.withUnsafeBytes { k in
                        makeBytes(count: m.count + tagByteCount) { (out: UnsafeMutableRawBufferPointer) in
                            let c = out.nonNullBase
                            _ = seal(c, c + m.count, nil, m.nonNullBase, UInt64(m.count), ad.nonNullBase, UInt64(ad.count),
                                     nil, n.nonNullBase, k.nonNullBase)
                        }
                    }
                }
            }
        }
    }

    /// Low-level form: verifies and decrypts `ciphertext || tag` for an explicit nonce;
    /// nothing is returned unless the tag verifies.
    public static func decrypt(
        _ ciphertextAndTag: some ContiguousByteBuffer, key: some ContiguousByteBuffer,
        nonce: some ContiguousByteBuffer, associatedData: some ContiguousByteBuffer
    ) throws(CryptoError) -> [UInt8] {
        Sodium.ensureInitialized()
        try check(key: key, nonce: nonce)
        guard ciphertextAndTag.byteCount >= tagByteCount else {
            throw .invalidCiphertextLength(actual: ciphertextAndTag.byteCount)
        }
        let open = _implementation.decrypt
        return try ciphertextAndTag.withUnsafeBytes { (c: UnsafeRawBufferPointer) throws(CryptoError) in
            try associatedData.withUnsafeBytes { (ad: UnsafeRawBufferPointer) throws(CryptoError) in
                try nonce.withUnsafeBytes { (n: UnsafeRawBufferPointer) throws(CryptoError) in
                    try key.withUnsafeBytes { (k: UnsafeRawBufferPointer) throws(CryptoError) in
                        let bodyCount = c.count - tagByteCount
                        return try makeBytes(count: bodyCount) { (out: UnsafeMutableRawBufferPointer) throws(CryptoError) in
                            let status = open(out.nonNullBase, nil, c.nonNullBase, UInt64(bodyCount), c.nonNullBase + bodyCount,
                                              ad.nonNullBase, UInt64(ad.count), n.nonNullBase, k.nonNullBase)
                            guard status == 0 else {
                                out.initializeMemory(as: UInt8.self, repeating: 0)
                                throw .authenticationFailure
                            }
                        }
                    }
                }
            }
        }
    }
}

extension AEADAlgorithm {
    /// Encrypts into a caller's buffer (`plaintext.count + tagByteCount` bytes: ciphertext then
    /// tag), for protocol code that lays the output straight into its message.
    package static func encrypt(
        _ plaintext: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer,
        associatedData: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) {
        Sodium.ensureInitialized()
        precondition(key.count == keyByteCount && nonce.count == nonceByteCount && out.count == plaintext.count + tagByteCount)
        let c = out.nonNullBase
        _ = _implementation.encrypt(c, c + plaintext.count, nil, plaintext.nonNullBase, UInt64(plaintext.count),
                                    associatedData.nonNullBase, UInt64(associatedData.count), nil, nonce.nonNullBase, key.nonNullBase)
    }

    /// Verifies and decrypts `ciphertext || tag` into a caller's buffer
    /// (`ciphertextAndTag.count - tagByteCount` bytes), which is zeroed on failure.
    package static func decrypt(
        _ ciphertextAndTag: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer,
        associatedData: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(CryptoError) {
        Sodium.ensureInitialized()
        precondition(key.count == keyByteCount && nonce.count == nonceByteCount)
        guard ciphertextAndTag.count >= tagByteCount else { throw .invalidCiphertextLength(actual: ciphertextAndTag.count) }
        let bodyCount = ciphertextAndTag.count - tagByteCount
        precondition(out.count == bodyCount)
        let c = ciphertextAndTag.nonNullBase
        let status = _implementation.decrypt(out.nonNullBase, nil, c, UInt64(bodyCount), c + bodyCount,
                                             associatedData.nonNullBase, UInt64(associatedData.count), nonce.nonNullBase, key.nonNullBase)
        guard status == 0 else {
            if out.count > 0 { out.initializeMemory(as: UInt8.self, repeating: 0) }
            throw .authenticationFailure
        }
    }
}

/// The output of an AEAD seal: the nonce, the ciphertext and the 16-byte tag.
public struct AEADSealedBox: Sendable, Equatable {
    /// The nonce the box was sealed with.
    public let nonce: [UInt8]
    /// The encrypted bytes, as long as the plaintext.
    public let ciphertext: [UInt8]
    /// The 16-byte Poly1305 tag.
    public let tag: [UInt8]

    /// A box from its parts, e.g. as received. Sizes are checked when it is opened.
    public init(nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8]) {
        self.nonce = nonce
        self.ciphertext = ciphertext
        self.tag = tag
    }

    /// `nonce || ciphertext || tag`.
    public var combined: [UInt8] { nonce + ciphertext + tag }
}

/// ChaCha20-Poly1305 in its IETF form (RFC 8439): 32-byte key, 12-byte nonce, 16-byte tag.
///
/// Not for: random nonces under one key at high volume (12-byte nonces collide after about
/// 2^48 messages; prefer ``XChaChaPoly``), or messages above 256 GiB.
public enum ChaChaPoly: AEADAlgorithm {
    public static let keyByteCount = 32
    public static let nonceByteCount = 12
    public static let tagByteCount = 16
    public static let _implementation = AEADImplementation(
        encrypt: crypto_aead_chacha20poly1305_ietf_encrypt_detached,
        decrypt: crypto_aead_chacha20poly1305_ietf_decrypt_detached)
}

/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): 32-byte key, 24-byte nonce, 16-byte tag.
/// The long nonce makes random nonces safe for any practical number of messages.
///
/// Not for: deterministic encryption — like any AEAD it needs a unique nonce per message.
public enum XChaChaPoly: AEADAlgorithm {
    public static let keyByteCount = 32
    public static let nonceByteCount = 24
    public static let tagByteCount = 16
    public static let _implementation = AEADImplementation(
        encrypt: crypto_aead_xchacha20poly1305_ietf_encrypt_detached,
        decrypt: crypto_aead_xchacha20poly1305_ietf_decrypt_detached)
}
