import CCrypto
import CSodium

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
    ///
    /// RFC 2104 §2 on libcrypto's SHA-256 compression (`SHA256_Init/Update/Final`, which uses
    /// the CPU's SHA extensions): `H((K0 ^ opad) || H((K0 ^ ipad) || text))`, where `K0` is the
    /// key zero-padded to 64 bytes, or its SHA-256 digest first if it is longer. This is the
    /// construction only; the hash is libcrypto's. It runs with no heap allocation, which makes
    /// a short HMAC ≈4–5× cheaper than OpenSSL 3's `EVP_MAC` (whose re-keying frees and
    /// re-allocates three digest contexts). Every intermediate value is wiped before return.
    /// `HMACDifferentialTests` checks it against `EVP_MAC` on random inputs.
    package static func compute(
        into out: UnsafeMutableRawBufferPointer,
        key: some ContiguousByteBuffer,
        parts part1: some ContiguousByteBuffer,
        _ part2: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        _ part3: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) throws(CryptoError) {
        precondition(out.count >= byteCount)
        let blockSize = 64
        // Scratch on the stack: the padded key block, the inner digest and both hash states.
        let stateSize = MemoryLayout<SHA256_CTX>.stride
        withUnsafeTemporaryAllocation(byteCount: blockSize + byteCount + 2 * stateSize, alignment: 16) { scratch in
            let pad = scratch.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let innerDigest = pad + blockSize
            let inner = UnsafeMutableRawPointer(innerDigest + byteCount).bindMemory(to: SHA256_CTX.self, capacity: 2)
            let outer = inner + 1
            defer { sodium_memzero_shim(scratch) }

            // K0 (RFC 2104 §2, step 1-3).
            pad.initialize(repeating: 0, count: blockSize)
            key.withUnsafeBytes { k in
                if k.count > blockSize {
                    SHA256_Init(inner)
                    SHA256_Update(inner, k.baseAddress, k.count)
                    SHA256_Final(pad, inner)
                } else if k.count > 0 {
                    pad.update(from: k.baseAddress!.assumingMemoryBound(to: UInt8.self), count: k.count)
                }
            }
            // Inner hash: H((K0 ^ ipad) || text).
            for i in 0..<blockSize { pad[i] ^= 0x36 }
            SHA256_Init(inner)
            SHA256_Update(inner, pad, blockSize)
            part1.withUnsafeBytes { m in if m.count > 0 { SHA256_Update(inner, m.baseAddress, m.count) } }
            if part2.count > 0 { SHA256_Update(inner, part2.baseAddress, part2.count) }
            if part3.count > 0 { SHA256_Update(inner, part3.baseAddress, part3.count) }
            SHA256_Final(innerDigest, inner)
            // Outer hash: H((K0 ^ opad) || inner). 0x36 ^ 0x5c turns ipad into opad.
            for i in 0..<blockSize { pad[i] ^= 0x36 ^ 0x5c }
            SHA256_Init(outer)
            SHA256_Update(outer, pad, blockSize)
            SHA256_Update(outer, innerDigest, byteCount)
            SHA256_Final(out.baseAddress!.assumingMemoryBound(to: UInt8.self), outer)
        }
    }

    /// The same HMAC through libcrypto's `EVP_MAC` (a fresh context per call), kept as the
    /// reference that the differential tests compare ``compute(into:key:parts:_:_:)`` with.
    static func referenceEVP(key: [UInt8], message: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard let ctx = EVP_MAC_CTX_dup(OpenSSL.hmacSHA256Template) else { throw .libraryFailure(function: "EVP_MAC_CTX_dup") }
        defer { EVP_MAC_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: byteCount)
        var written = 0
        let ok = key.withUnsafeBytes { k in message.withUnsafeBytes { m in
            EVP_MAC_init(ctx, k.nonNullBase, k.count, nil) == 1
                && (m.count == 0 || EVP_MAC_update(ctx, m.nonNullBase, m.count) == 1)
                && EVP_MAC_final(ctx, &out, &written, byteCount) == 1
        } }
        guard ok, written == byteCount else { throw .libraryFailure(function: "EVP_MAC") }
        return out
    }
}

@inline(__always)
private func sodium_memzero_shim(_ buffer: UnsafeMutableRawBufferPointer) {
    if let base = buffer.baseAddress { sodium_memzero(base, buffer.count) }
}
