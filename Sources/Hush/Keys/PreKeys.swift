/// A one-time prekey this device published (X3DH §2.1 "OPK"): used by at most one incoming
/// session, then deleted.
public struct PreKeyRecord: Sendable, CustomStringConvertible {
    /// The id published with the key.
    public let id: UInt32
    /// The key pair.
    public let keyPair: Curve25519.KeyAgreement.PrivateKey

    /// A record for a stored key pair.
    public init(id: UInt32, keyPair: Curve25519.KeyAgreement.PrivateKey) {
        self.id = id
        self.keyPair = keyPair
    }

    /// A fresh prekey with `id`.
    public static func generate(id: UInt32, using random: some RandomSource = SystemRandom()) throws(CryptoError) -> PreKeyRecord {
        PreKeyRecord(id: id, keyPair: try Curve25519.KeyAgreement.PrivateKey(using: random))
    }

    /// Fresh prekeys with ids `ids`, drawn in order.
    public static func generate(ids: some Sequence<UInt32>, using random: some RandomSource = SystemRandom()) throws(CryptoError) -> [PreKeyRecord] {
        var records: [PreKeyRecord] = []
        for id in ids { records.append(try generate(id: id, using: random)) }
        return records
    }

    /// The public part, for a bundle.
    public var publicPreKey: PreKeyBundle.OneTimePreKey { .init(id: id, publicKey: keyPair.publicKey) }

    /// Id and public key only.
    public var description: String { "PreKeyRecord(id: \(id), public: \(Hex.encode(keyPair.publicKey.rawRepresentation)))" }
}

/// A signed prekey this device published (X3DH §2.1 "SPK"), signed by the identity key.
/// Rotate it periodically (Signal: weekly to monthly) and keep the previous one for a while
/// so that sessions started from an older bundle still complete.
public struct SignedPreKeyRecord: Sendable, CustomStringConvertible {
    /// The id published with the key.
    public let id: UInt32
    /// When it was made (milliseconds since 1970; informational, never on the wire).
    public let timestamp: UInt64
    /// The key pair.
    public let keyPair: Curve25519.KeyAgreement.PrivateKey
    /// XEdDSA signature of the 33-byte public key by the identity key.
    public let signature: [UInt8]

    /// A record for a stored key pair and its signature.
    public init(id: UInt32, timestamp: UInt64, keyPair: Curve25519.KeyAgreement.PrivateKey, signature: [UInt8]) {
        self.id = id
        self.timestamp = timestamp
        self.keyPair = keyPair
        self.signature = signature
    }

    /// A fresh signed prekey: draws the key (32 bytes) and then the signature's randomness
    /// (64 bytes) from `random`, in libsignal's order.
    public static func generate(
        id: UInt32, timestamp: UInt64 = 0, signedBy identity: IdentityKeyPair,
        using random: some RandomSource = SystemRandom()
    ) throws(CryptoError) -> SignedPreKeyRecord {
        let key = try Curve25519.KeyAgreement.PrivateKey(using: random)
        let signature = try identity.signature(for: key.publicKey.signalRepresentation, using: random)
        return SignedPreKeyRecord(id: id, timestamp: timestamp, keyPair: key, signature: signature)
    }

    /// The public part, for a bundle.
    public var publicSignedPreKey: PreKeyBundle.SignedPreKey { .init(id: id, publicKey: keyPair.publicKey, signature: signature) }

    /// Id and public key only.
    public var description: String { "SignedPreKeyRecord(id: \(id), public: \(Hex.encode(keyPair.publicKey.rawRepresentation)))" }
}

/// What a server hands out so that someone can start a session with a device (X3DH §3.2).
public struct PreKeyBundle: Sendable, Equatable {
    /// A published signed prekey.
    public struct SignedPreKey: Sendable, Equatable {
        /// The id the owner stores it under.
        public let id: UInt32
        /// The signed prekey.
        public let publicKey: Curve25519.KeyAgreement.PublicKey
        /// Signature of `0x05 || publicKey` by the bundle's identity key.
        public let signature: [UInt8]

        /// A published signed prekey.
        public init(id: UInt32, publicKey: Curve25519.KeyAgreement.PublicKey, signature: [UInt8]) {
            self.id = id
            self.publicKey = publicKey
            self.signature = signature
        }
    }

    /// A published one-time prekey.
    public struct OneTimePreKey: Sendable, Equatable {
        /// The id the owner stores it under.
        public let id: UInt32
        /// The one-time prekey.
        public let publicKey: Curve25519.KeyAgreement.PublicKey

        /// A published one-time prekey.
        public init(id: UInt32, publicKey: Curve25519.KeyAgreement.PublicKey) {
            self.id = id
            self.publicKey = publicKey
        }
    }

    /// The owner's registration id.
    public let registrationID: UInt32
    /// The owner's device id.
    public let deviceID: UInt32
    /// The owner's identity key.
    public let identityKey: IdentityKey
    /// The signed prekey; a bundle without one is rejected by ``SessionBuilder``.
    public let signedPreKey: SignedPreKey?
    /// A one-time prekey, when the server still had one (X3DH §3.3: sessions without one lose
    /// some replay protection of the first message but still work).
    public let oneTimePreKey: OneTimePreKey?

    /// A bundle as the server hands it out. It is verified when used (``verifiedSignedPreKey()``).
    public init(
        registrationID: UInt32, deviceID: UInt32, identityKey: IdentityKey,
        signedPreKey: SignedPreKey?, oneTimePreKey: OneTimePreKey?
    ) {
        self.registrationID = registrationID
        self.deviceID = deviceID
        self.identityKey = identityKey
        self.signedPreKey = signedPreKey
        self.oneTimePreKey = oneTimePreKey
    }

    /// Checks what X3DH §3.3 requires before using a bundle: a signed prekey whose signature
    /// verifies with the identity key. Returns the signed prekey.
    public func verifiedSignedPreKey() throws(SignalProtocolError) -> SignedPreKey {
        guard let signedPreKey else { throw .invalidBundle(.missingSignedPreKey) }
        guard identityKey.isValidSignature(signedPreKey.signature, for: signedPreKey.publicKey.signalRepresentation) else {
            throw .invalidBundle(.badSignedPreKeySignature)
        }
        return signedPreKey
    }
}
