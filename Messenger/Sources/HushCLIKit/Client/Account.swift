import Foundation
import Hush
import HushClient
import HushTransport

/// One `hush` home opened: its config, its encrypted store and the client on it.
public final class Account: @unchecked Sendable {
    // Immutable after init.
    public let home: HushHome
    public let config: HomeConfig
    public let store: SQLiteClientStore
    public let client: HushClient

    init(home: HushHome, config: HomeConfig, store: SQLiteClientStore, client: HushClient) {
        self.home = home
        self.config = config
        self.store = store
        self.client = client
    }

    /// The store's secret from the CLI's material.
    static func storeSecret(_ material: SecretMaterial, limits: Argon2id.Limits) -> ClientStoreSecret {
        switch material {
        case .passphrase(let bytes): .passphrase(bytes, limits: limits)
        case .keyFile(let bytes): .keyFile(bytes)
        }
    }

    /// How the client runs for `config`; `tune` adjusts it (the demo shortens waits).
    static func configuration(_ config: HomeConfig) throws(CLIError) -> ClientConfiguration {
        let relay = try RelayAddress(parsing: config.relay)
        var c = ClientConfiguration(endpoint: RelayEndpoint(host: relay.host, port: relay.port, path: relay.path),
                                    trustRoot: try config.trustRootKey())
        // A person waits at the terminal: retry quickly, at most every 5 s.
        c.backoff = Backoff(base: .milliseconds(100), maximum: .seconds(5))
        return c
    }

    /// Creates the account in `home` (folder, config, store, device keys). Registration happens
    /// on the first ``connect(timeout:)``.
    public static func create(home: HushHome, relay: RelayAddress, name: String, trustRoot: Curve25519.KeyAgreement.PublicKey,
                              secret: SecretMaterial, keyFile: String?, limits: Argon2id.Limits = .moderate,
                              tune: (inout ClientConfiguration) -> Void = { _ in }) throws(CLIError) -> Account {
        guard !home.isInitialized, !FileManager.default.fileExists(atPath: home.storePath) else {
            throw .alreadyInitialized(home.directory.path)
        }
        guard DeviceBinding.isValidAccountName(name) else {
            throw .failed("not an account name: \(name) (lowercase letters, digits, '.', '_', '-')")
        }
        try home.create()
        let config = HomeConfig(account: name, relay: relay.description, trustRoot: Hex.encode(trustRoot.rawRepresentation),
                                keyFile: keyFile.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath).path })
        var configuration = try Self.configuration(config)
        tune(&configuration)
        do {
            let (identity, registrationID) = try HushClient.generateIdentity()
            let store = try SQLiteClientStore.create(path: home.storePath, secret: storeSecret(secret, limits: limits),
                                                     identity: identity, registrationID: registrationID)
            let client: HushClient
            do { client = try HushClient.create(account: name, store: store, configuration: configuration) } catch {
                try? store.close()
                throw error
            }
            try home.saveConfig(config)
            return Account(home: home, config: config, store: store, client: client)
        } catch {
            home.removeAccountFiles()
            throw Self.describe(error)
        }
    }

    /// Opens the account in `home` with `secret`.
    public static func open(home: HushHome, secret: SecretMaterial,
                            tune: (inout ClientConfiguration) -> Void = { _ in }) throws(CLIError) -> Account {
        let config = try home.loadConfig()
        var configuration = try Self.configuration(config)
        tune(&configuration)
        do {
            let store = try SQLiteClientStore.open(path: home.storePath, secret: storeSecret(secret, limits: .moderate))
            do {
                return Account(home: home, config: config, store: store, client: try HushClient(store: store, configuration: configuration))
            } catch {
                try? store.close()
                throw error
            }
        } catch { throw Self.describe(error) }
    }

    /// Opens `home` choosing the secret from the flags, the environment and the config.
    public static func open(home: HushHome, keyFile: String?, passphraseFile: String?,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws(CLIError) -> Account {
        let config = try home.loadConfig()
        let choice = try SecretChoice.choose(keyFile: keyFile, passphraseFile: passphraseFile, environment: environment,
                                             configuredKeyFile: config.keyFile, canPrompt: isatty(0) == 1)
        return try open(home: home, secret: try SecretMaterial.load(choice, environment: environment))
    }

    /// A sentence for an engine or store error (`recipient`: the account a send was for).
    public static func describe(_ error: any Error, recipient: String? = nil) -> CLIError {
        switch error {
        case ClientError.relay(.unknownAccount) where recipient != nil:
            return .failed("there is no account named \(recipient ?? "") on this relay")
        case let e as CLIError: return e
        case ClientStoreError.wrongPassphrase: return .failed("wrong passphrase (or key file) for this store")
        case ClientStoreError.corrupted(let table): return .failed("the store is damaged (table \(table)): it was changed outside hush")
        case ClientStoreError.notAHushStore: return .failed("store.sqlite is not a Hush store")
        case ClientStoreError.unsupportedSchema: return .failed("store.sqlite was written by a newer hush")
        case let e as ClientStoreError: return .failed("store: \(e)")
        case ClientError.identityNotApproved(let who):
            return .failed("\(who)'s identity key changed: compare safety numbers with `hush verify \(who)`, then `hush verify \(who) --approve`")
        case ClientError.noDevices(let who): return .failed("\(who) has no devices on this relay (not registered yet?)")
        case ClientError.postQuantumRequired(let who):
            return .failed("\(who) publishes no post-quantum (Kyber) prekey, and this client requires PQXDH: nothing was sent")
        case ClientError.notGroupAdmin(let g): return .failed("only an admin of \(g) can change it")
        case ClientError.notGroupMember(let g): return .failed("you are not a member of \(g)")
        case ClientError.unknownGroup(let g): return .failed("no group \(g) here")
        case ClientError.relay(let code): return .relay("\(code)")
        case ClientError.offline: return .relay("not connected")
        case let e as ClientError: return .failed("\(e)")
        default: return .failed("\(error)")
        }
    }

    /// Starts the client and waits until it is online (logged in, registered if new, offline
    /// queue drained, prekeys and sender certificate in place).
    public func connect(timeout: Duration = .seconds(15)) async throws(CLIError) {
        await client.start()
        let client = self.client, name = config.account
        do {
            try await waitUntil("the relay at \(config.relay)", timeout: timeout) {
                switch await client.connectionState {
                case .online: return true
                case .failed(.accountTaken): throw CLIError.relay("the name \(name) is taken on this relay")
                case .failed(let code): throw CLIError.relay("refused this device: \(code)")
                case .removed: throw CLIError.failed("this device was removed from the account \(name) (hush devices remove): it cannot connect again")
                default: return false
                }
            }
        } catch { throw Self.describe(error) }
    }

    /// Waits until the outbox is empty (messages and receipts accepted by the relay).
    public func flush(timeout: Duration = .seconds(10)) async throws(CLIError) {
        let client = self.client
        do { try await waitUntil("the relay to accept what is queued", timeout: timeout) { try await client.outboxCount() == 0 } } catch {
            throw Self.describe(error)
        }
    }

    /// Stops the client (clean close) and closes the store.
    public func close() async {
        await client.stop()
        try? store.close()
    }
}

extension HushHome {
    /// Removes what `hush init` wrote (after a failed init).
    public func removeAccount() { removeAccountFiles() }

    func removeAccountFiles() {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: storePath + suffix) }
        try? FileManager.default.removeItem(at: configURL)
    }
}
