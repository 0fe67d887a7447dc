import Hush

/// The relay's Noise static key certified by the relay trust root (`Docs/spec/relay.md` §3).
///
/// ```
/// offset size
///   0     1   version 0x01
///   1     4   key id, big-endian
///   5     8   not before, Unix seconds, big-endian
///  13     8   not after, Unix seconds, big-endian
///  21    32   relay Noise static public key (X25519, raw)
///  53    64   XEdDSA signature by the trust root over "hush-relay/1 certificate" || bytes 0..<53
/// ```
public struct RelayCertificate: Sendable, Equatable {
    /// Certificate format version.
    public static let version: UInt8 = 1
    /// Total encoded length.
    public static let byteCount = 117
    /// Domain separation label prepended to the signed bytes.
    public static let signatureLabel: [UInt8] = Array("hush-relay/1 certificate".utf8)

    /// The key id (for rotation and revocation).
    public let keyID: UInt32
    /// Validity start, Unix seconds.
    public let notBefore: UInt64
    /// Validity end, Unix seconds (inclusive).
    public let notAfter: UInt64
    /// The relay's Noise static public key.
    public let relayKey: Curve25519.KeyAgreement.PublicKey
    /// The trust root's signature.
    public let signature: [UInt8]
    /// The encoded certificate.
    public let serialized: [UInt8]

    /// Errors of parsing and validation.
    public enum Error: Swift.Error, Equatable, Sendable {
        /// Not `byteCount` bytes.
        case wrongLength(Int)
        /// An unknown version byte.
        case unsupportedVersion(UInt8)
        /// The relay key is not a valid X25519 key.
        case invalidKey
        /// The trust root's signature does not verify.
        case badSignature
        /// `now` is outside [notBefore, notAfter].
        case expired(now: UInt64, notBefore: UInt64, notAfter: UInt64)
        /// The certified key is not the key the relay used in the handshake.
        case keyMismatch
    }

    static func content(keyID: UInt32, notBefore: UInt64, notAfter: UInt64, key: Curve25519.KeyAgreement.PublicKey) -> [UInt8] {
        var out: [UInt8] = [version]
        out.reserveCapacity(byteCount)
        appendBigEndian(UInt64(keyID), bytes: 4, to: &out)
        appendBigEndian(notBefore, bytes: 8, to: &out)
        appendBigEndian(notAfter, bytes: 8, to: &out)
        out += key.rawRepresentation
        return out
    }

    /// Issues a certificate for `relayKey`, signed by `trustRoot`.
    public static func issue(
        keyID: UInt32, relayKey: Curve25519.KeyAgreement.PublicKey, notBefore: UInt64, notAfter: UInt64,
        trustRoot: Curve25519.KeyAgreement.PrivateKey, random: some RandomSource = SystemRandom()
    ) throws(CryptoError) -> RelayCertificate {
        let body = content(keyID: keyID, notBefore: notBefore, notAfter: notAfter, key: relayKey)
        let signature = try XEdDSA.signature(for: signatureLabel + body, using: trustRoot, variant: .specification, random: random)
        return RelayCertificate(keyID: keyID, notBefore: notBefore, notAfter: notAfter, relayKey: relayKey,
                                signature: signature, serialized: body + signature)
    }

    private init(keyID: UInt32, notBefore: UInt64, notAfter: UInt64, relayKey: Curve25519.KeyAgreement.PublicKey,
                 signature: [UInt8], serialized: [UInt8]) {
        self.keyID = keyID
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.relayKey = relayKey
        self.signature = signature
        self.serialized = serialized
    }

    /// Parses a certificate without checking its signature (see ``validate(trustRoot:now:handshakeKey:)``).
    public init(serialized bytes: some ContiguousByteBuffer) throws(RelayCertificate.Error) {
        let b = bytes.bytes
        guard b.count == Self.byteCount else { throw .wrongLength(b.count) }
        guard b[0] == Self.version else { throw .unsupportedVersion(b[0]) }
        let key: Curve25519.KeyAgreement.PublicKey
        do { key = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: b[21..<53]) } catch { throw .invalidKey }
        self.init(keyID: UInt32(readBigEndian(b, 1, 4)), notBefore: readBigEndian(b, 5, 8), notAfter: readBigEndian(b, 13, 8),
                  relayKey: key, signature: Array(b[53..<117]), serialized: b)
    }

    /// Checks the signature against the pinned `trustRoot`, the validity at `now` (Unix
    /// seconds) and, when given, that the certified key is the handshake's relay key.
    public func validate(trustRoot: Curve25519.KeyAgreement.PublicKey, now: UInt64,
                         handshakeKey: Curve25519.KeyAgreement.PublicKey? = nil) throws(RelayCertificate.Error) {
        guard XEdDSA.isValidSignature(signature, for: Self.signatureLabel + serialized[0..<53], publicKey: trustRoot,
                                      policy: .specificationOnly) else { throw .badSignature }
        try validateIgnoringSignature(now: now, handshakeKey: handshakeKey)
    }

    /// The checks of ``validate(trustRoot:now:handshakeKey:)`` after the signature: the validity
    /// dates, and (when given) that `handshakeKey` is the certified key. Only for a client
    /// that has no trust root and trusts a certificate on first use.
    func validateIgnoringSignature(now: UInt64, handshakeKey: Curve25519.KeyAgreement.PublicKey?) throws(RelayCertificate.Error) {
        guard now >= notBefore, now <= notAfter else { throw .expired(now: now, notBefore: notBefore, notAfter: notAfter) }
        if let handshakeKey, !ConstantTime.equals(handshakeKey.rawRepresentation, relayKey.rawRepresentation) {
            throw .keyMismatch
        }
    }
}

func appendBigEndian(_ value: UInt64, bytes: Int, to out: inout [UInt8]) {
    for i in stride(from: bytes - 1, through: 0, by: -1) { out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
}

func readBigEndian(_ b: [UInt8], _ offset: Int, _ count: Int) -> UInt64 {
    var v: UInt64 = 0
    for i in 0..<count { v = v << 8 | UInt64(b[offset + i]) }
    return v
}
