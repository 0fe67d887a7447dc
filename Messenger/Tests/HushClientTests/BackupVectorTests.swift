import Foundation
import Hush
import HushTransport
import Testing
@testable import HushClient

/// `TestVectors/backup/`: version-1 backup files written once and kept, with the records they
/// hold in `expected.json`. A format change that breaks old backups fails here; the same files
/// are read from Docs/spec/backup.md alone by `Tools/spec-check/backup_check.py`.
/// `HUSH_WRITE_BACKUP_VECTORS=1 swift test --filter BackupVectorTests` writes new files.
@Suite struct BackupVectorTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../TestVectors/backup").standardized
    static let passphrase = "vector passphrase ünïcödé"
    static let limits = Argon2id.Limits(operations: 2, memoryBytes: 64 * 1024)
    static let recoveryDigits = "0123 4567 8901 2345 6789 0123 4567 8901 2345 6789 0123 4567 8901 2345 6789 0123"

    /// A store whose contents follow from fixed seeds.
    static func store() throws -> InMemoryClientStore {
        let random = SeededRandom(seed: 2026)
        let identity = try IdentityKeyPair.generate(using: random)
        let store = InMemoryClientStore(identity: identity, registrationID: 4242)
        try store.setSetting(SettingKey.account, Array("alice".utf8))
        try store.setU64(SettingKey.deviceID, 3)
        try store.setSetting(SettingKey.noiseKey, try Curve25519.KeyAgreement.PrivateKey(using: random).rawRepresentation.withUnsafeBytes { Array($0) })
        try store.setU64(SettingKey.nextID, 77)
        try store.setU64(SettingKey.nextPreKeyID, 201)
        try store.setU64(SettingKey.signedPreKeyID, 4)
        try store.setU64(SettingKey.nextKyberPreKeyID, 12)
        try store.setFlag(SettingKey.readReceipts, false)
        try store.setSetting(SettingKey.presence, Array("contacts\nbob".utf8))
        let bob = try IdentityKeyPair.generate(using: random).identityKey
        // A session with bob's device 1 (so it is a device with a session) is not needed: a
        // message from bob's device 2 names that device.
        _ = try store.saveIdentity(bob, for: ProtocolAddress(name: "bob", deviceID: 2))
        let messages: [(String, UInt32, UInt64, MessageDirection, TickState, String)] = [
            ("alice", 3, 70, .outgoing, .read, "Hi Bob"),
            ("bob", 2, 9, .incoming, .read, "Hi Alice 👋"),
            ("alice", 3, 71, .outgoing, .delivered, String(repeating: "long ", count: 20)),
            ("alice", 3, 72, .outgoing, .pending, "not sent yet"),
        ]
        for (i, m) in messages.enumerated() {
            _ = try store.insertMessage(StoredMessage(id: MessageID(account: m.0, device: m.1, clientMessageID: m.2), conversation: "bob",
                                                      direction: m.3, body: m.5, sentAt: 1_760_000_000_000 + UInt64(i),
                                                      serverTime: m.4 == .pending ? 0 : 1_760_000_000_100 + UInt64(i), state: m.4))
        }
        return store
    }

    @Test func committedVectorsRestore() throws {
        if ProcessInfo.processInfo.environment["HUSH_WRITE_BACKUP_VECTORS"] == "1" { try write() }
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.directory.appendingPathComponent("expected.json"))) as! [String: Any]
        let source = try Self.store()
        for (file, secret) in [("v1-passphrase.hushbackup", BackupSecret.passphrase(Self.passphrase)),
                               ("v1-recovery-key.hushbackup", BackupSecret.recoveryKey(try RecoveryKey(parsing: Self.recoveryDigits)))] {
            let bytes = try [UInt8](Data(contentsOf: Self.directory.appendingPathComponent(file)))
            var config = ClientConfiguration(endpoint: RelayEndpoint(host: "127.0.0.1", port: 1), trustRoot: try Curve25519.KeyAgreement.PrivateKey().publicKey)
            config.preKeyBatch = 2
            config.kyberPreKeyBatch = 1
            let r = try HushBackup.restore(from: BackupBytesSource(bytes), secret: secret, configuration: config) { p in
                InMemoryClientStore(identity: p.identity, registrationID: p.registrationID)
            }
            #expect(r.summary.messages == 4 && r.summary.resent == 1 && r.summary.createdAt == expected["created_at"] as? UInt64)
            #expect(try r.store.allMessages(after: 0, limit: 10).map(\.body) == source.allMessages(after: 0, limit: 10).map(\.body))
            #expect(try r.store.identityKeyPair().identityKey == source.identityKeyPair().identityKey)
            #expect(try r.store.setting(SettingKey.noiseKey) == source.setting(SettingKey.noiseKey))
            #expect(try r.store.identity(for: ProtocolAddress(name: "bob", deviceID: 2)) == source.identity(for: ProtocolAddress(name: "bob", deviceID: 2)))
            #expect(r.application == ["cli.relay": Array("ws://relay.example:8443".utf8)])
        }
    }

    func write() throws {
        let store = try Self.store()
        try FileManager.default.createDirectory(at: Self.directory, withIntermediateDirectories: true)
        let now: UInt64 = 1_764_720_000_000
        for (file, secret) in [("v1-passphrase.hushbackup", BackupSecret.passphrase(Self.passphrase, limits: Self.limits)),
                               ("v1-recovery-key.hushbackup", BackupSecret.recoveryKey(try RecoveryKey(parsing: Self.recoveryDigits)))] {
            var sink = BackupBytesSink()
            try HushBackup.export(store: store, to: &sink, secret: secret, application: ["cli.relay": Array("ws://relay.example:8443".utf8)], now: now)
            try Data(sink.bytes).write(to: Self.directory.appendingPathComponent(file))
        }
        // The records, in file order, as a reader of the spec should find them.
        let hex = { (b: [UInt8]) in Hex.encode(b) }
        let identity = try store.identityKeyPair()
        var records: [[String: Any]] = [[
            "type": "profile", "account": "alice", "device_id": 3, "registration_id": 4242,
            "identity_public": hex(identity.identityKey.serialized),
            "identity_private": hex(identity.privateKey.rawRepresentation.withUnsafeBytes { Array($0) }),
            "noise_private": hex(try store.setting(SettingKey.noiseKey)!),
            "next_id": 77, "next_prekey_id": 201, "signed_prekey_id": 4, "next_kyber_prekey_id": 12,
        ]]
        records.append(["type": "application", "key": "cli.relay", "value": hex(Array("ws://relay.example:8443".utf8))])
        for key in [SettingKey.readReceipts, SettingKey.presence] {
            records.append(["type": "setting", "key": key, "value": hex(try store.setting(key)!)])
        }
        for m in try store.allMessages(after: 0, limit: 10) {
            records.append(["type": "message", "sender_account": m.id.account, "sender_device": m.id.device, "message_id": m.id.clientMessageID,
                            "conversation": m.conversation, "direction": m.direction.rawValue, "state": m.state.rawValue,
                            "sent_at": m.sentAt, "server_time": m.serverTime, "body": m.body])
        }
        records.append(["type": "identity", "account": "bob", "device": 2,
                        "key": hex(try store.identity(for: ProtocolAddress(name: "bob", deviceID: 2))!.serialized)])
        let doc: [String: Any] = [
            "format": "hush-backup-vectors/1",
            "created_at": now,
            "files": [
                ["file": "v1-passphrase.hushbackup", "kdf": "passphrase", "passphrase": Self.passphrase,
                 "operations": Self.limits.operations, "memory_kib": Self.limits.memoryBytes / 1024],
                ["file": "v1-recovery-key.hushbackup", "kdf": "recovery-key", "recovery_key": Self.recoveryDigits],
            ],
            "records": records,
        ]
        let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: Self.directory.appendingPathComponent("expected.json"))
    }
}
