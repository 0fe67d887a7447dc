import Foundation
import Hush

/// The encrypted backup file, version 1 (Docs/spec/backup.md): constants and the header.
///
/// ```
/// file   = header (82) || chunk₀ || … || chunkₙ      (n ≥ 0; chunkₙ carries the FINAL tag)
/// header = magic "HUSHBKUP" (8) || version 0x01 || kdf (1) || be32 operations || be32 memory KiB
///          || salt (16) || be64 created at (Unix ms) || key check (16) || secretstream header (24)
/// chunk  = be32 length || secretstream ciphertext (length = plaintext + 17, plaintext ≤ 65,536)
/// ```
/// The chunk plaintexts, concatenated, are the record stream (``BackupRecord``).
public enum BackupFormat {
    /// `HUSHBKUP`.
    public static let magic: [UInt8] = Array("HUSHBKUP".utf8)
    /// The only version this code writes and reads.
    public static let version: UInt8 = 1
    /// Header length in bytes.
    public static let headerByteCount = 82
    /// Plaintext bytes per chunk (the last chunk may be shorter, also empty).
    public static let chunkPlaintextLimit = 65_536
    /// The largest chunk ciphertext (`chunkPlaintextLimit` + the 17-byte secretstream overhead).
    public static let chunkCiphertextLimit = chunkPlaintextLimit + SecretStream.chunkOverhead
    /// The largest record body (spec §4): a record longer than this is refused, not buffered.
    public static let recordLimit = 1 << 20
    /// Salt bytes.
    public static let saltByteCount = 16
    /// Key-check bytes.
    public static let keyCheckByteCount = 16

    /// HKDF-Expand labels (spec §3).
    static let recoveryKeyInfo = Array("hush-backup/1 recovery key".utf8)
    static let keyCheckInfo = Array("hush-backup/1 key check".utf8)
    static let streamKeyInfo = Array("hush-backup/1 stream key".utf8)

    /// The most Argon2id work a file may ask for (its limits are in the clear: a file edited to
    /// demand more is refused, not obeyed): 16 passes, 1 GiB.
    public static let maximumOperations = 16
    public static let maximumMemoryKiB = 1 << 20
    /// libsodium's minimums: 1 pass, 8 KiB.
    public static let minimumOperations = 1
    public static let minimumMemoryKiB = 8
}

/// How the backup key is derived (the header's `kdf` byte).
public enum BackupKDF: UInt8, Sendable, Equatable {
    /// Argon2id (`crypto_pwhash`, ALG_ARGON2ID13) over the passphrase's UTF-8 bytes.
    case passphrase = 1
    /// HKDF-SHA256 over the 64 ASCII digits of a recovery key (already 212 bits of entropy).
    case recoveryKey = 2
}

/// Why a backup could not be written or read. Carries positions and public parameters, never
/// key material or message contents.
public enum BackupError: Error, Equatable, Sendable {
    /// The file does not start with `HUSHBKUP`.
    case notABackup
    /// Written by another version of the format.
    case unsupportedVersion(UInt8)
    /// An unknown key-derivation byte.
    case unsupportedKDF(UInt8)
    /// The header asks for Argon2id work outside the accepted range (or non-zero limits for a
    /// recovery key).
    case kdfLimitsOutOfRange(operations: UInt32, memoryKiB: UInt32)
    /// The passphrase or recovery key is not the one this backup was made with (or the header's
    /// salt or limits were altered, which looks the same).
    case wrongSecret
    /// The file was made with a passphrase and a recovery key was given, or the other way round.
    case secretKindMismatch(expected: BackupKDF)
    /// The file ends inside the header, inside a chunk, or before the final chunk.
    case truncated
    /// Chunk `chunk` (from 0) failed authentication or has an impossible length: the file was
    /// changed, or its chunks reordered.
    case damaged(chunk: Int)
    /// Bytes follow the final chunk.
    case trailingData
    /// The record stream is not valid (authentic, so written by a broken or newer writer).
    case invalidRecord(index: Int, problem: BackupRecordProblem)
    /// Not a recovery key: 64 decimal digits (spaces and hyphens between them are ignored).
    case invalidRecoveryKey
    /// The restore target already holds a device.
    case storeNotEmpty
    /// Reading or writing the file failed (the system's reason).
    case io(String)
    /// The local store failed (its message).
    case store(String)
    /// Key derivation or encryption failed in the crypto layer.
    case crypto(String)
}

/// What is wrong with a record (``BackupError/invalidRecord(index:problem:)``).
public enum BackupRecordProblem: Error, Equatable, Sendable {
    /// The first record is not the profile.
    case missingProfile
    /// A second profile record.
    case duplicateProfile
    /// A record type this version does not know.
    case unknownType(UInt8)
    /// A record body longer than ``BackupFormat/recordLimit``.
    case tooLong(Int)
    /// A record whose body does not parse (its type).
    case malformed(type: UInt8)
    /// A setting this client does not restore (its key is not secret: a name like `presence.setting`).
    case settingNotAllowed(String)
    /// The stream ends inside a record.
    case cutOff
}

/// The backup header (82 bytes).
struct BackupHeader: Equatable {
    var kdf: BackupKDF
    var operations: UInt32
    var memoryKiB: UInt32
    var salt: [UInt8]
    var createdAt: UInt64
    var keyCheck: [UInt8]
    var streamHeader: [UInt8]

    var encoded: [UInt8] {
        var out = BackupFormat.magic
        out.reserveCapacity(BackupFormat.headerByteCount)
        out.append(BackupFormat.version)
        out.append(kdf.rawValue)
        BackupBytes.append32(operations, to: &out)
        BackupBytes.append32(memoryKiB, to: &out)
        out += salt
        BackupBytes.append64(createdAt, to: &out)
        out += keyCheck
        out += streamHeader
        return out
    }

    /// Parses and range-checks a header; any 82 bytes give a header or a typed error.
    init(decoding b: [UInt8]) throws(BackupError) {
        guard b.count == BackupFormat.headerByteCount else { throw .truncated }
        guard Array(b[0..<8]) == BackupFormat.magic else { throw .notABackup }
        guard b[8] == BackupFormat.version else { throw .unsupportedVersion(b[8]) }
        guard let kdf = BackupKDF(rawValue: b[9]) else { throw .unsupportedKDF(b[9]) }
        let ops = BackupBytes.read32(b, 10), mem = BackupBytes.read32(b, 14)
        switch kdf {
        case .passphrase:
            guard (BackupFormat.minimumOperations...BackupFormat.maximumOperations).contains(Int(ops)),
                  (BackupFormat.minimumMemoryKiB...BackupFormat.maximumMemoryKiB).contains(Int(mem))
            else { throw .kdfLimitsOutOfRange(operations: ops, memoryKiB: mem) }
        case .recoveryKey:
            guard ops == 0, mem == 0 else { throw .kdfLimitsOutOfRange(operations: ops, memoryKiB: mem) }
        }
        self.kdf = kdf
        operations = ops
        memoryKiB = mem
        salt = Array(b[18..<34])
        createdAt = BackupBytes.read64(b, 34)
        keyCheck = Array(b[42..<58])
        streamHeader = Array(b[58..<82])
    }

    init(kdf: BackupKDF, operations: UInt32, memoryKiB: UInt32, salt: [UInt8], createdAt: UInt64,
         keyCheck: [UInt8], streamHeader: [UInt8]) {
        self.kdf = kdf
        self.operations = operations
        self.memoryKiB = memoryKiB
        self.salt = salt
        self.createdAt = createdAt
        self.keyCheck = keyCheck
        self.streamHeader = streamHeader
    }
}

/// Big-endian integers and length-prefixed fields.
enum BackupBytes {
    static func append32(_ v: UInt32, to out: inout [UInt8]) {
        out += [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
    }

    static func append64(_ v: UInt64, to out: inout [UInt8]) {
        append32(UInt32(v >> 32), to: &out)
        append32(UInt32(truncatingIfNeeded: v), to: &out)
    }

    static func read32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    static func read64(_ b: [UInt8], _ at: Int) -> UInt64 {
        UInt64(read32(b, at)) << 32 | UInt64(read32(b, at + 4))
    }
}
