import Hush
import Foundation
import enum Crypto.MLKEM1024

/// ML-KEM-1024 (FIPS 203), the KEM of PQXDH, over swift-crypto's `MLKEM1024` (BoringSSL).
///
/// In the style of HushCrypto's primitives: typed errors (``KEMError``), the 64-byte private
/// seed `d || z` in wiped storage, injectable randomness for key generation.
///
/// Randomness of encapsulation: swift-crypto 4.5.2 exposes only `encapsulate()`, which draws
/// the 32-byte message `m` from BoringSSL's generator; its seeded variant is internal. So
/// encapsulation goes through an ``MLKEMEncapsulator``: ``SystemEncapsulator`` (the default)
/// calls swift-crypto, and ``RecordedEncapsulator`` replays a (ciphertext, shared secret) pair
/// recorded elsewhere — how the PQXDH vectors replay the initiator deterministically
/// (`Docs/spec/pqxdh.md` §7). Decapsulation and key generation from a seed are deterministic.
///
/// Memory: the seed, shared secrets and every buffer Hush owns are wiped. swift-crypto keeps
/// the expanded decapsulation key (3,168 bytes) in a BoringSSL structure it frees without
/// zeroing; Hush cannot reach it (documented in `Docs/architecture.md` §5).
public enum MLKEM1024 {
    /// Encapsulation key (`ek`) bytes.
    public static let publicKeyByteCount = 1568
    /// Ciphertext bytes.
    public static let ciphertextByteCount = 1568
    /// Shared secret bytes.
    public static let sharedSecretByteCount = 32
    /// Private seed bytes (`d || z`, FIPS 203 §7.1 `ML-KEM.KeyGen_internal`).
    public static let seedByteCount = 64

    /// An encapsulation key, checked on decoding (FIPS 203 §7.2 modulus check).
    public struct PublicKey: Sendable, Equatable, CustomStringConvertible {
        /// The 1,568-byte `ek`.
        public let rawRepresentation: [UInt8]
        let backing: Crypto.MLKEM1024.PublicKey

        /// Decodes `ek`. Throws ``KEMError/invalidPublicKey`` for a wrong length or a
        /// coefficient ≥ q (the modulus check).
        public init(rawRepresentation bytes: some ContiguousByteBuffer) throws(KEMError) {
            let raw = bytes.bytes
            guard raw.count == MLKEM1024.publicKeyByteCount else { throw .invalidPublicKey }
            do { backing = try Crypto.MLKEM1024.PublicKey(rawRepresentation: raw) } catch { throw .invalidPublicKey }
            rawRepresentation = raw
        }

        init(backing: Crypto.MLKEM1024.PublicKey) {
            self.backing = backing
            self.rawRepresentation = [UInt8](backing.rawRepresentation)
        }

        public static func == (lhs: PublicKey, rhs: PublicKey) -> Bool { lhs.rawRepresentation == rhs.rawRepresentation }

        /// The first 8 bytes, for logs.
        public var description: String { "MLKEM1024.PublicKey(\(Hex.encode(rawRepresentation.prefix(8)))…)" }
    }

    /// A decapsulation key, kept as its 64-byte seed (wiped) and swift-crypto's expanded key.
    public struct PrivateKey: Sendable, CustomStringConvertible {
        /// `d || z` (64 bytes).
        public let seed: SecureBytes
        let backing: Crypto.MLKEM1024.PrivateKey
        /// The encapsulation key.
        public let publicKey: PublicKey

        /// The key of `seed` (`ML-KEM.KeyGen_internal(d, z)` with `seed = d || z`).
        public init(seed: SecureBytes) throws(KEMError) {
            guard seed.count == MLKEM1024.seedByteCount else { throw .invalidSeed }
            do {
                backing = try seed.withUnsafeBytes { s in
                    try Crypto.MLKEM1024.PrivateKey(seedRepresentation: Data(s), publicKey: nil)
                }
            } catch { throw .invalidSeed }
            self.seed = seed
            self.publicKey = PublicKey(backing: backing.publicKey)
        }

        /// The key of a seed given as bytes (test vectors); the source is not wiped.
        public init(seed bytes: some ContiguousByteBuffer) throws(KEMError) {
            try self.init(seed: SecureBytes(copying: bytes))
        }

        /// A fresh key: 64 seed bytes drawn from `random`.
        public init(using random: some RandomSource = SystemRandom()) throws(KEMError) {
            let seed: SecureBytes
            do { seed = try SecureBytes(randomCount: MLKEM1024.seedByteCount, using: random) } catch { throw .randomness(error) }
            try self.init(seed: seed)
        }

        /// `ML-KEM.Decaps`. A well-formed ciphertext always yields a secret: a ciphertext
        /// made for another key (or altered) yields an unrelated pseudo-random one (implicit
        /// rejection, FIPS 203 §6.3), which PQXDH then turns into a failed first message.
        /// Throws ``KEMError/invalidCiphertext`` only for a wrong length.
        public func decapsulate(_ ciphertext: some ContiguousByteBuffer) throws(KEMError) -> SharedSecret {
            try ciphertext.withUnsafeBytes { (c: UnsafeRawBufferPointer) throws(KEMError) -> SharedSecret in
                guard c.count == MLKEM1024.ciphertextByteCount else { throw .invalidCiphertext }
                let key: SymmetricKeyBox
                do { key = SymmetricKeyBox(try backing.decapsulate(Data(c))) } catch { throw .invalidCiphertext }
                return key.secret
            }
        }

        /// The public key only.
        public var description: String { "MLKEM1024.PrivateKey(public: \(publicKey), seed redacted)" }
    }

    /// A 32-byte KEM shared secret, in wiped storage.
    public struct SharedSecret: Sendable, Equatable, CustomStringConvertible {
        let bytes: SecureBytes

        /// A secret given as bytes (recorded encapsulations, vectors).
        public init(copying source: some ContiguousByteBuffer) throws(KEMError) {
            guard source.byteCount == MLKEM1024.sharedSecretByteCount else { throw .invalidSharedSecret }
            bytes = SecureBytes(copying: source)
        }

        init(_ bytes: SecureBytes) { self.bytes = bytes }

        /// Calls `body` with the 32 bytes.
        public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
            try bytes.withUnsafeBytes(body)
        }

        /// Constant-time comparison.
        public static func == (lhs: SharedSecret, rhs: SharedSecret) -> Bool { lhs.bytes == rhs.bytes }

        public var description: String { "MLKEM1024.SharedSecret(redacted)" }
    }

    /// What the encapsulating side gets: the ciphertext to send and the shared secret.
    public struct Encapsulation: Sendable {
        /// 1,568 bytes.
        public let ciphertext: [UInt8]
        /// 32 bytes.
        public let sharedSecret: SharedSecret

        /// A pair made elsewhere (for ``RecordedEncapsulator``).
        public init(ciphertext: [UInt8], sharedSecret: SharedSecret) {
            self.ciphertext = ciphertext
            self.sharedSecret = sharedSecret
        }
    }
}

/// Moves a swift-crypto `SymmetricKey` (zeroed by swift-crypto when released) into Hush's
/// wiped storage without naming the type (HushCrypto has its own `SymmetricKey`).
private struct SymmetricKeyBox {
    let secret: MLKEM1024.SharedSecret
    init(_ key: some ContiguousBytesLike) {
        secret = MLKEM1024.SharedSecret(key.withUnsafeBytes { raw in SecureBytes(copying: UnsafeRawBufferPointerBox(raw)) })
    }
}

/// swift-crypto's key types conform to Foundation's `ContiguousBytes`.
typealias ContiguousBytesLike = ContiguousBytes

/// Lets a raw buffer be handed to `SecureBytes(copying:)`.
private struct UnsafeRawBufferPointerBox: ContiguousByteBuffer {
    let raw: UnsafeRawBufferPointer
    init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }
    func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R { try body(raw) }
}

/// Produces ML-KEM-1024 encapsulations (see ``MLKEM1024`` on why this is a protocol).
public protocol MLKEMEncapsulator: Sendable {
    /// `ML-KEM.Encaps(ek)`.
    func encapsulate(to publicKey: MLKEM1024.PublicKey) throws(KEMError) -> MLKEM1024.Encapsulation
}

/// swift-crypto's `encapsulate()`, randomness from BoringSSL's generator.
public struct SystemEncapsulator: MLKEMEncapsulator {
    public init() {}
    public func encapsulate(to publicKey: MLKEM1024.PublicKey) throws(KEMError) -> MLKEM1024.Encapsulation {
        do {
            let result = try publicKey.backing.encapsulate()
            return MLKEM1024.Encapsulation(ciphertext: [UInt8](result.encapsulated), sharedSecret: SymmetricKeyBox(result.sharedSecret).secret)
        } catch { throw .encapsulationFailed }
    }
}

/// Replays recorded encapsulations in order (deterministic tests and vectors). With none
/// left it throws ``KEMError/randomness(_:)`` with
/// ``CryptoError/randomSourceExhausted(requested:remaining:)`` (a recording is the 32-byte
/// `m` drawn ahead of time, as ``ReplayRandom`` is for other randomness); a key other than the
/// recorded one is ``KEMError/encapsulationFailed``.
public final class RecordedEncapsulator: MLKEMEncapsulator, @unchecked Sendable {
    private let lock = NSLock()
    private var queue: [(publicKey: [UInt8]?, encapsulation: MLKEM1024.Encapsulation)]

    /// `encapsulations` in the order they will be used; `publicKey`, when given, must be the
    /// key each one is asked for.
    public init(_ encapsulations: [(publicKey: [UInt8]?, encapsulation: MLKEM1024.Encapsulation)]) {
        queue = encapsulations
    }

    /// One encapsulation for any key.
    public convenience init(_ encapsulation: MLKEM1024.Encapsulation) { self.init([(nil, encapsulation)]) }

    public func encapsulate(to publicKey: MLKEM1024.PublicKey) throws(KEMError) -> MLKEM1024.Encapsulation {
        lock.lock()
        defer { lock.unlock() }
        guard !queue.isEmpty else { throw .randomness(.randomSourceExhausted(requested: 32, remaining: 0)) }
        let next = queue.removeFirst()
        if let expected = next.publicKey, expected != publicKey.rawRepresentation { throw .encapsulationFailed }
        return next.encapsulation
    }
}
