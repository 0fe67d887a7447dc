import Foundation
import Hush
import HushCrypto

/// The code a new device shows so that an existing device of the account can link it
/// (Docs/spec/client.md §7.1): the relay's provisioning address and the new device's
/// provisioning public key.
///
/// `hush-link:` followed by the unpadded base64url (RFC 4648 §5) of 53 bytes:
/// `version (0x01) ‖ address (16) ‖ public key (32) ‖ check (4)`, check = the first 4 bytes of
/// SHA-256 of the 49 bytes before it. 81 characters in all.
public struct LinkCode: Sendable, Equatable, CustomStringConvertible {
    /// The format's version byte.
    public static let version: UInt8 = 0x01
    /// The text before the base64url part.
    public static let prefix = "hush-link:"
    /// Bytes under the base64url part.
    public static let byteCount = 53
    /// Characters of the base64url part.
    public static let encodedCount = 71

    /// The relay's provisioning address (spec relay §22.3), 16 bytes.
    public let address: [UInt8]
    /// The new device's provisioning public key (X25519).
    public let publicKey: Curve25519.KeyAgreement.PublicKey

    /// A code for `address` (16 bytes) and `publicKey`.
    public init(address: [UInt8], publicKey: Curve25519.KeyAgreement.PublicKey) throws(LinkCodeError) {
        guard address.count == 16 else { throw .wrongLength(address.count) }
        self.address = address
        self.publicKey = publicKey
    }

    /// The code's text: `hush-link:` and 71 base64url characters.
    public var string: String {
        var bytes = [Self.version] + address + publicKey.rawRepresentation
        bytes += SHA256.hash(bytes).prefix(4)
        return Self.prefix + Base64URL.encode(bytes)
    }

    public var description: String { string }

    /// Decodes a code (leading and trailing spaces, tabs and line breaks are ignored). Any
    /// string gives a code or a ``LinkCodeError``.
    public init(parsing text: String) throws(LinkCodeError) {
        let trimmed = text.trimmingCharacters(in: CharacterSet(charactersIn: " \t\r\n"))
        guard trimmed.hasPrefix(Self.prefix) else { throw .missingPrefix }
        let body = Array(trimmed.utf8.dropFirst(Self.prefix.utf8.count))
        guard body.count == Self.encodedCount else { throw .wrongLength(body.count) }
        let bytes = try Base64URL.decode(body)
        guard bytes[0] == Self.version else { throw .unsupportedVersion(bytes[0]) }
        guard Array(SHA256.hash(bytes[0..<49]).prefix(4)) == Array(bytes[49..<53]) else { throw .checksumMismatch }
        guard let key = try? Curve25519.KeyAgreement.PublicKey(validatingRawRepresentation: bytes[17..<49]) else {
            throw .invalidKey
        }
        address = Array(bytes[1..<17])
        publicKey = key
    }
}

/// Why a string is not a ``LinkCode`` (Docs/spec/client.md §7.1), in the order checked.
public enum LinkCodeError: Error, Equatable, Hashable, Sendable {
    /// It does not start with `hush-link:`.
    case missingPrefix
    /// The part after the prefix is not 71 characters (its length); or an address not 16 bytes.
    case wrongLength(Int)
    /// A character outside base64url's alphabet (its offset in the part after the prefix).
    case invalidCharacter(offset: Int)
    /// The last character has bits set that no encoder sets (not the canonical encoding).
    case nonCanonical
    /// A version byte other than 0x01.
    case unsupportedVersion(UInt8)
    /// The check bytes do not match (a typo).
    case checksumMismatch
    /// The public key is not a valid X25519 key (spec relay §5.1's rule).
    case invalidKey
}

/// Unpadded base64url (RFC 4648 §5), canonical only.
enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var v: UInt32 = 0
            for j in 0..<3 { v = v << 8 | UInt32(j < n ? bytes[i + j] : 0) }
            for j in 0..<(n + 1) { out.append(alphabet[Int(v >> (18 - 6 * UInt32(j)) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes `chars` (a length that is not 1 mod 4); a character outside the alphabet or
    /// non-zero unused bits in the last character are errors.
    static func decode(_ chars: [UInt8]) throws(LinkCodeError) -> [UInt8] {
        var values: [UInt32] = []
        values.reserveCapacity(chars.count)
        for (offset, c) in chars.enumerated() {
            guard let v = alphabet.firstIndex(of: c) else { throw .invalidCharacter(offset: offset) }
            values.append(UInt32(v))
        }
        guard values.count % 4 != 1 else { throw .wrongLength(values.count) }
        var out: [UInt8] = []
        var i = 0
        while i < values.count {
            let n = min(4, values.count - i)
            var v: UInt32 = 0
            for j in 0..<4 { v = v << 6 | (j < n ? values[i + j] : 0) }
            let produced = n - 1
            // Bits of the last character beyond the bytes it completes must be zero.
            if n < 4 && v & ((1 << UInt32(8 * (3 - produced))) - 1) != 0 { throw .nonCanonical }
            for j in 0..<produced { out.append(UInt8(truncatingIfNeeded: v >> (16 - 8 * UInt32(j)))) }
            i += 4
        }
        return out
    }
}
