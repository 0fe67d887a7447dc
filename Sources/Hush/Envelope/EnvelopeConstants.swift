/// Constants of Hush's sealed envelopes and sender certificates (`Docs/spec/envelope.md`).
public enum EnvelopeConstants {
    /// First byte of a single-recipient sealed envelope.
    public static let envelopeType: UInt8 = 0xE1
    /// First byte of a multi-recipient envelope (what a sender hands the server).
    public static let multiRecipientType: UInt8 = 0xE2
    /// First byte of the envelope the server delivers to one recipient of a multi-recipient envelope.
    public static let deliveredType: UInt8 = 0xE3
    /// Version byte of server and sender certificates: format 2 (`Docs/spec/envelope.md` §3),
    /// whose server certificates carry an expiration. Format 1 (no server expiry) was never
    /// deployed and is not read.
    public static let certificateVersion: UInt8 = 0x02
    /// The longest sender id (UTF-8 bytes).
    public static let maximumSenderIDByteCount = 255
    /// Per-recipient header of a multi-recipient envelope: sender box (48) + key box (48).
    public static let recipientHeaderByteCount = 96

    static let serverCertificateLabel = Array("hush-1/server-certificate".utf8)
    static let senderCertificateLabel = Array("hush-1/sender-certificate".utf8)
    static let ephemeralInfo = Array("hush-1/envelope/ephemeral".utf8)
    static let staticInfo = Array("hush-1/envelope/static".utf8)
    static let multiEphemeralInfo = Array("hush-1/envelope/multi/ephemeral".utf8)
    static let multiStaticInfo = Array("hush-1/envelope/multi/static".utf8)
    /// All AEADs here use a key that is used exactly once, so the nonce is fixed.
    static let zeroNonce = [UInt8](repeating: 0, count: 24)
}

/// Why an envelope or certificate was rejected. Cases carry what the caller needs, never
/// key material.
public enum EnvelopeError: Error, Equatable, Hashable, Sendable {
    /// The bytes are not an envelope: bad framing, truncated, trailing bytes, bad varint,
    /// non-canonical key, non-zero padding, unknown flags. `reason` says which.
    case malformed(String)
    /// The first byte names a format this version of Hush does not know.
    case unsupportedVersion(UInt8)
    /// An AEAD did not verify: not for this recipient, or modified in transit. Nothing about
    /// the sender was learned.
    case authenticationFailed
    /// A public key in the envelope gives an all-zero Diffie-Hellman result.
    case invalidKey
    /// The sender certificate is not acceptable.
    case certificate(CertificateError)
    /// Sealing: a length to encode (message, content, payload, recipient count) is above
    /// `limit`, the largest that the envelope's 32-bit varints can carry (and that fits `Int`).
    case tooLarge(byteCount: Int, limit: Int)
    /// ``MultiRecipientEnvelope/delivered(to:)``: there is no recipient `index` among `count`.
    case recipientIndexOutOfRange(index: Int, count: Int)
}

extension EnvelopeError {
    /// `count` as the value of a 32-bit length varint, or ``tooLarge(byteCount:limit:)``
    /// (no trap on inputs of 4 GiB and more).
    static func lengthField(_ count: Int) throws(EnvelopeError) -> UInt32 {
        guard count >= 0, let value = UInt32(exactly: count) else {
            throw .tooLarge(byteCount: count, limit: Int(clamping: UInt32.max))
        }
        return value
    }

    /// A decoded 32-bit length as an `I` (`Int` in the decoders), or ``malformed(_:)`` when
    /// it does not fit — on 32-bit platforms a length of 2³¹ or more, where `Int(_:)` traps.
    static func length<I: FixedWidthInteger>(_ value: UInt32, as type: I.Type = Int.self) throws(EnvelopeError) -> I {
        guard let length = I(exactly: value) else { throw .malformed("length \(value) too large") }
        return length
    }
}

/// Why a sender certificate is not acceptable.
public enum CertificateError: Error, Equatable, Hashable, Sendable {
    /// The certificate bytes do not parse.
    case malformed(String)
    /// The server certificate's key id was revoked.
    case revokedServerKey(keyID: UInt32)
    /// The server certificate is not signed by the trust root.
    case badServerSignature
    /// The server certificate expired (`expiration` ≤ `now`, milliseconds since 1970).
    case serverCertificateExpired(expiration: UInt64, now: UInt64)
    /// The sender certificate is not signed by the server key.
    case badSenderSignature
    /// The certificate expired (`expiration` ≤ `now`, milliseconds since 1970).
    case expired(expiration: UInt64, now: UInt64)
    /// The certificate names another identity key than the one that sealed the envelope.
    case identityMismatch
}

extension EnvelopeError {
    /// The error's name in the envelope vectors (`Docs/spec/envelope.md` §8).
    package var transcriptName: String {
        switch self {
        case .malformed: "malformed"
        case .unsupportedVersion: "unsupported_version"
        case .authenticationFailed: "authentication_failed"
        case .invalidKey: "invalid_key"
        case .certificate(.malformed): "malformed_certificate"
        case .certificate(.revokedServerKey): "revoked_server_key"
        case .certificate(.badServerSignature): "bad_server_signature"
        case .certificate(.serverCertificateExpired): "server_certificate_expired"
        case .certificate(.badSenderSignature): "bad_sender_signature"
        case .certificate(.expired): "expired"
        case .certificate(.identityMismatch): "identity_mismatch"
        case .tooLarge: "too_large"
        case .recipientIndexOutOfRange: "recipient_index_out_of_range"
        }
    }
}
