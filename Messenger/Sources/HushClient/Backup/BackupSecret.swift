import Foundation
import Hush

/// What encrypts a backup: a passphrase (through Argon2id) or a 64-digit recovery key.
public struct BackupSecret: Sendable, CustomStringConvertible {
    enum Kind: Sendable {
        case passphrase(SecureBytes, Argon2id.Limits)
        case recoveryKey(RecoveryKey)
    }
    let kind: Kind

    /// A passphrase (its UTF-8 bytes exactly, no normalization) and the Argon2id limits used when
    /// a backup is written with it. Reading uses the limits in the file's header.
    public static func passphrase(_ bytes: SecureBytes, limits: Argon2id.Limits = .moderate) -> BackupSecret {
        BackupSecret(kind: .passphrase(bytes, limits))
    }

    /// A passphrase from a string (whose own storage cannot be wiped: prefer the `SecureBytes` form).
    public static func passphrase(_ text: String, limits: Argon2id.Limits = .moderate) -> BackupSecret {
        .passphrase(SecureBytes(copying: Array(text.utf8)), limits: limits)
    }

    /// A recovery key.
    public static func recoveryKey(_ key: RecoveryKey) -> BackupSecret { BackupSecret(kind: .recoveryKey(key)) }

    var kdf: BackupKDF {
        switch kind {
        case .passphrase: .passphrase
        case .recoveryKey: .recoveryKey
        }
    }

    /// Never the secret.
    public var description: String {
        switch kind {
        case .passphrase: "BackupSecret(passphrase, redacted)"
        case .recoveryKey: "BackupSecret(recovery key, redacted)"
        }
    }

    /// The backup key `K` (spec backup §3).
    func backupKey(salt: [UInt8], operations: UInt32, memoryKiB: UInt32) throws(BackupError) -> SecureBytes {
        do {
            switch kind {
            case .passphrase(let bytes, _):
                return try Argon2id.deriveKey(fromPassword: bytes, salt: salt, outputByteCount: 32,
                                              limits: Argon2id.Limits(operations: Int(operations), memoryBytes: Int(memoryKiB) * 1024))
            case .recoveryKey(let key):
                return try HKDF.deriveKey(inputKeyMaterial: key.digits, salt: salt, info: BackupFormat.recoveryKeyInfo, outputByteCount: 32)
            }
        } catch { throw .crypto("key derivation: \(error)") }
    }

    /// The key check (16 bytes) and the secretstream key (32) from `K` (spec backup §3).
    static func subkeys(_ k: SecureBytes) throws(BackupError) -> (check: [UInt8], stream: SecureBytes) {
        do {
            let check = try HKDF.expand(pseudoRandomKey: k, info: BackupFormat.keyCheckInfo, outputByteCount: BackupFormat.keyCheckByteCount)
            let stream = try HKDF.expand(pseudoRandomKey: k, info: BackupFormat.streamKeyInfo, outputByteCount: SecretStream.keyByteCount)
            return (check.withUnsafeBytes { Array($0) }, stream)
        } catch { throw .crypto("key expansion: \(error)") }
    }
}

/// A 64-digit recovery key (≈ 212 bits): a backup secret that needs no Argon2id, for people who
/// keep a written key rather than remember a passphrase. Shown in 16 groups of 4 digits.
public struct RecoveryKey: Sendable, CustomStringConvertible {
    /// The 64 ASCII digits.
    let digits: SecureBytes

    /// Digits in a key.
    public static let digitCount = 64

    /// A fresh key: each digit from a random byte below 250 (`byte mod 10`; bytes of 250 or more
    /// are drawn again), so every digit is uniform.
    public static func generate(using random: some RandomSource = SystemRandom()) throws(BackupError) -> RecoveryKey {
        var out = [UInt8]()
        out.reserveCapacity(digitCount)
        defer { SecureBytes.wipe(&out) }
        while out.count < digitCount {
            var batch: [UInt8]
            do { batch = try random.secureBytes(count: digitCount).withUnsafeBytes { Array($0) } } catch { throw .crypto("random: \(error)") }
            for b in batch where b < 250 && out.count < digitCount { out.append(0x30 + b % 10) }
            SecureBytes.wipe(&batch)
        }
        return RecoveryKey(digits: SecureBytes(copying: out))
    }

    /// Parses 64 digits; spaces and hyphens between them are ignored.
    public init(parsing text: String) throws(BackupError) {
        var out = [UInt8]()
        defer { SecureBytes.wipe(&out) }
        for c in text.utf8 {
            if c == 0x20 || c == 0x2D { continue }
            guard (0x30...0x39).contains(c), out.count < Self.digitCount else { throw .invalidRecoveryKey }
            out.append(c)
        }
        guard out.count == Self.digitCount else { throw .invalidRecoveryKey }
        digits = SecureBytes(copying: out)
    }

    private init(digits: SecureBytes) { self.digits = digits }

    /// The key for a person to write down: 16 groups of 4 digits. This is the secret itself:
    /// show it once, never log it.
    public var formatted: String {
        digits.withUnsafeBytes { raw in
            stride(from: 0, to: raw.count, by: 4).map { String(decoding: raw[$0..<($0 + 4)], as: UTF8.self) }.joined(separator: " ")
        }
    }

    /// Never the key.
    public var description: String { "RecoveryKey(redacted)" }
}
