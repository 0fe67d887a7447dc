import Foundation
import Hush
import HushTransport
import Testing
@testable import HushClient

/// The backup file (Docs/spec/backup.md) on its own: exact header bytes, round trips, and every
/// rejection — wrong secret, damaged, truncated, reordered, trailing, hostile limits.
@Suite struct BackupFormatTests {
    /// The cheapest Argon2id libsodium allows: tests check the format, not the cost.
    static let cheap = Argon2id.Limits(operations: 1, memoryBytes: 8 * 1024)
    static let passphrase = BackupSecret.passphrase("correct horse battery staple", limits: cheap)

    /// A device store with history: 2 contacts, 300 messages (several chunks), a media pointer,
    /// a pending outgoing message, settings.
    static func sampleStore() throws -> InMemoryClientStore {
        let keys = try HushClient.generateIdentity(random: SeededRandom(seed: 7))
        let store = InMemoryClientStore(identity: keys.identity, registrationID: keys.registrationID)
        var config = ClientConfiguration(endpoint: RelayEndpoint(host: "127.0.0.1", port: 1), trustRoot: try Curve25519.KeyAgreement.PrivateKey().publicKey)
        config.preKeyBatch = 5
        config.kyberPreKeyBatch = 2
        _ = try HushClient.create(account: "alice", store: store, configuration: config)
        let bobKey = try IdentityKeyPair.generate().identityKey, carolKey = try IdentityKeyPair.generate().identityKey
        _ = try store.saveIdentity(bobKey, for: ProtocolAddress(name: "bob", deviceID: 1))
        _ = try store.saveIdentity(carolKey, for: ProtocolAddress(name: "carol", deviceID: 3))
        try store.setSetting(SettingKey.presence, Array("contacts\nbob".utf8))
        try store.setFlag(SettingKey.readReceipts, false)
        try store.setU64(SettingKey.nextID, 500)
        for i in 0..<300 {
            let incoming = i % 3 == 0
            let who = i % 2 == 0 ? "bob" : "carol"
            let id = incoming ? MessageID(account: who, device: who == "bob" ? 1 : 3, clientMessageID: UInt64(i))
                              : MessageID(account: "alice", device: 1, clientMessageID: UInt64(i))
            _ = try store.insertMessage(StoredMessage(id: id, conversation: who, direction: incoming ? .incoming : .outgoing,
                                                      body: "message \(i) " + String(repeating: "é", count: 200), sentAt: 1_000 + UInt64(i),
                                                      serverTime: 2_000 + UInt64(i), state: incoming ? .read : .delivered))
        }
        let pointer = try MediaPointer(mediaID: MediaID(bytes: [UInt8](repeating: 0xAB, count: 16))!, key: SecureBytes(randomCount: 32),
                                       digest: [UInt8](repeating: 0xCD, count: 32), plaintextSize: 1234, contentType: "image/jpeg")
        let media = MessageID(account: "bob", device: 1, clientMessageID: 900)
        try store.setSetting(SettingKey.mediaPointer(media), pointer.encoded)
        _ = try store.insertMessage(StoredMessage(id: media, conversation: "bob", direction: .incoming, body: pointer.summary,
                                                  sentAt: 5_000, serverTime: 5_001, state: .delivered))
        _ = try store.insertMessage(StoredMessage(id: MessageID(account: "alice", device: 1, clientMessageID: 901), conversation: "carol",
                                                  direction: .outgoing, body: "not sent yet", sentAt: 6_000, state: .pending))
        return store
    }

    static func export(_ store: any ClientStore, _ secret: BackupSecret = passphrase, random: some RandomSource = SystemRandom()) throws -> [UInt8] {
        var sink = BackupBytesSink()
        try HushBackup.export(store: store, to: &sink, secret: secret, application: ["cli.relay": Array("ws://127.0.0.1:1".utf8)],
                              now: 1_700_000_000_000, random: random)
        return sink.bytes
    }

    static func restore(_ bytes: [UInt8], _ secret: BackupSecret = passphrase) throws(BackupError) -> HushBackup.Restored {
        var config = ClientConfiguration(endpoint: RelayEndpoint(host: "127.0.0.1", port: 1), trustRoot: try! Curve25519.KeyAgreement.PrivateKey().publicKey)
        config.preKeyBatch = 5
        config.kyberPreKeyBatch = 2
        return try HushBackup.restore(from: BackupBytesSource(bytes), secret: secret, configuration: config) { p in
            InMemoryClientStore(identity: p.identity, registrationID: p.registrationID)
        }
    }

    func restoreError(_ bytes: [UInt8], _ secret: BackupSecret = passphrase) -> BackupError? {
        do { _ = try Self.restore(bytes, secret); return nil } catch { return error }
    }

    @Test func headerBytesAndKeyCheckFollowTheSpec() throws {
        let store = try Self.sampleStore()
        let salt = [UInt8](0x10..<0x20)
        let bytes = try Self.export(store, random: ReplayRandom(salt + [UInt8](repeating: 0x77, count: 4096)))
        #expect(Array(bytes[0..<8]) == Array("HUSHBKUP".utf8))
        #expect(bytes[8] == 1)
        #expect(bytes[9] == 1)  // Argon2id
        #expect(Array(bytes[10..<18]) == [0, 0, 0, 1, 0, 0, 0, 8])  // 1 pass, 8 KiB
        #expect(Array(bytes[18..<34]) == salt)
        #expect(Array(bytes[34..<42]) == [0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00])  // 1,700,000,000,000 ms
        // K, the key check and the stream key, derived here from the spec's text alone.
        let k = try Argon2id.deriveKey(fromPassword: Array("correct horse battery staple".utf8), salt: salt, outputByteCount: 32, limits: Self.cheap)
        let check = try HKDF.expand(pseudoRandomKey: k, info: Array("hush-backup/1 key check".utf8), outputByteCount: 16)
        #expect(check.withUnsafeBytes { Array($0) } == Array(bytes[42..<58]))
        let streamKey = try HKDF.expand(pseudoRandomKey: k, info: Array("hush-backup/1 stream key".utf8), outputByteCount: 32)
        let d = try SecretStream.Decryptor(key: streamKey, header: Array(bytes[58..<82]))
        let length = Int(bytes[82]) << 24 | Int(bytes[83]) << 16 | Int(bytes[84]) << 8 | Int(bytes[85])
        #expect(length == 65_536 + 17)  // a full first chunk
        let chunk0 = try d.pull(Array(bytes[86..<(86 + length)]), associatedData: Array(bytes[0..<82]))
        #expect(chunk0.tag == .message)
        // The first record: the profile, `01 || be32 length || lp8("alice") || be32 device 1 || …`.
        let p = chunk0.plaintext
        #expect(p[0] == 0x01)
        #expect(Int(p[1]) << 24 | Int(p[2]) << 16 | Int(p[3]) << 8 | Int(p[4]) == 1 + 5 + 4 + 4 + 33 + 32 + 32 + 32)
        #expect(Array(p[5..<15]) == [5] + Array("alice".utf8) + [0, 0, 0, 1])
        #expect(Array(p[19..<52]) == (try store.identityKeyPair().identityKey.serialized))
        // Then the application entry: `05 || be32 || be16 len || key || value`.
        let app = 5 + 143
        #expect(p[app] == 0x05)
        #expect(Array(p[(app + 5)..<(app + 7)]) == [0, 9])
        #expect(Array(p[(app + 7)..<(app + 16)]) == Array("cli.relay".utf8))
    }

    @Test func roundTripRestoresHistorySettingsAndIdentitiesNotSessions() throws {
        let store = try Self.sampleStore()
        let bytes = try Self.export(store)
        let restored = try Self.restore(bytes)
        let r = restored.store
        #expect(restored.summary.account == "alice" && restored.summary.deviceID == 1)
        #expect(restored.summary.messages == 302)
        #expect(restored.summary.resent == 1)
        #expect(restored.summary.contacts == 2)
        #expect(restored.summary.createdAt == 1_700_000_000_000)
        #expect(restored.application == ["cli.relay": Array("ws://127.0.0.1:1".utf8)])
        // Every message, same fields, same order.
        let before = try store.allMessages(after: 0, limit: 10_000), after = try r.allMessages(after: 0, limit: 10_000)
        #expect(after.count == 302)
        #expect(zip(before, after).allSatisfy { a, b in
            a.id == b.id && a.conversation == b.conversation && a.direction == b.direction && a.body == b.body
                && a.sentAt == b.sentAt && a.serverTime == b.serverTime && a.state == b.state
        })
        #expect(try r.conversations().map(\.account) == store.conversations().map(\.account))
        // Device keys and settings.
        #expect(try r.setting(SettingKey.account) == Array("alice".utf8))
        #expect(try r.setting(SettingKey.noiseKey) == store.setting(SettingKey.noiseKey))
        #expect(try r.identityKeyPair().identityKey == store.identityKeyPair().identityKey)
        #expect(try r.localRegistrationID() == store.localRegistrationID())
        #expect(try r.setting(SettingKey.presence) == Array("contacts\nbob".utf8))
        #expect(try r.flag(SettingKey.readReceipts) == false)
        let media = MessageID(account: "bob", device: 1, clientMessageID: 900)
        #expect(try r.setting(SettingKey.mediaPointer(media)) == store.setting(SettingKey.mediaPointer(media)))
        // Contacts' identities (so safety numbers stay verified), no sessions.
        #expect(try r.identity(for: ProtocolAddress(name: "carol", deviceID: 3)) == store.identity(for: ProtocolAddress(name: "carol", deviceID: 3)))
        #expect(try r.sessionDevices(for: "bob").isEmpty && r.sessionDevices(for: "carol").isEmpty)
        // The id counter jumps past anything the lost device may have used; fresh prekeys.
        #expect(try r.u64(SettingKey.nextID)! >= 500 + HushBackup.restoredIDGap)
        #expect(try r.flag(HushBackup.restoreReplacePreKeys))
        #expect(try !r.flag(SettingKey.preKeysUploaded))
        let oldSPK = try store.u64(SettingKey.signedPreKeyID)!
        #expect(try r.u64(SettingKey.signedPreKeyID) == oldSPK + 1)
        #expect(try r.preKeyIDs() == Array(6...10))
        #expect(try r.kyberPreKeys().count == 3)
        // Outbox: a session reset per contact, then the unsent message again (deferred items).
        let outbox = try r.outbox()
        #expect(outbox.map(\.account) == ["bob", "carol", "carol"])
        #expect(outbox.allSatisfy { $0.devices.isEmpty })
        #expect(try MessageContent(decoding: outbox[0].payload).kind == .sessionReset)
        #expect(try MessageContent(decoding: outbox[1].payload).kind == .sessionReset)
        #expect(try MessageContent(decoding: outbox[2].payload) == .text(id: 901, sentAt: 6_000, body: "not sent yet"))
        #expect(outbox[2].message == MessageID(account: "alice", device: 1, clientMessageID: 901))
    }

    @Test func recoveryKeyRoundTripAndKinds() throws {
        let key = try RecoveryKey.generate(using: SeededRandom(seed: 3))
        let text = key.formatted
        #expect(text.count == 64 + 15 && text.split(separator: " ").count == 16)
        #expect(text.allSatisfy { $0 == " " || $0.isNumber })
        #expect("\(key)" == "RecoveryKey(redacted)")
        let parsed = try RecoveryKey(parsing: text.replacingOccurrences(of: " ", with: "-"))
        let bytes = try Self.export(try Self.sampleStore(), .recoveryKey(key))
        #expect(bytes[9] == 2 && Array(bytes[10..<18]) == [0, 0, 0, 0, 0, 0, 0, 0])
        #expect(try Self.restore(bytes, .recoveryKey(parsed)).summary.messages == 302)
        #expect(restoreError(bytes, .recoveryKey(try RecoveryKey.generate())) == .wrongSecret)
        #expect(restoreError(bytes, Self.passphrase) == .secretKindMismatch(expected: .recoveryKey))
        for bad in ["", "123", String(repeating: "1", count: 63), String(repeating: "1", count: 65), String(repeating: "1", count: 63) + "x"] {
            #expect(throws: BackupError.invalidRecoveryKey) { try RecoveryKey(parsing: bad) }
        }
    }

    @Test func wrongPassphraseIsTypedAndLeavesNoDevice() throws {
        let bytes = try Self.export(try Self.sampleStore())
        #expect(restoreError(bytes, .passphrase("Correct horse battery staple", limits: Self.cheap)) == .wrongSecret)
        #expect(restoreError(bytes, .passphrase("", limits: Self.cheap)) == .wrongSecret)
    }

    @Test func damagedFilesAreRejectedWithTypedErrors() throws {
        let bytes = try Self.export(try Self.sampleStore())
        func with(_ i: Int, _ f: (UInt8) -> UInt8) -> [UInt8] { var b = bytes; b[i] = f(b[i]); return b }
        #expect(restoreError(with(0) { $0 ^ 1 }) == .notABackup)
        #expect(restoreError(Array("not a backup at all".utf8)) == .notABackup)
        #expect(restoreError(with(8) { _ in 2 }) == .unsupportedVersion(2))
        #expect(restoreError(with(9) { _ in 9 }) == .unsupportedKDF(9))
        // Hostile limits: refused before any work.
        #expect(restoreError(with(10) { _ in 0xFF }) == .kdfLimitsOutOfRange(operations: 0xFF00_0001, memoryKiB: 8))
        #expect(restoreError(with(14) { _ in 0x40 }) == .kdfLimitsOutOfRange(operations: 1, memoryKiB: 0x4000_0008))
        // Salt or limits changed: another key.
        #expect(restoreError(with(20) { $0 ^ 0x80 }) == .wrongSecret)
        // The creation time is authenticated with chunk 0.
        #expect(restoreError(with(40) { $0 ^ 1 }) == .damaged(chunk: 0))
        // A bit in chunk 0, in chunk 1, a chunk length.
        #expect(restoreError(with(200) { $0 ^ 1 }) == .damaged(chunk: 0))
        let chunk1 = 86 + 65_553 + 4
        #expect(restoreError(with(chunk1 + 10) { $0 ^ 1 }) == .damaged(chunk: 1))
        #expect(restoreError(with(82) { _ in 0x7F }) == .damaged(chunk: 0))
        // Reordered chunks: chunk 1 in place of chunk 0.
        var swapped = Array(bytes[0..<82])
        let c0 = Array(bytes[82..<(82 + 4 + 65_553)]), c1 = Array(bytes[(82 + 4 + 65_553)..<(82 + 2 * (4 + 65_553))])
        swapped += c1 + c0 + bytes[(82 + 2 * (4 + 65_553))...]
        #expect(restoreError(swapped) == .damaged(chunk: 0))
        // Truncated anywhere (in the header, in a length, in a chunk, before the final chunk).
        for cut in [0, 5, 81, 82, 84, 1_000, chunk1, bytes.count - 1] {
            #expect(restoreError(Array(bytes[..<cut])) == .truncated, "cut at \(cut)")
        }
        #expect(restoreError(bytes + [0]) == .trailingData)
        // A failed restore leaves no device in the store it made.
        let target = InMemoryClientStore(identity: try IdentityKeyPair.generate(), registrationID: 1)
        var config = ClientConfiguration(endpoint: RelayEndpoint(host: "127.0.0.1", port: 1), trustRoot: try Curve25519.KeyAgreement.PrivateKey().publicKey)
        config.preKeyBatch = 1
        #expect(throws: BackupError.self) {
            try HushBackup.restore(from: BackupBytesSource(Array(bytes[..<(bytes.count - 1)])), secret: Self.passphrase, configuration: config) { _ in target }
        }
        #expect(try target.setting(SettingKey.account) == nil)
        #expect(try target.allMessages(after: 0, limit: 10).isEmpty)
    }

    @Test func aStoreThatHoldsADeviceIsNotOverwritten() throws {
        let store = try Self.sampleStore()
        let bytes = try Self.export(store)
        var config = ClientConfiguration(endpoint: RelayEndpoint(host: "127.0.0.1", port: 1), trustRoot: try Curve25519.KeyAgreement.PrivateKey().publicKey)
        config.preKeyBatch = 1
        #expect(throws: BackupError.storeNotEmpty) {
            try HushBackup.restore(from: BackupBytesSource(bytes), secret: Self.passphrase, configuration: config) { _ in store }
        }
    }

    /// A profile whose next Kyber prekey id does not fit its 32 bits (an authentic but damaged
    /// file) fails the restore with a typed error, not a trap (spec backup §6 step 3).
    @Test func aKyberCounterBeyond32BitsIsATypedError() throws {
        let store = try Self.sampleStore()
        try store.setU64(SettingKey.nextKyberPreKeyID, UInt64(UInt32.max) + 1)
        #expect(restoreError(try Self.export(store)) == .invalidRecord(index: 0, problem: .malformed(type: 1)))
        try store.setU64(SettingKey.nextKyberPreKeyID, UInt64(UInt32.max))
        #expect(restoreError(try Self.export(store)) == nil)
    }

    @Test func arbitraryBytesNeverCrashTheReader() throws {
        // Recovery-key files: no Argon2id per attempt. Mutations of a valid file, and prefixes.
        let key = try RecoveryKey.generate(using: SeededRandom(seed: 11))
        let keys = try HushClient.generateIdentity()
        let small = InMemoryClientStore(identity: keys.identity, registrationID: keys.registrationID)
        var config = ClientConfiguration(endpoint: RelayEndpoint(host: "127.0.0.1", port: 1), trustRoot: try Curve25519.KeyAgreement.PrivateKey().publicKey)
        config.preKeyBatch = 1
        config.kyberPreKeyBatch = 1
        _ = try HushClient.create(account: "zed", store: small, configuration: config)
        _ = try small.insertMessage(StoredMessage(id: MessageID(account: "zed", device: 1, clientMessageID: 1), conversation: "amy",
                                                  direction: .outgoing, body: "hi", sentAt: 1, state: .sent))
        let bytes = try Self.export(small, .recoveryKey(key))
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var b = bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            if Bool.random(using: &rng) { b = Array(b[..<Int.random(in: 0...b.count, using: &rng)]) }
            _ = restoreError(b, .recoveryKey(key))  // a value or a typed error
        }
    }
}
