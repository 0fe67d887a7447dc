import Foundation
import Hush

/// Seals one column value of one row under the database key (Docs/client.md §Store).
///
/// A sealed value is `nonce (24) || ciphertext || tag (16)`: XChaCha20-Poly1305 with a fresh
/// random nonce, authenticating
/// `AD = "hush-store-v1" || lp(table) || lp(column) || lp(row key)`, where `lp(x)` is `x`'s length
/// as a big-endian u32 then `x`, and the row key is the row's primary key, each part
/// length-prefixed the same way (integers as 8-byte big-endian). A value copied to another row,
/// column or table fails to open.
struct ColumnSeal: Sendable {
    static let prefix = Array("hush-store-v1".utf8)
    static let overhead = XChaChaPoly.nonceByteCount + XChaChaPoly.tagByteCount

    let key: SymmetricKey
    let random: any RandomSource

    /// A row's primary key, as it enters the associated data.
    struct RowKey {
        var bytes: [UInt8] = []
        init(_ parts: RowKeyPart...) {
            for part in parts {
                switch part {
                case .text(let s): ColumnSeal.appendLengthPrefixed(&bytes, Array(s.utf8))
                case .integer(let i): ColumnSeal.appendLengthPrefixed(&bytes, withUnsafeBytes(of: UInt64(bitPattern: i).bigEndian, Array.init))
                case .bytes(let b): ColumnSeal.appendLengthPrefixed(&bytes, b)
                }
            }
        }
    }
    enum RowKeyPart {
        case text(String)
        case integer(Int64)
        case bytes([UInt8])
    }

    static func appendLengthPrefixed(_ out: inout [UInt8], _ bytes: [UInt8]) {
        appendUInt32(&out, UInt32(bytes.count))
        out += bytes
    }
    static func appendUInt32(_ out: inout [UInt8], _ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { out += $0 } }
    static func appendUInt64(_ out: inout [UInt8], _ v: UInt64) { withUnsafeBytes(of: v.bigEndian) { out += $0 } }

    static func associatedData(_ table: String, _ column: String, _ row: RowKey) -> [UInt8] {
        var ad = prefix
        ad.reserveCapacity(prefix.count + 12 + table.utf8.count + column.utf8.count + row.bytes.count)
        appendLengthPrefixed(&ad, Array(table.utf8))
        appendLengthPrefixed(&ad, Array(column.utf8))
        appendLengthPrefixed(&ad, row.bytes)
        return ad
    }

    /// `plaintext` sealed for `table.column` of `row`.
    func seal(_ plaintext: some ContiguousByteBuffer, _ table: String, _ column: String, _ row: RowKey) throws(ClientStoreError) -> Data {
        let ad = Self.associatedData(table, column, row)
        do {
            let box = try XChaChaPoly.seal(plaintext, using: key, authenticating: ad, random: StoredRandom(base: random))
            var out = Data(capacity: box.nonce.count + box.ciphertext.count + box.tag.count)
            out.append(contentsOf: box.nonce)
            out.append(contentsOf: box.ciphertext)
            out.append(contentsOf: box.tag)
            return out
        } catch {
            throw .storage(code: 0, message: "sealing \(table).\(column) failed")
        }
    }

    /// Opens a value sealed by ``seal(_:_:_:_:)``; `.corrupted(table:)` for anything else.
    /// The caller wipes the result when it is secret (``wipe(_:)``).
    func open(_ sealed: Data, _ table: String, _ column: String, _ row: RowKey) throws(ClientStoreError) -> [UInt8] {
        guard sealed.count >= Self.overhead else { throw .corrupted(table: table) }
        let ad = Self.associatedData(table, column, row)
        let n = XChaChaPoly.nonceByteCount
        let result: [UInt8]? = [UInt8](sealed).withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [UInt8]? in
            let nonce = UnsafeRawBufferPointer(rebasing: raw[..<n])
            let body = UnsafeRawBufferPointer(rebasing: raw[n...])
            return try? XChaChaPoly.decrypt(body, key: key, nonce: nonce, associatedData: ad)
        }
        guard let result else { throw .corrupted(table: table) }
        return result
    }

    /// Opens a secret value straight into wiped storage (the intermediate copy is zeroed).
    func openSecret(_ sealed: Data, _ table: String, _ column: String, _ row: RowKey) throws(ClientStoreError) -> SecureBytes {
        var plain = try open(sealed, table, column, row)
        defer { Self.wipe(&plain) }
        return SecureBytes(copying: plain)
    }

    /// Zeroes a plain array that held a secret (`sodium_memzero`, through HushCrypto).
    static func wipe(_ bytes: inout [UInt8]) { SecureBytes.wipe(&bytes) }
}

/// A stored random source, usable where a concrete `some RandomSource` is wanted.
struct StoredRandom: RandomSource {
    let base: any RandomSource
    func fill(_ buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) { try base.fill(buffer) }
}
