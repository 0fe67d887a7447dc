import CSodium

/// Curve25519 keys: X25519 key agreement (``KeyAgreement``, RFC 7748) — whose keys also sign
/// with ``XEdDSA`` as Signal's identity keys do — and Ed25519 signatures (``Signing``,
/// RFC 8032).
public enum Curve25519 {
    /// The length of a raw public key, private key or shared secret.
    public static let keyByteCount = 32
    /// The length of a public key in Signal's encoding: the type byte 0x05, then the raw key.
    public static let signalKeyByteCount = 33
    /// Signal's key-type byte for Curve25519 public keys ("DJB type").
    public static let signalKeyType: UInt8 = 0x05

    /// X25519 Diffie-Hellman (RFC 7748 §5, §6.1).
    public enum KeyAgreement {}
}

extension Curve25519.KeyAgreement {
    /// An X25519 private key: a clamped 32-byte scalar in wiped storage, and its public key.
    ///
    /// Clamping (RFC 7748 §5, as libsignal does it: `k[0] &= 248; k[31] &= 127; k[31] |= 64`)
    /// is applied on creation, so ``rawRepresentation`` always returns the clamped scalar and
    /// XEdDSA signs with exactly the scalar X25519 uses.
    public struct PrivateKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
        let scalar: SecureBytes
        /// The matching public key.
        public let publicKey: PublicKey

        /// A new key from `random` (the system CSPRNG by default).
        public init(using random: some RandomSource = SystemRandom()) throws(CryptoError) {
            try self.init(clamping: random.secureBytes(count: Curve25519.keyByteCount))
        }

        /// A key from 32 given random bytes (or a stored key), clamped as libsignal does.
        /// Feeding libsignal's stored private key gives the same key back.
        public init(rawRepresentation bytes: some ContiguousByteBuffer) throws(CryptoError) {
            guard bytes.byteCount == Curve25519.keyByteCount else {
                throw .invalidKeySize(actual: bytes.byteCount, allowed: [Curve25519.keyByteCount])
            }
            self.init(clamping: SecureBytes(copying: bytes))
        }

        init(clamping bytes: SecureBytes) {
            Sodium.ensureInitialized()
            scalar = bytes.withUnsafeBytes { raw in
                SecureBytes(count: Curve25519.keyByteCount) { (k: UnsafeMutableRawBufferPointer) in
                    k.copyMemory(from: raw)
                    k[0] &= 248
                    k[31] &= 127
                    k[31] |= 64
                }
            }
            publicKey = scalar.withUnsafeBytes { k in
                PublicKey(unchecked: makeBytes(count: Curve25519.keyByteCount) { (p: UnsafeMutableRawBufferPointer) in
                    _ = crypto_scalarmult_curve25519_base(p.nonNullBase, k.nonNullBase)
                })
            }
        }

        /// A key restored from storage that recorded both halves, without recomputing the
        /// public key (a scalar multiplication). Returns `nil` unless `scalar` is 32 clamped
        /// bytes. The caller vouches that `publicKey` matches: use only for records this
        /// library wrote.
        package init?(storedScalar scalar: SecureBytes, publicKey: PublicKey) {
            let clamped = scalar.count == Curve25519.keyByteCount && scalar.withUnsafeBytes { k in
                k[0] & 7 == 0 && k[31] & 0xC0 == 0x40
            }
            guard clamped else { return nil }
            self.scalar = scalar
            self.publicKey = publicKey
        }

        /// The clamped scalar. Treat it as secret.
        public var rawRepresentation: SecureBytes { scalar }

        /// X25519(self, peer) (RFC 7748 §6.1).
        ///
        /// - Throws: ``CryptoError/allZeroSharedSecret`` when the result is all zero, which
        ///   happens exactly for low-order peer keys; such a key contributes nothing secret.
        public func sharedSecretFromKeyAgreement(with peer: PublicKey) throws(CryptoError) -> SharedSecret {
            try SharedSecret(scalar: scalar, point: peer)
        }

        public var description: String { "Curve25519.KeyAgreement.PrivateKey(public: \(Hex.encode(publicKey.rawRepresentation)))" }
        public var debugDescription: String { description }
        public var customMirror: Mirror { Mirror(self, children: ["publicKey": publicKey], displayStyle: .struct) }
    }

    /// An X25519 public key (a Montgomery u-coordinate).
    public struct PublicKey: Sendable, Hashable, CustomStringConvertible {
        /// The 32-byte little-endian u-coordinate.
        public let rawRepresentation: [UInt8]

        init(unchecked raw: [UInt8]) { rawRepresentation = raw }

        /// A key from its 32 raw bytes. Every 32-byte string is accepted, as RFC 7748 requires;
        /// low-order keys are caught when they are used (``CryptoError/allZeroSharedSecret``).
        public init(rawRepresentation bytes: some ContiguousByteBuffer) throws(CryptoError) {
            guard bytes.byteCount == Curve25519.keyByteCount else {
                throw .invalidKeySize(actual: bytes.byteCount, allowed: [Curve25519.keyByteCount])
            }
            rawRepresentation = bytes.bytes
        }

        /// A key in Signal's 33-byte form, `0x05 || u`.
        ///
        /// - Throws: ``CryptoError/invalidKeyEncoding`` for any other length or type byte.
        public init(signalRepresentation bytes: some ContiguousByteBuffer) throws(CryptoError) {
            let raw: [UInt8]? = bytes.withUnsafeBytes { b in
                guard b.count == Curve25519.signalKeyByteCount, b[0] == Curve25519.signalKeyType else { return nil }
                return Array(UnsafeRawBufferPointer(rebasing: b[1...]))
            }
            guard let raw else { throw .invalidKeyEncoding }
            rawRepresentation = raw
        }

        /// Whether the 32 bytes are the canonical encoding of `u`: below the field prime `p`,
        /// top bit clear. X25519 output always is. RFC 7748 §5 has receivers accept (mask) the
        /// other encodings for key agreement; a protocol that authenticates keys by their
        /// bytes should reject them instead, since each names the same key as a canonical one.
        public var isCanonical: Bool {
            rawRepresentation.withUnsafeBytes { Self.isCanonical($0) }
        }

        /// ``isCanonical`` for 32 raw bytes, without making a key (parsers use it to validate
        /// a key in place).
        package static func isCanonical(_ raw: UnsafeRawBufferPointer) -> Bool {
            guard raw.count == Curve25519.keyByteCount, raw[31] & 0x80 == 0 else { return false }
            for i in stride(from: 31, through: 0, by: -1) where raw[i] != XEdDSA.fieldPrime[i] {
                return raw[i] < XEdDSA.fieldPrime[i]
            }
            return false  // u == p
        }

        /// A key from its 32 raw bytes that must be the canonical encoding of a point of the
        /// prime-order subgroup (``isInPrimeOrderSubgroup``): what a protocol should use for
        /// every key a peer sends.
        ///
        /// - Throws: ``CryptoError/invalidKeySize(actual:allowed:)`` for another length,
        ///   ``CryptoError/invalidKeyEncoding`` for a non-canonical encoding, a low-order point, a
        ///   point with a small-order component ("torsioned") or a point on the twist.
        public init(validatingRawRepresentation bytes: some ContiguousByteBuffer) throws(CryptoError) {
            try self.init(rawRepresentation: bytes)
            guard isInPrimeOrderSubgroup else { throw .invalidKeyEncoding }
        }

        /// Whether the key is the canonical encoding (``isCanonical``) of a point of the
        /// prime-order subgroup of Curve25519 (order ℓ = 2^252 + 27742317777372353535851937790883648493).
        ///
        /// X25519 clamps its scalar to a multiple of the cofactor 8, so adding any of the eight
        /// small-order points to a key gives up to eight encodings with the same shared secrets
        /// (RFC 7748 §5, §7). A protocol that identifies a key by its bytes (a PreKeySignalMessage's
        /// base key names its session) must accept only the subgroup point itself, as libsignal
        /// (Rust) does. Honest keys (`k·B` for a clamped `k`) always pass.
        ///
        /// Construction (library calls only): the birational map of RFC 7748 §4.1 sends the
        /// Montgomery point with coordinate `u` to the Edwards point with `y = (u − 1)/(u + 1)`
        /// (one field inversion, as XEdDSA verification does, XEdDSA §2.6 `convert_mont`); the
        /// map is a group isomorphism, so `u` is in the prime-order subgroup exactly when that
        /// Edwards point is. libsodium's `crypto_core_ed25519_is_valid_point` then checks that
        /// `y` is canonical, decodes to a point of the curve (not the twist), is not of small
        /// order, and lies in the main subgroup (`[ℓ]P = O`). The sign of `x` is irrelevant:
        /// negation preserves the subgroup. Public values only (neither step is constant-time).
        public var isInPrimeOrderSubgroup: Bool {
            rawRepresentation.withUnsafeBytes { Self.isInPrimeOrderSubgroup($0) }
        }

        /// ``isInPrimeOrderSubgroup`` for 32 raw bytes, without making a key.
        package static func isInPrimeOrderSubgroup(_ raw: UnsafeRawBufferPointer) -> Bool {
            Sodium.ensureInitialized()
            guard isCanonical(raw) else { return false }
            guard let y = XEdDSA.edwardsY(fromMontgomeryU: Array(raw)) else { return false }
            return crypto_core_ed25519_is_valid_point(y) == 1
        }

        /// Signal's 33-byte form, `0x05 || u`: what goes on the wire, into MACs and signatures.
        public var signalRepresentation: [UInt8] { [Curve25519.signalKeyType] + rawRepresentation }

        public var description: String { "Curve25519.KeyAgreement.PublicKey(\(Hex.encode(rawRepresentation)))" }
    }

    /// The output of X25519: secret, wiped when released, never all zero.
    public struct SharedSecret: Sendable, Equatable, ContiguousByteBuffer,
        CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable
    {
        /// The 32 bytes. Feed them to a KDF; never use them as a key directly.
        public let secret: SecureBytes

        init(scalar: SecureBytes, point: PublicKey) throws(CryptoError) {
            Sodium.ensureInitialized()
            secret = try SecureBytes(count: Curve25519.keyByteCount) { (out: UnsafeMutableRawBufferPointer) throws(CryptoError) in
                let status = scalar.withUnsafeBytes { k in
                    point.rawRepresentation.withUnsafeBytes { p in
                        crypto_scalarmult_curve25519(out.nonNullBase, k.nonNullBase, p.nonNullBase)
                    }
                }
                // libsodium returns -1 for an all-zero result; check the bytes as well, so the
                // guarantee does not rest on one library version's behaviour.
                guard status == 0, sodium_is_zero(out.nonNullBase, out.count) == 0 else {
                    throw .allZeroSharedSecret
                }
            }
        }

        public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
            try secret.withUnsafeBytes(body)
        }

        public var description: String { "SharedSecret(redacted)" }
        public var debugDescription: String { description }
        public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
    }
}
