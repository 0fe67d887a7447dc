import ArgumentParser
import Foundation
import Hush
import HushCLIKit
import HushClient

/// `hush link`: make this home a new device of an existing account (Docs/client.md §Linked devices).
struct Link: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Link this home as a new device of an existing account: show a code, wait for `hush devices link CODE`.",
        discussion: """
            Prints a one-time link code (hush-link:…, valid 10 minutes). On a device of the account, run \
            `hush devices link CODE`: it sends this device the account's identity key through the relay, \
            sealed to a key in the code, so the relay learns no key. This device then registers with its own \
            device key and id, and the home is set up as `hush init` would (same passphrase or key-file \
            options). Without --trust-root the relay's trust root is fetched and pinned, as for init.
            """
    )
    @OptionGroup var options: HomeOptions
    @Option(help: "The relay: ws://HOST:PORT (the account's relay).") var relay: String
    @Option(help: "The relay's trust root, 64 hex digits (or a file holding them).") var trustRoot: String?
    @Option(help: "Argon2id strength for the passphrase: interactive, moderate or sensitive.") var kdf: String = "moderate"
    @Option(help: "Also write the code to this file (for scripts).") var codeFile: String?
    @Option(help: "Seconds to wait for the existing device (at most the code's 10 minutes).") var timeout: Int = 600

    func run() async throws {
        try await runReporting {
            let home = options.resolvedHome
            guard !home.isInitialized else { throw CLIError.alreadyInitialized(home.directory.path) }
            let address = try RelayAddress(parsing: relay)
            let limits = try kdfLimits(kdf)
            let root = try resolveTrustRoot(trustRoot, relay: address)
            if let keyFile = options.keyFile { try SecretMaterial.createKeyFile(at: keyFile) }
            let choice = try SecretChoice.choose(keyFile: options.keyFile, passphraseFile: options.passphraseFile,
                                                 environment: ProcessInfo.processInfo.environment, configuredKeyFile: nil,
                                                 canPrompt: isatty(0) == 1)
            // The secret first: nobody has to type while the code waits.
            let secret = try SecretMaterial.load(choice, confirm: true)
            let account = try await LinkCLI.link(home: home, relay: address, trustRoot: root, secret: secret, keyFile: options.keyFile,
                                                 limits: limits, codeFile: codeFile, timeout: .seconds(max(1, timeout)), say: { say($0) })
            do {
                try await account.connect()
            } catch {
                await account.close()
                home.removeAccount()
                throw error
            }
            await account.close()
            say("linked: \(account.config.account) device \(account.client.deviceID) is registered on \(address) (home \(home.directory.path))")
        }
    }
}

/// `hush devices …`: the account's devices (Docs/client.md §Linked devices).
struct Devices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The account's devices: list them, link a new one (its code from `hush link`), remove one.",
        discussion: """
            Device 1 (the first, from `hush init`) can remove any other device; any other device can remove \
            only itself. A removed device stops receiving at once and cannot connect again.
            """,
        subcommands: [List.self, Add.self, Remove.self],
        defaultSubcommand: List.self)

    /// Connects, runs `body`, closes.
    static func online(_ options: HomeOptions, timeout: Int, removing: UInt32? = nil, _ body: (Account) async throws -> Void) async throws {
        try await runReporting {
            let account = try options.open()
            do {
                try await account.connect(timeout: .seconds(timeout))
                try await body(account)
                await account.close()
            } catch {
                await account.close()
                throw LinkCLI.describe(error, removing: removing)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the account's devices (the default).")
        @OptionGroup var options: HomeOptions
        @Option(help: "Seconds to wait for the relay.") var timeout: Int = 15

        func run() async throws {
            try await Devices.online(options, timeout: timeout) { account in
                for line in LinkCLI.describe(try await account.client.devices()) { say(line) }
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "link",
            abstract: "Link the new device that shows CODE (from `hush link` on it): it joins this account.",
            discussion: "It receives the account's identity key (sealed to a key in the code): link only a device you hold.")
        @OptionGroup var options: HomeOptions
        @Argument(help: "The code the new device shows (hush-link:…).") var code: String
        @Option(help: "Seconds to wait for the relay.") var timeout: Int = 15

        func run() async throws {
            try await Devices.online(options, timeout: timeout) { account in
                let id = try await account.client.linkDevice(code: code)
                say("linked device \(id) to \(account.config.account)")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove device ID from the account (device 1 removes any other; a device can remove itself).")
        @OptionGroup var options: HomeOptions
        @Argument(help: "The device id (hush devices).") var id: UInt32
        @Option(help: "Seconds to wait for the relay.") var timeout: Int = 15

        func run() async throws {
            try await Devices.online(options, timeout: timeout, removing: id) { account in
                try await account.client.removeDevice(id)
                say(id == account.client.deviceID ? "removed this device (\(id)) from \(account.config.account)"
                                                  : "removed device \(id) from \(account.config.account)")
            }
        }
    }
}
