import Foundation
import Hush

/// What a message carries instead of a file (Docs/spec/media.md §3): where the blob is (the
/// relay's media id), how to open it (the file key), how to check it (the blob's SHA-256 and
/// the plaintext size, which fixes the blob's exact length), and how to show it before the
/// download (content type, file name, an optional small thumbnail).
///
/// ```
/// 0x01                      version
/// 16 bytes                  media id
/// 32 bytes                  file key
/// 32 bytes                  SHA-256 of the blob
/// varint                    plaintext size, ≤ MediaFormat.maxPlaintextSize
/// varint n || n bytes       content type, 3…100 bytes: type "/" subtype, each 1+ of [a-z0-9!#$&^_.+-]
/// varint n || n bytes       file name, 0…255 bytes of UTF-8: no "/", "\", control characters; not "." or ".."
/// varint n || n bytes       thumbnail, 0 (none) … 32,768 bytes, opaque (JPEG by convention)
/// ```
/// Varints as in ``MessageContent``. Nothing may follow. The key's `description` is redacted.
public struct MediaPointer: Sendable, Equatable, CustomStringConvertible {
    /// The relay's id of the blob.
    public let mediaID: MediaID
    /// The file key (secretstream, 32 bytes).
    public let key: SecureBytes
    /// SHA-256 of the whole blob.
    public let digest: [UInt8]
    /// The file's size in bytes (before padding).
    public let plaintextSize: Int
    /// MIME type, lowercase (`image/jpeg`).
    public let contentType: String
    /// The file's name as the sender had it (may be empty).
    public let fileName: String
    /// A small preview (empty: none).
    public let thumbnail: [UInt8]

    public static let version: UInt8 = 0x01
    public static let maxContentTypeBytes = 100
    public static let maxFileNameBytes = 255
    public static let maxThumbnailBytes = 32_768

    /// Why bytes (or fields) are not a pointer.
    public enum DecodeError: Error, Equatable, Sendable {
        case empty
        case unknownVersion(UInt8)
        case truncated
        case badVarint
        case sizeTooLarge(UInt64)
        case badContentType
        case badFileName
        case thumbnailTooLarge(Int)
        case trailingBytes
    }

    /// A pointer; the fields are checked as the decoder checks them.
    public init(mediaID: MediaID, key: SecureBytes, digest: [UInt8], plaintextSize: Int, contentType: String,
                fileName: String = "", thumbnail: [UInt8] = []) throws(DecodeError) {
        guard key.count == 32, digest.count == 32 else { throw .truncated }
        guard plaintextSize >= 0, plaintextSize <= MediaFormat.maxPlaintextSize else { throw .sizeTooLarge(UInt64(max(0, plaintextSize))) }
        guard Self.isValidContentType(Array(contentType.utf8)) else { throw .badContentType }
        guard Self.isValidFileName(fileName) else { throw .badFileName }
        guard thumbnail.count <= Self.maxThumbnailBytes else { throw .thumbnailTooLarge(thumbnail.count) }
        self.mediaID = mediaID
        self.key = key
        self.digest = digest
        self.plaintextSize = plaintextSize
        self.contentType = contentType
        self.fileName = fileName
        self.thumbnail = thumbnail
    }

    /// The encoding.
    public var encoded: [UInt8] {
        var out: [UInt8] = [Self.version]
        out += mediaID.bytes
        key.withUnsafeBytes { out += $0 }
        out += digest
        Varint.append(UInt64(plaintextSize), to: &out)
        for field in [Array(contentType.utf8), Array(fileName.utf8), thumbnail] {
            Varint.append(UInt64(field.count), to: &out)
            out += field
        }
        return out
    }

    /// Decodes `bytes`; any input yields a pointer or a ``DecodeError``.
    public init(decoding bytes: [UInt8]) throws(DecodeError) {
        guard let first = bytes.first else { throw .empty }
        guard first == Self.version else { throw .unknownVersion(first) }
        guard bytes.count >= 1 + 16 + 32 + 32 else { throw .truncated }
        let id = MediaID(validated: Array(bytes[1..<17]))
        let key = SecureBytes(copying: Array(bytes[17..<49]))
        let digest = Array(bytes[49..<81])
        var r = Varint.Reader(bytes: bytes, offset: 81)
        func varint() throws(DecodeError) -> UInt64 {
            do { return try r.read() } catch let e { throw e == .truncated ? .truncated : .badVarint }
        }
        func field(max: Int, _ tooLong: (Int) -> DecodeError) throws(DecodeError) -> [UInt8] {
            let n = try varint()
            guard n <= UInt64(max) else { throw tooLong(Int(clamping: n)) }
            guard bytes.count - r.offset >= Int(n) else { throw .truncated }
            defer { r.offset += Int(n) }
            return Array(bytes[r.offset..<(r.offset + Int(n))])
        }
        let size = try varint()
        guard size <= UInt64(MediaFormat.maxPlaintextSize) else { throw .sizeTooLarge(size) }
        let type = try field(max: Self.maxContentTypeBytes) { _ in .badContentType }
        let name = try field(max: Self.maxFileNameBytes) { _ in .badFileName }
        let thumbnail = try field(max: Self.maxThumbnailBytes) { .thumbnailTooLarge($0) }
        guard r.offset == bytes.count else { throw .trailingBytes }
        guard Self.isValidContentType(type), let typeString = String(validating: type, as: UTF8.self) else { throw .badContentType }
        guard let nameString = String(validating: name, as: UTF8.self), Array(nameString.utf8) == name else { throw .badFileName }
        try self.init(mediaID: id, key: key, digest: digest, plaintextSize: Int(size), contentType: typeString,
                      fileName: nameString, thumbnail: thumbnail)
    }

    public var description: String {
        "MediaPointer(\(mediaID), \(contentType), \(plaintextSize) bytes, key redacted)"
    }

    static func isValidContentType(_ bytes: [UInt8]) -> Bool {
        guard (3...maxContentTypeBytes).contains(bytes.count) else { return false }
        let parts = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty }) else { return false }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789!#$&^_.+-".utf8)
        return parts.allSatisfy { $0.allSatisfy { allowed.contains($0) } }
    }

    static func isValidFileName(_ name: String) -> Bool {
        let utf8 = Array(name.utf8)
        guard utf8.count <= maxFileNameBytes, name != ".", name != ".." else { return false }
        return !name.unicodeScalars.contains { $0 == "/" || $0 == "\\" || $0.properties.generalCategory == .control }
    }
}

/// A relay media id: 16 random bytes the relay draws, written as 32 lowercase hex digits in
/// URLs (`/v1/media/<hex>`).
public struct MediaID: Sendable, Hashable, CustomStringConvertible {
    /// The 16 bytes.
    public let bytes: [UInt8]

    init(validated bytes: [UInt8]) { self.bytes = bytes }

    /// An id from its 16 bytes, or nil for another length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// An id from 32 lowercase hex digits, or nil.
    public init?(hex: String) {
        guard hex.utf8.count == 32, hex == hex.lowercased(), let b = try? Hex.decode(hex) else { return nil }
        self.init(bytes: b)
    }

    /// 32 lowercase hex digits.
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
}

extension MediaPointer {
    /// What a conversation shows for the message: `📎 cat.jpg (image/jpeg, 12,345 bytes)`.
    public var summary: String {
        let name = fileName.isEmpty ? MediaLibrary.kind(of: contentType).singular : fileName
        return "📎 \(name) (\(contentType), \(plaintextSize.formatted(.number.grouping(.automatic))) bytes)"
    }
}
