/// A party's long-term public identity key (X3DH §2.1 "IK"): an X25519 public key that also
/// verifies XEdDSA signatures.
///
/// Its serialized form is Signal's 33 bytes, `0x05 || u`, which is what goes on the wire, into
/// MACs and into signatures.
public struct IdentityKey: Hashable, Sendable, CustomStringConvertible {
    /// The X25519 public key.
    public let publicKey: Curve25519.KeyAgreement.PublicKey

    /// An identity key from its X25519 public key.
    public init(publicKey: Curve25519.KeyAgreement.PublicKey) {
        self.publicKey = publicKey
    }

    /// Parses the 33-byte form.
    ///
    /// - Throws: `CryptoError/invalidKeyEncoding` or `CryptoError/invalidKeySize(actual:allowed:)`.
    public init(serialized bytes: some ContiguousByteBuffer) throws(CryptoError) {
        publicKey = try Curve25519.KeyAgreement.PublicKey(signalRepresentation: bytes)
    }

    /// The 33-byte form `0x05 || u`.
    public var serialized: [UInt8] { publicKey.signalRepresentation }

    /// `true` when `signature` is a valid signature of `message` by this identity, in either
    /// XEdDSA form libsignal-protocol-c accepts (see `XEdDSA/VerificationPolicy/libsignalCompatible`).
    public func isValidSignature(_ signature: some ContiguousByteBuffer, for message: some ContiguousByteBuffer) -> Bool {
        XEdDSA.isValidSignature(signature, for: message, publicKey: publicKey, policy: .libsignalCompatible)
    }

    /// The 33-byte key in hex (public).
    public var description: String { "IdentityKey(\(Hex.encode(serialized)))" }
}

/// A party's identity key pair. The private half stays in wiped storage and never appears in
/// `description`, `dump` or errors.
///
/// Not for: anything but this party's identity — reusing an identity key as a prekey or for
/// another protocol breaks X3DH's deniability and key separation.
public struct IdentityKeyPair: Sendable, CustomStringConvertible {
    /// The public identity key.
    public let identityKey: IdentityKey
    /// The private key.
    public let privateKey: Curve25519.KeyAgreement.PrivateKey

    /// The identity of `privateKey`.
    public init(privateKey: Curve25519.KeyAgreement.PrivateKey) {
        self.privateKey = privateKey
        self.identityKey = IdentityKey(publicKey: privateKey.publicKey)
        self.edwardsPublicKey = XEdDSA.edwardsPublicKey(of: privateKey)
    }

    /// `E = k·B`, the Edwards form of the identity key with its sign bit (public), computed once
    /// here so that each signature makes one base-point multiplication instead of two.
    private let edwardsPublicKey: [UInt8]

    /// A new identity from `random` (32 bytes, clamped).
    public static func generate(using random: some RandomSource = SystemRandom()) throws(CryptoError) -> IdentityKeyPair {
        IdentityKeyPair(privateKey: try Curve25519.KeyAgreement.PrivateKey(using: random))
    }

    /// Signs `message` the way libsignal-protocol-c does (`XEdDSA/Variant/libsignal`), so
    /// that every Signal implementation verifies it. Draws 64 bytes from `random`.
    public func signature(for message: some ContiguousByteBuffer, using random: some RandomSource = SystemRandom()) throws(CryptoError) -> [UInt8] {
        try XEdDSA.signature(for: message, using: privateKey, edwardsPublicKey: edwardsPublicKey, variant: .libsignal, random: random)
    }

    /// The public key only.
    public var description: String { "IdentityKeyPair(public: \(Hex.encode(identityKey.serialized)))" }
}

/// Registration ids: a random number per install that peers can use to notice a reinstall.
public enum RegistrationID {
    /// A random id in ``SignalConstants/registrationIDRange``, drawn as libsignal does: four
    /// bytes read as a little-endian `v`, then `v % 16380 + 1`.
    public static func generate(using random: some RandomSource = SystemRandom()) throws(CryptoError) -> UInt32 {
        var value: UInt32 = 0
        try withUnsafeMutableBytes(of: &value) { (buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) in try random.fill(buffer) }
        let range = SignalConstants.registrationIDRange
        return UInt32(littleEndian: value) % UInt32(range.count) + range.lowerBound
    }
}
