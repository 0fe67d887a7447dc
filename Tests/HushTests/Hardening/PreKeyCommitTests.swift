import Foundation
@testable import Hush
import Testing

/// First PreKeySignalMessages of an address: one atomic step, a defined commit order, and
/// no message lost to a store that fails late (issue 14, defects 5 and 6).
@Suite struct PreKeyCommitTests {
    static func firstMessage(seed: UInt64) throws -> (Device, Device, CiphertextMessage) {
        let alice = Device("alice", seed: seed)
        let bob = Device("bob", seed: seed + 1)
        try alice.startSession(with: bob, oneTimePreKeyID: 100)
        return (alice, bob, try alice.encrypt("first flight", to: bob))
    }

    /// Defect 5: on an existing state, the message's identity must be the state's.
    @Test func aPreKeyMessageOnAnExistingStateMustCarryItsIdentity() throws {
        let (alice, bob, first) = try Self.firstMessage(seed: 1410)
        #expect(try bob.decrypt(first, from: alice) == "first flight")
        guard case .preKeySignal(let second) = try alice.encrypt("second", to: bob) else { Issue.record("expected a prekey message"); return }
        let eve = Device("eve", seed: 1412)
        let forged = PreKeySignalMessage(registrationID: second.registrationID, preKeyID: second.preKeyID, signedPreKeyID: second.signedPreKeyID,
                                         baseKey: second.baseKey, identityKey: eve.identity.identityKey, message: second.message)
        // A store that trusts any identity (or whose trust record was lost) must not learn Eve's key.
        let store = WrappedStore(bob.store)
        store.trustEverything = true
        let before = bob.store.snapshot()
        #expect(throws: SignalProtocolError.badMAC) {
            try SessionCipher.decrypt(.preKeySignal(forged), from: alice.address, store: store, random: bob.random)
        }
        #expect(bob.store.snapshot() == before)
        #expect(bob.store.identity(for: alice.address) == alice.identity.identityKey)
        #expect(try SessionCipher.decrypt(.preKeySignal(second), from: alice.address, store: store, random: bob.random) == Array("second".utf8))
    }

    /// Defect 6: two deliveries of one first message at once build one session; the copy is a
    /// duplicate. The loads wait at a barrier, so code that loads and stores in separate steps
    /// interleaves for certain.
    @Test func concurrentFirstDeliveriesDecryptOnce() async throws {
        let (alice, bob, first) = try Self.firstMessage(seed: 1420)
        let store = WrappedStore(bob.store)
        store.loadBarrier = Barrier(parties: 2)
        let address = alice.address
        let random = bob.random
        let results = await withTaskGroup(of: Result<[UInt8], SignalProtocolError>.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    do throws(SignalProtocolError) {
                        return .success(try SessionCipher.decrypt(first, from: address, store: store, random: random))
                    } catch { return .failure(error) }
                }
            }
            var all: [Result<[UInt8], SignalProtocolError>] = []
            for await result in group { all.append(result) }
            return all
        }
        let successes = results.filter { if case .success(let p) = $0 { return p == Array("first flight".utf8) }; return false }
        let duplicates = results.filter { if case .failure(.duplicateMessage(counter: 0)) = $0 { return true }; return false }
        #expect(successes.count == 1 && duplicates.count == 1, "\(results)")
        #expect(!bob.store.preKeyIDs.contains(100))
        #expect(try #require(bob.store.loadSession(for: alice.address)).archivedStateCount == 0, "one session, not two")
    }

    /// A store that fails at any step of the commit loses nothing: the message decrypts once
    /// the store works again, and the one-time prekey is gone only once the session is kept.
    @Test(arguments: ["saveIdentity", "removePreKey", "storeSession"])
    func aStoreFailingLateLosesNoMessage(operation: String) throws {
        let (alice, bob, first) = try Self.firstMessage(seed: 1430)
        let store = WrappedStore(bob.store)
        store.atomicUpdates = false  // the protocol's default updateSession: storeSession can fail after the body ran
        store.failing = [operation]
        let before = bob.store.snapshot()
        do {
            _ = try SessionCipher.decrypt(first, from: alice.address, store: store, random: bob.random)
            Issue.record("the failing \(operation) was not reported")
        } catch {
            let operationName = operation == "storeSession" ? "updateSession" : operation
            guard case .storeFailure(operation: operationName, message: _) = error else {
                Issue.record("unexpected \(error)"); return
            }
        }
        #expect(bob.store.snapshot().sessions == before.sessions, "no session kept")
        #expect(bob.store.preKeyIDs.contains(100), "the one-time prekey is still there (or was stored back)")
        store.failing = []
        #expect(try SessionCipher.decrypt(first, from: alice.address, store: store, random: bob.random) == Array("first flight".utf8))
        #expect(!bob.store.preKeyIDs.contains(100))
        // And once kept, the same message is a duplicate: no replay through the prekey.
        #expect(throws: SignalProtocolError.duplicateMessage(counter: 0)) {
            try SessionCipher.decrypt(first, from: alice.address, store: store, random: bob.random)
        }
    }

    /// A failed commit does not change whom Bob trusts: with a store that trusts any key and
    /// an older key on record, a late failure leaves the older key recorded (the identity is
    /// saved after the prekeys are consumed, and restored if the record cannot be kept).
    @Test(arguments: ["removePreKey", "storeSession"])
    func aFailedCommitKeepsTheRecordedIdentity(operation: String) throws {
        let (alice, bob, first) = try Self.firstMessage(seed: 1440)
        let older = Device("alice", seed: 1442).identity.identityKey
        _ = bob.store.saveIdentity(older, for: alice.address)
        let store = WrappedStore(bob.store)
        store.trustEverything = true
        store.atomicUpdates = false
        store.failing = [operation]
        #expect(throws: SignalProtocolError.self) {
            try SessionCipher.decrypt(first, from: alice.address, store: store, random: bob.random)
        }
        #expect(bob.store.identity(for: alice.address) == older)
        #expect(bob.store.preKeyIDs.contains(100))
        store.failing = []
        #expect(try SessionCipher.decrypt(first, from: alice.address, store: store, random: bob.random) == Array("first flight".utf8))
        #expect(bob.store.identity(for: alice.address) == alice.identity.identityKey)
    }
}
