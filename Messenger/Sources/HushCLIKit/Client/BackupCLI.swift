import Foundation
import Hush
import HushClient

/// `hush backup export FILE` / `hush backup restore FILE` (Docs/spec/backup.md, Docs/usage.md).
public enum BackupCLI {
    /// The variable holding a backup passphrase.
    public static let passphraseVariable = "HUSH_BACKUP_PASSPHRASE"
    /// Application entries: the home's relay and pinned trust root travel in the backup.
    static let relayEntry = "cli.relay"
    static let trustRootEntry = "cli.trust-root"

    /// The backup's secret: a recovery key file (its digits), else a passphrase from
    /// `passphraseFile`, `HUSH_BACKUP_PASSPHRASE`, or the terminal (asked twice when `confirm`).
    public static func secret(passphraseFile: String?, recoveryKeyFile: String?, limits: Argon2id.Limits, confirm: Bool,
                              environment: [String: String] = ProcessInfo.processInfo.environment) throws(CLIError) -> BackupSecret {
        if let recoveryKeyFile {
            let bytes = try SecretMaterial.readFile(recoveryKeyFile)
            let text = bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }.trimmingCharacters(in: .whitespacesAndNewlines)
            do { return .recoveryKey(try RecoveryKey(parsing: text)) } catch { throw .failed("\(recoveryKeyFile) holds no recovery key (64 digits)") }
        }
        let bytes: SecureBytes
        if let passphraseFile {
            bytes = try SecretMaterial.passphrase(from: try SecretMaterial.readFile(passphraseFile))
        } else if let value = environment[passphraseVariable] {
            bytes = try SecretMaterial.passphrase(from: SecureBytes(copying: Array(value.utf8)))
        } else if isatty(0) == 1 {
            let first = try SecretMaterial.ask("Passphrase for the backup: ")
            if confirm {
                guard try SecretMaterial.ask("Repeat it: ") == first else { throw .failed("the passphrases differ") }
            }
            bytes = first
        } else {
            throw .failed("no backup passphrase: give --backup-passphrase-file, \(passphraseVariable), or --recovery-key-file")
        }
        return .passphrase(bytes, limits: limits)
    }

    /// Writes the backup of `account` to `path` (which must not exist).
    public static func export(_ account: Account, to path: String, secret: BackupSecret) throws(CLIError) -> HushBackup.Summary {
        let file: BackupFile
        do { file = try BackupFile.create(path) } catch { throw describe(error) }
        var sink = file
        do {
            let trustRoot = Array(account.config.trustRoot.utf8), relay = Array(account.config.relay.utf8)
            let now = UInt64(Date().timeIntervalSince1970 * 1000)
            let summary = try HushBackup.export(store: account.store, to: &sink, secret: secret,
                                                application: [relayEntry: relay, trustRootEntry: trustRoot], now: now)
            try file.finish()
            return summary
        } catch {
            file.close()
            try? FileManager.default.removeItem(atPath: path)
            throw describe(error)
        }
    }

    /// Restores the backup at `path` into the empty `home`, its new store under `storeSecret`.
    public static func restore(from path: String, into home: HushHome, secret: BackupSecret, storeSecret: SecretMaterial,
                               keyFile: String?, limits: Argon2id.Limits, relayOverride: RelayAddress?) throws(CLIError) -> (Account, HushBackup.Summary) {
        guard !home.isInitialized, !FileManager.default.fileExists(atPath: home.storePath) else {
            throw .alreadyInitialized(home.directory.path)
        }
        let file: BackupFile
        do { file = try BackupFile.open(path) } catch { throw describe(error) }
        defer { file.close() }
        do { try home.create() } catch { throw .io("cannot create \(home.directory.path)") }
        var storeRef: SQLiteClientStore?
        do {
            // The relay and trust root come from the backup; the client configuration's endpoint
            // is not used by the restore itself.
            let placeholder = ClientConfiguration(endpoint: RelayEndpoint(host: "127.0.0.1", port: 1),
                                                  trustRoot: try Curve25519.KeyAgreement.PrivateKey().publicKey)
            let restored = try HushBackup.restore(from: file, secret: secret, configuration: placeholder) { p in
                let s = try SQLiteClientStore.create(path: home.storePath, secret: Account.storeSecret(storeSecret, limits: limits),
                                                     identity: p.identity, registrationID: p.registrationID)
                storeRef = s
                return s
            }
            guard let relayText = restored.application[relayEntry].map({ String(decoding: $0, as: UTF8.self) }),
                  let root = restored.application[trustRootEntry].map({ String(decoding: $0, as: UTF8.self) })
            else { throw CLIError.failed("the backup names no relay (not made by hush backup export)") }
            let relay = relayOverride?.description ?? relayText
            let config = HomeConfig(account: restored.summary.account, relay: relay, trustRoot: root,
                                    keyFile: keyFile.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath).path })
            _ = try config.trustRootKey()
            try storeRef?.close()
            storeRef = nil
            try home.saveConfig(config)
            return (try Account.open(home: home, secret: storeSecret), restored.summary)
        } catch {
            try? storeRef?.close()
            home.removeAccountFiles()
            throw describe(error)
        }
    }

    static func describe(_ error: any Error) -> CLIError {
        switch error {
        case let e as CLIError: return e
        case BackupError.wrongSecret: return .failed("wrong passphrase or recovery key for this backup")
        case BackupError.secretKindMismatch(.recoveryKey): return .failed("this backup was made with a recovery key: give --recovery-key-file")
        case BackupError.secretKindMismatch: return .failed("this backup was made with a passphrase, not a recovery key")
        case BackupError.notABackup: return .failed("not a Hush backup")
        case BackupError.truncated: return .failed("the backup is truncated (an incomplete copy?)")
        case BackupError.damaged(let chunk): return .failed("the backup is damaged (chunk \(chunk) fails authentication)")
        case BackupError.trailingData: return .failed("the backup has bytes after its end: it was changed")
        case BackupError.unsupportedVersion(let v): return .failed("backup format version \(v) is not supported by this hush")
        case BackupError.io(let why): return .io(why)
        case let e as BackupError: return .failed("backup: \(e)")
        default: return Account.describe(error)
        }
    }
}
