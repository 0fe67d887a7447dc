/// A server key certified by the trust root (`Docs/spec/envelope.md` §3, certificate format 2):
///
/// ```
/// 0x02 || varint(key id) || server public key (32) || expiration (8, big-endian ms since 1970)
///      || signature (64)
/// signature = XEdDSA(trust root, "hush-1/server-certificate" || everything before it)
/// ```
public struct ServerCertificate: Sendable, Equatable {
    /// The server key's id (revocable).
    public let keyID: UInt32
    /// The key that signs sender certificates.
    public let key: Curve25519.KeyAgreement.PublicKey
    /// When the server key stops being valid (milliseconds since 1970): sender certificates it
    /// signed are refused from then on, whatever their own expiration.
    public let expiration: UInt64
    /// The trust root's XEdDSA signature (specification form).
    public let signature: [UInt8]
    /// The encoded certificate.
    public let serialized: [UInt8]

    /// Issues a certificate for `key` under `trustRoot`, valid until `expiration` (milliseconds
    /// since 1970); the signature draws 64 bytes from `random`.
    public static func issue(
        keyID: UInt32, key: Curve25519.KeyAgreement.PublicKey, expiration: UInt64,
        signedBy trustRoot: Curve25519.KeyAgreement.PrivateKey, random: some RandomSource = SystemRandom()
    ) throws(CryptoError) -> ServerCertificate {
        var content: [UInt8] = [EnvelopeConstants.certificateVersion]
        appendVarint(keyID, to: &content)
        content += key.rawRepresentation
        appendBigEndian(expiration, to: &content)
        let signature = try XEdDSA.signature(for: EnvelopeConstants.serverCertificateLabel + content, using: trustRoot,
                                             variant: .specification, random: random)
        return ServerCertificate(keyID: keyID, key: key, expiration: expiration, signature: signature, serialized: content + signature)
    }

    init(keyID: UInt32, key: Curve25519.KeyAgreement.PublicKey, expiration: UInt64, signature: [UInt8], serialized: [UInt8]) {
        self.keyID = keyID
        self.key = key
        self.expiration = expiration
        self.signature = signature
        self.serialized = serialized
    }

    /// Parses a certificate (its signature is checked by ``CertificateValidator``).
    public init(serialized bytes: some ContiguousByteBuffer) throws(CertificateError) {
        var r = EnvelopeReader(bytes.bytes)
        self = try Self.read(&r)
        guard r.isAtEnd else { throw .malformed("trailing bytes") }
    }

    static func read(_ r: inout EnvelopeReader) throws(CertificateError) -> ServerCertificate {
        let start = r.offset
        do {
            guard try r.byte() == EnvelopeConstants.certificateVersion else { throw EnvelopeError.malformed("server certificate version") }
            let keyID = try r.varint()
            let key = try r.publicKey()
            let expiration = try r.bigEndian64()
            let signature = try r.bytes(XEdDSA.signatureByteCount)
            return ServerCertificate(keyID: keyID, key: key, expiration: expiration, signature: signature,
                                     serialized: Array(r.data[start..<r.offset]))
        } catch {
            throw .malformed("server certificate: \(error)")
        }
    }

    var signedContent: [UInt8] { EnvelopeConstants.serverCertificateLabel + serialized.dropLast(XEdDSA.signatureByteCount) }
}

/// A sender's identity certified by a server key (`Docs/spec/envelope.md` §4, certificate format 2):
///
/// ```
/// 0x02 || varint(len) || sender id (UTF-8) || varint(device id) || identity key (32)
///      || expiration (8, big-endian ms since 1970) || server certificate || signature (64)
/// signature = XEdDSA(server key, "hush-1/sender-certificate" || everything before it)
/// ```
public struct SenderCertificate: Sendable, Equatable {
    /// The sender's user id.
    public let senderID: String
    /// The sender's device id.
    public let deviceID: UInt32
    /// The sender's identity key: must be the key that sealed the envelope.
    public let identityKey: IdentityKey
    /// When the certificate stops being valid (milliseconds since 1970).
    public let expiration: UInt64
    /// The server certificate whose key signed this one.
    public let server: ServerCertificate
    /// The server key's XEdDSA signature (specification form).
    public let signature: [UInt8]
    /// The encoded certificate.
    public let serialized: [UInt8]

    /// Issues a certificate (a server does this); the signature draws 64 bytes from `random`.
    ///
    /// - Throws: ``CertificateError/malformed(_:)`` for an empty or over-long sender id.
    public static func issue(
        senderID: String, deviceID: UInt32, identityKey: IdentityKey, expiration: UInt64,
        server: ServerCertificate, signedBy serverKey: Curve25519.KeyAgreement.PrivateKey,
        random: some RandomSource = SystemRandom()
    ) throws(CertificateError) -> SenderCertificate {
        let id = Array(senderID.utf8)
        guard (1...EnvelopeConstants.maximumSenderIDByteCount).contains(id.count) else { throw .malformed("sender id length \(id.count)") }
        var content: [UInt8] = [EnvelopeConstants.certificateVersion]
        appendVarint(UInt32(id.count), to: &content)
        content += id
        appendVarint(deviceID, to: &content)
        content += identityKey.publicKey.rawRepresentation
        appendBigEndian(expiration, to: &content)
        content += server.serialized
        let signature: [UInt8]
        do {
            signature = try XEdDSA.signature(for: EnvelopeConstants.senderCertificateLabel + content, using: serverKey,
                                             variant: .specification, random: random)
        } catch {
            throw .malformed("signing failed: \(error)")
        }
        return SenderCertificate(senderID: senderID, deviceID: deviceID, identityKey: identityKey, expiration: expiration,
                                 server: server, signature: signature, serialized: content + signature)
    }

    init(senderID: String, deviceID: UInt32, identityKey: IdentityKey, expiration: UInt64,
         server: ServerCertificate, signature: [UInt8], serialized: [UInt8]) {
        self.senderID = senderID
        self.deviceID = deviceID
        self.identityKey = identityKey
        self.expiration = expiration
        self.server = server
        self.signature = signature
        self.serialized = serialized
    }

    /// Parses a certificate (signatures, expiry and revocation are checked by ``CertificateValidator``).
    public init(serialized bytes: some ContiguousByteBuffer) throws(CertificateError) {
        var r = EnvelopeReader(bytes.bytes)
        self = try Self.read(&r)
        guard r.isAtEnd else { throw .malformed("trailing bytes") }
    }

    static func read(_ r: inout EnvelopeReader) throws(CertificateError) -> SenderCertificate {
        let start = r.offset
        let senderID: String, deviceID: UInt32, identity: Curve25519.KeyAgreement.PublicKey
        let expiration: UInt64
        do {
            guard try r.byte() == EnvelopeConstants.certificateVersion else { throw EnvelopeError.malformed("sender certificate version") }
            let idCount = try r.length()
            guard (1...EnvelopeConstants.maximumSenderIDByteCount).contains(idCount) else { throw EnvelopeError.malformed("sender id length") }
            guard let id = String(validating: try r.bytes(idCount), as: UTF8.self) else { throw EnvelopeError.malformed("sender id is not UTF-8") }
            senderID = id
            deviceID = try r.varint()
            identity = try r.publicKey()
            expiration = try r.bigEndian64()
        } catch {
            throw .malformed("sender certificate: \(error)")
        }
        let server = try ServerCertificate.read(&r)
        let signature: [UInt8]
        do { signature = try r.bytes(XEdDSA.signatureByteCount) } catch { throw .malformed("sender certificate signature") }
        return SenderCertificate(senderID: senderID, deviceID: deviceID, identityKey: IdentityKey(publicKey: identity),
                                 expiration: expiration, server: server, signature: signature, serialized: Array(r.data[start..<r.offset]))
    }

    var signedContent: [UInt8] { EnvelopeConstants.senderCertificateLabel + serialized.dropLast(XEdDSA.signatureByteCount) }
}

/// Checks sender certificates against a trust root (`Docs/spec/envelope.md` §4.2), in this
/// order: the server key id is not revoked; the trust root signed the server certificate; the
/// server certificate has not expired at `now`; the server key signed the sender certificate;
/// the sender certificate has not expired at `now`. Signatures are verified in the XEdDSA
/// specification form only (``XEdDSA/VerificationPolicy/specificationOnly``).
public struct CertificateValidator: Sendable {
    /// The trust root's public key (shipped with the app).
    public let trustRoot: Curve25519.KeyAgreement.PublicKey
    /// Server key ids that must no longer be accepted.
    public var revokedServerKeyIDs: Set<UInt32>

    /// A validator for certificates chaining to `trustRoot`, refusing server key ids in `revokedServerKeyIDs`.
    public init(trustRoot: Curve25519.KeyAgreement.PublicKey, revokedServerKeyIDs: Set<UInt32> = []) {
        self.trustRoot = trustRoot
        self.revokedServerKeyIDs = revokedServerKeyIDs
    }

    /// Validates `certificate` at time `now` (milliseconds since 1970, from the caller's clock).
    public func validate(_ certificate: SenderCertificate, now: UInt64) throws(CertificateError) {
        let server = certificate.server
        guard !revokedServerKeyIDs.contains(server.keyID) else { throw .revokedServerKey(keyID: server.keyID) }
        guard XEdDSA.isValidSignature(server.signature, for: server.signedContent, publicKey: trustRoot, policy: .specificationOnly) else {
            throw .badServerSignature
        }
        guard now < server.expiration else { throw .serverCertificateExpired(expiration: server.expiration, now: now) }
        guard XEdDSA.isValidSignature(certificate.signature, for: certificate.signedContent, publicKey: server.key, policy: .specificationOnly) else {
            throw .badSenderSignature
        }
        guard now < certificate.expiration else { throw .expired(expiration: certificate.expiration, now: now) }
    }
}

func appendVarint(_ value: UInt32, to bytes: inout [UInt8]) { LEB128.encode(UInt64(value)) { bytes.append($0) } }

/// Appends `value` as 8 big-endian bytes (the certificates' expiration field).
func appendBigEndian(_ value: UInt64, to bytes: inout [UInt8]) {
    for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
}

/// A bounds-checked reader for envelopes and certificates.
struct EnvelopeReader {
    let data: [UInt8]
    var offset = 0

    init(_ data: [UInt8]) { self.data = data }

    var isAtEnd: Bool { offset == data.count }
    var remaining: Int { data.count - offset }

    mutating func byte() throws(EnvelopeError) -> UInt8 {
        guard offset < data.count else { throw .malformed("truncated") }
        defer { offset += 1 }
        return data[offset]
    }

    mutating func bytes(_ count: Int) throws(EnvelopeError) -> [UInt8] {
        guard count >= 0, data.count - offset >= count else { throw .malformed("truncated") }
        defer { offset += count }
        return Array(data[offset..<(offset + count)])
    }

    /// 8 big-endian bytes.
    mutating func bigEndian64() throws(EnvelopeError) -> UInt64 {
        guard remaining >= 8 else { throw .malformed("truncated") }
        var value: UInt64 = 0
        for _ in 0..<8 { value = value << 8 | UInt64(data[offset]); offset += 1 }
        return value
    }

    /// A canonical varint used as a length or count (``EnvelopeError/length(_:as:)``).
    mutating func length() throws(EnvelopeError) -> Int {
        try EnvelopeError.length(try varint())
    }

    /// Canonical unsigned LEB128 of a 32-bit value (``LEB128/decodeCanonical32(_:)``).
    mutating func varint() throws(EnvelopeError) -> UInt32 {
        let data = self.data
        var offset = self.offset
        defer { self.offset = offset }
        switch LEB128.decodeCanonical32({ () -> UInt8? in
            guard offset < data.count else { return nil }
            defer { offset += 1 }
            return data[offset]
        }) {
        case .value(let v): return v
        case .truncated: throw .malformed("truncated")
        case .invalid: throw .malformed("non-canonical varint")
        }
    }

    mutating func publicKey() throws(EnvelopeError) -> Curve25519.KeyAgreement.PublicKey {
        let raw = try bytes(32)
        let key = try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw)
        guard key.isCanonical else { throw .malformed("non-canonical key") }
        return key
    }
}
