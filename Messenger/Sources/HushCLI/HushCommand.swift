import ArgumentParser
import Foundation
import Hush
import HushCLIKit
import HushClient

/// `hush`: a small end-to-end encrypted messenger on a Hush relay (README "Try it").
@main
struct HushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hush",
        abstract: "An end-to-end encrypted messenger on a Hush relay: ✓ sent, ✓✓ delivered, blue ✓✓ read.",
        discussion: """
            Each account lives in a home folder (--home, default ~/.hush, or HUSH_HOME): config.json and \
            an encrypted store (store.sqlite) unlocked by a passphrase (--passphrase-file, HUSH_PASSPHRASE, \
            or asked on the terminal) or a 32-byte key file (--key-file). Start with `hush demo`, or \
            `hush init`, then `hush chat NAME`.
            """,
        subcommands: [Init.self, Link.self, Send.self, Inbox.self, Contacts.self, Verify.self, Chat.self, Group.self, Devices.self, Settings.self, Backup.self, Demo.self]
    )
}

/// The options every account command takes.
struct HomeOptions: ParsableArguments {
    @Option(help: "The account's folder. Default: $HUSH_HOME, else ~/.hush.") var home: String?
    @Option(help: "A file whose first line is the store's passphrase (else HUSH_PASSPHRASE, else asked).") var passphraseFile: String?
    @Option(help: "A 32-byte key file that unlocks the store instead of a passphrase (init creates it if missing).") var keyFile: String?

    var resolvedHome: HushHome { HushHome.resolve(home) }

    func open() throws -> Account {
        try Account.open(home: resolvedHome, keyFile: keyFile, passphraseFile: passphraseFile)
    }
}

/// Prints a line to standard output, unbuffered.
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

/// `--kdf`'s Argon2id strength (`hush init`, `hush link`).
func kdfLimits(_ kdf: String) throws -> Argon2id.Limits {
    switch kdf {
    case "interactive": return .interactive
    case "moderate": return .moderate
    case "sensitive": return .sensitive
    default: throw ValidationError("--kdf: interactive, moderate or sensitive")
    }
}

/// `--trust-root` (64 hex digits, or a file holding them), or, without it, the relay's own
/// answer on first contact (printed, to compare with what the operator publishes).
func resolveTrustRoot(_ option: String?, relay address: RelayAddress) throws -> Curve25519.KeyAgreement.PublicKey {
    if let option {
        let text = FileManager.default.fileExists(atPath: option) ? (try? String(contentsOfFile: option, encoding: .utf8)) ?? "" : option
        return try HushHome.parseTrustRoot(text)
    }
    let root = try TrustRootFetch.fetch(address)
    say("trust root: \(Hex.encode(root.rawRepresentation)) (first contact: pinned; compare it with the relay's)")
    return root
}

/// Runs `body`, turning a failure into a message on standard error and exit status 1.
func runReporting(_ body: () async throws -> Void) async throws {
    do { try await body() } catch let e as CLIError {
        FileHandle.standardError.write(Data(("hush: " + e.description + "\n").utf8))
        throw ExitCode.failure
    } catch let e as ExitCode { throw e } catch let e as ValidationError { throw e } catch {
        FileHandle.standardError.write(Data(("hush: \(error)\n").utf8))
        throw ExitCode.failure
    }
}

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create an account on a relay: device keys, an encrypted store, registration.",
        discussion: """
            Without --trust-root the relay's trust root is fetched from it (GET /v1/trust-root), printed, \
            and pinned: compare it with the one the relay printed ("trust root: …"). Every later connection \
            checks the relay's certificate against the pinned key.
            """
    )
    @OptionGroup var options: HomeOptions
    @Option(help: "The relay: ws://HOST:PORT.") var relay: String
    @Option(help: "The account name (lowercase letters, digits, '.', '_', '-').") var name: String
    @Option(help: "The relay's trust root, 64 hex digits (or a file holding them, e.g. relay-data/trust-root.pub).") var trustRoot: String?
    @Option(help: "Argon2id strength for the passphrase: interactive, moderate or sensitive.") var kdf: String = "moderate"

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
            let account = try Account.create(home: home, relay: address, name: name, trustRoot: root,
                                             secret: try SecretMaterial.load(choice, confirm: true),
                                             keyFile: options.keyFile, limits: limits)
            do {
                try await account.connect()
            } catch {
                await account.close()
                home.removeAccount()
                throw error
            }
            await account.close()
            say("\(name) is registered on \(address) (home \(home.directory.path))")
        }
    }
}

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a message and wait for the relay's ✓ (it stays queued if the relay is unreachable).")
    @OptionGroup var options: HomeOptions
    @Argument(help: "The recipient's account name.") var name: String
    @Argument(help: "The text (or --file).") var text: String?
    @Option(help: "A file to send instead of a text: encrypted, uploaded to the relay, sent as a pointer (Docs/spec/media.md).")
    var file: String?
    @Option(help: "The file's MIME type (default: from its extension).") var type: String?
    @Option(help: "Seconds to wait for the relay.") var timeout: Int = 15

    func validate() throws {
        guard (text == nil) != (file == nil) else { throw ValidationError("give a text or --file PATH (not both)") }
    }

    func run() async throws {
        try await runReporting {
            let account = try options.open()
            do {
                try await account.connect(timeout: .seconds(timeout))
                let id: MessageID
                var shown = text ?? ""
                if let file {
                    let url = URL(fileURLWithPath: (file as NSString).expandingTildeInPath)
                    guard FileManager.default.isReadableFile(atPath: url.path) else { throw CLIError.unreadable(file) }
                    let style = TerminalStyle.detect()
                    let bar = MediaCLI.ProgressLine(label: "↑ \(url.lastPathComponent)", ascii: style == .plain)
                    id = try await account.client.sendMedia(file: url, contentType: type ?? MediaCLI.contentType(forFileName: url.lastPathComponent),
                                                            to: name, library: MediaCLI.library(account.home)) { bar.report($0) }
                    bar.finish()
                    shown = (try? account.store.message(id))?.body ?? url.lastPathComponent
                } else {
                    id = try await account.client.send(text ?? "", to: name)
                }
                let store = account.store
                try await waitUntil("the relay's ✓", timeout: .seconds(timeout)) { (try store.message(id)?.state ?? .pending) >= .sent }
                try? await account.flush(timeout: .seconds(2))
                let state = (try? store.message(id))?.state ?? .sent
                say("\(TickMark.mark(state, style: .detect())) to \(name): \(shown)")
                await account.close()
            } catch {
                await account.close()
                throw Account.describe(error, recipient: name)
            }
        }
    }
}

struct Inbox: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch what the relay queued and list the conversations (unread counts, last message).")
    @OptionGroup var options: HomeOptions
    @Flag(help: "Do not connect; show what the store has.") var offline = false
    @Option(help: "Seconds to wait for the relay.") var timeout: Int = 15

    func run() async throws {
        try await runReporting {
            let account = try options.open()
            do {
                let style = TerminalStyle.detect()
                if !offline {
                    try await account.connect(timeout: .seconds(timeout))
                    try? await account.flush(timeout: .seconds(5))  // delivery receipts
                    // Received media: downloaded, checked and decrypted into Media/ (Docs/client.md §Media).
                    for line in await MediaCLI.saveReceived(account, progress: true, ascii: style == .plain) { say(line) }
                }
                let list = try await account.client.conversations()
                if list.isEmpty { say("no messages yet") }
                for c in list {
                    // A group's conversation is shown with the group's name.
                    var title = c.account
                    if let id = GroupID(conversation: c.account), let g = (try? await account.client.group(id)) ?? nil {
                        title = "\(g.name) (\(c.account))"
                    }
                    say(title + (c.unread > 0 ? " (\(c.unread) unread)" : ""))
                    for m in try await account.client.messages(in: c.account, limit: max(3, c.unread)) {
                        for l in MessageLine.render(m, style: style, timeZone: .current) { say("    " + l) }
                    }
                }
                await account.close()
            } catch {
                await account.close()
                throw Account.describe(error)
            }
        }
    }
}

struct Contacts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the people this account has talked to.")
    @OptionGroup var options: HomeOptions

    func run() async throws {
        try await runReporting {
            let account = try options.open()
            do {
                let list = try await account.client.conversations()
                if list.isEmpty { say("no contacts yet (send a message: hush send NAME TEXT)") }
                for c in list {
                    var line = c.account
                    if c.unread > 0 { line += "  \(c.unread) unread" }
                    if try await account.client.identityNeedsApproval(c.account) { line += "  IDENTITY CHANGED (hush verify \(c.account))" }
                    say(line)
                }
                await account.close()
            } catch {
                await account.close()
                throw Account.describe(error)
            }
        }
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the safety number with a contact (compare it out of band); --approve accepts a changed identity.")
    @OptionGroup var options: HomeOptions
    @Argument(help: "The contact.") var name: String
    @Flag(help: "Accept the contact's new identity key (after comparing the safety number).") var approve = false

    func run() async throws {
        try await runReporting {
            let account = try options.open()
            do {
                let client = account.client
                guard let number = try await client.safetyNumber(with: name) else {
                    throw CLIError.failed("no session with \(name) yet: exchange a message first")
                }
                let changed = try await client.identityNeedsApproval(name)
                say("safety number with \(name):")
                say("  \(number)")
                if let how = try await client.sessionEstablishment(with: name) {
                    say(how == .pqxdh ? "session: PQXDH (post-quantum)" : "session: X3DH (not post-quantum)")
                }
                if changed && approve {
                    try await client.approveIdentity(of: name)
                    say("\(name)'s new identity is approved: sending works again")
                } else if changed {
                    say("\(name)'s identity key CHANGED: compare this number with \(name) (in person, or a call), then run")
                    say("  hush verify \(name) --approve")
                } else {
                    say("compare it with the number \(name) sees; they must be equal")
                }
                await account.close()
            } catch {
                await account.close()
                throw Account.describe(error)
            }
        }
    }
}

struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with a contact in this terminal: live messages, ✓ / ✓✓ / read, typing…, online / last seen.",
        discussion: "Type and press Enter to send. Ctrl-C, Ctrl-D or /quit to leave. Read is a blue ✓✓; with --plain or NO_COLOR it shows as \"✓✓ read\"."
    )
    @OptionGroup var options: HomeOptions
    @Argument(help: "The contact (with --group: the group's #id, hex id or name).") var name: String
    @Flag(help: "Chat in a group (hush group list shows them).") var group = false
    @Flag(help: "No colours: read receipts spelled out.") var plain = false
    @Flag(help: "Colours even if NO_COLOR is set (read is a blue ✓✓).") var color = false

    func run() async throws {
        try await runReporting {
            let account = try options.open()
            let style: TerminalStyle = plain ? .plain : color ? .ansi : .detect()
            let session: ChatSession
            if group {
                do { session = ChatSession(account: account, group: try await Group.resolve(name, account), style: style) } catch {
                    try? account.store.close()
                    throw error
                }
            } else {
                session = ChatSession(account: account, peer: name, style: style)
            }
            do { try await session.run() } catch {
                await account.close()
                throw Account.describe(error)
            }
            await account.close()
        }
    }
}

struct Settings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Privacy: read receipts on or off, who sees online / last seen.",
        discussion: """
            With read receipts off, others never see blue ✓✓ for messages you read (delivery ✓✓ still \
            goes). Presence: everyone, nobody, or contacts:NAME,NAME (only those). Stored in the store and \
            sent to the relay on every connection. Without options, prints the current read-receipt setting.
            """
    )
    @OptionGroup var options: HomeOptions
    @Option(help: "on or off.") var readReceipts: String?
    @Option(help: "everyone, nobody, or contacts:NAME,NAME.") var presence: String?

    func run() async throws {
        try await runReporting {
            let account = try options.open()
            do {
                let client = account.client
                if let readReceipts {
                    guard ["on", "off"].contains(readReceipts) else { throw ValidationError("--read-receipts: on or off") }
                    try await client.setReadReceipts(readReceipts == "on")
                }
                if let presence {
                    let setting: PresenceSetting
                    switch presence {
                    case "everyone": setting = .everyone
                    case "nobody": setting = .nobody
                    case let p where p.hasPrefix("contacts:"):
                        setting = .contacts(p.dropFirst("contacts:".count).split(separator: ",").map(String.init))
                    default: throw ValidationError("--presence: everyone, nobody or contacts:NAME,NAME")
                    }
                    try await client.setPresence(setting)
                }
                say("read receipts: \(await client.readReceiptsEnabled ? "on" : "off")")
                await account.close()
            } catch let e as ValidationError {
                await account.close()
                throw e
            } catch {
                await account.close()
                throw Account.describe(error)
            }
        }
    }
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a relay and two users in this process and show a conversation through every tick.",
        discussion: """
            An embedded relay on a free loopback port (data in a temporary folder), alice and bob with \
            encrypted stores, ✓ / ✓✓ / read, typing, bob offline and back, a relay restart in the middle. \
            Exits 0 only if every step happened (each waits at most 10 s); leaves nothing behind.
            """
    )
    @Flag(help: "No colours.") var plain = false

    func run() async throws {
        let demo = HushCLIKit.Demo(style: plain ? .plain : .detect()) { say($0) }
        do { try await demo.run() } catch {
            let text = (error as? CLIError)?.description ?? "\(error)"
            FileHandle.standardError.write(Data(("hush demo FAILED: " + text + "\n").utf8))
            throw ExitCode.failure
        }
    }
}
