import Foundation
@testable import Hush

/// Waits until `parties` callers arrived, or `timeout` passed (so a test whose code does not
/// race never hangs): used to make an unsynchronised load-then-store interleave for sure.
final class Barrier: @unchecked Sendable {
    private let condition = NSCondition()
    private var arrived = 0
    let parties: Int
    init(parties: Int) { self.parties = parties }

    func arriveAndWait(timeout: TimeInterval = 2) {
        condition.lock()
        arrived += 1
        condition.broadcast()
        let deadline = Date(timeIntervalSinceNow: timeout)
        while arrived < parties, condition.wait(until: deadline) {}
        condition.unlock()
    }
}

struct InjectedStoreFailure: Error, CustomStringConvertible {
    let operation: String
    var description: String { "injected failure of \(operation)" }
}

/// Every store of a device, forwarded to an ``InMemorySignalProtocolStore`` except where a
/// test changes the behaviour: the load calls can wait at a barrier (so that code that loads
/// and stores in separate steps interleaves), chosen calls can fail, and trust can be
/// unconditional. `updateSession`/`updateSenderKey` are forwarded (atomic) unless
/// `atomicUpdates` is false, in which case the protocols' default (load, body, store) runs.
final class WrappedStore: SignalProtocolStore, SenderKeyStore, @unchecked Sendable {
    let inner: InMemorySignalProtocolStore
    var loadBarrier: Barrier?
    var failing: Set<String> = []
    var trustEverything = false
    var atomicUpdates = true

    init(_ inner: InMemorySignalProtocolStore) { self.inner = inner }

    private func check(_ operation: String) throws {
        if failing.contains(operation) { throw InjectedStoreFailure(operation: operation) }
    }

    func identityKeyPair() throws -> IdentityKeyPair { inner.identityKeyPair() }
    func localRegistrationID() throws -> UInt32 { inner.localRegistrationID() }
    func saveIdentity(_ identity: IdentityKey, for address: ProtocolAddress) throws -> Bool {
        try check("saveIdentity")
        return inner.saveIdentity(identity, for: address)
    }
    func isTrustedIdentity(_ identity: IdentityKey, for address: ProtocolAddress, direction: IdentityDirection) throws -> Bool {
        trustEverything || inner.isTrustedIdentity(identity, for: address, direction: direction)
    }
    func identity(for address: ProtocolAddress) throws -> IdentityKey? { inner.identity(for: address) }

    func loadPreKey(id: UInt32) throws -> PreKeyRecord? { inner.loadPreKey(id: id) }
    func storePreKey(_ record: PreKeyRecord) throws { try check("storePreKey"); inner.storePreKey(record) }
    func removePreKey(id: UInt32) throws { try check("removePreKey"); inner.removePreKey(id: id) }
    func loadSignedPreKey(id: UInt32) throws -> SignedPreKeyRecord? { inner.loadSignedPreKey(id: id) }
    func storeSignedPreKey(_ record: SignedPreKeyRecord) throws { inner.storeSignedPreKey(record) }

    func loadSession(for address: ProtocolAddress) throws -> SessionRecord? {
        let record = inner.loadSession(for: address)
        loadBarrier?.arriveAndWait()
        return record
    }
    func storeSession(_ record: SessionRecord, for address: ProtocolAddress) throws {
        try check("storeSession")
        inner.storeSession(record, for: address)
    }
    func updateSession<R, E: Error>(for address: ProtocolAddress, _ body: (inout SessionRecord?) throws(E) -> R) throws -> R {
        if atomicUpdates { return try inner.updateSession(for: address, body) }
        var record = try loadSession(for: address)
        let result = try body(&record)
        if let record { try storeSession(record, for: address) }
        return result
    }

    func loadSenderKey(for name: SenderKeyName) throws -> SenderKeyRecord? {
        let record = inner.loadSenderKey(for: name)
        loadBarrier?.arriveAndWait()
        return record
    }
    func storeSenderKey(_ record: SenderKeyRecord, for name: SenderKeyName) throws { inner.storeSenderKey(record, for: name) }
    func updateSenderKey<R, E: Error>(for name: SenderKeyName, _ body: (inout SenderKeyRecord?) throws(E) -> R) throws -> R {
        try inner.updateSenderKey(for: name, body)
    }
}
