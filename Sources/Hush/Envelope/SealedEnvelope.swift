/// What an envelope carries (`Docs/spec/envelope.md` §5.1). Unknown types are kept as
/// ``other(_:)`` so that newer senders can add types.
public enum EnvelopeContentType: Equatable, Hashable, Sendable {
    /// A pairwise session message (``SignalMessage`` or ``HushMessage``).
    case message
    /// A pairwise prekey message (``PreKeySignalMessage`` or ``HushPreKeyMessage``).
    case preKeyMessage
    /// The recipient's device received messages.
    case deliveryReceipt
    /// The recipient's user read messages.
    case readReceipt
    /// A typing indicator.
    case typing
    /// A ``SenderKeyDistributionMessage`` (only ever inside a pairwise message: this type is
    /// for an app's own framing).
    case senderKeyDistribution
    /// A group message (``SenderKeyMessage``).
    case groupMessage
    /// A type this version does not know (1 … 255 except the above).
    case other(UInt8)

    /// The type's byte.
    public var rawValue: UInt8 {
        switch self {
        case .message: 1
        case .preKeyMessage: 2
        case .deliveryReceipt: 3
        case .readReceipt: 4
        case .typing: 5
        case .senderKeyDistribution: 6
        case .groupMessage: 7
        case .other(let value): value
        }
    }

    /// The type for a byte; 0 is not a type.
    public init?(rawValue: UInt8) {
        switch rawValue {
        case 0: return nil
        case 1: self = .message
        case 2: self = .preKeyMessage
        case 3: self = .deliveryReceipt
        case 4: self = .readReceipt
        case 5: self = .typing
        case 6: self = .senderKeyDistribution
        case 7: self = .groupMessage
        default: self = .other(rawValue)
        }
    }
}

/// An opened envelope: who sent it (authenticated) and what it carries.
public struct OpenedEnvelope: Sendable, Equatable {
    /// The sender's certificate (validated; its identity key sealed the envelope).
    public let sender: SenderCertificate
    /// The content type.
    public let contentType: EnvelopeContentType
    /// The carried bytes (a protocol message, a receipt, …).
    public let message: [UInt8]
}

/// Sealed envelopes (`Docs/spec/envelope.md`): a server routes them knowing only the
/// recipient; the recipient learns and authenticates the sender.
///
/// Sealing encrypts to the recipient's identity key with a fresh ephemeral key (hiding who
/// sends), and a second layer keyed by a static-static Diffie-Hellman between the sender's and
/// the recipient's identity keys (proving who sends): only the recipient can open it, and only
/// the holder of the sender's identity key can have made it. The content is padded (Padmé) so
/// that lengths leak little.
///
/// Not for: hiding the sender from the recipient, or anonymity against a server that sees
/// network addresses and timing — the envelope hides the sender only in its bytes.
public enum SealedEnvelope {
    /// Seals `message` of `contentType` from the holder of `senderIdentity` (whose
    /// `certificate` names it) to `recipient`. Draws a 32-byte ephemeral key from `random`.
    public static func seal(
        _ message: some ContiguousByteBuffer, contentType: EnvelopeContentType, certificate: SenderCertificate,
        senderIdentity: IdentityKeyPair, to recipient: IdentityKey, random: some RandomSource = SystemRandom()
    ) throws(EnvelopeError) -> [UInt8] {
        guard certificate.identityKey == senderIdentity.identityKey else { throw .certificate(.identityMismatch) }
        return try sealUnchecked(message, contentType: contentType, certificate: certificate, senderIdentity: senderIdentity,
                                 to: recipient, random: random)
    }

    /// ``seal(_:contentType:certificate:senderIdentity:to:random:)`` without the check that the
    /// certificate names `senderIdentity` — for tests and vectors of the recipient's check.
    package static func sealUnchecked(
        _ message: some ContiguousByteBuffer, contentType: EnvelopeContentType, certificate: SenderCertificate,
        senderIdentity: IdentityKeyPair, to recipient: IdentityKey, random: some RandomSource
    ) throws(EnvelopeError) -> [UInt8] {
        let content = try EnvelopeContent.encode(type: contentType, certificate: certificate, message: message.bytes)
        let bodyLength = try EnvelopeError.lengthField(32 + 48 + content.count + 16)
        let ephemeral = try envelopeCrypto { () throws(CryptoError) in try Curve25519.KeyAgreement.PrivateKey(using: random) }
        var header: [UInt8] = [EnvelopeConstants.envelopeType]
        appendVarint(bodyLength, to: &header)
        header += ephemeral.publicKey.rawRepresentation
        let (kE, chain) = try EnvelopeKeys.ephemeral(dh: try agree(ephemeral, recipient.publicKey),
                                                     ephemeral: ephemeral.publicKey, recipient: recipient.publicKey,
                                                     info: EnvelopeConstants.ephemeralInfo)
        let senderBox = try seal(senderIdentity.identityKey.publicKey.rawRepresentation, key: kE, ad: header)
        let kS = try EnvelopeKeys.static(dh: try agree(senderIdentity.privateKey, recipient.publicKey), chain: chain,
                                         info: EnvelopeConstants.staticInfo, context: senderBox)
        let contentBox = try seal(content, key: kS, ad: header + senderBox)
        return header + senderBox + contentBox
    }

    /// Opens an envelope addressed to `recipientIdentity`, validating the sender certificate
    /// with `validator` at `now` (milliseconds since 1970).
    ///
    /// Checks, in order: framing and version; the ephemeral layer (reveals the claimed sender
    /// identity); the static layer (proves it); content framing and zero padding; the
    /// certificate chain, revocation and expiry; that the certificate names the identity that
    /// sealed the envelope.
    public static func open(
        _ bytes: some ContiguousByteBuffer, recipientIdentity: IdentityKeyPair,
        validator: CertificateValidator, now: UInt64
    ) throws(EnvelopeError) -> OpenedEnvelope {
        var r = EnvelopeReader(bytes.bytes)
        let type = try r.byte()
        guard type == EnvelopeConstants.envelopeType else { throw .unsupportedVersion(type) }
        let bodyCount = try r.length()
        guard bodyCount == r.remaining else { throw .malformed(bodyCount > r.remaining ? "truncated" : "trailing bytes") }
        let ephemeralKey = try r.publicKey()
        let header = Array(r.data[0..<r.offset])
        let senderBox = try r.bytes(48)
        guard r.remaining >= 16 else { throw .malformed("truncated") }
        let contentBox = try r.bytes(r.remaining)

        let (kE, chain) = try EnvelopeKeys.ephemeral(dh: try agree(recipientIdentity.privateKey, ephemeralKey),
                                                     ephemeral: ephemeralKey, recipient: recipientIdentity.identityKey.publicKey,
                                                     info: EnvelopeConstants.ephemeralInfo)
        let senderKey = try open(senderBox, key: kE, ad: header)
        guard let sender = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: senderKey), sender.isCanonical else {
            throw .malformed("sender key")
        }
        let kS = try EnvelopeKeys.static(dh: try agree(recipientIdentity.privateKey, sender), chain: chain,
                                         info: EnvelopeConstants.staticInfo, context: senderBox)
        let content = try open(contentBox, key: kS, ad: header + senderBox)
        return try EnvelopeContent.decode(content, sealedBy: IdentityKey(publicKey: sender), validator: validator, now: now)
    }

    static func agree(_ ours: Curve25519.KeyAgreement.PrivateKey, _ theirs: Curve25519.KeyAgreement.PublicKey) throws(EnvelopeError) -> Curve25519.KeyAgreement.SharedSecret {
        do { return try ours.sharedSecretFromKeyAgreement(with: theirs) } catch { throw .invalidKey }
    }

    static func seal(_ plaintext: [UInt8], key: SecureBytes, ad: [UInt8]) throws(EnvelopeError) -> [UInt8] {
        try envelopeCrypto { () throws(CryptoError) in
            try XChaChaPoly.encrypt(plaintext, key: key, nonce: EnvelopeConstants.zeroNonce, associatedData: ad)
        }
    }

    static func open(_ box: [UInt8], key: SecureBytes, ad: [UInt8]) throws(EnvelopeError) -> [UInt8] {
        do { return try XChaChaPoly.decrypt(box, key: key, nonce: EnvelopeConstants.zeroNonce, associatedData: ad) } catch {
            throw .authenticationFailed
        }
    }
}

func envelopeCrypto<T>(_ body: () throws(CryptoError) -> T) throws(EnvelopeError) -> T {
    do { return try body() } catch { throw .malformed("crypto: \(error)") }
}

/// The envelope key schedule (`Docs/spec/envelope.md` §5.3).
enum EnvelopeKeys {
    /// `k_e || ck = HKDF(dh_e, salt = 0*32, info || e_pub || IK_R, 64)`.
    static func ephemeral(
        dh: Curve25519.KeyAgreement.SharedSecret, ephemeral: Curve25519.KeyAgreement.PublicKey,
        recipient: Curve25519.KeyAgreement.PublicKey, info: [UInt8]
    ) throws(EnvelopeError) -> (SecureBytes, SecureBytes) {
        let out = try envelopeCrypto { () throws(CryptoError) in
            try HKDF.deriveKey(inputKeyMaterial: dh, salt: [UInt8](), info: info + ephemeral.rawRepresentation + recipient.rawRepresentation,
                               outputByteCount: 64)
        }
        return (out.slice(0..<32), out.slice(32..<64))
    }

    /// `k_s = HKDF(dh_s, salt = ck, info || context, 32)`.
    static func `static`(dh: Curve25519.KeyAgreement.SharedSecret, chain: SecureBytes, info: [UInt8], context: [UInt8]) throws(EnvelopeError) -> SecureBytes {
        try envelopeCrypto { () throws(CryptoError) in
            try HKDF.deriveKey(inputKeyMaterial: dh, salt: chain, info: info + context, outputByteCount: 32)
        }
    }
}

/// The plaintext inside an envelope (`Docs/spec/envelope.md` §5.1):
/// `type (1) || varint(len) || sender certificate || varint(len) || message || zero padding`,
/// padded to Padmé(length).
enum EnvelopeContent {
    static func encode(type: EnvelopeContentType, certificate: SenderCertificate, message: [UInt8]) throws(EnvelopeError) -> [UInt8] {
        var content: [UInt8] = [type.rawValue]
        appendVarint(try EnvelopeError.lengthField(certificate.serialized.count), to: &content)
        content += certificate.serialized
        appendVarint(try EnvelopeError.lengthField(message.count), to: &content)
        content += message
        content += [UInt8](repeating: 0, count: Padme.paddedLength(content.count) - content.count)
        return content
    }

    static func decode(_ content: [UInt8], sealedBy sender: IdentityKey, validator: CertificateValidator, now: UInt64) throws(EnvelopeError) -> OpenedEnvelope {
        var r = EnvelopeReader(content)
        guard let type = EnvelopeContentType(rawValue: try r.byte()) else { throw .malformed("content type 0") }
        let certificateCount = try r.length()
        let certificateBytes = try r.bytes(certificateCount)
        let messageCount = try r.length()
        let message = try r.bytes(messageCount)
        guard content.count == Padme.paddedLength(r.offset), content[r.offset...].allSatisfy({ $0 == 0 }) else {
            throw .malformed("padding")
        }
        let certificate: SenderCertificate
        do { certificate = try SenderCertificate(serialized: certificateBytes) } catch { throw .certificate(error) }
        do { try validator.validate(certificate, now: now) } catch { throw .certificate(error) }
        guard certificate.identityKey == sender else { throw .certificate(.identityMismatch) }
        return OpenedEnvelope(sender: certificate, contentType: type, message: message)
    }
}

/// Padmé padding (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
/// Communication with PURBs", PETS 2019, §4): a length `L` is rounded up so that only the top
/// ⌊log₂ log₂ L⌋ + 1 bits of it remain, leaking O(log log L) bits with at most ≈12% overhead.
public enum Padme {
    /// The padded length of `length` bytes (lengths below 2 are unchanged).
    public static func paddedLength(_ length: Int) -> Int {
        guard length >= 2 else { return length }
        let e = Int.bitWidth - 1 - length.leadingZeroBitCount           // ⌊log₂ L⌋
        let s = Int.bitWidth - 1 - e.leadingZeroBitCount + 1            // ⌊log₂ E⌋ + 1
        let lastBits = e - s
        let mask = (1 << lastBits) - 1
        return (length + mask) & ~mask
    }
}
