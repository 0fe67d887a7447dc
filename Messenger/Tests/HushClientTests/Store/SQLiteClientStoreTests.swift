import Foundation
import GRDB
import Hush
import Testing
@testable import HushClient

/// The cheapest Argon2id limits libsodium accepts: tests exercise the code path, not the cost.
let testLimits = Argon2id.Limits(operations: 1, memoryBytes: 8192)

/// A temporary directory removed when the value goes away.
final class TemporaryDirectory: @unchecked Sendable {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("hush-client-store-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// A fresh SQLite file per store, unlocked by a key file.
final class SQLiteFactory: ClientStoreFactory, @unchecked Sendable {
    let directory = TemporaryDirectory()
    static let keyFile = SecureBytes(copying: [UInt8](repeating: 0x4B, count: 32))

    func makeStore(identity: IdentityKeyPair, registrationID: UInt32) throws -> any ClientStore {
        try SQLiteClientStore.create(path: directory.path("\(UUID().uuidString).sqlite"), secret: .keyFile(Self.keyFile),
                                     identity: identity, registrationID: registrationID)
    }
}

@Suite struct SQLiteClientStoreConformanceTests {
    @Test(arguments: ClientStoreConformance.names)
    func conformance(check: String) throws {
        try ClientStoreConformance.run(check, SQLiteFactory())
    }
}

@Suite struct SQLiteClientStoreTests {
    let directory = TemporaryDirectory()
    var path: String { directory.path("store.sqlite") }
    static let identity = try! IdentityKeyPair.generate(using: SeededRandom(seed: 11))
    static let passphrase = "correct horse battery staple 93b1"

    func create(_ secret: ClientStoreSecret = .passphrase(passphrase, limits: testLimits), at path: String? = nil) throws -> SQLiteClientStore {
        try SQLiteClientStore.create(path: path ?? self.path, secret: secret, identity: Self.identity, registrationID: 1234)
    }

    func open(_ secret: ClientStoreSecret = .passphrase(passphrase, limits: testLimits), at path: String? = nil) throws -> SQLiteClientStore {
        try SQLiteClientStore.open(path: path ?? self.path, secret: secret)
    }

    func expectError<T>(_ expected: ClientStoreError, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T) {
        do {
            _ = try body()
            Issue.record("expected \(expected), got success", sourceLocation: sourceLocation)
        } catch let error as ClientStoreError {
            #expect(error == expected, sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected \(expected), got \(error)", sourceLocation: sourceLocation)
        }
    }

    /// A plain GRDB connection to the file, for changing it behind the store's back.
    func raw(_ path: String? = nil) throws -> DatabaseQueue { try DatabaseQueue(path: path ?? self.path) }

    // MARK: Keys

    @Test func reopensWithThePassphraseAndRejectsAWrongOne() throws {
        let store = try create()
        try store.setSetting("profile", Array("alice".utf8))
        try store.close()
        expectError(.wrongPassphrase) { try open(.passphrase("correct horse battery staple 93b2", limits: testLimits)) }
        expectError(.wrongPassphrase) { try open(.passphrase("", limits: testLimits)) }
        expectError(.wrongPassphrase) { try open(.keyFile(SQLiteFactory.keyFile)) }
        let reopened = try open()
        #expect(try reopened.setting("profile") == Array("alice".utf8))
        #expect(try reopened.identityKeyPair().identityKey == Self.identity.identityKey)
        #expect(try reopened.identityKeyPair().privateKey.rawRepresentation == Self.identity.privateKey.rawRepresentation)
        #expect(try reopened.localRegistrationID() == 1234)
        // The stored limits are used, not the ones passed in.
        _ = try open(.passphrase(Self.passphrase, limits: .interactive))
    }

    @Test func argon2idLimitsAreBounded() throws {
        expectError(.keyDerivationFailed) { try create(.passphrase(Self.passphrase, limits: .init(operations: 17, memoryBytes: 8192))) }
        expectError(.keyDerivationFailed) { try create(.passphrase(Self.passphrase, limits: .init(operations: 1, memoryBytes: 100))) }
        try create().close()
        // Limits raised in the file (and its digest recomputed, as anyone can) are refused, not run.
        let db = try raw()
        try db.write { db in
            let row = try #require(try Row.fetchOne(db, sql: "SELECT method, salt, operations, wrapped_key FROM store_keys"))
            var wrap = KeyWrap(method: row[0], salt: [UInt8](row[1] as Data), operations: row[2], memoryBytes: 1 << 34,
                               wrappedKey: [UInt8](row[3] as Data), digest: [])
            wrap.digest = SHA256.hash(wrap.associatedData + wrap.wrappedKey)
            try db.execute(sql: "UPDATE store_keys SET memory_bytes = ?, digest = ?", arguments: [wrap.memoryBytes, Data(wrap.digest)])
        }
        try db.close()
        expectError(.corrupted(table: "store_keys")) { try open() }
    }

    @Test func keyFileMustMatchAndBe32Bytes() throws {
        _ = try create(.keyFile(SQLiteFactory.keyFile))
        expectError(.wrongPassphrase) { try open(.keyFile(SecureBytes(copying: [UInt8](repeating: 0x4C, count: 32)))) }
        expectError(.invalidKeyFile(byteCount: 31)) { try open(.keyFile(SecureBytes(copying: [UInt8](repeating: 0x4B, count: 31)))) }
        expectError(.wrongPassphrase) { try open(.passphrase(Self.passphrase, limits: testLimits)) }
        #expect(try open(.keyFile(SQLiteFactory.keyFile)).localRegistrationID() == 1234)
    }

    @Test func rekeyChangesOnlyTheWrapping() throws {
        let store = try create()
        _ = try store.insertMessage(ClientStoreConformance.message(1, body: "kept across rekey"))
        try store.rekey(to: .passphrase("new passphrase", limits: testLimits))
        try store.close()
        expectError(.wrongPassphrase) { try open() }
        let reopened = try open(.passphrase("new passphrase", limits: testLimits))
        #expect(try reopened.message(ClientStoreConformance.message(1).id)?.body == "kept across rekey")
    }

    @Test func secretsHaveNoDescription() {
        #expect(ClientStoreSecret.passphrase(Self.passphrase).description == "ClientStoreSecret(passphrase, redacted)")
        #expect(!String(describing: ClientStoreSecret.passphrase(Self.passphrase)).contains("horse"))
        #expect(ClientStoreSecret.keyFile(SQLiteFactory.keyFile).description == "ClientStoreSecret(key file, redacted)")
    }

    // MARK: Files that are not (or no longer) this store

    @Test func openingAndCreatingTellStoresApart() throws {
        expectError(.notFound) { try open() }
        _ = try create()
        expectError(.alreadyExists) { try create() }
        // Random bytes.
        let junk = directory.path("junk")
        FileManager.default.createFile(atPath: junk, contents: Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7919) }))
        expectError(.notAHushStore) { try open(at: junk) }
        expectError(.notAHushStore) { try create(at: junk) }
        // Another application's SQLite database.
        let other = directory.path("other.sqlite")
        try raw(other).write { db in try db.execute(sql: "CREATE TABLE notes (text TEXT)") }
        expectError(.notAHushStore) { try open(at: other) }
        expectError(.notAHushStore) { try create(at: other) }
    }

    @Test func migratesAnEmptyFileAndReopensIdempotently() throws {
        FileManager.default.createFile(atPath: path, contents: Data())
        let store = try create()
        _ = try store.insertMessage(ClientStoreConformance.message(1))
        try store.close()
        for _ in 0..<3 { try open().close() }
        let reopened = try open()
        #expect(try reopened.messages(in: "bob", before: nil, limit: 10).count == 1)
        try reopened.close()
        let applied = try raw().read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
        #expect(applied == ["v1", "v2", "v3"])
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }

    @Test func aVersion1StoreIsMigratedAndItsOutboxKept() throws {
        let store = try create()
        try store.enqueue(ClientStoreConformance.item(7, payload: Array("sealed-envelope-v1".utf8)))
        try store.close()
        // Back to schema v2: no inner column, v3 not recorded.
        try raw().write { db in
            try db.execute(sql: "ALTER TABLE outbox DROP COLUMN inner")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v3'")
        }
        let reopened = try open()
        let items = try reopened.outbox()
        #expect(items.map(\.clientMessageID) == [7])
        #expect(items[0].payload == Array("sealed-envelope-v1".utf8))
        #expect(items[0].inner == nil)
        let inner = SessionCiphertext(contentType: .message, message: [0x11, 9], certificateExpiration: 77)
        #expect(try reopened.replaceOutboxPayload(clientMessageID: 7, payload: [1], inner: inner))
        #expect(try reopened.outbox()[0].inner == inner)
        try reopened.close()
        let applied = try raw().read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
        #expect(applied == ["v1", "v2", "v3"])
    }

    @Test func aNewerSchemaIsRefused() throws {
        try create().close()
        try raw().write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99')") }
        expectError(.unsupportedSchema) { try open() }
    }

    @Test(arguments: [
        ("messages", "body"), ("sessions", "record"), ("prekeys", "record"), ("signed_prekeys", "record"),
        ("identities", "identity_key"), ("settings", "value"), ("outbox", "payload"), ("outbox", "inner"), ("sender_keys", "record"),
        ("device", "identity_key_pair"), ("device", "registration_id"), ("store_keys", "wrapped_key"), ("store_keys", "salt"),
    ])
    func aFlippedByteInASealedValueIsCorruption(table: String, column: String) throws {
        try populate(try create()).close()
        for position in [0, 12, 30, -1] {  // nonce, ciphertext, tag
            // Flip one byte of the value in every row (a byte that exists in each).
            let db = try raw()
            // Sealed values are unique (random nonces): each one names its row.
            let backup = try db.read { db in try Data.fetchAll(db, sql: "SELECT \(column) FROM \(table)") }
            #expect(!backup.isEmpty)
            var damaged: [Data] = []
            try db.write { db in
                for value in backup {
                    var bytes = [UInt8](value)
                    let i = position < 0 ? bytes.count - 1 : min(position, bytes.count - 1)
                    bytes[i] ^= 0x20
                    damaged.append(Data(bytes))
                    try db.execute(sql: "UPDATE \(table) SET \(column) = ? WHERE \(column) = ?", arguments: [Data(bytes), value])
                }
            }
            try db.close()
            try expectCorruption(table == "store_keys" ? "store_keys" : table)
            // Restore for the next position.
            let fix = try raw()
            try fix.write { db in
                for (value, bad) in zip(backup, damaged) {
                    try db.execute(sql: "UPDATE \(table) SET \(column) = ? WHERE \(column) = ?", arguments: [value, bad])
                }
            }
            try fix.close()
            try readEverything(try open())
        }
    }

    @Test func aSealedValueMovedToAnotherRowIsCorruption() throws {
        let store = try create()
        _ = try store.insertMessage(ClientStoreConformance.message(1, body: "one"))
        _ = try store.insertMessage(ClientStoreConformance.message(2, body: "two"))
        try store.setSetting("a", [1])
        try store.setSetting("b", [2])
        try store.close()
        try raw().write { db in
            try db.execute(sql: "UPDATE messages SET body = (SELECT body FROM messages WHERE client_message_id = 2) WHERE client_message_id = 1")
            try db.execute(sql: "UPDATE settings SET value = (SELECT value FROM settings WHERE key = 'b') WHERE key = 'a'")
            // Same row, another conversation: the body is bound to it too.
            try db.execute(sql: "UPDATE messages SET conversation = 'mallory' WHERE client_message_id = 2")
        }
        let reopened = try open()
        expectError(.corrupted(table: "messages")) { try reopened.message(ClientStoreConformance.message(1).id) }
        expectError(.corrupted(table: "messages")) { try reopened.message(ClientStoreConformance.message(2).id) }
        expectError(.corrupted(table: "settings")) { try reopened.setting("a") }
        #expect(try reopened.setting("b") == [2])
    }

    @Test(arguments: [
        "UPDATE messages SET sender_device = 'x'", "UPDATE messages SET body = 'text, not a blob'",
        "UPDATE messages SET state = 9", "UPDATE messages SET direction = 'in'", "UPDATE messages SET conversation = x'00ff'",
        "UPDATE outbox SET devices = 42", "UPDATE outbox SET message_device = 'two'", "UPDATE sessions SET record = 7",
        "UPDATE signed_prekeys SET record = x''", "UPDATE settings SET value = NULL", "UPDATE conversations SET unread = 'many'",
        "UPDATE device SET registration_id = 3", "UPDATE store_keys SET operations = 'lots'",
    ])
    func aValueOfTheWrongTypeIsATypedErrorNotATrap(sql: String) throws {
        try populate(try create(.keyFile(SQLiteFactory.keyFile))).close()
        let db = try raw()
        // `settings.value` is NOT NULL: that edit fails in SQLite itself; the others land.
        try? db.write { db in try db.execute(sql: sql) }
        try db.close()
        do {
            try readEverything(try open(.keyFile(SQLiteFactory.keyFile)))
        } catch let error as ClientStoreError {
            guard case .corrupted = error else {
                Issue.record("expected corrupted, got \(error)")
                return
            }
        }
    }

    @Test func aFlippedByteAnywhereInTheFileGivesAValueOrATypedError() throws {
        try populate(try create(.keyFile(SQLiteFactory.keyFile))).close()
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        var outcomes: [String: Int] = [:]
        let random = SeededRandom(seed: 77)
        // HUSH_STORE_FLIPS=n runs more (a longer hunt for traps); 60 by default.
        let flips = ProcessInfo.processInfo.environment["HUSH_STORE_FLIPS"].flatMap(Int.init) ?? 60
        for _ in 0..<flips {
            var offsetBytes = [UInt8](repeating: 0, count: 4)
            offsetBytes.withUnsafeMutableBytes { random.fill($0) }
            let offset = Int(offsetBytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) } % UInt32(original.count))
            var damaged = original
            damaged[offset] ^= 0x5A
            try damaged.write(to: URL(fileURLWithPath: path))
            try? FileManager.default.removeItem(atPath: path + "-wal")
            try? FileManager.default.removeItem(atPath: path + "-shm")
            do {
                try readEverything(try open(.keyFile(SQLiteFactory.keyFile)))
                outcomes["ok", default: 0] += 1
            } catch let error as ClientStoreError {
                outcomes["\(error)", default: 0] += 1
            }
        }
        #expect(outcomes.values.reduce(0, +) == flips)
        if flips > 60 { print("byte flips:", outcomes.sorted { $0.key < $1.key }) }
        try original.write(to: URL(fileURLWithPath: path))
        try readEverything(try open(.keyFile(SQLiteFactory.keyFile)))
    }

    // MARK: Durability

    @Test(arguments: CipherSuite.allCases)
    func sessionsSurviveReopenBothWays(suite: CipherSuite) throws {
        let alicePath = directory.path("alice.sqlite"), bobPath = directory.path("bob.sqlite")
        let secret = ClientStoreSecret.keyFile(SQLiteFactory.keyFile)
        let aliceIdentity = try IdentityKeyPair.generate(using: SeededRandom(seed: 1))
        let bobIdentity = try IdentityKeyPair.generate(using: SeededRandom(seed: 2))
        let aliceAddress = ProtocolAddress(name: "alice", deviceID: 1), bobAddress = ProtocolAddress(name: "bob", deviceID: 1)
        var alice = try SQLiteClientStore.create(path: alicePath, secret: secret, identity: aliceIdentity, registrationID: 11)
        var bob = try SQLiteClientStore.create(path: bobPath, secret: secret, identity: bobIdentity, registrationID: 22)
        let random = SeededRandom(seed: 3)
        let signed = try SignedPreKeyRecord.generate(id: 1, timestamp: 5, signedBy: bobIdentity, using: random)
        let preKeys = try PreKeyRecord.generate(ids: 1...2, using: random)
        try bob.storeSignedPreKey(signed)
        for p in preKeys { try bob.storePreKey(p) }
        let bundle = PreKeyBundle(registrationID: 22, deviceID: 1, identityKey: bobIdentity.identityKey,
                                  signedPreKey: signed.publicSignedPreKey, oneTimePreKey: preKeys[0].publicPreKey)
        try SessionBuilder.process(bundle, for: bobAddress, store: alice, suite: suite)
        let first = try SessionCipher.encrypt(Array("before restart".utf8), for: bobAddress, store: alice)
        try alice.close()
        alice = try SQLiteClientStore.open(path: alicePath, secret: secret)
        #expect(try SessionCipher.decrypt(first, from: aliceAddress, store: bob) == Array("before restart".utf8))
        try bob.close()
        bob = try SQLiteClientStore.open(path: bobPath, secret: secret)
        #expect(try bob.preKeyIDs() == [2])
        #expect(try bob.identity(for: aliceAddress) == aliceIdentity.identityKey)
        // A replay of the first message after the restart is a duplicate, not a second delivery.
        #expect(throws: SignalProtocolError.self) { try SessionCipher.decrypt(first, from: aliceAddress, store: bob) }
        for round in 0..<3 {
            let reply = try SessionCipher.encrypt(Array("reply \(round)".utf8), for: aliceAddress, store: bob)
            try bob.close()
            bob = try SQLiteClientStore.open(path: bobPath, secret: secret)
            #expect(try SessionCipher.decrypt(reply, from: bobAddress, store: alice) == Array("reply \(round)".utf8))
            try alice.close()
            alice = try SQLiteClientStore.open(path: alicePath, secret: secret)
            let next = try SessionCipher.encrypt(Array("next \(round)".utf8), for: bobAddress, store: alice)
            #expect(try SessionCipher.decrypt(next, from: aliceAddress, store: bob) == Array("next \(round)".utf8))
        }
    }

    @Test func aReceiveStepCommitsOrLeavesNothingAcrossReopen() throws {
        let store = try create(.keyFile(SQLiteFactory.keyFile))
        // The step returned: durable without close (a second connection sees it at once).
        try store.atomically {
            _ = try store.insertMessage(ClientStoreConformance.message(1))
            try store.markProcessed(serverID: 1, at: 1)
        }
        #expect(throws: Abort.self) {
            try store.atomically {
                _ = try store.insertMessage(ClientStoreConformance.message(2))
                try store.markProcessed(serverID: 2, at: 1)
                throw Abort()
            }
        }
        let second = try open(.keyFile(SQLiteFactory.keyFile))
        #expect(try second.isProcessed(serverID: 1))
        #expect(try second.message(ClientStoreConformance.message(1).id) != nil)
        #expect(try !second.isProcessed(serverID: 2))
        #expect(try second.message(ClientStoreConformance.message(2).id) == nil)
    }

    // MARK: Nothing in the clear

    @Test func noSecretIsWrittenInTheClear() throws {
        let body = "meet me at the old lighthouse 4e1c"
        let store = try create()
        try populate(store, body: body)
        let prekey = try #require(try store.loadPreKey(id: 1))
        let session = try #require(try store.loadSession(for: ProtocolAddress(name: "bob", deviceID: 1))).serialized()
        var secrets: [(String, [UInt8])] = [
            ("body", Array(body.utf8)),
            ("passphrase", Array(Self.passphrase.utf8)),
            ("identity private key", Self.identity.privateKey.rawRepresentation.bytes),
            ("prekey private key", prekey.keyPair.rawRepresentation.bytes),
            ("database key", store.seal.key.secret.bytes),
            ("setting", Array("contact-secret-value".utf8)),
            ("outbox payload", Array("sealed-envelope-bytes-9d2f".utf8)),
        ]
        // Any 32-byte window of the session record (its keys) must not appear either.
        secrets.append(("session record", Array(session.bytes[4..<36])))
        func check(_ when: String) throws {
            for suffix in ["", "-wal", "-shm"] {
                guard let data = FileManager.default.contents(atPath: path + suffix) else { continue }
                for (name, secret) in secrets {
                    #expect(data.range(of: Data(secret)) == nil, "\(name) in clear in \(suffix.isEmpty ? "db" : suffix) \(when)")
                }
            }
        }
        try check("while open")
        try store.close()
        try check("after close")
        #expect(FileManager.default.contents(atPath: path)?.range(of: Data("bob".utf8)) != nil, "the check reads the file")
    }

    // MARK: Helpers

    /// One row in every table, Bob's session included.
    @discardableResult
    func populate(_ store: SQLiteClientStore, body: String = "hello") throws -> SQLiteClientStore {
        let random = SeededRandom(seed: 21)
        let bobIdentity = try IdentityKeyPair.generate(using: random)
        let signed = try SignedPreKeyRecord.generate(id: 1, timestamp: 5, signedBy: bobIdentity, using: random)
        let bob = InMemorySignalProtocolStore(identity: bobIdentity, registrationID: 5)
        let preKey = try PreKeyRecord.generate(id: 1, using: random)
        bob.storeSignedPreKey(signed)
        bob.storePreKey(preKey)
        try SessionBuilder.process(PreKeyBundle(registrationID: 5, deviceID: 1, identityKey: bobIdentity.identityKey,
                                                signedPreKey: signed.publicSignedPreKey, oneTimePreKey: preKey.publicPreKey),
                                   for: ProtocolAddress(name: "bob", deviceID: 1), store: store)
        try store.storePreKey(try PreKeyRecord.generate(id: 1, using: random))
        try store.storeSignedPreKey(try SignedPreKeyRecord.generate(id: 3, timestamp: 9, signedBy: Self.identity, using: random))
        _ = try GroupSessionBuilder.distributionMessage(for: ClientStoreConformance.group, store: store, random: random)
        try store.setSetting("contact.bob", Array("contact-secret-value".utf8))
        _ = try store.insertMessage(ClientStoreConformance.message(1, body: body))
        var item = ClientStoreConformance.item(1, payload: Array("sealed-envelope-bytes-9d2f".utf8))
        item.inner = SessionCiphertext(contentType: .message, message: Array("session-message-4e1a".utf8), certificateExpiration: 5)
        try store.enqueue(item)
        try store.markProcessed(serverID: 1, at: 1)
        return store
    }

    /// Reads every row through the store.
    func readEverything(_ store: SQLiteClientStore) throws {
        let bob = ProtocolAddress(name: "bob", deviceID: 1)
        _ = try store.identity(for: bob)
        _ = try store.loadSession(for: bob)
        _ = try store.loadPreKey(id: 1)
        _ = try store.signedPreKeys()
        _ = try store.loadSenderKey(for: ClientStoreConformance.group)
        _ = try store.setting("contact.bob")
        _ = try store.messages(in: "bob", before: nil, limit: 10)
        _ = try store.conversations()
        _ = try store.unreadIncoming(in: "bob")
        _ = try store.outbox()
        _ = try store.isProcessed(serverID: 1)
        try store.close()
    }

    /// Opening or reading must fail with `.corrupted(table:)` naming `table`.
    func expectCorruption(_ table: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        do {
            try readEverything(try open())
            Issue.record("expected corruption of \(table), read everything", sourceLocation: sourceLocation)
        } catch let error as ClientStoreError {
            #expect(error == .corrupted(table: table), sourceLocation: sourceLocation)
        }
    }
}
