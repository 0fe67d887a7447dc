/// One payload for many recipients (`Docs/spec/envelope.md` §6): the content is encrypted
/// once under a random key `K`; each recipient gets a 96-byte header that proves the sender
/// (static-static DH, as in ``SealedEnvelope``) and carries `K`. One group message to N
/// devices costs one payload plus N headers.
///
/// ```
/// sent to the server:   0xE2 || varint(N) || e_pub (32) || N × (sender box (48) || key box (48))
///                            || varint(len) || payload box
/// delivered to one:     0xE3 || varint(len) || e_pub (32) || sender box || key box || payload box
/// ```
/// Every header binds `SHA-256(payload box)`, so a recipient who knows `K` cannot forge a
/// payload for the others.
public struct MultiRecipientEnvelope: Sendable, Equatable {
    /// The bytes the sender hands the server.
    public let serialized: [UInt8]
    /// How many recipients, in the order the sender listed them.
    public let recipientCount: Int
    private let ephemeralKey: [UInt8]
    private let headers: [[UInt8]]
    private let payload: [UInt8]

    /// Seals `message` once for all `recipients` (their identity keys, in the order the
    /// server will deliver). Draws the ephemeral key (32) and `K` (32) from `random`.
    /// With `staticAgreements`, each header's static agreement `DH(IK_S, IK_R)` (§6) comes from
    /// that cache when it holds it (the same bytes, one X25519 fewer per header): a group
    /// sender keeps one for its identity and passes it to every send.
    public static func seal(
        _ message: some ContiguousByteBuffer, contentType: EnvelopeContentType, certificate: SenderCertificate,
        senderIdentity: IdentityKeyPair, to recipients: [IdentityKey], random: some RandomSource = SystemRandom(),
        staticAgreements: StaticAgreementCache? = nil
    ) throws(EnvelopeError) -> MultiRecipientEnvelope {
        guard certificate.identityKey == senderIdentity.identityKey else { throw .certificate(.identityMismatch) }
        guard !recipients.isEmpty else { throw .malformed("no recipients") }
        let content = try EnvelopeContent.encode(type: contentType, certificate: certificate, message: message.bytes)
        let recipientCount = try EnvelopeError.lengthField(recipients.count)
        // The payload box (content + tag) and every delivered envelope (key, header, payload) must fit their varints.
        let payloadLength = try EnvelopeError.lengthField(content.count + 16)
        _ = try EnvelopeError.lengthField(content.count + 16 + 32 + EnvelopeConstants.recipientHeaderByteCount)
        let ephemeral = try envelopeCrypto { () throws(CryptoError) in try Curve25519.KeyAgreement.PrivateKey(using: random) }
        let payloadKey = try envelopeCrypto { () throws(CryptoError) in try random.secureBytes(count: 32) }
        let payload = try SealedEnvelope.seal(content, key: payloadKey, ad: [EnvelopeConstants.multiRecipientType] + ephemeral.publicKey.rawRepresentation)
        let digest = SHA256.hash(payload)
        var headers: [[UInt8]] = []
        for recipient in recipients {
            let prefix = [EnvelopeConstants.deliveredType] + ephemeral.publicKey.rawRepresentation
            let (kE, chain) = try EnvelopeKeys.ephemeral(dh: try SealedEnvelope.agree(ephemeral, recipient.publicKey),
                                                         ephemeral: ephemeral.publicKey, recipient: recipient.publicKey,
                                                         info: EnvelopeConstants.multiEphemeralInfo)
            let senderBox = try SealedEnvelope.seal(senderIdentity.identityKey.publicKey.rawRepresentation, key: kE, ad: prefix + digest)
            let dh: Curve25519.KeyAgreement.SharedSecret
            if let staticAgreements {
                dh = try staticAgreements.agreement(senderIdentity, recipient)
            } else {
                dh = try SealedEnvelope.agree(senderIdentity.privateKey, recipient.publicKey)
            }
            let kS = try EnvelopeKeys.static(dh: dh, chain: chain, info: EnvelopeConstants.multiStaticInfo, context: senderBox + digest)
            let keyBox = try envelopeCrypto { () throws(CryptoError) in
                try XChaChaPoly.encrypt(payloadKey, key: kS, nonce: EnvelopeConstants.zeroNonce, associatedData: prefix + senderBox + digest)
            }
            headers.append(senderBox + keyBox)
        }
        var bytes: [UInt8] = [EnvelopeConstants.multiRecipientType]
        appendVarint(recipientCount, to: &bytes)
        bytes += ephemeral.publicKey.rawRepresentation
        for header in headers { bytes += header }
        appendVarint(payloadLength, to: &bytes)
        bytes += payload
        return MultiRecipientEnvelope(serialized: bytes, recipientCount: recipients.count,
                                      ephemeralKey: ephemeral.publicKey.rawRepresentation, headers: headers, payload: payload)
    }

    private init(serialized: [UInt8], recipientCount: Int, ephemeralKey: [UInt8], headers: [[UInt8]], payload: [UInt8]) {
        self.serialized = serialized
        self.recipientCount = recipientCount
        self.ephemeralKey = ephemeralKey
        self.headers = headers
        self.payload = payload
    }

    /// Parses what a sender handed in (a server does this to split it).
    public init(serialized bytes: some ContiguousByteBuffer) throws(EnvelopeError) {
        var r = EnvelopeReader(bytes.bytes)
        let type = try r.byte()
        guard type == EnvelopeConstants.multiRecipientType else { throw .unsupportedVersion(type) }
        let count = try r.length()
        guard count >= 1, count <= r.remaining / EnvelopeConstants.recipientHeaderByteCount else { throw .malformed("recipient count") }
        let ephemeral = try r.publicKey()
        var headers: [[UInt8]] = []
        for _ in 0..<count { headers.append(try r.bytes(EnvelopeConstants.recipientHeaderByteCount)) }
        let payloadCount = try r.length()
        guard payloadCount >= 16 else { throw .malformed("payload") }
        let payload = try r.bytes(payloadCount)
        guard r.isAtEnd else { throw .malformed("trailing bytes") }
        self.init(serialized: r.data, recipientCount: count, ephemeralKey: ephemeral.rawRepresentation, headers: headers, payload: payload)
    }

    /// The envelope the server delivers to recipient `index` (0-based, in the sender's order).
    ///
    /// - Throws: ``EnvelopeError/recipientIndexOutOfRange(index:count:)`` unless
    ///   `0 ≤ index < recipientCount`; ``EnvelopeError/tooLarge(byteCount:limit:)`` if the
    ///   delivered length does not fit its varint (a payload within 128 bytes of 4 GiB).
    public func delivered(to index: Int) throws(EnvelopeError) -> [UInt8] {
        guard headers.indices.contains(index) else { throw .recipientIndexOutOfRange(index: index, count: headers.count) }
        var bytes: [UInt8] = [EnvelopeConstants.deliveredType]
        appendVarint(try EnvelopeError.lengthField(32 + EnvelopeConstants.recipientHeaderByteCount + payload.count), to: &bytes)
        return bytes + ephemeralKey + headers[index] + payload
    }

    static func openKey(_ box: [UInt8], key: SecureBytes, ad: [UInt8]) throws(EnvelopeError) -> SecureBytes {
        guard box.count == 32 + 16 else { throw .authenticationFailed }
        do {
            return try SecureBytes(count: 32) { (out: UnsafeMutableRawBufferPointer) throws(CryptoError) in
                try box.withUnsafeBytes { (b: UnsafeRawBufferPointer) throws(CryptoError) in
                    try key.withUnsafeBytes { (k: UnsafeRawBufferPointer) throws(CryptoError) in
                        try ad.withUnsafeBytes { (a: UnsafeRawBufferPointer) throws(CryptoError) in
                            try EnvelopeConstants.zeroNonce.withUnsafeBytes { (n: UnsafeRawBufferPointer) throws(CryptoError) in
                                try XChaChaPoly.decrypt(b, key: k, nonce: n, associatedData: a, into: out)
                            }
                        }
                    }
                }
            }
        } catch {
            throw .authenticationFailed
        }
    }

    /// Opens a delivered envelope (``delivered(to:)``) addressed to `recipientIdentity`,
    /// with the same checks as ``SealedEnvelope/open(_:recipientIdentity:validator:now:)``.
    public static func open(
        _ bytes: some ContiguousByteBuffer, recipientIdentity: IdentityKeyPair,
        validator: CertificateValidator, now: UInt64
    ) throws(EnvelopeError) -> OpenedEnvelope {
        var r = EnvelopeReader(bytes.bytes)
        let type = try r.byte()
        guard type == EnvelopeConstants.deliveredType else { throw .unsupportedVersion(type) }
        let bodyCount = try r.length()
        guard bodyCount == r.remaining else { throw .malformed(bodyCount > r.remaining ? "truncated" : "trailing bytes") }
        let ephemeral = try r.publicKey()
        let senderBox = try r.bytes(48)
        let keyBox = try r.bytes(48)
        guard r.remaining >= 16 else { throw .malformed("truncated") }
        let payload = try r.bytes(r.remaining)
        let digest = SHA256.hash(payload)
        let prefix = [EnvelopeConstants.deliveredType] + ephemeral.rawRepresentation

        let (kE, chain) = try EnvelopeKeys.ephemeral(dh: try SealedEnvelope.agree(recipientIdentity.privateKey, ephemeral),
                                                     ephemeral: ephemeral, recipient: recipientIdentity.identityKey.publicKey,
                                                     info: EnvelopeConstants.multiEphemeralInfo)
        let senderKey = try SealedEnvelope.open(senderBox, key: kE, ad: prefix + digest)
        guard let sender = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: senderKey), sender.isCanonical else {
            throw .malformed("sender key")
        }
        let kS = try EnvelopeKeys.static(dh: try SealedEnvelope.agree(recipientIdentity.privateKey, sender), chain: chain,
                                         info: EnvelopeConstants.multiStaticInfo, context: senderBox + digest)
        // K goes straight into wiped storage.
        let payloadKey = try Self.openKey(keyBox, key: kS, ad: prefix + senderBox + digest)
        let content = try SealedEnvelope.open(payload, key: payloadKey, ad: [EnvelopeConstants.multiRecipientType] + ephemeral.rawRepresentation)
        return try EnvelopeContent.decode(content, sealedBy: IdentityKey(publicKey: sender), validator: validator, now: now)
    }
}
