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

extension SHA256 {
    /// SHA-256 over data given in parts, for streams too large to hold in memory (media
    /// blobs). ``finalize()`` does not end the hasher: it returns the digest of everything
    /// added so far, and more parts may follow (each later ``finalize()`` covers them too).
    /// Not Sendable: use from one task at a time.
    public final class Hasher {
        private let context: OpaquePointer
        /// Where ``finalize()`` works, so that `context` stays open for more input.
        private let scratch: OpaquePointer

        /// A fresh hash state.
        public init() throws(CryptoError) {
            guard let ctx = EVP_MD_CTX_new() else { throw .libraryFailure(function: "EVP_MD_CTX_new") }
            guard let spare = EVP_MD_CTX_new() else {
                EVP_MD_CTX_free(ctx)
                throw .libraryFailure(function: "EVP_MD_CTX_new")
            }
            guard EVP_DigestInit_ex2(ctx, OpenSSL.sha256, nil) == 1 else {
                EVP_MD_CTX_free(ctx)
                EVP_MD_CTX_free(spare)
                throw .libraryFailure(function: "EVP_DigestInit_ex2")
            }
            context = ctx
            scratch = spare
        }

        deinit {
            EVP_MD_CTX_free(context)
            EVP_MD_CTX_free(scratch)
        }

        /// Adds `data` to the hashed input.
        public func update(_ data: some ContiguousByteBuffer) {
            data.withUnsafeBytes { input in
                if input.count > 0 { _ = EVP_DigestUpdate(context, input.baseAddress, input.count) }
            }
        }

        /// The digest of everything added so far. The hasher stays usable.
        public func finalize() -> [UInt8] {
            try! makeBytes(count: SHA256.byteCount) { (out: UnsafeMutableRawBufferPointer) throws(CryptoError) in
                var length: UInt32 = 0
                guard EVP_MD_CTX_copy_ex(scratch, context) == 1,
                      EVP_DigestFinal_ex(scratch, out.nonNullBase, &length) == 1
                else { throw .libraryFailure(function: "EVP_DigestFinal_ex") }
            }
        }
    }
}
