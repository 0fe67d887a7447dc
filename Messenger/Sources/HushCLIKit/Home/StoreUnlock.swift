import Foundation
import Hush

/// Where the secret that unlocks the store comes from. Order: `--key-file`, then
/// `--passphrase-file`, then `HUSH_PASSPHRASE`, then the key file `hush init` recorded, then a
/// prompt on the terminal.
public enum SecretChoice: Sendable, Equatable {
    /// 32 random bytes in a file (tests, scripts).
    case keyFile(String)
    /// The first line of a file.
    case passphraseFile(String)
    /// `HUSH_PASSPHRASE`.
    case environment
    /// Asked on the terminal (no echo).
    case prompt

    /// The variable holding a passphrase.
    public static let environmentVariable = "HUSH_PASSPHRASE"

    /// Picks the source (pure; see the type's order).
    public static func choose(keyFile: String?, passphraseFile: String?, environment: [String: String],
                              configuredKeyFile: String?, canPrompt: Bool) throws(CLIError) -> SecretChoice {
        if let keyFile { return .keyFile(keyFile) }
        if let passphraseFile { return .passphraseFile(passphraseFile) }
        if environment[environmentVariable] != nil { return .environment }
        if let configuredKeyFile { return .keyFile(configuredKeyFile) }
        if canPrompt { return .prompt }
        throw .noSecret
    }
}

/// The secret's bytes, in wiped memory.
public enum SecretMaterial: Sendable {
    case passphrase(SecureBytes)
    case keyFile(SecureBytes)

    /// Key files hold this many bytes.
    public static let keyFileByteCount = 32

    /// Reads the secret `choice` names. `confirm`: ask twice on a prompt (a new store).
    public static func load(_ choice: SecretChoice, environment: [String: String] = ProcessInfo.processInfo.environment,
                            confirm: Bool = false) throws(CLIError) -> SecretMaterial {
        switch choice {
        case .keyFile(let path):
            let bytes = try readFile(path)
            guard bytes.count == keyFileByteCount else { throw .keyFileSize(bytes.count) }
            return .keyFile(bytes)
        case .passphraseFile(let path):
            return .passphrase(try passphrase(from: try readFile(path)))
        case .environment:
            return .passphrase(try passphrase(from: SecureBytes(copying: Array((environment[SecretChoice.environmentVariable] ?? "").utf8))))
        case .prompt:
            let first = try ask("Passphrase for the Hush store: ")
            if confirm {
                let second = try ask("Repeat it: ")
                guard first == second else { throw .failed("the passphrases differ") }
            }
            return .passphrase(first)
        }
    }

    /// The passphrase: the bytes up to the first line end.
    static func passphrase(from bytes: SecureBytes) throws(CLIError) -> SecureBytes {
        let length = bytes.withUnsafeBytes { raw in raw.firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) ?? raw.count }
        guard length > 0 else { throw .emptyPassphrase }
        return bytes.slice(0..<length)
    }

    /// Longest passphrase file read (bytes).
    static let maxFileBytes = 4_096

    /// Reads a small file straight into wiped memory (plain `read`, so pipes such as
    /// `<(echo …)` work too).
    static func readFile(_ path: String) throws(CLIError) -> SecureBytes {
        let expanded = (path as NSString).expandingTildeInPath
        var length = 0
        var failed = false
        let buffer = SecureBytes(count: maxFileBytes + 1) { (out: UnsafeMutableRawBufferPointer) in
            let fd = open(expanded, O_RDONLY)
            guard fd >= 0, let base = out.baseAddress else { failed = true; return }
            defer { close(fd) }
            while length < out.count {
                let n = read(fd, base + length, out.count - length)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { failed = true; return }
                if n == 0 { break }
                length += n
            }
        }
        guard !failed else { throw .unreadable(path) }
        guard length <= maxFileBytes else { throw .failed("\(path) is longer than \(maxFileBytes) bytes") }
        return buffer.slice(0..<length)
    }

    static func ask(_ prompt: String) throws(CLIError) -> SecureBytes {
        guard let p = getpass(prompt) else { throw .noSecret }
        let length = strlen(p)
        defer { memset(p, 0, length) }
        guard length > 0 else { throw .emptyPassphrase }
        return SecureBytes(copying: UnsafeRawBufferPointer(start: p, count: length))
    }

    /// Creates a key file of 32 random bytes (mode 0600) unless `path` exists.
    public static func createKeyFile(at path: String, random: some RandomSource = SystemRandom()) throws(CLIError) {
        let path = (path as NSString).expandingTildeInPath
        guard !FileManager.default.fileExists(atPath: path) else { return }
        let key: SecureBytes
        do { key = try SecureBytes(randomCount: keyFileByteCount, using: random) } catch { throw .failed("no randomness: \(error)") }
        var data = key.withUnsafeBytes { Data($0) }
        defer { data.resetBytes(in: 0..<data.count) }
        let ok = FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600])
        guard ok else { throw .io("cannot write \(path)") }
    }
}
