import Hush

/// A Kyber (ML-KEM-1024) prekey this device published (PQXDH §2.3: `PQSPK_B` last-resort, or
/// `PQOPK_B` one-time), signed by the identity key over its encoding (``KyberPreKey/encoded``).
public struct KyberPreKeyRecord: Sendable, CustomStringConvertible {
    /// One-time keys are consumed by the session they start; the last-resort key is used
    /// when no one-time key is left and stays until it is rotated.
    public enum Kind: UInt8, Sendable, Equatable {
        case oneTime = 1
        case lastResort = 2
    }

    /// The id published with the key.
    public let id: UInt32
    /// One-time or last-resort.
    public let kind: Kind
    /// When it was made (milliseconds since 1970; informational).
    public let timestamp: UInt64
    /// The key pair.
    public let keyPair: MLKEM1024.PrivateKey
    /// XEdDSA signature of ``KyberPreKey/encoded`` by the identity key.
    public let signature: [UInt8]

    /// A record for a stored key pair and its signature.
    public init(id: UInt32, kind: Kind, timestamp: UInt64, keyPair: MLKEM1024.PrivateKey, signature: [UInt8]) {
        self.id = id
        self.kind = kind
        self.timestamp = timestamp
        self.keyPair = keyPair
        self.signature = signature
    }

    /// A fresh signed Kyber prekey: draws the 64-byte ML-KEM seed, then the signature's 64
    /// bytes of randomness from `random`, in that order (`Docs/spec/pqxdh.md` §3).
    public static func generate(
        id: UInt32, kind: Kind, timestamp: UInt64 = 0, signedBy identity: IdentityKeyPair,
        using random: some RandomSource = SystemRandom()
    ) throws(KEMError) -> KyberPreKeyRecord {
        let key = try MLKEM1024.PrivateKey(using: random)
        let signature: [UInt8]
        do { signature = try identity.signature(for: KyberPreKey.encode(key.publicKey), using: random) } catch { throw .randomness(error) }
        return KyberPreKeyRecord(id: id, kind: kind, timestamp: timestamp, keyPair: key, signature: signature)
    }

    /// The public part, for a bundle.
    public var publicKyberPreKey: KyberPreKey { KyberPreKey(id: id, publicKey: keyPair.publicKey, signature: signature) }

    /// Id, kind and the start of the public key only.
    public var description: String { "KyberPreKeyRecord(id: \(id), \(kind), public: \(keyPair.publicKey))" }
}

/// A published Kyber prekey, as a bundle carries it.
public struct KyberPreKey: Sendable, Equatable {
    /// The id the owner stores it under.
    public let id: UInt32
    /// The ML-KEM-1024 encapsulation key.
    public let publicKey: MLKEM1024.PublicKey
    /// Signature of ``encoded`` by the bundle's identity key.
    public let signature: [UInt8]

    public init(id: UInt32, publicKey: MLKEM1024.PublicKey, signature: [UInt8]) {
        self.id = id
        self.publicKey = publicKey
        self.signature = signature
    }

    /// `EncodeKEM(PQPK)`: libsignal's type byte 0x08 and the 1,568-byte key — what the identity
    /// key signs, in both suites.
    public var encoded: [UInt8] { Self.encode(publicKey) }

    static func encode(_ key: MLKEM1024.PublicKey) -> [UInt8] { [SignalConstants.kyberKeyType] + key.rawRepresentation }

    /// Decodes ``encoded`` (1,569 bytes, first 0x08).
    public static func decodePublicKey(_ bytes: [UInt8]) throws(KEMError) -> MLKEM1024.PublicKey {
        guard bytes.count == SignalConstants.kyberPublicKeyByteCount, bytes[0] == SignalConstants.kyberKeyType else { throw .invalidPublicKey }
        return try MLKEM1024.PublicKey(rawRepresentation: bytes[1...])
    }

    /// Whether `identity` signed this key.
    public func isSigned(by identity: IdentityKey) -> Bool { identity.isValidSignature(signature, for: encoded) }
}

/// A prekey bundle with its Kyber prekey (PQXDH §3.2: `PQPK_B` is a one-time key while the
/// server has one, else the last-resort key).
public struct PostQuantumPreKeyBundle: Sendable, Equatable {
    /// The X3DH part, unchanged.
    public let bundle: PreKeyBundle
    /// The Kyber prekey, absent when the owner published none (or a server stripped it:
    /// ``PostQuantumPolicy/requirePQXDH`` refuses such a bundle).
    public let kyberPreKey: KyberPreKey?

    public init(bundle: PreKeyBundle, kyberPreKey: KyberPreKey?) {
        self.bundle = bundle
        self.kyberPreKey = kyberPreKey
    }
}
