import Foundation
import Hush
import Testing
@testable import HushCLIKit

@Suite struct HomeTests {
    @Test func relayAddressesParse() throws {
        #expect(try RelayAddress(parsing: "ws://127.0.0.1:8080") == RelayAddress(host: "127.0.0.1", port: 8080, path: "/v1/ws"))
        #expect(try RelayAddress(parsing: "localhost:9") == RelayAddress(host: "localhost", port: 9))
        #expect(try RelayAddress(parsing: "http://relay.example:443/custom") == RelayAddress(host: "relay.example", port: 443, path: "/custom"))
        #expect(try RelayAddress(parsing: "ws://[::1]:8080/").description == "ws://[::1]:8080/v1/ws")
        #expect(try RelayAddress(parsing: "ws://127.0.0.1:8080").httpBase == "http://127.0.0.1:8080")
        for bad in ["", "ws://host", "ws://host:0", "ws://host:70000", "wss://host:1", "ws://:80", "ws://a b:80"] {
            #expect(throws: CLIError.badRelayURL(bad)) { try RelayAddress(parsing: bad) }
        }
    }

    @Test func homeDefaultsToHushHomeThenDotHush() {
        #expect(HushHome.resolve("/x/y").directory.path == "/x/y")
        #expect(HushHome.resolve(nil, environment: ["HUSH_HOME": "/h"]).directory.path == "/h")
        #expect(HushHome.resolve(nil, environment: ["HOME": "/home/a"]).directory.path == "/home/a/.hush")
    }

    @Test func configRoundTripsAndAMissingOneSaysRunInit() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-home-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let home = HushHome(directory: dir)
        #expect(throws: CLIError.notInitialized(dir.path)) { try home.loadConfig() }
        try home.create()
        let config = HomeConfig(account: "alice", relay: "ws://127.0.0.1:1/v1/ws", trustRoot: String(repeating: "09", count: 32), keyFile: "/k")
        try home.saveConfig(config)
        #expect(try home.loadConfig() == config)
        let mode = try FileManager.default.attributesOfItem(atPath: home.configURL.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try FileManager.default.attributesOfItem(atPath: dir.path)[.posixPermissions] as? Int == 0o700)
        _ = FileManager.default.createFile(atPath: home.configURL.path, contents: Data("{".utf8))
        #expect(throws: CLIError.badConfig("\(home.configURL.path) does not parse")) { try home.loadConfig() }
    }

    @Test func trustRootsAre64HexDigitsOfAKey() throws {
        let key = try Curve25519.KeyAgreement.PrivateKey().publicKey
        let hex = Hex.encode(key.rawRepresentation)
        #expect(try HushHome.parseTrustRoot(hex + "\n") == key)
        for bad in ["", "zz", String(hex.dropLast()), hex + "00"] {
            #expect(throws: CLIError.badTrustRoot) { try HushHome.parseTrustRoot(bad) }
        }
    }

    @Test func secretSourcesInOrder() throws {
        func choose(_ k: String?, _ p: String?, _ env: [String: String], _ c: String?, _ tty: Bool) throws -> SecretChoice {
            try SecretChoice.choose(keyFile: k, passphraseFile: p, environment: env, configuredKeyFile: c, canPrompt: tty)
        }
        let env = ["HUSH_PASSPHRASE": "x"]
        #expect(try choose("/k", "/p", env, "/c", true) == .keyFile("/k"))
        #expect(try choose(nil, "/p", env, "/c", true) == .passphraseFile("/p"))
        #expect(try choose(nil, nil, env, "/c", true) == .environment)
        #expect(try choose(nil, nil, [:], "/c", true) == .keyFile("/c"))
        #expect(try choose(nil, nil, [:], nil, true) == .prompt)
        #expect(throws: CLIError.noSecret) { try choose(nil, nil, [:], nil, false) }
    }

    @Test func passphrasesAreTheFirstLineAndKeyFiles32Bytes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-secret-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let pass = dir.appendingPathComponent("pass").path
        _ = FileManager.default.createFile(atPath: pass, contents: Data("correct horse\nsecond line\n".utf8))
        guard case .passphrase(let p) = try SecretMaterial.load(.passphraseFile(pass)) else { Issue.record("not a passphrase"); return }
        #expect(p == SecureBytes(copying: Array("correct horse".utf8)))
        guard case .passphrase(let e) = try SecretMaterial.load(.environment, environment: ["HUSH_PASSPHRASE": "s3cret"]) else {
            Issue.record("not a passphrase"); return
        }
        #expect(e == SecureBytes(copying: Array("s3cret".utf8)))
        #expect(throws: CLIError.emptyPassphrase) { try SecretMaterial.load(.environment, environment: ["HUSH_PASSPHRASE": ""]) }
        _ = FileManager.default.createFile(atPath: pass, contents: Data("\nx".utf8))
        #expect(throws: CLIError.emptyPassphrase) { try SecretMaterial.load(.passphraseFile(pass)) }
        #expect(throws: CLIError.unreadable(dir.appendingPathComponent("none").path)) {
            try SecretMaterial.load(.passphraseFile(dir.appendingPathComponent("none").path))
        }

        let key = dir.appendingPathComponent("key").path
        try SecretMaterial.createKeyFile(at: key, random: SeededRandom(seed: 1))
        let first = try #require(FileManager.default.contents(atPath: key))
        #expect(first.count == 32)
        #expect(try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int == 0o600)
        try SecretMaterial.createKeyFile(at: key)  // an existing key file is kept
        #expect(FileManager.default.contents(atPath: key) == first)
        guard case .keyFile(let k) = try SecretMaterial.load(.keyFile(key)) else { Issue.record("not a key"); return }
        #expect(k == SecureBytes(copying: [UInt8](first)))
        _ = FileManager.default.createFile(atPath: key, contents: Data(count: 31))
        #expect(throws: CLIError.keyFileSize(31)) { try SecretMaterial.load(.keyFile(key)) }
    }

    @Test func aPassphraseFileMayBeAPipe() throws {
        // As `--passphrase-file <(echo …)` gives it: /dev/fd/N, no size to stat.
        let pipe = Pipe()
        pipe.fileHandleForWriting.write(Data("from a pipe\n".utf8))
        try pipe.fileHandleForWriting.close()
        guard case .passphrase(let p) = try SecretMaterial.load(.passphraseFile("/dev/fd/\(pipe.fileHandleForReading.fileDescriptor)")) else {
            Issue.record("not a passphrase"); return
        }
        #expect(p == SecureBytes(copying: Array("from a pipe".utf8)))
    }

    @Test func secretsNeverPrint() throws {
        #expect(!"\(SecretMaterial.passphrase(SecureBytes(copying: Array("hunter2".utf8))))".contains("hunter2"))
    }
}
