import Foundation
import HushTransport
import Synchronization
import Testing
@testable import HushRelay

/// A relay store whose sends wait while ``hold()`` is in force (at most 30 s); everything else
/// is the wrapped store's. Not a callback store, so the relay runs its sends as store work.
final class GatedStore: RelayStore {
    let base: any RelayStore
    private let held = Atomic<Bool>(false)

    init(_ base: any RelayStore) { self.base = base }

    func hold() { held.store(true, ordering: .sequentiallyConsistent) }
    func release() { held.store(false, ordering: .sequentiallyConsistent) }

    func enqueue(_ request: EnqueueRequest,
                 committed: @escaping @Sendable ([QueuedMessage]) -> Void) async throws(RelayStoreError) -> EnqueueOutcome {
        for _ in 0..<3_000 where held.load(ordering: .sequentiallyConsistent) { try? await Task.sleep(for: .milliseconds(10)) }
        return try await base.enqueue(request, committed: committed)
    }

    func claimBundles(account: String, devices: [UInt32]?) async throws(RelayStoreError) -> [PrekeyBundleRecord] {
        try await base.claimBundles(account: account, devices: devices)
    }
    func register(account: String, identityKey: Data, deviceID: UInt32, staticKey: Data,
                  maxDevices: Int, linkToken: LinkTokenProof?) async throws(RelayStoreError) -> RegisterOutcome {
        try await base.register(account: account, identityKey: identityKey, deviceID: deviceID, staticKey: staticKey, maxDevices: maxDevices,
                                linkToken: linkToken)
    }
    func issueLinkToken(_ request: LinkTokenIssue) async throws(RelayStoreError) -> UInt32 { try await base.issueLinkToken(request) }
    func account(named name: String) async throws(RelayStoreError) -> AccountRecord? { try await base.account(named: name) }
    func device(account: String, deviceID: UInt32) async throws(RelayStoreError) -> DeviceRecord? {
        try await base.device(account: account, deviceID: deviceID)
    }
    func loginRecord(account: String, deviceID: UInt32) async throws(RelayStoreError) -> LoginRecord? {
        try await base.loginRecord(account: account, deviceID: deviceID)
    }
    func devices(account: String) async throws(RelayStoreError) -> [DeviceRecord] { try await base.devices(account: account) }
    func removeDevice(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int {
        try await base.removeDevice(account: account, deviceID: deviceID)
    }
    func storePrekeys(account: String, deviceID: UInt32, _ upload: PrekeyUpload) async throws(RelayStoreError) -> PrekeyCounts {
        try await base.storePrekeys(account: account, deviceID: deviceID, upload)
    }
    func prekeyCount(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int {
        try await base.prekeyCount(account: account, deviceID: deviceID)
    }
    func kyberPrekeyCount(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int {
        try await base.kyberPrekeyCount(account: account, deviceID: deviceID)
    }
    func pending(account: String, deviceID: UInt32, after: UInt64, limit: Int) async throws(RelayStoreError) -> [QueuedMessage] {
        try await base.pending(account: account, deviceID: deviceID, after: after, limit: limit)
    }
    func acknowledge(account: String, deviceID: UInt32, serverIDs: [UInt64]) async throws(RelayStoreError) -> Int {
        try await base.acknowledge(account: account, deviceID: deviceID, serverIDs: serverIDs)
    }
    func queueDepth(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int {
        try await base.queueDepth(account: account, deviceID: deviceID)
    }
    func totalQueueDepth() async throws(RelayStoreError) -> Int { try await base.totalQueueDepth() }
    func purgeExpired(now: UInt64) async throws(RelayStoreError) -> Int { try await base.purgeExpired(now: now) }
    func sealedAccess(account: String) async throws(RelayStoreError) -> SealedAccess? { try await base.sealedAccess(account: account) }
    func setSealedAccess(account: String, _ access: SealedAccess) async throws(RelayStoreError) {
        try await base.setSealedAccess(account: account, access)
    }
    func acceptedTime(senderAccount: String, senderDevice: UInt32, clientMessageID: UInt64) async throws(RelayStoreError) -> UInt64? {
        try await base.acceptedTime(senderAccount: senderAccount, senderDevice: senderDevice, clientMessageID: clientMessageID)
    }
}

/// Tests that load the machine or depend on prompt pongs, one at a time: the half-open test
/// (3,000 connections) never runs beside the ping test.
@Suite(.serialized) struct LoadSensitiveTests {}

extension LoadSensitiveTests {
@Suite(.serialized) struct RelayPingTests {
    /// A send waits for a slow store for three ping intervals (of 2 s: pongs of idle connections
    /// must come back within one interval even on a loaded machine). The relay reads nothing
    /// more from that connection meanwhile (so the client's pongs stay unread in the socket);
    /// its ping check waits another interval each time instead of closing with 1001, and the
    /// send is acknowledged once the store answers.
    @Test func pingCheckWaitsWhileASendAwaitsTheStore() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-ping-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = GatedStore(try SQLiteRelayStore(path: dir.appendingPathComponent("relay.sqlite").path))
        let relay = try await TestRelay.start(store: store) { $0.pingInterval = .seconds(2) }
        let a = try await RelayTestClient.register(relay, TestDevice("alice"))
        try await a.waitQueueEmpty()
        let b = try await RelayTestClient.register(relay, TestDevice("bob"))
        try await b.waitQueueEmpty()

        store.hold()
        try await a.sendMessage(1, to: "bob", "slow")
        try await Task.sleep(for: .seconds(6))  // the send sits in the store for 3 ping intervals
        store.release()
        let reply = try await a.wait { s -> RelayStanza? in
            switch s.body {
            case .serverAck(let x)? where x.clientMessageID == 1: s
            case .error(let e)? where e.clientMessageID == 1: s
            default: nil
            }
        }
        guard case .serverAck? = reply.body else { Issue.record("no ack: \(reply)"); return }
        #expect(try await b.nextDeliver().payload == Data("slow".utf8))
        // Still connected, and pongs are read again: a later idle stretch keeps it open.
        _ = try await a.ping(2)
        try await Task.sleep(for: .seconds(5))
        _ = try await a.ping(3)
        await a.close()
        await b.close()
        await relay.stop()
    }
}
}
