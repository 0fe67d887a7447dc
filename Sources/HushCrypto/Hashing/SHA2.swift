import CCrypto
import CSodium

/// SHA-256 (FIPS 180-4), through libcrypto: its SHA-256 uses the CPU's SHA extensions where
/// present, which libsodium 1.0.18's does not.
///
/// Not for: hashing passwords (use ``Argon2id``) or keyed hashing (use ``HMACSHA256``).
public enum SHA256 {
    /// The digest length in bytes.
    public static let byteCount = 32

    /// The SHA-256 digest of `data`.
    public static func hash(_ data: some ContiguousByteBuffer) -> [UInt8] {
        data.withUnsafeBytes { input in
            try! makeBytes(count: byteCount) { (out: UnsafeMutableRawBufferPointer) throws(CryptoError) in
                let ctx = try OpenSSL.threadDigestContext()
                var length: UInt32 = 0
                guard EVP_DigestInit_ex2(ctx, OpenSSL.sha256, nil) == 1,
                      input.count == 0 || EVP_DigestUpdate(ctx, input.baseAddress, input.count) == 1,
                      EVP_DigestFinal_ex(ctx, out.nonNullBase, &length) == 1
                else { throw .libraryFailure(function: "EVP_Digest") }
            }
        }
    }
}

/// SHA-512 (FIPS 180-4), through libsodium.
///
/// Not for: hashing passwords (use ``Argon2id``).
public enum SHA512 {
    /// The digest length in bytes.
    public static let byteCount = 64

    /// The SHA-512 digest of `data`.
    public static func hash(_ data: some ContiguousByteBuffer) -> [UInt8] {
        Sodium.ensureInitialized()
        return data.withUnsafeBytes { input in
            makeBytes(count: byteCount) { (out: UnsafeMutableRawBufferPointer) in
                _ = crypto_hash_sha512(out.nonNullBase, input.nonNullBase, UInt64(input.count))
            }
        }
    }
}
