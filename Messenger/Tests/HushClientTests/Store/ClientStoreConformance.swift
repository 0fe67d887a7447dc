import Foundation
import Hush
import HushPQ
import Synchronization
import Testing
@testable import HushClient

/// Makes fresh stores for the conformance checks.
protocol ClientStoreFactory: Sendable {
    /// A new, empty store for the device `identity` / `registrationID`.
    func makeStore(identity: IdentityKeyPair, registrationID: UInt32) throws -> any ClientStore
}

struct InMemoryFactory: ClientStoreFactory {
    func makeStore(identity: IdentityKeyPair, registrationID: UInt32) throws -> any ClientStore {
        InMemoryClientStore(identity: identity, registrationID: registrationID)
    }
}

/// An error a check throws on purpose, to see what a failed step leaves behind.
struct Abort: Error, Equatable {}

/// The behaviour every ``ClientStore`` must show. Each check gets a fresh store from a factory;
/// `@Test(arguments: ClientStoreConformance.names)` runs them all against one implementation.
enum ClientStoreConformance {
    static var names: [String] { checks.map(\.0) }

    static func run(_ name: String, _ factory: some ClientStoreFactory) throws {
        guard let check = checks.first(where: { $0.0 == name }) else {
            Issue.record("no check \(name)")
            return
        }
        try check.1(factory)
    }

    static let checks: [(String, @Sendable (any ClientStoreFactory) throws -> Void)] = [
        ("localIdentity", localIdentity),
        ("identitiesTrustOnFirstUse", identitiesTrustOnFirstUse),
        ("preKeysRoundTrip", preKeysRoundTrip),
        ("signedPreKeysRoundTrip", signedPreKeysRoundTrip),
        ("kyberPreKeysRoundTrip", kyberPreKeysRoundTrip),
        ("pqxdhMessageConsumesOnlyOneTimeKyberPreKeys", pqxdhMessageConsumesOnlyOneTimeKyberPreKeys),
        ("sessionsRoundTripAndDecrypt", sessionsRoundTripAndDecrypt),
        ("updateSessionCommitsOnlyOnSuccess", updateSessionCommitsOnlyOnSuccess),
        ("failedPreKeyMessageKeepsPreKey", failedPreKeyMessageKeepsPreKey),
        ("senderKeysRoundTrip", senderKeysRoundTrip),
        ("settings", settings),
        ("atomicallyCommits", atomicallyCommits),
        ("atomicallyRollsBackEverything", atomicallyRollsBackEverything),
        ("nestedAtomicallyUndoesOnlyItself", nestedAtomicallyUndoesOnlyItself),
        ("duplicateMessageRejected", duplicateMessageRejected),
        ("ticksOnlyAdvance", ticksOnlyAdvance),
        ("outboxOrderAndIdempotentEnqueue", outboxOrderAndIdempotentEnqueue),
        ("outboxPayloadReplacedInPlace", outboxPayloadReplacedInPlace),
        ("processedIDsAndPruning", processedIDsAndPruning),
        ("paging", paging),
        ("allMessagesInSequenceOrder", allMessagesInSequenceOrder),
        ("unread", unread),
        ("conversationsOrdering", conversationsOrdering),
        ("concurrentInserts", concurrentInserts),
        ("concurrentEncryptsNeverShareAKey", concurrentEncryptsNeverShareAKey),
    ]

    // MARK: Fixtures

    /// A device with its own store: identity, registration id, a signed prekey and prekeys 1…3.
    struct Device {
        let address: ProtocolAddress
        let identity: IdentityKeyPair
        let registrationID: UInt32
        let store: any ClientStore
        let signedPreKey: SignedPreKeyRecord
        let preKeys: [PreKeyRecord]

        init(_ name: String, seed: UInt64, factory: some ClientStoreFactory) throws {
            let random = SeededRandom(seed: seed)
            identity = try IdentityKeyPair.generate(using: random)
            registrationID = try RegistrationID.generate(using: random)
            store = try factory.makeStore(identity: identity, registrationID: registrationID)
            signedPreKey = try SignedPreKeyRecord.generate(id: 7, timestamp: 1_000, signedBy: identity, using: random)
            preKeys = try PreKeyRecord.generate(ids: 1...3, using: random)
            try store.storeSignedPreKey(signedPreKey)
            for preKey in preKeys { try store.storePreKey(preKey) }
            address = ProtocolAddress(name: name, deviceID: 1)
        }

        func bundle(preKey: PreKeyRecord?) throws -> PreKeyBundle {
            PreKeyBundle(registrationID: registrationID, deviceID: address.deviceID, identityKey: identity.identityKey,
                         signedPreKey: signedPreKey.publicSignedPreKey, oneTimePreKey: preKey?.publicPreKey)
        }
    }

    /// Alice (in a store from `factory`) and Bob (in memory), with a session both ways:
    /// Alice wrote first and Bob answered.
    static func pair(_ factory: some ClientStoreFactory) throws -> (alice: Device, bob: Device) {
        let alice = try Device("alice", seed: 1, factory: factory)
        let bob = try Device("bob", seed: 2, factory: InMemoryFactory())
        try SessionBuilder.process(try bob.bundle(preKey: bob.preKeys[0]), for: bob.address, store: alice.store)
        let first = try SessionCipher.encrypt(Array("hello bob".utf8), for: bob.address, store: alice.store)
        _ = try SessionCipher.decrypt(first, from: alice.address, store: bob.store)
        let reply = try SessionCipher.encrypt(Array("hello alice".utf8), for: alice.address, store: bob.store)
        #expect(try SessionCipher.decrypt(reply, from: bob.address, store: alice.store) == Array("hello alice".utf8))
        return (alice, bob)
    }

    static func message(_ n: UInt64, in conversation: String = "bob", from account: String? = nil,
                        direction: MessageDirection = .incoming, state: TickState? = nil, body: String? = nil) -> StoredMessage {
        StoredMessage(id: MessageID(account: account ?? (direction == .incoming ? conversation : "me"), device: 1, clientMessageID: n),
                      conversation: conversation, direction: direction, body: body ?? "message \(n)", sentAt: 1_000 + n,
                      state: state ?? (direction == .incoming ? .delivered : .pending))
    }

    static func item(_ id: UInt64, to account: String = "bob", payload: [UInt8]? = nil) -> OutboxItem {
        OutboxItem(clientMessageID: id, account: account, devices: [1, 2], payload: payload ?? [UInt8](repeating: UInt8(id & 0xFF), count: 40),
                   message: MessageID(account: "me", device: 1, clientMessageID: id), createdAt: 5_000 + id)
    }

    /// `message` with the last byte of its ratchet message's MAC flipped: it parses, and fails
    /// only after the X3DH and ratchet steps ran on a copy.
    static func tamperMAC(_ message: CiphertextMessage) throws -> CiphertextMessage {
        var outer = message.serialized
        let inner: [UInt8]
        switch message {
        case .preKeySignal(let m): inner = m.message.serialized
        default: inner = outer
        }
        let start = try #require((0...(outer.count - inner.count)).first { Array(outer[$0..<($0 + inner.count)]) == inner })
        outer[start + inner.count - 1] ^= 0x01
        return try CiphertextMessage(kind: message.kind, serialized: outer)
    }

    static func fresh(_ factory: some ClientStoreFactory) throws -> (store: any ClientStore, identity: IdentityKeyPair) {
        let identity = try IdentityKeyPair.generate(using: SeededRandom(seed: 99))
        return (try factory.makeStore(identity: identity, registrationID: 4242), identity)
    }

    /// Everything a step could touch, to compare before and after.
    struct Contents: Equatable {
        var messages: [StoredMessage]
        var outbox: [OutboxItem]
        var processed: [Bool]
        var session: SecureBytes?
        var preKeyIDs: [UInt32]
        var signedPreKeyIDs: [UInt32]
        var identity: IdentityKey?
        var setting: [UInt8]?
        var senderKey: SecureBytes?
        var conversations: [ConversationSummary]
    }

    static let group = SenderKeyName(groupID: "g", sender: ProtocolAddress(name: "alice", deviceID: 1))

    static func contents(_ store: any ClientStore, peer: ProtocolAddress) throws -> Contents {
        Contents(
            messages: try store.messages(in: "bob", before: nil, limit: 1_000),
            outbox: try store.outbox(),
            processed: try (1...3).map { try store.isProcessed(serverID: $0) },
            session: try store.loadSession(for: peer)?.serialized(),
            preKeyIDs: try store.preKeyIDs(),
            signedPreKeyIDs: try store.signedPreKeys().map(\.id),
            identity: try store.identity(for: peer),
            setting: try store.setting("k"),
            senderKey: try store.loadSenderKey(for: group)?.serialized(),
            conversations: try store.conversations())
    }

    // MARK: Hush records

    static func localIdentity(_ factory: any ClientStoreFactory) throws {
        let (store, identity) = try fresh(factory)
        #expect(try store.identityKeyPair().identityKey == identity.identityKey)
        #expect(try store.identityKeyPair().privateKey.rawRepresentation == identity.privateKey.rawRepresentation)
        #expect(try store.localRegistrationID() == 4242)
    }

    static func identitiesTrustOnFirstUse(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        let bob = ProtocolAddress(name: "bob", deviceID: 1)
        let k1 = try IdentityKeyPair.generate(using: SeededRandom(seed: 5)).identityKey
        let k2 = try IdentityKeyPair.generate(using: SeededRandom(seed: 6)).identityKey
        #expect(try store.identity(for: bob) == nil)
        #expect(try store.isTrustedIdentity(k1, for: bob, direction: .sending))
        #expect(try store.saveIdentity(k1, for: bob) == false)
        #expect(try store.saveIdentity(k1, for: bob) == false)
        #expect(try store.identity(for: bob) == k1)
        #expect(try store.isTrustedIdentity(k1, for: bob, direction: .receiving))
        #expect(try !store.isTrustedIdentity(k2, for: bob, direction: .sending))
        #expect(try !store.isTrustedIdentity(k2, for: bob, direction: .receiving))
        #expect(try store.saveIdentity(k2, for: bob) == true)
        #expect(try store.identity(for: bob) == k2)
        #expect(try store.identity(for: ProtocolAddress(name: "bob", deviceID: 2)) == nil)
    }

    static func preKeysRoundTrip(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        let records = try PreKeyRecord.generate(ids: [5, 3, 9], using: SeededRandom(seed: 7))
        for record in records { try store.storePreKey(record) }
        #expect(try store.preKeyIDs() == [3, 5, 9])
        let loaded = try #require(try store.loadPreKey(id: 5))
        #expect(loaded.id == 5)
        #expect(loaded.keyPair.rawRepresentation == records[0].keyPair.rawRepresentation)
        #expect(loaded.keyPair.publicKey == records[0].keyPair.publicKey)
        try store.removePreKey(id: 5)
        try store.removePreKey(id: 77)
        #expect(try store.loadPreKey(id: 5) == nil)
        #expect(try store.preKeyIDs() == [3, 9])
    }

    static func signedPreKeysRoundTrip(_ factory: any ClientStoreFactory) throws {
        let (store, identity) = try fresh(factory)
        let random = SeededRandom(seed: 8)
        let a = try SignedPreKeyRecord.generate(id: 2, timestamp: 123_456, signedBy: identity, using: random)
        let b = try SignedPreKeyRecord.generate(id: 1, timestamp: 999, signedBy: identity, using: random)
        try store.storeSignedPreKey(a)
        try store.storeSignedPreKey(b)
        let loaded = try #require(try store.loadSignedPreKey(id: 2))
        #expect(loaded.timestamp == 123_456)
        #expect(loaded.signature == a.signature)
        #expect(loaded.keyPair.rawRepresentation == a.keyPair.rawRepresentation)
        #expect(try store.signedPreKeys().map(\.id) == [1, 2])
        try store.removeSignedPreKey(id: 1)
        #expect(try store.signedPreKeys().map(\.id) == [2])
        #expect(try store.loadSignedPreKey(id: 1) == nil)
    }

    /// Kyber prekeys come back whole (kind, timestamp, seed, public key, signature), list by id,
    /// `markKyberPreKeyUsed` deletes a one-time key and keeps a last-resort one, and a failed
    /// step puts everything back.
    static func kyberPreKeysRoundTrip(_ factory: any ClientStoreFactory) throws {
        let (store, identity) = try fresh(factory)
        let random = SeededRandom(seed: 9)
        let last = try KyberPreKeyRecord.generate(id: 5, kind: .lastResort, timestamp: 77_000, signedBy: identity, using: random)
        let one = try KyberPreKeyRecord.generate(id: 2, kind: .oneTime, timestamp: 78_000, signedBy: identity, using: random)
        let two = try KyberPreKeyRecord.generate(id: 3, kind: .oneTime, timestamp: 79_000, signedBy: identity, using: random)
        for k in [last, one, two] { try store.storeKyberPreKey(k) }
        for k in [last, one, two] {
            let loaded = try #require(try store.loadKyberPreKey(id: k.id))
            #expect(loaded.kind == k.kind && loaded.timestamp == k.timestamp && loaded.signature == k.signature)
            #expect(loaded.keyPair.seed == k.keyPair.seed && loaded.keyPair.publicKey == k.keyPair.publicKey)
            #expect(loaded.publicKyberPreKey.isSigned(by: identity.identityKey))
        }
        #expect(try store.loadKyberPreKey(id: 4) == nil)
        #expect(try store.kyberPreKeys().map(\.id) == [2, 3, 5])
        #expect(throws: Abort.self) {
            try store.atomically {
                try store.markKyberPreKeyUsed(id: 2)
                try store.removeKyberPreKey(id: 5)
                throw Abort()
            }
        }
        #expect(try store.kyberPreKeys().map(\.id) == [2, 3, 5])
        try store.markKyberPreKeyUsed(id: 2)
        try store.markKyberPreKeyUsed(id: 5)
        try store.markKyberPreKeyUsed(id: 6)  // unknown: nothing
        #expect(try store.kyberPreKeys().map(\.id) == [3, 5])
        try store.removeKyberPreKey(id: 5)
        #expect(try store.kyberPreKeys().map(\.id) == [3])
    }

    /// The store as Bob's Kyber prekey store in PQXDH (both suites): a message to a one-time
    /// Kyber prekey consumes it (a second session to it is `unknownPreKey(.kyber)`), one to the
    /// last-resort key keeps it.
    static func pqxdhMessageConsumesOnlyOneTimeKyberPreKeys(_ factory: any ClientStoreFactory) throws {
        for suite in [CipherSuite.signalV3, .hush1] {
            let bob = try Device("bob", seed: 2, factory: factory)
            let random = SeededRandom(seed: 3)
            let oneTime = try KyberPreKeyRecord.generate(id: 20, kind: .oneTime, signedBy: bob.identity, using: random)
            let last = try KyberPreKeyRecord.generate(id: 21, kind: .lastResort, signedBy: bob.identity, using: random)
            try bob.store.storeKyberPreKey(oneTime)
            try bob.store.storeKyberPreKey(last)
            func send(_ name: String, seed: UInt64, kyber: KyberPreKeyRecord) throws -> (ProtocolAddress, CiphertextMessage) {
                let alice = try Device(name, seed: seed, factory: InMemoryFactory())
                try PQXDH.process(PostQuantumPreKeyBundle(bundle: try bob.bundle(preKey: nil), kyberPreKey: kyber.publicKyberPreKey),
                                  for: bob.address, store: alice.store, suite: suite, policy: .requirePQXDH)
                let message = try SessionCipher.encrypt(Array("hi from \(name)".utf8), for: bob.address, store: alice.store)
                return (alice.address, try PQXDH.message(kind: message.kind, serialized: message.serialized))
            }
            let (a1, m1) = try send("alice", seed: 10, kyber: oneTime)
            #expect(try PQXDH.decrypt(m1, from: a1, store: bob.store, kyberStore: bob.store, policy: .requirePQXDH) == Array("hi from alice".utf8))
            #expect(try bob.store.loadSession(for: a1)?.establishment == .pqxdh)
            #expect(try bob.store.kyberPreKeys().map(\.id) == [21])
            let (a2, m2) = try send("carol", seed: 11, kyber: oneTime)
            #expect(throws: SignalProtocolError.unknownPreKey(.kyber(20))) {
                try PQXDH.decrypt(m2, from: a2, store: bob.store, kyberStore: bob.store, policy: .requirePQXDH)
            }
            #expect(try bob.store.loadSession(for: a2) == nil)
            let (a3, m3) = try send("dave", seed: 12, kyber: last)
            #expect(try PQXDH.decrypt(m3, from: a3, store: bob.store, kyberStore: bob.store, policy: .requirePQXDH) == Array("hi from dave".utf8))
            #expect(try bob.store.kyberPreKeys().map(\.id) == [21])
        }
    }

    static func sessionsRoundTripAndDecrypt(_ factory: any ClientStoreFactory) throws {
        let (alice, bob) = try pair(factory)
        let record = try #require(try alice.store.loadSession(for: bob.address))
        #expect(try alice.store.sessionDevices(for: "bob") == [1])
        #expect(try alice.store.sessionDevices(for: "carol") == [])
        // The identity was saved with the session, the one-time prekey of Bob's is Bob's business.
        #expect(try alice.store.identity(for: bob.address) == bob.identity.identityKey)
        // A stored copy put back under another address is the same session.
        try alice.store.storeSession(record, for: ProtocolAddress(name: "bob", deviceID: 9))
        #expect(try alice.store.sessionDevices(for: "bob") == [1, 9])
        #expect(try alice.store.loadSession(for: ProtocolAddress(name: "bob", deviceID: 9))?.serialized() == record.serialized())
        try alice.store.deleteSession(for: ProtocolAddress(name: "bob", deviceID: 9))
        #expect(try alice.store.sessionDevices(for: "bob") == [1])
        // Messages keep flowing both ways through the store.
        for i in 0..<3 {
            let out = try SessionCipher.encrypt(Array("a\(i)".utf8), for: bob.address, store: alice.store)
            #expect(try SessionCipher.decrypt(out, from: alice.address, store: bob.store) == Array("a\(i)".utf8))
            let back = try SessionCipher.encrypt(Array("b\(i)".utf8), for: alice.address, store: bob.store)
            #expect(try SessionCipher.decrypt(back, from: bob.address, store: alice.store) == Array("b\(i)".utf8))
        }
    }

    static func updateSessionCommitsOnlyOnSuccess(_ factory: any ClientStoreFactory) throws {
        let (alice, bob) = try pair(factory)
        let before = try #require(try alice.store.loadSession(for: bob.address)).serialized()
        // A body that changes the record and then throws leaves nothing behind.
        let other = try #require(try bob.store.loadSession(for: alice.address))
        #expect(throws: Abort.self) {
            try alice.store.updateSession(for: bob.address) { (record: inout SessionRecord?) throws(Abort) -> Void in
                record = other
                try? alice.store.removePreKey(id: 1)
                throw Abort()
            }
        }
        #expect(try alice.store.loadSession(for: bob.address)?.serialized() == before)
        #expect(try alice.store.preKeyIDs() == [1, 2, 3])
        // A message Bob can't decrypt (bad MAC) changes nothing either.
        let good = try SessionCipher.encrypt(Array("x".utf8), for: alice.address, store: bob.store)
        let tampered = try tamperMAC(good)
        let aliceBefore = try #require(try alice.store.loadSession(for: bob.address)).serialized()
        #expect(throws: SignalProtocolError.self) { try SessionCipher.decrypt(tampered, from: bob.address, store: alice.store) }
        #expect(try alice.store.loadSession(for: bob.address)?.serialized() == aliceBefore)
        // The untouched original still decrypts.
        #expect(try SessionCipher.decrypt(good, from: bob.address, store: alice.store) == Array("x".utf8))
        // A body that returns keeps its change; a nil record stays absent.
        let carol = ProtocolAddress(name: "carol", deviceID: 1)
        try alice.store.updateSession(for: carol) { (record: inout SessionRecord?) in #expect(record == nil) }
        #expect(try alice.store.loadSession(for: carol) == nil)
    }

    static func failedPreKeyMessageKeepsPreKey(_ factory: any ClientStoreFactory) throws {
        // Bob's store is the one under test: Alice's PreKeySignalMessage, tampered, must leave
        // his one-time prekey, identities and sessions as they were.
        let bob = try Device("bob", seed: 2, factory: factory)
        let alice = try Device("alice", seed: 1, factory: InMemoryFactory())
        try SessionBuilder.process(try bob.bundle(preKey: bob.preKeys[1]), for: bob.address, store: alice.store)
        let first = try SessionCipher.encrypt(Array("hi".utf8), for: bob.address, store: alice.store)
        let tampered = try tamperMAC(first)
        #expect(throws: SignalProtocolError.self) { try SessionCipher.decrypt(tampered, from: alice.address, store: bob.store) }
        #expect(try bob.store.preKeyIDs() == [1, 2, 3])
        #expect(try bob.store.loadSession(for: alice.address) == nil)
        #expect(try bob.store.identity(for: alice.address) == nil)
        #expect(try SessionCipher.decrypt(first, from: alice.address, store: bob.store) == Array("hi".utf8))
        #expect(try bob.store.preKeyIDs() == [1, 3])
        #expect(try bob.store.identity(for: alice.address) == alice.identity.identityKey)
    }

    static func senderKeysRoundTrip(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        let member = InMemorySignalProtocolStore(identity: try IdentityKeyPair.generate(using: SeededRandom(seed: 3)), registrationID: 1)
        let distribution = try GroupSessionBuilder.distributionMessage(for: group, store: store, random: SeededRandom(seed: 4))
        try GroupSessionBuilder.process(distribution, from: group, store: member)
        let record = try #require(try store.loadSenderKey(for: group))
        for i in 0..<3 {
            let m = try GroupCipher.encrypt(Array("g\(i)".utf8), for: group, store: store, random: SeededRandom(seed: 10 + UInt64(i)))
            #expect(try GroupCipher.decrypt(m, from: group, store: member) == Array("g\(i)".utf8))
        }
        #expect(try store.loadSenderKey(for: group)?.serialized() != record.serialized())
        // A throwing body keeps nothing.
        let before = try #require(try store.loadSenderKey(for: group)).serialized()
        #expect(throws: Abort.self) {
            try store.updateSenderKey(for: group) { (r: inout SenderKeyRecord?) throws(Abort) -> Void in
                r = nil
                throw Abort()
            }
        }
        #expect(try store.loadSenderKey(for: group)?.serialized() == before)
        try store.storeSenderKey(record, for: SenderKeyName(groupID: "h", sender: group.sender))
        #expect(try store.loadSenderKey(for: SenderKeyName(groupID: "h", sender: group.sender))?.serialized() == record.serialized())
        #expect(try store.loadSenderKey(for: SenderKeyName(groupID: "g", sender: ProtocolAddress(name: "alice", deviceID: 2))) == nil)
    }

    static func settings(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        #expect(try store.setting("k") == nil)
        try store.setSetting("k", [1, 2, 3])
        try store.setSetting("empty", [])
        #expect(try store.setting("k") == [1, 2, 3])
        #expect(try store.setting("empty") == [])
        try store.setSetting("k", [4])
        #expect(try store.setting("k") == [4])
        try store.setSetting("k", nil)
        #expect(try store.setting("k") == nil)
        try store.setSetting("missing", nil)
    }

    // MARK: Atomic steps

    static func atomicallyCommits(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        let value = try store.atomically { () throws -> Int in
            _ = try store.insertMessage(message(1))
            try store.markProcessed(serverID: 1, at: 10)
            try store.enqueue(item(1))
            return 42
        }
        #expect(value == 42)
        #expect(try store.message(message(1).id) != nil)
        #expect(try store.isProcessed(serverID: 1))
        #expect(try store.outbox().map(\.clientMessageID) == [1])
    }

    /// Every kind of state a step can change, changed inside a step that then throws.
    static func mutateEverything(_ store: any ClientStore, peer: ProtocolAddress, bob: Device?) throws {
        _ = try store.insertMessage(message(10))
        try store.advance(message(1).id, to: .read, serverTime: 77)
        try store.markProcessed(serverID: 2, at: 20)
        try store.enqueue(item(2))
        try store.removeFromOutbox(clientMessageID: 1)
        try store.removePreKey(id: 1)
        try store.removeSignedPreKey(id: 7)

        try store.setSetting("k", [9, 9])
        try store.storeSenderKey(try #require(try store.loadSenderKey(for: group)), for: SenderKeyName(groupID: "other", sender: peer))
        if let bob {
            _ = try SessionCipher.encrypt(Array("inside".utf8), for: bob.address, store: store)
        }
        try store.saveIdentity(try IdentityKeyPair.generate(using: SeededRandom(seed: 50)).identityKey, for: peer)
        try store.deleteSession(for: ProtocolAddress(name: "bob", deviceID: 3))
    }

    static func atomicallyRollsBackEverything(_ factory: any ClientStoreFactory) throws {
        let (alice, bob) = try pair(factory)
        let store = alice.store
        _ = try store.insertMessage(message(1))
        try store.markProcessed(serverID: 1, at: 10)
        try store.enqueue(item(1))
        try store.setSetting("k", [1])
        _ = try GroupSessionBuilder.distributionMessage(for: group, store: store, random: SeededRandom(seed: 4))
        try store.storeSession(try #require(try store.loadSession(for: bob.address)), for: ProtocolAddress(name: "bob", deviceID: 3))
        let before = try contents(store, peer: bob.address)
        #expect(throws: Abort.self) {
            try store.atomically { () throws -> Void in
                try mutateEverything(store, peer: bob.address, bob: bob)
                #expect(try store.message(message(10).id) != nil)  // visible inside the step
                throw Abort()
            }
        }
        #expect(try contents(store, peer: bob.address) == before)
        #expect(try store.sessionDevices(for: "bob") == [1, 3])
        #expect(try store.loadSenderKey(for: SenderKeyName(groupID: "other", sender: bob.address)) == nil)
        // The session is the one before the step: Bob still reads what Alice writes now.
        let out = try SessionCipher.encrypt(Array("after".utf8), for: bob.address, store: store)
        #expect(try SessionCipher.decrypt(out, from: alice.address, store: bob.store) == Array("after".utf8))
        // Sequences handed out inside the failed step may be reused or skipped, but order holds.
        let next = try #require(try store.insertMessage(message(11)))
        #expect(next.sequence > (before.messages.last?.sequence ?? 0))
    }

    static func nestedAtomicallyUndoesOnlyItself(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        try store.atomically {
            _ = try store.insertMessage(message(1))
            #expect(throws: Abort.self) {
                try store.atomically { () throws -> Void in
                    _ = try store.insertMessage(message(2))
                    try store.markProcessed(serverID: 2, at: 1)
                    throw Abort()
                }
            }
            try store.atomically { try store.markProcessed(serverID: 1, at: 1) }
        }
        #expect(try store.message(message(1).id) != nil)
        #expect(try store.message(message(2).id) == nil)
        #expect(try store.isProcessed(serverID: 1))
        #expect(try !store.isProcessed(serverID: 2))
        // An inner step that succeeded is undone with the outer one that throws.
        #expect(throws: Abort.self) {
            try store.atomically { () throws -> Void in
                try store.atomically { _ = try store.insertMessage(message(3)) }
                throw Abort()
            }
        }
        #expect(try store.message(message(3).id) == nil)
    }

    // MARK: Messages

    static func duplicateMessageRejected(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        let first = try #require(try store.insertMessage(message(1, body: "first")))
        #expect(first.sequence > 0)
        #expect(first.body == "first")
        #expect(try store.insertMessage(message(1, body: "second")) == nil)
        #expect(try store.message(message(1).id)?.body == "first")
        #expect(try store.messages(in: "bob", before: nil, limit: 10).count == 1)
        // Same counter from another device or account is another message.
        var other = message(1)
        other.id.device = 2
        #expect(try store.insertMessage(other) != nil)
        var outgoing = message(1, direction: .outgoing)
        outgoing.id.account = "me"
        #expect(try store.insertMessage(outgoing) != nil)
        #expect(try store.message(MessageID(account: "zed", device: 1, clientMessageID: 1)) == nil)
        let roundTrip = try #require(try store.message(first.id))
        #expect(roundTrip == first)
    }

    static func allMessagesInSequenceOrder(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        #expect(try store.allMessages(after: 0, limit: 10).isEmpty)
        for n in 1...7 { _ = try store.insertMessage(message(UInt64(n), in: ["bob", "carol", "dave"][n % 3])) }
        let all = try store.allMessages(after: 0, limit: 100)
        #expect(all.map(\.id.clientMessageID) == Array(1...7))
        #expect(all.map(\.conversation) == ["carol", "dave", "bob", "carol", "dave", "bob", "carol"])
        #expect(all.map(\.sequence) == all.map(\.sequence).sorted() && Set(all.map(\.sequence)).count == 7)
        // Paging by the last sequence seen visits each message once.
        var seen: [UInt64] = [], after: Int64 = 0
        while case let page = try store.allMessages(after: after, limit: 3), let last = page.last {
            #expect(page.count <= 3)
            seen += page.map(\.id.clientMessageID)
            after = last.sequence
        }
        #expect(seen == Array(1...7))
        #expect(try store.allMessages(after: all[5].sequence, limit: 0).isEmpty)
        #expect(try store.allMessages(after: all[5].sequence, limit: 10).map(\.id.clientMessageID) == [7])
    }

    static func ticksOnlyAdvance(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        let m = try #require(try store.insertMessage(message(1, direction: .outgoing)))
        #expect(m.state == .pending)
        #expect(m.serverTime == 0)
        #expect(try store.advance(m.id, to: .delivered, serverTime: nil))
        #expect(try store.message(m.id)?.state == .delivered)
        // The late relay ack: no state change, but its time is recorded.
        #expect(try !store.advance(m.id, to: .sent, serverTime: 5_555))
        #expect(try store.message(m.id)?.state == .delivered)
        #expect(try store.message(m.id)?.serverTime == 5_555)
        #expect(try !store.advance(m.id, to: .pending, serverTime: 6_666))
        #expect(try store.message(m.id)?.serverTime == 5_555)
        #expect(try !store.advance(m.id, to: .delivered, serverTime: nil))
        #expect(try store.advance(m.id, to: .read, serverTime: nil))
        #expect(try !store.advance(m.id, to: .read, serverTime: nil))
        #expect(try store.message(m.id)?.state == .read)
        #expect(try !store.advance(MessageID(account: "x", device: 1, clientMessageID: 1), to: .read, serverTime: nil))
        let page = try store.messages(in: "bob", before: nil, limit: 5)
        #expect(page.map(\.state) == [.read])
    }

    static func outboxPayloadReplacedInPlace(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        let inner = SessionCiphertext(contentType: .preKeyMessage, message: [0x12, 1, 2, 3], certificateExpiration: 1_000)
        var first = item(1)
        first.inner = inner
        try store.enqueue(first)
        try store.enqueue(item(2))
        #expect(try store.outbox().map(\.inner) == [inner, nil])
        var renewed = inner
        renewed.certificateExpiration = 9_000
        #expect(try store.replaceOutboxPayload(clientMessageID: 1, payload: [0xAB, 0xCD], inner: renewed))
        #expect(try !store.replaceOutboxPayload(clientMessageID: 99, payload: [0x01], inner: nil))
        let items = try store.outbox()
        #expect(items.map(\.clientMessageID) == [1, 2])  // same place in the send order
        #expect(items[0].payload == [0xAB, 0xCD])
        #expect(items[0].inner == renewed)
        #expect(items[0].sequence < items[1].sequence)
        #expect(items[0].message == first.message)
        #expect(items[1].payload == item(2).payload)
        // Rolled back with its step like everything else.
        struct Stop: Error {}
        _ = try? store.atomically { () throws -> Void in
            try store.replaceOutboxPayload(clientMessageID: 1, payload: [0x00], inner: nil)
            throw Stop()
        }
        #expect(try store.outbox()[0].payload == [0xAB, 0xCD])
        // A group item without a device: new devices, same place; the row still opens (SQLite
        // seals the payload under a key that covers the devices).
        let group = SessionCiphertext(contentType: .groupMessage, message: [7, 7], certificateExpiration: 5)
        #expect(try store.replaceOutboxPayload(clientMessageID: 2, payload: [0x01, 0x02], inner: group, devices: [4, 9]))
        let after = try store.outbox()
        #expect(after.map(\.clientMessageID) == [1, 2])
        #expect(after[1].devices == [4, 9] && after[1].payload == [0x01, 0x02] && after[1].inner == group)
        #expect(after[0].devices == first.devices)
    }

    static func outboxOrderAndIdempotentEnqueue(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        #expect(try store.outbox().isEmpty)
        #expect(try store.enqueue(item(30)))
        #expect(try store.enqueue(item(10)))
        #expect(try store.enqueue(item(20, payload: [])))
        #expect(try !store.enqueue(item(10, payload: [0xFF])))
        let items = try store.outbox()
        #expect(items.map(\.clientMessageID) == [30, 10, 20])
        #expect(items[1].payload == item(10).payload)
        #expect(items[2].payload == [])
        #expect(items[0].devices == [1, 2])
        #expect(items[0].message == MessageID(account: "me", device: 1, clientMessageID: 30))
        #expect(items[0].createdAt == 5_030)
        #expect(items.map(\.sequence) == items.map(\.sequence).sorted())
        #expect(Set(items.map(\.sequence)).count == 3)
        var receipt = item(40)
        receipt.message = nil
        try store.enqueue(receipt)
        #expect(try store.outbox().last?.message == nil)
        try store.removeFromOutbox(clientMessageID: 10)
        try store.removeFromOutbox(clientMessageID: 999)
        #expect(try store.outbox().map(\.clientMessageID) == [30, 20, 40])
    }

    static func processedIDsAndPruning(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        #expect(try !store.isProcessed(serverID: 1))
        try store.markProcessed(serverID: 1, at: 100)
        try store.markProcessed(serverID: 2, at: 200)
        try store.markProcessed(serverID: 3, at: 300)
        try store.markProcessed(serverID: UInt64.max, at: 300)
        try store.markProcessed(serverID: 1, at: 400)  // keeps its first time
        #expect(try store.isProcessed(serverID: 1))
        #expect(try store.isProcessed(serverID: UInt64.max))
        try store.pruneProcessed(before: 200)
        #expect(try !store.isProcessed(serverID: 1))
        #expect(try store.isProcessed(serverID: 2))
        #expect(try store.isProcessed(serverID: 3))
        try store.pruneProcessed(before: 301)
        #expect(try !store.isProcessed(serverID: 2))
        #expect(try !store.isProcessed(serverID: 3))
        #expect(try !store.isProcessed(serverID: UInt64.max))
    }

    static func paging(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        for n in 1...25 {
            _ = try store.insertMessage(message(UInt64(n), direction: n % 3 == 0 ? .outgoing : .incoming))
            _ = try store.insertMessage(message(UInt64(n), in: "carol"))
        }
        let last = try store.messages(in: "bob", before: nil, limit: 10)
        #expect(last.map(\.id.clientMessageID) == Array(16...25).map(UInt64.init))
        #expect(last.map(\.sequence) == last.map(\.sequence).sorted())
        let previous = try store.messages(in: "bob", before: last[0].sequence, limit: 10)
        #expect(previous.map(\.id.clientMessageID) == Array(6...15).map(UInt64.init))
        let first = try store.messages(in: "bob", before: previous[0].sequence, limit: 10)
        #expect(first.map(\.id.clientMessageID) == Array(1...5).map(UInt64.init))
        #expect(try store.messages(in: "bob", before: first[0].sequence, limit: 10).isEmpty)
        #expect(try store.messages(in: "bob", before: nil, limit: 0).isEmpty)
        #expect(try store.messages(in: "nobody", before: nil, limit: 10).isEmpty)
        #expect(try store.messages(in: "bob", before: Int64.max, limit: 1).map(\.id.clientMessageID) == [25])
        let all = try store.messages(in: "carol", before: nil, limit: 100)
        #expect(all.count == 25)
        #expect(all.allSatisfy { $0.conversation == "carol" })
        #expect(all[2] == message(3, in: "carol").with(sequence: all[2].sequence))
    }

    static func unread(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        for n in 1...6 { _ = try store.insertMessage(message(UInt64(n), direction: n % 2 == 0 ? .outgoing : .incoming)) }
        _ = try store.insertMessage(message(7, in: "carol"))
        #expect(try store.unreadIncoming(in: "bob").map(\.id.clientMessageID) == [1, 3, 5])
        try store.advance(message(3).id, to: .read, serverTime: nil)
        #expect(try store.unreadIncoming(in: "bob").map(\.id.clientMessageID) == [1, 5])
        try store.advance(message(2, direction: .outgoing).id, to: .read, serverTime: nil)
        let summaries = try store.conversations()
        #expect(summaries.first { $0.account == "bob" }?.unread == 2)
        #expect(summaries.first { $0.account == "carol" }?.unread == 1)
        try store.advance(message(1).id, to: .read, serverTime: nil)
        try store.advance(message(5).id, to: .read, serverTime: nil)
        #expect(try store.unreadIncoming(in: "bob").isEmpty)
        #expect(try store.conversations().first { $0.account == "bob" }?.unread == 0)
    }

    static func conversationsOrdering(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        #expect(try store.conversations().isEmpty)
        _ = try store.insertMessage(message(1, in: "bob"))
        _ = try store.insertMessage(message(2, in: "carol"))
        _ = try store.insertMessage(message(3, in: "dave", direction: .outgoing))
        #expect(try store.conversations().map(\.account) == ["dave", "carol", "bob"])
        _ = try store.insertMessage(message(4, in: "bob", direction: .outgoing, body: "latest"))
        let summaries = try store.conversations()
        #expect(summaries.map(\.account) == ["bob", "dave", "carol"])
        #expect(summaries[0].lastMessage?.body == "latest")
        #expect(summaries[0].lastMessage?.direction == .outgoing)
        #expect(summaries[0].unread == 1)
        #expect(summaries[1].unread == 0)
        // A tick on an old message does not reorder.
        try store.advance(message(2, in: "carol").id, to: .read, serverTime: nil)
        #expect(try store.conversations().map(\.account) == ["bob", "dave", "carol"])
        #expect(try store.conversations()[2].lastMessage?.state == .read)
    }

    static func concurrentInserts(_ factory: any ClientStoreFactory) throws {
        let (store, _) = try fresh(factory)
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for n in 0..<25 {
                let id = UInt64(worker * 100 + n)
                try? store.atomically {
                    _ = try store.insertMessage(message(id))
                    try store.markProcessed(serverID: id, at: 1)
                }
            }
        }
        let all = try store.messages(in: "bob", before: nil, limit: 1_000)
        #expect(all.count == 100)
        #expect(Set(all.map(\.sequence)).count == 100)
        #expect(try (0..<4).allSatisfy { w in try (0..<25).allSatisfy { try store.isProcessed(serverID: UInt64(w * 100 + $0)) } })
    }
}

extension ClientStoreConformance {
    /// Two threads encrypting to Bob at once, each in its own send step: every message gets
    /// its own chain index (Bob decrypts all of them, in any order, none as a duplicate).
    static func concurrentEncryptsNeverShareAKey(_ factory: any ClientStoreFactory) throws {
        let (alice, bob) = try pair(factory)
        let store = alice.store
        let results = Mutex<[(UInt64, CiphertextMessage)]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            for n in 0..<15 {
                let id = UInt64(worker * 100 + n)
                let sent = try? store.atomically { () throws -> CiphertextMessage in
                    let m = try SessionCipher.encrypt(Array("m\(id)".utf8), for: bob.address, store: store)
                    try store.enqueue(item(id, payload: m.serialized))
                    return m
                }
                if let sent { results.withLock { $0.append((id, sent)) } }
            }
        }
        let all = results.withLock { $0 }
        #expect(all.count == 30)
        #expect(try store.outbox().count == 30)
        for (id, message) in all.shuffled() {
            #expect(try SessionCipher.decrypt(message, from: alice.address, store: bob.store) == Array("m\(id)".utf8))
        }
    }
}

extension StoredMessage {
    func with(sequence: Int64) -> StoredMessage {
        var copy = self
        copy.sequence = sequence
        return copy
    }
}

@Suite struct InMemoryClientStoreConformanceTests {
    @Test(arguments: ClientStoreConformance.names)
    func conformance(check: String) throws {
        try ClientStoreConformance.run(check, InMemoryFactory())
    }
}
