import CSodium

/// Argon2id (RFC 9106) through libsodium's `crypto_pwhash`: keys from passphrases.
///
/// Not for: keys that are already uniformly random (use ``HKDF``), or anything on a hot path —
/// it is slow and memory-hard by design.
public enum Argon2id {
    /// Salt length in bytes (a fresh random salt per passphrase, stored beside the result).
    public static let saltByteCount = Int(crypto_pwhash_argon2id_SALTBYTES)

    /// CPU and memory cost.
    public struct Limits: Sendable, Equatable {
        /// Number of passes (`opslimit`).
        public var operations: Int
        /// Memory in bytes (`memlimit`).
        public var memoryBytes: Int

        public init(operations: Int, memoryBytes: Int) {
            self.operations = operations
            self.memoryBytes = memoryBytes
        }

        /// libsodium's interactive limits (2 passes, 64 MiB): for online logins.
        public static let interactive = Limits(
            operations: Int(crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE), memoryBytes: Int(crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE))
        /// libsodium's moderate limits (3 passes, 256 MiB).
        public static let moderate = Limits(
            operations: Int(crypto_pwhash_argon2id_OPSLIMIT_MODERATE), memoryBytes: Int(crypto_pwhash_argon2id_MEMLIMIT_MODERATE))
        /// libsodium's sensitive limits (4 passes, 1 GiB): for keys that protect backups.
        public static let sensitive = Limits(
            operations: Int(crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE), memoryBytes: Int(crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE))
    }

    /// Derives `outputByteCount` bytes (16 or more) from `password` and a 16-byte `salt`.
    public static func deriveKey(
        fromPassword password: some ContiguousByteBuffer,
        salt: some ContiguousByteBuffer,
        outputByteCount: Int = 32,
        limits: Limits = .moderate
    ) throws(CryptoError) -> SecureBytes {
        Sodium.ensureInitialized()
        guard salt.byteCount == saltByteCount else { throw .invalidNonceSize(actual: salt.byteCount, expected: saltByteCount) }
        let minOut = Int(crypto_pwhash_argon2id_BYTES_MIN)
        guard outputByteCount >= minOut, outputByteCount <= Int(UInt32.max) else {
            throw .outputLengthOutOfRange(requested: outputByteCount, allowed: minOut...Int(UInt32.max))
        }
        let opsRange = Int(crypto_pwhash_argon2id_OPSLIMIT_MIN)...Int(crypto_pwhash_argon2id_OPSLIMIT_MAX)
        guard opsRange.contains(limits.operations) else {
            throw .parameterOutOfRange(name: "operations", value: limits.operations, allowed: opsRange)
        }
        let memRange = Int(crypto_pwhash_argon2id_MEMLIMIT_MIN)...Int(crypto_pwhash_argon2id_memlimit_max())
        guard memRange.contains(limits.memoryBytes) else {
            throw .parameterOutOfRange(name: "memoryBytes", value: limits.memoryBytes, allowed: memRange)
        }
        return try SecureBytes(count: outputByteCount) { (out: UnsafeMutableRawBufferPointer) throws(CryptoError) in
            let status = password.withUnsafeBytes { p in
                salt.withUnsafeBytes { s in
                    p.withMemoryRebound(to: CChar.self) { pc in
                        crypto_pwhash(out.nonNullBase, UInt64(out.count), pc.baseAddress ?? UnsafePointer(OpaquePointer(emptyByteBuffer)), UInt64(p.count),
                                      s.nonNullBase, UInt64(limits.operations), limits.memoryBytes, crypto_pwhash_ALG_ARGON2ID13)
                    }
                }
            }
            guard status == 0 else { throw .passwordHashingFailed }
        }
    }
}
