import Foundation
import HushRelay

/// Creates fresh stores for the conformance checks and reopens them (same durable storage,
/// new instance) to check durability.
public protocol RelayStoreFactory: Sendable {
    /// A new, empty store.
    func makeStore() async throws -> any RelayStore
    /// A new instance over the storage of the store made last (as after a restart).
    func reopen() async throws -> any RelayStore
}

/// A failed conformance expectation.
public struct ConformanceFailure: Error, CustomStringConvertible, Equatable {
    /// What was expected.
    public let description: String
    /// Where.
    public let line: UInt
}

/// The behaviour every ``RelayStore`` must show (`Docs/spec/relay.md` §7). Run each check with
/// a fresh store: `try await RelayStoreConformance.run("dedupe", factory)`.
public enum RelayStoreConformance {
    /// The checks by name.
    public static let names: [String] = checks.map(\.0)

    /// Runs the check called `name` against a new store from `factory`.
    public static func run(_ name: String, _ factory: some RelayStoreFactory) async throws {
        guard let check = checks.first(where: { $0.0 == name }) else { throw ConformanceFailure(description: "no check \(name)", line: #line) }
        try await check.1(factory)
    }

    static func expect(_ condition: Bool, _ what: @autoclosure () -> String, line: UInt = #line) throws {
        if !condition { throw ConformanceFailure(description: what(), line: line) }
    }

    static func expectError<T>(_ expected: RelayStoreError, line: UInt = #line, _ body: () async throws -> T) async throws {
        do {
            _ = try await body()
            throw ConformanceFailure(description: "expected \(expected), got success", line: line)
        } catch let error as RelayStoreError {
            try expect(error == expected, "expected \(expected), got \(error)", line: line)
        }
    }

    static func key(_ byte: UInt8) -> Data { Data(repeating: byte, count: 32) }
    /// A Kyber prekey record of the wire sizes (the store does not check keys or signatures).
    static func kyber(_ id: UInt32, _ byte: UInt8) -> KyberPrekeyRecord {
        KyberPrekeyRecord(id: id, publicKey: Data(repeating: byte, count: 1_568), signature: Data(repeating: byte ^ 0xFF, count: 64))
    }
    static let day: UInt64 = 86_400_000
    static let ttl: UInt64 = 30 * day

    static func request(_ id: UInt64, from sender: String = "alice", _ senderDevice: UInt32 = 1, to recipient: String = "bob",
                        devices: [UInt32] = [1], payload: String = "m", now: UInt64 = 1_000, cap: Int = 100) -> EnqueueRequest {
        EnqueueRequest(senderAccount: sender, senderDevice: senderDevice, clientMessageID: id, recipient: recipient, devices: devices,
                       payload: Data(payload.utf8), now: now, ttlMilliseconds: ttl, queueCap: cap)
    }

    /// alice (device 1), bob (devices 1 and 2).
    static func populated(_ factory: some RelayStoreFactory) async throws -> any RelayStore {
        let store = try await factory.makeStore()
        _ = try await store.register(account: "alice", identityKey: key(0xA0), deviceID: 1, staticKey: key(0xA1), maxDevices: 16)
        _ = try await store.register(account: "bob", identityKey: key(0xB0), deviceID: 1, staticKey: key(0xB1), maxDevices: 16)
        _ = try await link(store, account: "bob", identityKey: key(0xB0), deviceID: 2, staticKey: key(0xB2))
        return store
    }

    /// Registers a further device of an account that has devices, as a linked device does
    /// (`Docs/spec/relay.md` §22.4): issues a link token, which must reserve `deviceID` (the
    /// lowest free id ≥ 2), and registers with it. The token's "hash" is `staticKey` (the store
    /// hashes nothing; any 32 bytes do).
    public static func link(_ s: any RelayStore, account: String, identityKey: Data, deviceID: UInt32, staticKey: Data,
                            now: UInt64 = 1_000, line: UInt = #line) async throws -> RegisterOutcome {
        let issued = try await s.issueLinkToken(LinkTokenIssue(account: account, tokenHash: staticKey, now: now, expiresAt: now + 600_000,
                                                               maxDevices: 16, maxOpenTokens: 4))
        try expect(issued == deviceID, "link token for \(deviceID), got \(issued)", line: line)
        return try await s.register(account: account, identityKey: identityKey, deviceID: deviceID, staticKey: staticKey, maxDevices: 16,
                                    linkToken: LinkTokenProof(tokenHash: staticKey, now: now))
    }

    static func issue(_ s: any RelayStore, _ account: String, _ hash: UInt8, now: UInt64 = 1_000, maxDevices: Int = 16) async throws -> UInt32 {
        try await s.issueLinkToken(LinkTokenIssue(account: account, tokenHash: key(hash), now: now, expiresAt: now + 600_000,
                                                  maxDevices: maxDevices, maxOpenTokens: 4))
    }

    static func proof(_ hash: UInt8, now: UInt64 = 2_000) -> LinkTokenProof { LinkTokenProof(tokenHash: key(hash), now: now) }

    static let noop: @Sendable ([QueuedMessage]) -> Void = { _ in }

    nonisolated(unsafe) static let checks: [(String, (any RelayStoreFactory) async throws -> Void)] = [
        ("registration", { factory in
            let s = try await factory.makeStore()
            try expect(try await s.register(account: "alice", identityKey: key(1), deviceID: 1, staticKey: key(2), maxDevices: 2) == .createdAccount, "create")
            try expect(try await s.register(account: "alice", identityKey: key(1), deviceID: 1, staticKey: key(2), maxDevices: 2) == .alreadyRegistered, "idempotent")
            try await expectError(.accountTaken) { try await s.register(account: "alice", identityKey: key(9), deviceID: 2, staticKey: key(3), maxDevices: 2) }
            try await expectError(.deviceTaken(1)) { try await s.register(account: "alice", identityKey: key(1), deviceID: 1, staticKey: key(4), maxDevices: 2) }
            try await expectError(.deviceTaken(5)) { try await s.register(account: "alice", identityKey: key(1), deviceID: 5, staticKey: key(2), maxDevices: 2) }
            try await expectError(.invalidLinkToken) { try await s.register(account: "alice", identityKey: key(1), deviceID: 2, staticKey: key(3), maxDevices: 2) }
            try expect(try await issue(s, "alice", 0x70, maxDevices: 2) == 2, "token for 2")
            try expect(try await s.register(account: "alice", identityKey: key(1), deviceID: 2, staticKey: key(3), maxDevices: 2,
                                            linkToken: proof(0x70)) == .addedDevice, "add")
            try await expectError(.tooManyDevices(limit: 2)) { try await issue(s, "alice", 0x71, maxDevices: 2) }
            try await expectError(.invalidLinkToken) { try await s.register(account: "alice", identityKey: key(1), deviceID: 3, staticKey: key(5), maxDevices: 2) }
            try expect(try await s.account(named: "alice") == AccountRecord(name: "alice", identityKey: key(1)), "account")
            try expect(try await s.account(named: "nobody") == nil, "no account")
            try expect(try await s.device(account: "alice", deviceID: 2) == DeviceRecord(account: "alice", deviceID: 2, staticKey: key(3)), "device")
            try expect(try await s.devices(account: "alice").map(\.deviceID) == [1, 2], "devices")
            // A failed registration left nothing behind.
            try expect(try await s.account(named: "alice")?.identityKey == key(1), "unchanged")
        }),
        ("loginRecord", { factory in
            let s = try await populated(factory)
            try await expectError(.unknownAccount) { try await s.loginRecord(account: "nobody", deviceID: 1) }
            try expect(try await s.loginRecord(account: "bob", deviceID: 3) == nil, "no such device")
            try expect(try await s.loginRecord(account: "bob", deviceID: 2) == LoginRecord(identityKey: key(0xB0), staticKey: key(0xB2), prekeyCount: 0),
                       "bob.2 before an upload")
            _ = try await s.storePrekeys(account: "bob", deviceID: 2, registrationID: 7, signed: nil,
                                         oneTime: (1...3).map { OneTimePrekeyRecord(id: $0, publicKey: key(UInt8($0))) }, maxStored: 1_000)
            try expect(try await s.loginRecord(account: "bob", deviceID: 2)?.prekeyCount == 3, "prekey count after an upload")
            _ = try await s.claimBundles(account: "bob", devices: [2])
            try expect(try await s.loginRecord(account: "bob", deviceID: 2)?.prekeyCount == 2, "prekey count after a claim")
            let again = try await factory.reopen()
            try expect(try await again.loginRecord(account: "bob", deviceID: 2) == LoginRecord(identityKey: key(0xB0), staticKey: key(0xB2), prekeyCount: 2),
                       "after a reopen")
        }),
        ("enqueueAndDrainInOrder", { factory in
            let s = try await populated(factory)
            var ids: [UInt64] = []
            for i in 1...5 {
                guard case .stored(let t, let m) = try await s.enqueue(request(UInt64(i), payload: "m\(i)", now: UInt64(1_000 + i)), committed: noop) else {
                    throw ConformanceFailure(description: "not stored", line: #line)
                }
                try expect(t == UInt64(1_000 + i) && m.count == 1 && m[0].deviceID == 1, "stored \(i)")
                ids.append(m[0].serverID)
            }
            try expect(ids == ids.sorted() && Set(ids).count == 5, "ids increase")
            let all = try await s.pending(account: "bob", deviceID: 1, after: 0, limit: 10)
            try expect(all.map(\.payload) == (1...5).map { Data("m\($0)".utf8) }, "order")
            try expect(all[0].senderAccount == "alice" && all[0].senderDevice == 1 && all[0].serverTime == 1_001, "fields")
            let page = try await s.pending(account: "bob", deviceID: 1, after: ids[1], limit: 2)
            try expect(page.map(\.serverID) == [ids[2], ids[3]], "paging")
            try expect(try await s.pending(account: "bob", deviceID: 2, after: 0, limit: 10).isEmpty, "other device empty")
            try expect(try await s.queueDepth(account: "bob", deviceID: 1) == 5, "depth")
        }),
        ("multiDeviceSend", { factory in
            let s = try await populated(factory)
            guard case .stored(_, let m) = try await s.enqueue(request(1, devices: [2, 1]), committed: noop) else {
                throw ConformanceFailure(description: "not stored", line: #line)
            }
            try expect(m.map(\.deviceID) == [2, 1] && m[0].serverID != m[1].serverID, "one per device")
            try expect(try await s.queueDepth(account: "bob", deviceID: 1) == 1, "d1")
            try expect(try await s.queueDepth(account: "bob", deviceID: 2) == 1, "d2")
        }),
        ("dedupe", { factory in
            let s = try await populated(factory)
            guard case .stored(let t, _) = try await s.enqueue(request(42, now: 5_000), committed: noop) else {
                throw ConformanceFailure(description: "not stored", line: #line)
            }
            try expect(try await s.enqueue(request(42, payload: "other", now: 9_000), committed: noop) == .duplicate(serverTime: t), "duplicate")
            try expect(try await s.queueDepth(account: "bob", deviceID: 1) == 1, "one copy")
            // Another sending device with the same client id is a different message.
            _ = try await link(s, account: "alice", identityKey: key(0xA0), deviceID: 2, staticKey: key(0xA2))
            guard case .stored = try await s.enqueue(request(42, from: "alice", 2), committed: noop) else {
                throw ConformanceFailure(description: "other device deduped", line: #line)
            }
            // Still a duplicate after delivery and ack.
            let m = try await s.pending(account: "bob", deviceID: 1, after: 0, limit: 10)
            _ = try await s.acknowledge(account: "bob", deviceID: 1, serverIDs: m.map(\.serverID))
            try expect(try await s.enqueue(request(42), committed: noop) == .duplicate(serverTime: t), "duplicate after ack")
            // And after a restart.
            let r = try await factory.reopen()
            try expect(try await r.enqueue(request(42), committed: noop) == .duplicate(serverTime: t), "duplicate after reopen")
        }),
        ("unknownRecipients", { factory in
            let s = try await populated(factory)
            try await expectError(.unknownAccount) { try await s.enqueue(request(1, to: "carol"), committed: noop) }
            try await expectError(.unknownDevice(3)) { try await s.enqueue(request(2, devices: [1, 3]), committed: noop) }
            try expect(try await s.queueDepth(account: "bob", deviceID: 1) == 0, "nothing stored")
            // A rejected send is not remembered for dedupe.
            guard case .stored = try await s.enqueue(request(2, devices: [1]), committed: noop) else {
                throw ConformanceFailure(description: "retry not stored", line: #line)
            }
        }),
        ("queueCap", { factory in
            let s = try await populated(factory)
            for i in 1...3 { _ = try await s.enqueue(request(UInt64(i), cap: 3), committed: noop) }
            try await expectError(.queueFull(device: 1, cap: 3)) { try await s.enqueue(request(4, cap: 3), committed: noop) }
            try await expectError(.queueFull(device: 1, cap: 3)) { try await s.enqueue(request(5, devices: [2, 1], cap: 3), committed: noop) }
            try expect(try await s.queueDepth(account: "bob", deviceID: 2) == 0, "all or nothing")
            let m = try await s.pending(account: "bob", deviceID: 1, after: 0, limit: 1)
            try expect(try await s.acknowledge(account: "bob", deviceID: 1, serverIDs: [m[0].serverID]) == 1, "ack")
            guard case .stored = try await s.enqueue(request(4, cap: 3), committed: noop) else {
                throw ConformanceFailure(description: "room after ack", line: #line)
            }
        }),
        ("acknowledgeDeletes", { factory in
            let s = try await populated(factory)
            guard case .stored(_, let m) = try await s.enqueue(request(1, devices: [1, 2]), committed: noop) else {
                throw ConformanceFailure(description: "not stored", line: #line)
            }
            // Device 1 cannot delete device 2's copy; unknown ids are ignored.
            try expect(try await s.acknowledge(account: "bob", deviceID: 1, serverIDs: [m[1].serverID, 999_999]) == 0, "foreign id")
            try expect(try await s.acknowledge(account: "bob", deviceID: 1, serverIDs: [m[0].serverID]) == 1, "own id")
            try expect(try await s.acknowledge(account: "bob", deviceID: 1, serverIDs: [m[0].serverID]) == 0, "idempotent")
            try expect(try await s.pending(account: "bob", deviceID: 1, after: 0, limit: 10).isEmpty, "gone")
            try expect(try await s.pending(account: "bob", deviceID: 2, after: 0, limit: 10).count == 1, "other copy stays")
            try expect(try await s.queueDepth(account: "bob", deviceID: 1) == 0, "depth")
            // Deleted ids are never reused.
            guard case .stored(_, let n) = try await s.enqueue(request(2), committed: noop) else {
                throw ConformanceFailure(description: "not stored", line: #line)
            }
            try expect(n[0].serverID > m[1].serverID, "no reuse")
        }),
        ("ttlPurge", { factory in
            let s = try await populated(factory)
            _ = try await s.enqueue(request(1, now: 0), committed: noop)
            _ = try await s.enqueue(request(2, now: day), committed: noop)
            try expect(try await s.purgeExpired(now: ttl - 1) == 0, "not yet")
            try expect(try await s.purgeExpired(now: ttl) == 1, "first expires at 30 days")
            let left = try await s.pending(account: "bob", deviceID: 1, after: 0, limit: 10)
            try expect(left.count == 1 && left[0].serverTime == day, "second stays")
            try expect(try await s.queueDepth(account: "bob", deviceID: 1) == 1, "depth")
            // The dedupe entry expired with the message: the id may be used again.
            guard case .stored = try await s.enqueue(request(1, now: ttl), committed: noop) else {
                throw ConformanceFailure(description: "expired dedupe entry", line: #line)
            }
            try expect(try await s.enqueue(request(2, now: ttl), committed: noop) == .duplicate(serverTime: day), "live dedupe entry")
        }),
        ("prekeys", { factory in
            let s = try await populated(factory)
            let signed = SignedPrekeyRecord(id: 7, publicKey: key(0x70), signature: Data(repeating: 0x71, count: 64))
            let ot = (1...3).map { OneTimePrekeyRecord(id: UInt32($0), publicKey: key(UInt8($0))) }
            try expect(try await s.storePrekeys(account: "bob", deviceID: 1, registrationID: 55, signed: signed, oneTime: ot.reversed(), maxStored: 5) == 3, "stored")
            try await expectError(.tooManyPrekeys(limit: 5)) {
                try await s.storePrekeys(account: "bob", deviceID: 1, registrationID: 55, signed: nil,
                                         oneTime: (10...12).map { OneTimePrekeyRecord(id: UInt32($0), publicKey: key(9)) }, maxStored: 5)
            }
            try expect(try await s.prekeyCount(account: "bob", deviceID: 1) == 3, "rejected upload changed nothing")
            let b1 = try await s.claimBundles(account: "bob", devices: [1])
            try expect(b1 == [PrekeyBundleRecord(deviceID: 1, registrationID: 55, signedPrekey: signed, oneTime: ot[0], remaining: 2)], "first bundle")
            let all = try await s.claimBundles(account: "bob", devices: nil)
            try expect(all.count == 2 && all[0].oneTime == ot[1] && all[1].deviceID == 2 && all[1].oneTime == nil && all[1].signedPrekey == nil, "all devices")
            _ = try await s.claimBundles(account: "bob", devices: [1])
            let empty = try await s.claimBundles(account: "bob", devices: [1])
            try expect(empty[0].oneTime == nil && empty[0].signedPrekey == signed && empty[0].remaining == 0, "exhausted")
            try await expectError(.unknownDevice(9)) { try await s.claimBundles(account: "bob", devices: [9]) }
            try await expectError(.unknownAccount) { try await s.claimBundles(account: "carol", devices: nil) }
            // Re-uploading an id replaces it; a new signed prekey replaces the old.
            let signed2 = SignedPrekeyRecord(id: 8, publicKey: key(0x80), signature: Data(repeating: 0x81, count: 64))
            try expect(try await s.storePrekeys(account: "bob", deviceID: 1, registrationID: 56, signed: signed2,
                                                oneTime: [OneTimePrekeyRecord(id: 4, publicKey: key(4)), OneTimePrekeyRecord(id: 4, publicKey: key(5))], maxStored: 5) == 1, "replace")
            let b2 = try await s.claimBundles(account: "bob", devices: [1])
            try expect(b2[0].signedPrekey == signed2 && b2[0].oneTime == OneTimePrekeyRecord(id: 4, publicKey: key(5)) && b2[0].registrationID == 56, "replaced")
        }),
        ("atomicPrekeyConsumption", { factory in
            let s = try await populated(factory)
            let ot = (1...10).map { OneTimePrekeyRecord(id: UInt32($0), publicKey: key(UInt8($0))) }
            _ = try await s.storePrekeys(account: "bob", deviceID: 1, registrationID: 1, signed: nil, oneTime: ot, maxStored: 100)
            let claimed = try await withThrowingTaskGroup(of: OneTimePrekeyRecord?.self) { group in
                for _ in 0..<25 { group.addTask { try await s.claimBundles(account: "bob", devices: [1])[0].oneTime } }
                var out: [OneTimePrekeyRecord?] = []
                for try await r in group { out.append(r) }
                return out
            }
            let handed = claimed.compactMap { $0 }
            try expect(handed.count == 10 && Set(handed.map(\.id)).count == 10, "each one-time prekey handed out exactly once")
        }),
        ("commitOrderCallbacks", { factory in
            let s = try await populated(factory)
            let seen = SeenIDs()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<40 {
                    group.addTask {
                        _ = try await s.enqueue(request(UInt64(i), from: "alice", 1, devices: [1]), committed: { m in seen.append(m.map(\.serverID)) })
                    }
                }
                try await group.waitForAll()
            }
            let ids = seen.ids
            try expect(ids.count == 40 && ids == ids.sorted(), "callbacks in server-id order")
        }),
        ("durableAcrossReopen", { factory in
            let s = try await populated(factory)
            _ = try await s.enqueue(request(1, payload: "kept"), committed: noop)
            _ = try await s.storePrekeys(account: "bob", deviceID: 1, registrationID: 3, signed: nil,
                                         oneTime: [OneTimePrekeyRecord(id: 1, publicKey: key(1))], maxStored: 10)
            let r = try await factory.reopen()
            try expect(try await r.pending(account: "bob", deviceID: 1, after: 0, limit: 10).map(\.payload) == [Data("kept".utf8)], "message")
            try expect(try await r.prekeyCount(account: "bob", deviceID: 1) == 1, "prekeys")
            try expect(try await r.device(account: "bob", deviceID: 2) != nil, "devices")
        }),
        ("kyberPrekeys", { factory in
            let s = try await populated(factory)
            let last = kyber(50, 0x50)
            let ot = (1...3).map { kyber(UInt32($0), UInt8($0)) }
            let x = [OneTimePrekeyRecord(id: 1, publicKey: key(1))]
            try expect(try await s.storePrekeys(account: "bob", deviceID: 1, PrekeyUpload(
                registrationID: 9, oneTime: x, kyberLastResort: last, kyberOneTime: ot.reversed(), maxStored: 5, maxStoredKyber: 4))
                == PrekeyCounts(oneTime: 1, kyberOneTime: 3), "stored")
            try expect(try await s.kyberPrekeyCount(account: "bob", deviceID: 1) == 3, "Kyber count")
            try expect(try await s.prekeyCount(account: "bob", deviceID: 1) == 1, "X25519 count")
            try expect(try await s.loginRecord(account: "bob", deviceID: 1)?.kyberPrekeyCount == 3, "login record count")
            // Over the Kyber cap: nothing of the upload is stored, X25519 keys included.
            try await expectError(.tooManyPrekeys(limit: 4)) {
                try await s.storePrekeys(account: "bob", deviceID: 1, PrekeyUpload(
                    registrationID: 10, oneTime: [OneTimePrekeyRecord(id: 2, publicKey: key(2))], kyberLastResort: kyber(51, 0x51),
                    kyberOneTime: [kyber(10, 10), kyber(11, 11)], maxStored: 5, maxStoredKyber: 4))
            }
            try expect(try await s.kyberPrekeyCount(account: "bob", deviceID: 1) == 3, "rejected upload changed no Kyber key")
            try expect(try await s.prekeyCount(account: "bob", deviceID: 1) == 1, "rejected upload changed no X25519 key")
            // One-time Kyber prekeys go lowest id first, consumed with the X25519 one.
            let b1 = try await s.claimBundles(account: "bob", devices: [1])
            try expect(b1 == [PrekeyBundleRecord(deviceID: 1, registrationID: 9, signedPrekey: nil, oneTime: x[0], remaining: 0,
                                                 kyber: ot[0], kyberIsLastResort: false, kyberRemaining: 2)], "first bundle")
            try expect(try await s.kyberPrekeyCount(account: "bob", deviceID: 1) == 2, "consumed")
            // A device without Kyber prekeys gets none.
            let all = try await s.claimBundles(account: "bob", devices: nil)
            try expect(all.count == 2 && all[0].kyber == ot[1] && all[1].kyber == nil && !all[1].kyberIsLastResort && all[1].kyberRemaining == 0,
                       "all devices")
            _ = try await s.claimBundles(account: "bob", devices: [1])
            // Exhausted: the last-resort key, every time, never consumed.
            for _ in 0..<3 {
                let b = try await s.claimBundles(account: "bob", devices: [1])
                try expect(b[0].kyber == last && b[0].kyberIsLastResort && b[0].kyberRemaining == 0 && !b[0].consumedOneTime, "last resort")
            }
            // A new last-resort key replaces the old; one-time ids re-uploaded replace the stored.
            let last2 = kyber(52, 0x52)
            try expect(try await s.storePrekeys(account: "bob", deviceID: 1, PrekeyUpload(
                registrationID: 9, kyberLastResort: last2, kyberOneTime: [kyber(7, 7), kyber(7, 8)], maxStored: 5, maxStoredKyber: 4))
                == PrekeyCounts(oneTime: 0, kyberOneTime: 1), "replace")
            let b2 = try await s.claimBundles(account: "bob", devices: [1])
            try expect(b2[0].kyber == kyber(7, 8) && !b2[0].kyberIsLastResort, "replaced one-time")
            let b3 = try await s.claimBundles(account: "bob", devices: [1])
            try expect(b3[0].kyber == last2 && b3[0].kyberIsLastResort, "replaced last resort")
            // An upload of X25519 keys only keeps the Kyber keys.
            _ = try await s.storePrekeys(account: "bob", deviceID: 1, registrationID: 9, signed: nil, oneTime: [], maxStored: 5)
            try expect(try await s.claimBundles(account: "bob", devices: [1])[0].kyber == last2, "kept by an X25519-only upload")
        }),
        ("atomicKyberConsumption", { factory in
            let s = try await populated(factory)
            let last = kyber(99, 0x99)
            _ = try await s.storePrekeys(account: "bob", deviceID: 1, PrekeyUpload(
                registrationID: 1, oneTime: (1...5).map { OneTimePrekeyRecord(id: UInt32($0), publicKey: key(UInt8($0))) },
                kyberLastResort: last, kyberOneTime: (1...10).map { kyber(UInt32($0), UInt8($0)) }, maxStored: 100, maxStoredKyber: 100))
            let claimed = try await withThrowingTaskGroup(of: PrekeyBundleRecord.self) { group in
                for _ in 0..<25 { group.addTask { try await s.claimBundles(account: "bob", devices: [1])[0] } }
                var out: [PrekeyBundleRecord] = []
                for try await r in group { out.append(r) }
                return out
            }
            let oneTime = claimed.filter { !$0.kyberIsLastResort }.compactMap(\.kyber)
            try expect(oneTime.count == 10 && Set(oneTime.map(\.id)).count == 10, "each one-time Kyber prekey handed out exactly once")
            try expect(claimed.filter(\.kyberIsLastResort).count == 15 && claimed.allSatisfy { $0.kyber != nil }, "then the last-resort one")
            try expect(claimed.filter(\.kyberIsLastResort).allSatisfy { $0.kyber == last }, "the last-resort key")
            try expect(claimed.compactMap(\.oneTime).count == 5, "X25519 one-time prekeys too")
            try expect(try await s.kyberPrekeyCount(account: "bob", deviceID: 1) == 0, "none left")
        }),
        ("replaceOneTimePrekeys", { factory in
            let s = try await populated(factory)
            _ = try await s.storePrekeys(account: "bob", deviceID: 1, PrekeyUpload(
                registrationID: 3, oneTime: (1...4).map { OneTimePrekeyRecord(id: UInt32($0), publicKey: key(UInt8($0))) },
                kyberLastResort: kyber(40, 0x40), kyberOneTime: [kyber(1, 1), kyber(2, 2), kyber(3, 3)], maxStored: 10, maxStoredKyber: 10))
            _ = try await s.storePrekeys(account: "bob", deviceID: 2, PrekeyUpload(
                registrationID: 4, oneTime: [OneTimePrekeyRecord(id: 1, publicKey: key(0x21))], kyberOneTime: [kyber(1, 0x21)],
                maxStored: 10, maxStoredKyber: 10))
            // Every one-time key of both kinds goes, the new ones (with ids old and new) stay; the
            // last-resort Kyber key is not one-time and stays; another device is untouched.
            try expect(try await s.storePrekeys(account: "bob", deviceID: 1, PrekeyUpload(
                registrationID: 5, oneTime: [OneTimePrekeyRecord(id: 2, publicKey: key(0x62)), OneTimePrekeyRecord(id: 9, publicKey: key(0x69))],
                kyberOneTime: [kyber(8, 0x68)], maxStored: 2, maxStoredKyber: 1, replaceOneTime: true))
                == PrekeyCounts(oneTime: 2, kyberOneTime: 1), "replaced (the caps count only the new keys)")
            let b1 = try await s.claimBundles(account: "bob", devices: [1])[0]
            try expect(b1.oneTime == OneTimePrekeyRecord(id: 2, publicKey: key(0x62)) && b1.kyber == kyber(8, 0x68) && b1.registrationID == 5,
                       "the new keys are handed out")
            let b2 = try await s.claimBundles(account: "bob", devices: [1])[0]
            try expect(b2.oneTime == OneTimePrekeyRecord(id: 9, publicKey: key(0x69)) && b2.kyber == kyber(40, 0x40) && b2.kyberIsLastResort,
                       "then the last-resort Kyber key, kept")
            try expect(try await s.claimBundles(account: "bob", devices: [1])[0].oneTime == nil, "no old key is left")
            try expect(try await s.prekeyCount(account: "bob", deviceID: 2) == 1, "another device keeps its keys")
            try expect(try await s.kyberPrekeyCount(account: "bob", deviceID: 2) == 1, "another device keeps its Kyber keys")
            // A replacing upload with no one-time keys empties the device.
            _ = try await s.storePrekeys(account: "bob", deviceID: 2, PrekeyUpload(registrationID: 4, maxStored: 10, maxStoredKyber: 10, replaceOneTime: true))
            try expect(try await s.prekeyCount(account: "bob", deviceID: 2) == 0, "emptied")
            try expect(try await s.kyberPrekeyCount(account: "bob", deviceID: 2) == 0, "emptied of Kyber keys")
            try await expectError(.unknownDevice(7)) {
                try await s.storePrekeys(account: "bob", deviceID: 7, PrekeyUpload(registrationID: 1, maxStored: 10, maxStoredKyber: 10, replaceOneTime: true))
            }
            try expect(try await factory.reopen().prekeyCount(account: "bob", deviceID: 1) == 0, "durable")
        }),
        ("sealedAccess", { factory in
            let s = try await populated(factory)
            try expect(try await s.sealedAccess(account: "bob") == nil, "none set")
            try expect(try await s.sealedAccess(account: "carol") == nil, "unknown account: nil, like none set")
            let a = SealedAccess(accessKey: Data(repeating: 0x5A, count: 16), allowAnyone: false)
            try await s.setSealedAccess(account: "bob", a)
            try expect(try await s.sealedAccess(account: "bob") == a, "stored")
            try expect(try await s.sealedAccess(account: "alice") == nil, "per account")
            let open = SealedAccess(accessKey: nil, allowAnyone: true)
            try await s.setSealedAccess(account: "bob", open)
            try expect(try await s.sealedAccess(account: "bob") == open, "replaced")
            try await expectError(.unknownAccount) { try await s.setSealedAccess(account: "carol", a) }
            try expect(try await s.sealedAccess(account: "carol") == nil, "nothing stored for an unknown account")
            try expect(try await factory.reopen().sealedAccess(account: "bob") == open, "durable")
        }),
        ("anonymousSendScope", { factory in
            // A sealed send is recorded under the recipient's anonymous scope: deduped within it,
            // distinct from any account's own sends and from another recipient's scope.
            let s = try await populated(factory)
            _ = try await s.register(account: "carol", identityKey: key(0xC0), deviceID: 1, staticKey: key(0xC1), maxDevices: 16)
            let toBob = request(77, from: AnonymousSender.scope(recipient: "bob"), 0, to: "bob", payload: "sealed", now: 2_000)
            guard case .stored(let t, let stored) = try await s.enqueue(toBob, committed: noop) else {
                throw ConformanceFailure(description: "not stored", line: #line)
            }
            try expect(stored.map(\.senderAccount) == ["*bob"] && stored.map(\.senderDevice) == [0], "scope recorded")
            try expect(try await s.enqueue(toBob, committed: noop) == .duplicate(serverTime: t), "deduped")
            try expect(try await s.acceptedTime(senderAccount: "*bob", senderDevice: 0, clientMessageID: 77) == t, "accepted time")
            try expect(try await s.acceptedTime(senderAccount: "*carol", senderDevice: 0, clientMessageID: 77) == nil, "not for another scope")
            guard case .stored = try await s.enqueue(request(77, from: AnonymousSender.scope(recipient: "carol"), 0, to: "carol"), committed: noop),
                  case .stored = try await s.enqueue(request(77, from: "alice", 1, to: "bob"), committed: noop) else {
                throw ConformanceFailure(description: "scopes not distinct", line: #line)
            }
            let m = try await s.pending(account: "bob", deviceID: 1, after: 0, limit: 10)
            try expect(m.map(\.senderAccount) == ["*bob", "alice"] && m.first?.payload == Data("sealed".utf8), "pending keeps the scope")
        }),
        ("removeDevice", { factory in
            // §22.2: the device, its prekeys of both kinds and its queue go at once; other
            // devices keep theirs; its id and static key may be registered again.
            let s = try await populated(factory)
            _ = try await s.storePrekeys(account: "bob", deviceID: 2, PrekeyUpload(
                registrationID: 5, signed: SignedPrekeyRecord(id: 1, publicKey: key(0x51), signature: Data(repeating: 0x52, count: 64)),
                oneTime: [OneTimePrekeyRecord(id: 1, publicKey: key(0x61))], kyberLastResort: kyber(40, 0x40),
                kyberOneTime: [kyber(1, 1)], maxStored: 10, maxStoredKyber: 10))
            guard case .stored = try await s.enqueue(request(1, devices: [1, 2]), committed: noop),
                  case .stored = try await s.enqueue(request(2, devices: [2]), committed: noop) else {
                throw ConformanceFailure(description: "not stored", line: #line)
            }
            try await expectError(.unknownAccount) { try await s.removeDevice(account: "nobody", deviceID: 1) }
            try await expectError(.unknownDevice(3)) { try await s.removeDevice(account: "bob", deviceID: 3) }
            try expect(try await s.removeDevice(account: "bob", deviceID: 2) == 2, "two queued messages deleted")
            try expect(try await s.device(account: "bob", deviceID: 2) == nil, "device gone")
            try expect(try await s.loginRecord(account: "bob", deviceID: 2) == nil, "no login")
            try expect(try await s.devices(account: "bob").map(\.deviceID) == [1], "list")
            try await expectError(.unknownDevice(2)) { try await s.queueDepth(account: "bob", deviceID: 2) }
            try await expectError(.unknownDevice(2)) { try await s.enqueue(request(3, devices: [2]), committed: noop) }
            try await expectError(.unknownDevice(2)) { try await s.claimBundles(account: "bob", devices: [2]) }
            let depth = try await s.queueDepth(account: "bob", deviceID: 1), total = try await s.totalQueueDepth()
            try expect(depth == 1 && total == 1, "others keep theirs")
            try await expectError(.unknownDevice(2)) { try await s.removeDevice(account: "bob", deviceID: 2) }
            // What it sent is forgotten for dedupe (other devices' entries stay).
            guard case .stored = try await s.enqueue(request(9, from: "bob", 2, to: "alice"), committed: noop) else {
                throw ConformanceFailure(description: "not stored", line: #line)
            }
            // The lowest free id is 2 (removed): a token reserves it, so the next one reserves 3.
            try expect(try await issue(s, "bob", 0x72) == 2, "2 is free again")
            _ = try await link(s, account: "bob", identityKey: key(0xB0), deviceID: 3, staticKey: key(0xB3))
            guard case .stored = try await s.enqueue(request(9, from: "bob", 3, to: "alice"), committed: noop) else {
                throw ConformanceFailure(description: "not stored", line: #line)
            }
            _ = try await s.removeDevice(account: "bob", deviceID: 3)
            try expect(try await s.acceptedTime(senderAccount: "bob", senderDevice: 3, clientMessageID: 9) == nil, "its dedupe entries gone")
            try expect(try await s.acceptedTime(senderAccount: "bob", senderDevice: 2, clientMessageID: 9) != nil, "others' kept")
            try expect(try await s.acceptedTime(senderAccount: "alice", senderDevice: 1, clientMessageID: 1) != nil, "others' kept")
            let again = try await factory.reopen()
            try expect(try await again.devices(account: "bob").map(\.deviceID) == [1], "durable")
            // A removed device cannot register itself again with the identity key alone (§22.2).
            try await expectError(.invalidLinkToken) {
                try await again.register(account: "bob", identityKey: key(0xB0), deviceID: 2, staticKey: key(0xB2), maxDevices: 16)
            }
            // The token reserved for 2 above is durable; with it the id is registered again.
            try expect(try await again.register(account: "bob", identityKey: key(0xB0), deviceID: 2, staticKey: key(0xB2), maxDevices: 16,
                                                linkToken: proof(0x72)) == .addedDevice, "registered again")
            let left = (try await again.queueDepth(account: "bob", deviceID: 2), try await again.prekeyCount(account: "bob", deviceID: 2),
                        try await again.kyberPrekeyCount(account: "bob", deviceID: 2))
            try expect(left == (0, 0, 0), "nothing left of the old device")
            let b = try await again.claimBundles(account: "bob", devices: [2])
            try expect(b.count == 1 && b[0].signedPrekey == nil && b[0].kyber == nil, "no old prekeys")
        }),
        ("linkTokens", { factory in
            // §5.1, §22.4: tokens reserve the lowest free id ≥ 2, are bound to account and id,
            // expire, are used once (with the insert), survive a reopen, and are purged.
            let s = try await populated(factory)  // bob: 1, 2
            try await expectError(.unknownAccount) { try await issue(s, "nobody", 1) }
            try expect(try await issue(s, "bob", 0x11) == 3, "lowest free id")
            try expect(try await issue(s, "bob", 0x12) == 4, "3 is reserved")
            let b3 = { (token: LinkTokenProof?) async throws(RelayStoreError) -> RegisterOutcome in
                try await s.register(account: "bob", identityKey: key(0xB0), deviceID: 3, staticKey: key(0xB3), maxDevices: 16, linkToken: token)
            }
            try await expectError(.invalidLinkToken) { try await b3(nil) }
            try await expectError(.invalidLinkToken) { try await b3(proof(0x12)) }                 // the token of id 4
            try await expectError(.invalidLinkToken) { try await b3(proof(0x13)) }                 // no such token
            try await expectError(.invalidLinkToken) { try await b3(proof(0x11, now: 601_000)) }  // expired
            try await expectError(.invalidLinkToken) {                                              // another account's
                try await s.register(account: "alice", identityKey: key(0xA0), deviceID: 3, staticKey: key(0xA3), maxDevices: 16, linkToken: proof(0x11))
            }
            try expect(try await s.devices(account: "bob").map(\.deviceID) == [1, 2], "nothing registered by a refusal")
            try expect(try await b3(proof(0x11)) == .addedDevice, "registered with its token")
            try expect(try await b3(proof(0x11)) == .alreadyRegistered, "a retry is the idempotent repeat")
            try expect(try await b3(nil) == .alreadyRegistered, "with or without the token")
            _ = try await s.removeDevice(account: "bob", deviceID: 3)
            try await expectError(.invalidLinkToken) { try await b3(proof(0x11)) }                 // used
            try await expectError(.invalidLinkToken) { try await b3(nil) }                          // removed: no way back alone
            // At most 4 open tokens: 4 (above), then 3, 5, 6; a fifth revokes the oldest (4) and
            // reserves its id anew: the newest request wins.
            try expect(try await issue(s, "bob", 0x14, now: 1_100) == 3, "3 free again")
            try expect(try await issue(s, "bob", 0x15, now: 1_200) == 5, "5")
            try expect(try await issue(s, "bob", 0x16, now: 1_300) == 6, "6")
            try expect(try await issue(s, "bob", 0x17, now: 1_400) == 4, "the oldest (4) revoked, its id reserved again")
            let b4 = { (hash: UInt8) async throws(RelayStoreError) -> RegisterOutcome in
                try await s.register(account: "bob", identityKey: key(0xB0), deviceID: 4, staticKey: key(0xB4), maxDevices: 16, linkToken: proof(hash))
            }
            try await expectError(.invalidLinkToken) { try await b4(0x12) }                        // revoked
            try expect(try await b4(0x17) == .addedDevice, "the newer token for 4")
            // Expired tokens are not open: the same call later reserves from the lowest id again.
            try expect(try await issue(s, "bob", 0x18, now: 700_000) == 3, "expired reservations freed")
            // Registered + reserved ≤ maxDevices: the oldest reservation gives way; only registered
            // devices can fill the account.
            try expect(try await issue(s, "alice", 0x21, now: 1_000, maxDevices: 3) == 2, "alice 2")
            try expect(try await issue(s, "alice", 0x22, now: 1_100, maxDevices: 3) == 3, "alice 3")
            try expect(try await issue(s, "alice", 0x23, now: 1_200, maxDevices: 3) == 2, "the oldest (2) revoked for the newest")
            try await expectError(.tooManyDevices(limit: 1)) { try await issue(s, "alice", 0x24, maxDevices: 1) }
            // Durable: a token issued before a reopen registers after it; the revoked one does not.
            let r = try await factory.reopen()
            try await expectError(.invalidLinkToken) {
                try await r.register(account: "alice", identityKey: key(0xA0), deviceID: 2, staticKey: key(0xA2), maxDevices: 16, linkToken: proof(0x21))
            }
            try expect(try await r.register(account: "alice", identityKey: key(0xA0), deviceID: 2, staticKey: key(0xA2), maxDevices: 16,
                                            linkToken: proof(0x23)) == .addedDevice, "after a reopen")
            // Purged with the queue: gone at its expiry even for a caller whose clock is earlier.
            _ = try await r.purgeExpired(now: 601_100)
            try await expectError(.invalidLinkToken) {
                try await r.register(account: "alice", identityKey: key(0xA0), deviceID: 3, staticKey: key(0xA3), maxDevices: 16, linkToken: proof(0x22))
            }
            // An account whose devices are all gone is recovered by the identity key holder alone.
            _ = try await r.register(account: "dave", identityKey: key(0xD0), deviceID: 2, staticKey: key(0xD2), maxDevices: 16)
            _ = try await r.removeDevice(account: "dave", deviceID: 2)
            try expect(try await r.register(account: "dave", identityKey: key(0xD0), deviceID: 5, staticKey: key(0xD5), maxDevices: 16)
                       == .addedDevice, "recovery")
            try await expectError(.invalidLinkToken) {
                try await r.register(account: "dave", identityKey: key(0xD0), deviceID: 6, staticKey: key(0xD6), maxDevices: 16)
            }
        }),
        ("linkTokensConcurrent", { factory in
            // Concurrent issues reserve distinct ids (one transaction each).
            let s = try await populated(factory)
            let ids = try await withThrowingTaskGroup(of: UInt32.self) { group in
                for i in 0..<4 { group.addTask { try await issue(s, "bob", UInt8(0x30 + i)) } }
                var out: [UInt32] = []
                for try await id in group { out.append(id) }
                return out
            }
            try expect(ids.sorted() == [3, 4, 5, 6], "distinct ids: \(ids.sorted())")
        }),
        ("kyberDurableAcrossReopen", { factory in
            let s = try await populated(factory)
            _ = try await s.storePrekeys(account: "bob", deviceID: 1, PrekeyUpload(
                registrationID: 3, kyberLastResort: kyber(40, 0x40), kyberOneTime: [kyber(1, 1), kyber(2, 2)], maxStored: 10, maxStoredKyber: 10))
            _ = try await s.claimBundles(account: "bob", devices: [1])
            let r = try await factory.reopen()
            try expect(try await r.kyberPrekeyCount(account: "bob", deviceID: 1) == 1, "count")
            try expect(try await r.loginRecord(account: "bob", deviceID: 1)?.kyberPrekeyCount == 1, "login record")
            try expect(try await r.claimBundles(account: "bob", devices: [1])[0].kyber == kyber(2, 2), "one-time")
            let b = try await r.claimBundles(account: "bob", devices: [1])[0]
            try expect(b.kyber == kyber(40, 0x40) && b.kyberIsLastResort, "last resort")
        }),
    ]
}

final class SeenIDs: Sendable {
    private let lock = NSLock()
    nonisolated(unsafe) private var storage: [UInt64] = []
    func append(_ ids: [UInt64]) { lock.lock(); storage += ids; lock.unlock() }
    var ids: [UInt64] { lock.lock(); defer { lock.unlock() }; return storage }
}
