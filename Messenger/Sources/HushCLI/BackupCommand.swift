import ArgumentParser
import Foundation
import Hush
import HushCLIKit
import HushClient

/// `hush backup export|restore` (Docs/spec/backup.md, Docs/usage.md).
struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encrypted backups of the whole history and settings (not the session keys).",
        discussion: """
            The backup is encrypted with a key from Argon2id over a passphrase (--backup-passphrase-file, \
            HUSH_BACKUP_PASSPHRASE, or asked), or with a 64-digit recovery key (export --recovery-key prints \
            a new one; restore --recovery-key-file FILE). A restore makes a new home from the backup: the \
            same account and device, fresh prekeys, and new sessions with every contact at the first \
            connection. Messages sent to the lost device after the backup was made are not in it.
            """,
        subcommands: [Export.self, Restore.self]
    )

    static func limits(_ name: String) throws -> Argon2id.Limits {
        switch name {
        case "interactive": .interactive
        case "moderate": .moderate
        case "sensitive": .sensitive
        default: throw ValidationError("--kdf: interactive, moderate or sensitive")
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write this account's backup to FILE (which must not exist).")
        @OptionGroup var options: HomeOptions
        @Argument(help: "The backup file to create.") var file: String
        @Option(help: "A file whose first line is the backup's passphrase (else HUSH_BACKUP_PASSPHRASE, else asked).")
        var backupPassphraseFile: String?
        @Flag(help: "Encrypt with a new 64-digit recovery key instead of a passphrase (printed once: write it down).")
        var recoveryKey = false
        @Option(help: "Argon2id strength for the passphrase: interactive, moderate or sensitive.") var kdf: String = "sensitive"

        func run() async throws {
            try await runReporting {
                let limits = try Backup.limits(kdf)
                let secret: BackupSecret
                var key: RecoveryKey?
                if recoveryKey {
                    key = try RecoveryKey.generate()
                    secret = .recoveryKey(key!)
                } else {
                    secret = try BackupCLI.secret(passphraseFile: backupPassphraseFile, recoveryKeyFile: nil, limits: limits, confirm: true)
                }
                let account = try options.open()
                let summary: HushBackup.Summary
                do { summary = try BackupCLI.export(account, to: file, secret: secret) } catch {
                    await account.close()
                    throw error
                }
                await account.close()
                if let key { say("recovery key: \(key.formatted)") }
                say("backup of \(summary.account): \(summary.messages) messages, \(summary.contacts) contacts → \(file)")
            }
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new home from the backup in FILE, then connect (prekeys replaced, sessions reset).")
        @OptionGroup var options: HomeOptions
        @Argument(help: "The backup file.") var file: String
        @Option(help: "A file whose first line is the backup's passphrase (else HUSH_BACKUP_PASSPHRASE, else asked).")
        var backupPassphraseFile: String?
        @Option(help: "A file holding the backup's 64-digit recovery key.") var recoveryKeyFile: String?
        @Option(help: "Use this relay (ws://HOST:PORT) instead of the one in the backup.") var relay: String?
        @Option(help: "Argon2id strength for the new store's passphrase: interactive, moderate or sensitive.") var kdf: String = "moderate"
        @Flag(help: "Do not connect now (prekeys and session resets then wait for the next connection).") var offline = false

        func run() async throws {
            try await runReporting {
                let home = options.resolvedHome
                guard !home.isInitialized else { throw CLIError.alreadyInitialized(home.directory.path) }
                let override = try relay.map { try RelayAddress(parsing: $0) }
                let limits = try Backup.limits(kdf)
                let secret = try BackupCLI.secret(passphraseFile: backupPassphraseFile, recoveryKeyFile: recoveryKeyFile,
                                                  limits: .moderate, confirm: false)
                if let keyFile = options.keyFile { try SecretMaterial.createKeyFile(at: keyFile) }
                let choice = try SecretChoice.choose(keyFile: options.keyFile, passphraseFile: options.passphraseFile,
                                                     environment: ProcessInfo.processInfo.environment, configuredKeyFile: nil,
                                                     canPrompt: isatty(0) == 1)
                let (account, summary) = try BackupCLI.restore(from: file, into: home, secret: secret,
                                                               storeSecret: try SecretMaterial.load(choice, confirm: true),
                                                               keyFile: options.keyFile, limits: limits, relayOverride: override)
                say("restored \(summary.account) (device \(summary.deviceID)): \(summary.messages) messages, \(summary.contacts) contacts")
                if offline {
                    await account.close()
                    return
                }
                do {
                    try await account.connect()
                    try await account.flush()
                } catch {
                    await account.close()
                    throw CLIError.relay("restored, but \(error): run `hush inbox` to finish (prekeys, session resets)")
                }
                await account.close()
                say("connected to \(account.config.relay): prekeys replaced, \(summary.contacts) sessions reset")
            }
        }
    }
}
