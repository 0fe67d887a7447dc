import HushCrypto

/// Limits every Noise message obeys (Noise revision 34, §3, §5.1, §12.3).
public enum NoiseLimits {
    /// The largest Noise message, handshake or transport, in bytes (§3: "All Noise messages
    /// are less than or equal to 65535 bytes in length").
    public static let maxMessageLength = 65_535
    /// The authentication tag that every encrypted field carries (§4.2: ciphertext = plaintext
    /// plus 16 bytes; ChaChaPoly's Poly1305 tag, §12.3).
    public static let tagLength = 16
    /// The largest plaintext of one transport message: the message limit minus the tag.
    public static let maxPlaintextLength = maxMessageLength - tagLength
}

/// The constants of the one suite HushNoise implements, `25519_ChaChaPoly_SHA256`, each next to
/// the section of Noise revision 34 that defines it.
enum NoiseConstants {
    /// `DHLEN` of the 25519 DH functions (§12.1).
    static let dhLength = 32
    /// `HASHLEN` of SHA256 (§12.5).
    static let hashLength = 32
    /// The cipher key length (§4.2: "cipher key `k` of 32 bytes").
    static let keyLength = 32
    /// The names of the DH, cipher and hash functions in a protocol name (§8, §12.1, §12.3, §12.5).
    static let suiteName = "25519_ChaChaPoly_SHA256"
    /// §5.1: "The maximum `n` value (2^64-1) is reserved for other use" — it is `maxnonce` of
    /// the default `REKEY` (§4.2), and a CipherState whose `n` reached it refuses to encrypt or
    /// decrypt.
    static let reservedNonce = UInt64.max

    /// The canonical encodings of the points of small order on Curve25519 (u = 0, u = 1, the
    /// two points of order 8, and u = p - 1), little-endian. X25519 with one of them gives an
    /// all-zero output whatever the private key (§12.1); HushNoise rejects them as soon as they
    /// are received (`invalidPublicKey`), before any DH. The non-canonical encodings of the same
    /// points (u + p) are rejected by the canonical-encoding check.
    static let smallOrderPoints: [[UInt8]] = [
        [UInt8](repeating: 0, count: 32),
        [1] + [UInt8](repeating: 0, count: 31),
        try! Hex.decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        try! Hex.decode("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        try! Hex.decode("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    ]
}
