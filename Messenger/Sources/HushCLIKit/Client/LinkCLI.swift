import Foundation
import Hush
import HushClient
import HushTransport

/// `hush link` and `hush devices` (Docs/client.md §Linked devices).
public enum LinkCLI {
    /// `hush link`: a new device. Opens a provisioning address on the relay, shows the code
    /// (`say`, and `codeFile` when given), waits up to `timeout` for an existing device's
    /// `hush devices link CODE`, then creates the home as `hush init` does (config, encrypted store
    /// with the account's identity) and registers as the device id it was given.
    public static func link(home: HushHome, relay: RelayAddress, trustRoot: Curve25519.KeyAgreement.PublicKey,
                            secret: SecretMaterial, keyFile: String?, limits: Argon2id.Limits, codeFile: String?,
                            timeout: Duration, say: @Sendable (String) -> Void,
                            tune: (inout ClientConfiguration) -> Void = { _ in }) async throws(CLIError) -> Account {
        guard !home.isInitialized, !FileManager.default.fileExists(atPath: home.storePath) else {
            throw .alreadyInitialized(home.directory.path)
        }
        var configuration = try Account.configuration(HomeConfig(account: "link", relay: relay.description,
                                                                 trustRoot: Hex.encode(trustRoot.rawRepresentation)))
        tune(&configuration)
        let pending: PendingLink
        do { pending = try await HushLink.begin(configuration: configuration) } catch {
            throw Account.describe(error)
        }
        let code = pending.code
        if let codeFile {
            do { try Data((code + "\n").utf8).write(to: URL(fileURLWithPath: codeFile), options: .atomic) } catch {
                await pending.cancel()
                throw .io("cannot write \(codeFile): \(error)")
            }
        }
        say("link code: \(code)")
        say("on a device of the account, run:  hush devices link \(code)")
        say("waiting (the code is valid for 10 minutes)…")
        let message: ProvisioningMessage
        do { message = try await pending.wait(timeout: timeout) } catch {
            await pending.cancel()
            switch error {
            case .linkExpired: throw .failed("the link code expired (10 minutes): run `hush link` again for a new one")
            case .timeout: throw .timeout("no device used the link code")
            case .provisioning(let why): throw .failed("the link message did not open or decode (\(why)): run `hush link` again")
            default: throw Account.describe(error)
            }
        }
        do {
            try home.create()
            let config = HomeConfig(account: message.account, relay: relay.description, trustRoot: Hex.encode(trustRoot.rawRepresentation),
                                    keyFile: keyFile.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath).path })
            var configuration = try Account.configuration(config)
            tune(&configuration)
            let store = try SQLiteClientStore.create(path: home.storePath, secret: Account.storeSecret(secret, limits: limits),
                                                     identity: message.identity, registrationID: try RegistrationID.generate())
            let client: HushClient
            do { client = try HushClient.create(linking: message, store: store, configuration: configuration) } catch {
                try? store.close()
                throw error
            }
            try home.saveConfig(config)
            return Account(home: home, config: config, store: store, client: client)
        } catch {
            home.removeAccountFiles()
            throw Account.describe(error)
        }
    }

    /// The lines of `hush devices`.
    public static func describe(_ devices: [LinkedDevice]) -> [String] {
        devices.map { d in
            var line = "device \(d.id)"
            if d.isPrimary { line += " (primary)" }
            if d.isThisDevice { line += " (this device)" }
            return line + "  key \(Hex.encode(d.staticKey).prefix(16))…"
        }
    }

    /// A sentence for the errors of `hush devices link` / `remove`.
    public static func describe(_ error: any Error, removing id: UInt32? = nil) -> CLIError {
        switch error {
        case ClientError.invalidLinkCode(let why):
            let reason: String
            switch why {
            case .checksumMismatch: reason = "a character is wrong (check failed)"
            case .missingPrefix: reason = "it must start with hush-link:"
            case .wrongLength(let n): reason = "the part after hush-link: has \(n) characters, not 71"
            case .invalidCharacter(let i): reason = "character \(i + 1) after hush-link: is not base64url"
            case .nonCanonical: reason = "the last character is wrong"
            case .unsupportedVersion(let v): reason = "version \(v) (this hush knows 1)"
            case .invalidKey: reason = "its key is not a valid X25519 key"
            }
            return .failed("not a link code: \(reason)")
        case ClientError.relay(.unknownProvisioningAddress):
            return .failed("no device is waiting with this code (expired, already used, or its `hush link` stopped)")
        case ClientError.relay(.deviceRemovalForbidden):
            return .failed("only device 1 removes other devices; another device can remove only itself")
        case ClientError.relay(.unknownDevice) where id != nil:
            return .failed("this account has no device \(id ?? 0) (hush devices)")
        case ClientError.relay(.tooManyDevices):
            return .failed("the account has its 16 devices (counting links started in the last 10 minutes): remove one first (hush devices remove ID)")
        case ClientError.relay(.linkForbidden):
            return .failed("only device 1 links new devices: run hush devices link on device 1")
        case ClientError.relay(.rateLimited):
            return .failed("too many links at once: wait a few minutes (an unused link expires after 10 minutes)")
        default:
            return Account.describe(error)
        }
    }
}
