import Hush

/// The session message inside an outbox item's sealed envelope, kept so that the envelope can be
/// sealed again with a fresh sender certificate without touching the ratchet
/// (`Docs/client.md` §Sending, "Re-sealing").
///
/// The ratchet ciphertext is fixed when the item is enqueued (the session advanced then, once);
/// only the outer sealed envelope — the sender certificate and the envelope's own ephemeral
/// encryption — is redone when the certificate it carries is about to expire. The recipient
/// then decrypts exactly the message it would have decrypted, under the same client message id.
///
/// Stored (sealed, in the SQLite store's `outbox.inner` column) as:
///
/// ```
/// 0x01 (version) || type (0x01 message, 0x02 preKeyMessage, 0x07 groupMessage) || u64 BE certificate expiration (Unix ms) || message (≥ 1 byte)
/// ```
public struct SessionCiphertext: Sendable, Equatable {
    /// The envelope content type: ``EnvelopeContentType/message``, ``EnvelopeContentType/preKeyMessage``,
    /// or ``EnvelopeContentType/groupMessage`` (a group item's `group_id || SenderKeyMessage`).
    public var contentType: EnvelopeContentType
    /// The serialized session message (`CiphertextMessage.serialized`).
    public var message: [UInt8]
    /// The expiration (Unix ms) of the sender certificate sealed into the item's payload.
    public var certificateExpiration: UInt64

    /// A session message as sealed with a certificate expiring at `certificateExpiration`.
    public init(contentType: EnvelopeContentType, message: [UInt8], certificateExpiration: UInt64) {
        self.contentType = contentType
        self.message = message
        self.certificateExpiration = certificateExpiration
    }

    /// The encoding's version byte.
    static let version: UInt8 = 0x01
    /// Version, type and expiration.
    static let headerLength = 10

    /// Why bytes are not a ``SessionCiphertext``.
    public enum DecodeError: Error, Equatable, Sendable {
        /// Shorter than the header plus one message byte.
        case truncated
        /// Another version byte.
        case unknownVersion(UInt8)
        /// A type byte other than message / preKeyMessage / groupMessage.
        case unknownType(UInt8)
    }

    /// The stored form (see the type's documentation).
    public var encoded: [UInt8] {
        let type: UInt8 = switch contentType {
        case .preKeyMessage: 0x02
        case .groupMessage: 0x07
        default: 0x01
        }
        var out: [UInt8] = [Self.version, type]
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: certificateExpiration >> UInt64(shift))) }
        return out + message
    }

    /// Decodes the stored form; any input yields a value or a ``DecodeError``.
    public init(decoding bytes: [UInt8]) throws(DecodeError) {
        guard bytes.count > Self.headerLength else { throw .truncated }
        guard bytes[0] == Self.version else { throw .unknownVersion(bytes[0]) }
        switch bytes[1] {
        case 0x01: contentType = .message
        case 0x02: contentType = .preKeyMessage
        case 0x07: contentType = .groupMessage
        default: throw .unknownType(bytes[1])
        }
        certificateExpiration = bytes[2..<Self.headerLength].reduce(0) { $0 << 8 | UInt64($1) }
        message = Array(bytes[Self.headerLength...])
    }
}
