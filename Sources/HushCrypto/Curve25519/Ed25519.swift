import CSodium

extension Curve25519 {
    /// Ed25519 signatures (RFC 8032 §5.1) through libsodium. Verification is libsodium's:
    /// it rejects non-canonical `S`, small-order `R` and `A`, and non-canonical `A`.
    public enum Signing {}
}

extension Curve25519.Signing {
    /// The length of a signature.
    public static let signatureByteCount = 64

    /// An Ed25519 private key: the 32-byte seed of RFC 8032 §5.1.5, in wiped storage.
    public struct PrivateKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
        /// libsodium's 64-byte secret key (seed || public key).
        let secretKey: SecureBytes
        /// The matching public key.
        public let publicKey: PublicKey

        /// A new key from `random` (the system CSPRNG by default).
        public init(using random: some RandomSource = SystemRandom()) throws(CryptoError) {
            try self.init(rawRepresentation: random.secureBytes(count: Curve25519.keyByteCount))
        }

        /// A key from its 32-byte seed.
        public init(rawRepresentation seed: some ContiguousByteBuffer) throws(CryptoError) {
            Sodium.ensureInitialized()
            guard seed.byteCount == Curve25519.keyByteCount else {
                throw .invalidKeySize(actual: seed.byteCount, allowed: [Curve25519.keyByteCount])
            }
            var pk = [UInt8](repeating: 0, count: Curve25519.keyByteCount)
            secretKey = seed.withUnsafeBytes { s in
                SecureBytes(count: 64) { (sk: UnsafeMutableRawBufferPointer) in
                    _ = crypto_sign_seed_keypair(&pk, sk.nonNullBase, s.nonNullBase)
                }
            }
            publicKey = PublicKey(unchecked: pk)
        }

        /// The 32-byte seed. Treat it as secret.
        public var rawRepresentation: SecureBytes { secretKey.slice(0..<32) }

        /// The deterministic Ed25519 signature of `message` (RFC 8032 §5.1.6).
        public func signature(for message: some ContiguousByteBuffer) -> [UInt8] {
            message.withUnsafeBytes { m in
                secretKey.withUnsafeBytes { sk in
                    makeBytes(count: Curve25519.Signing.signatureByteCount) { (sig: UnsafeMutableRawBufferPointer) in
                        _ = crypto_sign_detached(sig.nonNullBase, nil, m.nonNullBase, UInt64(m.count), sk.nonNullBase)
                    }
                }
            }
        }

        public var description: String { "Curve25519.Signing.PrivateKey(public: \(Hex.encode(publicKey.rawRepresentation)))" }
        public var debugDescription: String { description }
        public var customMirror: Mirror { Mirror(self, children: ["publicKey": publicKey], displayStyle: .struct) }
    }

    /// An Ed25519 public key (RFC 8032 §5.1.5 encoding).
    public struct PublicKey: Sendable, Hashable, CustomStringConvertible {
        /// The 32-byte encoded point.
        public let rawRepresentation: [UInt8]

        init(unchecked raw: [UInt8]) { rawRepresentation = raw }

        /// A key from its 32-byte encoding. The point is checked when a signature is verified.
        public init(rawRepresentation bytes: some ContiguousByteBuffer) throws(CryptoError) {
            guard bytes.byteCount == Curve25519.keyByteCount else {
                throw .invalidKeySize(actual: bytes.byteCount, allowed: [Curve25519.keyByteCount])
            }
            rawRepresentation = bytes.bytes
        }

        /// `true` when `signature` is a valid Ed25519 signature of `message` under this key
        /// (RFC 8032 §5.1.7, with libsodium's stricter checks). Any other length is `false`.
        public func isValidSignature(_ signature: some ContiguousByteBuffer, for message: some ContiguousByteBuffer) -> Bool {
            Sodium.ensureInitialized()
            guard signature.byteCount == Curve25519.Signing.signatureByteCount else { return false }
            return signature.withUnsafeBytes { s in
                message.withUnsafeBytes { m in
                    rawRepresentation.withUnsafeBytes { pk in
                        crypto_sign_verify_detached(s.nonNullBase, m.nonNullBase, UInt64(m.count), pk.nonNullBase) == 0
                    }
                }
            }
        }

        public var description: String { "Curve25519.Signing.PublicKey(\(Hex.encode(rawRepresentation)))" }
    }
}
