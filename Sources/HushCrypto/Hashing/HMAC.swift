import CCrypto

/// HMAC-SHA256 (RFC 2104, FIPS 198-1) through libcrypto's `EVP_MAC` with a pre-fetched
/// algorithm (see `OpenSSL`): about 4–5× faster here than libsodium 1.0.18's HMAC, whose
/// SHA-256 does not use the CPU's SHA extensions.
///
/// Keys of any length are accepted, as RFC 2104 defines.
public enum HMACSHA256 {
    /// The full tag length in bytes.
    public static let byteCount = 32
    /// The shortest truncation ``isValidAuthenticationCode(_:for:using:)`` accepts. Signal's
    /// v3 messages carry 8-byte truncated tags.
    public static let minimumTruncatedByteCount = 8

    /// The 32-byte HMAC-SHA256 of `message` under `key`.
    public static func authenticationCode(
        for message: some ContiguousByteBuffer,
        using key: some ContiguousByteBuffer
    ) -> [UInt8] {
        try! makeBytes(count: byteCount) { (out: UnsafeMutableRawBufferPointer) throws(CryptoError) in
            try compute(into: out, key: key, parts: message)
        }
    }

    /// The HMAC-SHA256 of `message` under `key`, kept in wiped storage: for tags that are
    /// themselves keys (KDF chains).
    public static func secureAuthenticationCode(
        for message: some ContiguousByteBuffer,
        using key: some ContiguousByteBuffer
    ) -> SecureBytes {
        try! SecureBytes(count: byteCount) { (out: UnsafeMutableRawBufferPointer) throws(CryptoError) in
            try compute(into: out, key: key, parts: message)
        }
    }

    /// Checks `code` against the HMAC of `message` in constant time.
    ///
    /// `code` may be the full 32-byte tag or a prefix of it of at least
    /// ``minimumTruncatedByteCount`` bytes. The caller must fix the tag length from its
    /// protocol, never from the received data: a verifier that lets an attacker choose a short
    /// tag is forgeable.
    public static func isValidAuthenticationCode(
        _ code: some ContiguousByteBuffer,
        for message: some ContiguousByteBuffer,
        using key: some ContiguousByteBuffer
    ) -> Bool {
        let length = code.byteCount
        guard length >= minimumTruncatedByteCount, length <= byteCount else { return false }
        let full = secureAuthenticationCode(for: message, using: key)
        return full.withUnsafeBytes { tag in
            ConstantTime.equals(UnsafeRawBufferPointer(rebasing: tag[0..<length]), code)
        }
    }

    /// One HMAC over `part1 || part2 || part3`, written into `out` (32 bytes).
    static func compute(
        into out: UnsafeMutableRawBufferPointer,
        key: some ContiguousByteBuffer,
        parts part1: some ContiguousByteBuffer,
        _ part2: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        _ part3: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) throws(CryptoError) {
        precondition(out.count >= byteCount)
        let ctx = try OpenSSL.threadHMACContext()
        try key.withUnsafeBytes { (k: UnsafeRawBufferPointer) throws(CryptoError) in
            guard EVP_MAC_init(ctx, k.nonNullBase, k.count, nil) == 1 else {
                throw .libraryFailure(function: "EVP_MAC_init")
            }
        }
        func update(_ m: UnsafeRawBufferPointer) throws(CryptoError) {
            guard m.count == 0 || EVP_MAC_update(ctx, m.nonNullBase, m.count) == 1 else {
                throw .libraryFailure(function: "EVP_MAC_update")
            }
        }
        try part1.withUnsafeBytes { (m: UnsafeRawBufferPointer) throws(CryptoError) in try update(m) }
        try update(part2)
        try update(part3)
        var written = 0
        guard EVP_MAC_final(ctx, out.nonNullBase, &written, byteCount) == 1, written == byteCount else {
            throw .libraryFailure(function: "EVP_MAC_final")
        }
    }
}
