import Hush
import HushPQ

/// How a client store keeps a ``KyberPreKeyRecord`` (Docs/client.md §Store, table `kyber_prekeys`):
/// 137 bytes, `kind (1: one-time, 2: last-resort) || timestamp (u64 big-endian, ms) ||
/// ML-KEM-1024 seed d || z (64) || signature (64)`. The key pair is rebuilt from the seed
/// (FIPS 203 `KeyGen_internal`), so the encapsulation key is not stored. The SQLite store seals
/// these bytes (they hold the secret seed); callers wipe the encoding after use.
public enum KyberPreKeyRecordCoding {
    /// The encoding's length.
    public static let byteCount = 1 + 8 + MLKEM1024.seedByteCount + 64

    /// What a decoder reports for bytes that are not an encoding. Carries no key material.
    public enum DecodingError: Error, Equatable, Sendable {
        /// Not ``byteCount`` bytes.
        case wrongLength(Int)
        /// A kind byte other than 1 or 2.
        case unknownKind(UInt8)
        /// The seed did not give a key pair.
        case invalidSeed
    }

    /// The encoding of `record` (secret: wipe it after use).
    public static func encode(_ record: KyberPreKeyRecord) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(byteCount)
        out.append(record.kind.rawValue)
        withUnsafeBytes(of: record.timestamp.bigEndian) { out += $0 }
        record.keyPair.seed.withUnsafeBytes { out += $0 }
        out += record.signature
        return out
    }

    /// The record stored under `id` from its encoding; any other bytes are a ``DecodingError``.
    public static func decode(id: UInt32, _ bytes: some Collection<UInt8>) throws(DecodingError) -> KyberPreKeyRecord {
        var b = Array(bytes)
        defer { ColumnSeal.wipe(&b) }
        guard b.count == byteCount else { throw .wrongLength(b.count) }
        guard let kind = KyberPreKeyRecord.Kind(rawValue: b[0]) else { throw .unknownKind(b[0]) }
        let timestamp = b[1..<9].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let seedEnd = 9 + MLKEM1024.seedByteCount
        let key: MLKEM1024.PrivateKey
        do { key = try MLKEM1024.PrivateKey(seed: b[9..<seedEnd]) } catch { throw .invalidSeed }
        return KyberPreKeyRecord(id: id, kind: kind, timestamp: timestamp, keyPair: key, signature: Array(b[seedEnd...]))
    }
}
