import Foundation
import Hush
import HushTransport

/// Errors of the `hush` command, each with the sentence it prints.
public enum CLIError: Error, Equatable, CustomStringConvertible {
    /// `--home` has no config (run `hush init`).
    case notInitialized(String)
    /// `hush init` found a home already set up.
    case alreadyInitialized(String)
    /// The config file does not parse.
    case badConfig(String)
    /// A relay address that is not `ws://host:port[/path]`.
    case badRelayURL(String)
    /// A trust root that is not 64 hex digits of an X25519 key.
    case badTrustRoot
    /// No passphrase or key file given, and no terminal to ask on.
    case noSecret
    /// The passphrase is empty.
    case emptyPassphrase
    /// A passphrase or key file that cannot be read.
    case unreadable(String)
    /// A key file must hold 32 bytes.
    case keyFileSize(Int)
    /// The file system refused.
    case io(String)
    /// The relay could not be reached, or answered something else.
    case relay(String)
    /// A step did not happen in time.
    case timeout(String)
    /// Anything the engine or the store reported.
    case failed(String)

    public var description: String {
        switch self {
        case .notInitialized(let p): "no Hush account in \(p): run `hush init --relay URL --name NAME` first (or pass --home)"
        case .alreadyInitialized(let p): "\(p) already holds a Hush account (use another --home)"
        case .badConfig(let why): "config file: \(why)"
        case .badRelayURL(let u): "not a relay address: \(u) (expected ws://HOST:PORT)"
        case .badTrustRoot: "the trust root must be 64 hex digits (the relay prints it as \"trust root: …\")"
        case .noSecret: "the store needs a passphrase: --passphrase-file FILE, HUSH_PASSPHRASE, or --key-file FILE"
        case .emptyPassphrase: "the passphrase is empty"
        case .unreadable(let p): "cannot read \(p)"
        case .keyFileSize(let n): "a key file holds exactly 32 bytes (this one: \(n))"
        case .io(let why): "file system: \(why)"
        case .relay(let why): "relay: \(why)"
        case .timeout(let what): "timed out: \(what)"
        case .failed(let why): why
        }
    }
}

/// Where the relay is: `ws://HOST:PORT[/PATH]` (`http://` and a bare `HOST:PORT` are accepted;
/// the path defaults to the relay's WebSocket path).
public struct RelayAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var path: String

    public init(host: String, port: Int, path: String = RelayProtocol.webSocketPath) {
        self.host = host
        self.port = port
        self.path = path
    }

    public init(parsing text: String) throws(CLIError) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        for scheme in ["ws://", "http://"] where rest.hasPrefix(scheme) { rest = rest.dropFirst(scheme.count) }
        guard !rest.contains("://") else { throw .badRelayURL(text) }
        var path = RelayProtocol.webSocketPath
        if let slash = rest.firstIndex(of: "/") {
            let p = String(rest[slash...])
            if p != "/" { path = p }
            rest = rest[..<slash]
        }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
              (1...65_535).contains(port) else { throw .badRelayURL(text) }
        var host = String(rest[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || ".-:".contains($0) }) else { throw .badRelayURL(text) }
        self.init(host: host, port: port, path: path)
    }

    /// `ws://host:port/path`.
    public var description: String { "ws://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)" }
    /// The relay's HTTP base (`GET /v1/trust-root`, `/health`).
    public var httpBase: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)" }
}

/// What `hush init` records in `HOME/config.json` (no secrets: the passphrase is never
/// stored; a key file is referenced by path).
public struct HomeConfig: Codable, Sendable, Equatable {
    /// Format version.
    public var version: Int = 1
    /// The account name.
    public var account: String
    /// `ws://host:port/path`.
    public var relay: String
    /// The pinned trust root, 64 hex digits.
    public var trustRoot: String
    /// The key file that unlocks the store, when one was used instead of a passphrase.
    public var keyFile: String?

    public init(account: String, relay: String, trustRoot: String, keyFile: String? = nil) {
        self.account = account
        self.relay = relay
        self.trustRoot = trustRoot
        self.keyFile = keyFile
    }

    /// The pinned key.
    public func trustRootKey() throws(CLIError) -> Curve25519.KeyAgreement.PublicKey { try HushHome.parseTrustRoot(trustRoot) }
}

/// The folder `hush` keeps an account in (`--home`, default `~/.hush`), mode 0700:
///
/// | file | content |
/// |---|---|
/// | `config.json` | ``HomeConfig``: account, relay, pinned trust root, key file path |
/// | `store.sqlite` (+ `-wal`, `-shm`) | the encrypted client store (SQLiteClientStore) |
public struct HushHome: Sendable, Equatable {
    public let directory: URL

    public init(directory: URL) { self.directory = directory }

    /// `path`, or `$HUSH_HOME`, or `~/.hush`.
    public static func resolve(_ path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> HushHome {
        if let path, !path.isEmpty { return HushHome(directory: URL(fileURLWithPath: (path as NSString).expandingTildeInPath)) }
        if let env = environment["HUSH_HOME"], !env.isEmpty { return HushHome(directory: URL(fileURLWithPath: env)) }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return HushHome(directory: URL(fileURLWithPath: home).appendingPathComponent(".hush"))
    }

    public var configURL: URL { directory.appendingPathComponent("config.json") }
    public var storePath: String { directory.appendingPathComponent("store.sqlite").path }
    public var isInitialized: Bool { FileManager.default.fileExists(atPath: configURL.path) }

    /// Creates the folder (0700) if missing.
    public func create() throws(CLIError) {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch { throw .io("cannot create \(directory.path)") }
    }

    public func loadConfig() throws(CLIError) -> HomeConfig {
        guard let data = FileManager.default.contents(atPath: configURL.path) else { throw .notInitialized(directory.path) }
        do { return try JSONDecoder().decode(HomeConfig.self, from: data) } catch { throw .badConfig("\(configURL.path) does not parse") }
    }

    public func saveConfig(_ config: HomeConfig) throws(CLIError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(config),
              FileManager.default.createFile(atPath: configURL.path, contents: data + Data("\n".utf8),
                                             attributes: [.posixPermissions: 0o600]) else { throw .io("cannot write \(configURL.path)") }
    }

    /// Parses 64 hex digits as an X25519 public key.
    public static func parseTrustRoot(_ text: String) throws(CLIError) -> Curve25519.KeyAgreement.PublicKey {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.count == 64, let bytes = try? Hex.decode(trimmed),
              let key = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: bytes) else { throw .badTrustRoot }
        return key
    }
}
