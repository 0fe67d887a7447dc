import Foundation
import HushRelay
import Synchronization

/// A relay store that, while ``stripping`` is on, hands out bundles without their Kyber prekey
/// (still consuming it): the one downgrade a relay can attempt on PQXDH (`Docs/spec/pqxdh.md`
/// §6). Everything else is the wrapped store's.
final class KyberStrippingStore: RelayStore {
    let base: any RelayStore
    private let on = Atomic<Bool>(false)

    init(_ base: any RelayStore) { self.base = base }

    var stripping: Bool {
        get { on.load(ordering: .sequentiallyConsistent) }
        set { on.store(newValue, ordering: .sequentiallyConsistent) }
    }

    func claimBundles(account: String, devices: [UInt32]?) async throws(RelayStoreError) -> [PrekeyBundleRecord] {
        let bundles = try await base.claimBundles(account: account, devices: devices)
        guard stripping else { return bundles }
        return bundles.map { b in
            var b = b
            b.kyber = nil
            b.kyberIsLastResort = false
            return b
        }
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
    func enqueue(_ request: EnqueueRequest,
                 committed: @escaping @Sendable ([QueuedMessage]) -> Void) async throws(RelayStoreError) -> EnqueueOutcome {
        try await base.enqueue(request, committed: committed)
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
