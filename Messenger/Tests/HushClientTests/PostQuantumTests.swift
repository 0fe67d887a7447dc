import Foundation
import Hush
import HushPQ
import HushRelay
import Synchronization
import Testing
@testable import HushClient

/// PQXDH in HushClient over a real relay on loopback (`Docs/client.md` §Prekeys): Kyber prekeys
/// published at setup, sessions set up with PQXDH in both suites, the last-resort key after the
/// one-time ones are gone, the `requirePQXDH` / `acceptEither` policies, a restart from SQLite,
/// replenishment and rotation on the injected clock.
@Suite(.serialized, .timeLimit(.minutes(2))) struct PostQuantumTests {
    static let day: UInt64 = 86_400_000

    func session(_ u: User, with peer: String) throws -> SessionRecord? {
        try u.store.loadSession(for: ProtocolAddress(name: peer, deviceID: 1))
    }

    /// Removes every Kyber prekey from a freshly created device, so that it publishes X25519
    /// prekeys only — as a device of a version without PQXDH (its last-resort id stays set, so
    /// the client does not make new ones).
    func withoutKyber(_ u: User) throws -> User {
        for k in try u.store.kyberPreKeys() { try u.store.removeKyberPreKey(id: k.id) }
        return u
    }

    @Test(arguments: [CipherSuite.hush1, .signalV3])
    func sessionsAreSetUpWithPQXDH(suite: CipherSuite) async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay, suite: suite), bob = try User.make("bob", relay, suite: suite)
        await alice.online()
        await bob.online()
        // Setup published a last-resort and 100 one-time Kyber prekeys, all signed.
        let bobKeys = try bob.store.kyberPreKeys()
        #expect(bobKeys.filter { $0.kind == .lastResort }.map(\.id) == [1])
        #expect(bobKeys.filter { $0.kind == .oneTime }.map(\.id) == Array(2...101))
        #expect(try await relay.relay.store.kyberPrekeyCount(account: "bob", deviceID: 1) == 100)
        #expect(try await relay.relay.store.kyberPrekeyCount(account: "alice", deviceID: 1) == 100)

        let hello = try await alice.client.send("hello, post-quantum", to: "bob")
        _ = await bob.waitMessage(from: "alice", "hello, post-quantum")
        await alice.waitTick(hello, .delivered)
        let back = try await bob.client.send("and back", to: "alice")
        _ = await alice.waitMessage(from: "bob", "and back")
        await bob.waitTick(back, .delivered)
        #expect(try session(alice, with: "bob")?.establishment == .pqxdh)
        #expect(try session(bob, with: "alice")?.establishment == .pqxdh)
        #expect(try await alice.client.sessionEstablishment(with: "bob") == .pqxdh)
        #expect(try await bob.client.sessionEstablishment(with: "alice") == .pqxdh)
        #expect(try await alice.client.sessionEstablishment(with: "carol") == nil)
        // The one-time Kyber prekey Alice used (Bob's lowest, id 2) is gone on both sides.
        #expect(try bob.store.loadKyberPreKey(id: 2) == nil)
        #expect(try bob.store.kyberPreKeys().count == 100)
        #expect(try await relay.relay.store.kyberPrekeyCount(account: "bob", deviceID: 1) == 99)
        for u in [alice, bob] { await u.client.stop() }
        await relay.finish()
    }

    @Test(arguments: [CipherSuite.hush1, .signalV3])
    func theLastResortKeyServesWhenOneTimeKeysAreGone(suite: CipherSuite) async throws {
        let relay = try await ClientTestRelay.start()
        let bob = try User.make("bob", relay) { $0.kyberPreKeyBatch = 2 }
        await bob.online()
        await bob.client.stop()
        // While Bob is away three contacts write: two take his one-time Kyber prekeys (ids 2
        // and 3), the third gets the last-resort key (id 1).
        var senders: [User] = []
        for name in ["carol", "dave", "erin"] {
            let u = try User.make(name, relay, suite: suite)
            await u.online()
            _ = try await u.client.send("hi from \(name)", to: "bob")
            senders.append(u)
        }
        #expect(try await relay.relay.store.kyberPrekeyCount(account: "bob", deviceID: 1) == 0)
        let lastResort = try #require(try await relay.relay.store.claimBundles(account: "bob", devices: [1]).first?.kyber)
        #expect(lastResort.id == 1)
        await bob.online()
        for name in ["carol", "dave", "erin"] {
            _ = await bob.waitMessage(from: name, "hi from \(name)")
            #expect(try session(bob, with: name)?.establishment == .pqxdh)
        }
        // The one-time keys are consumed, the last-resort key stays (and still works below);
        // the login's Welcome (0 one-time Kyber prekeys) made Bob publish a new batch.
        let kept = try bob.store.kyberPreKeys()
        #expect(kept.filter { $0.kind == .lastResort }.map(\.id) == [1])
        #expect(kept.filter { $0.kind == .oneTime }.map(\.id) == [4, 5])
        #expect(try await relay.relay.store.kyberPrekeyCount(account: "bob", deviceID: 1) == 2)
        for (i, u) in senders.enumerated() {
            let reply = try await bob.client.send("reply \(i)", to: u.name)
            _ = await u.waitMessage(from: "bob", "reply \(i)")
            await bob.waitTick(reply, .delivered)
        }
        for u in senders + [bob] { await u.client.stop() }
        await relay.finish()
    }

    @Test func requirePQXDHRefusesABundleWithoutKyberAndAcceptEitherFallsBack() async throws {
        let relay = try await ClientTestRelay.start()
        let bob = try withoutKyber(try User.make("bob", relay) { $0.postQuantumPolicy = .acceptEither })
        await bob.online()
        #expect(try await relay.relay.store.kyberPrekeyCount(account: "bob", deviceID: 1) == 0)
        #expect(try await relay.relay.store.claimBundles(account: "bob", devices: [1]).first?.kyber == nil)

        // The default policy: a typed error to the app, no session, nothing stored or sent.
        let alice = try User.make("alice", relay)
        #expect(alice.client.configuration.postQuantumPolicy == .requirePQXDH)
        await alice.online()
        await #expect(throws: ClientError.postQuantumRequired("bob")) { try await alice.client.send("refused", to: "bob") }
        #expect(try alice.store.sessionDevices(for: "bob") == [])
        #expect(try await alice.client.messages(in: "bob").isEmpty)
        #expect(try await alice.client.outboxCount() == 0)

        // Written offline, the message is given up when the connection returns (sendRefused).
        let carol = try User.make("carol", relay)
        let deferred = try await carol.client.send("written offline", to: "bob")
        await carol.online()
        let refused = await carol.log.first { if case .sendRefused = $0 { true } else { false } }
        #expect(refused == .sendRefused(deferred, .postQuantumRequired("bob")))
        #expect(try await carol.client.outboxCount() == 0)

        // acceptEither: X3DH, and the session says so.
        let dave = try User.make("dave", relay) { $0.postQuantumPolicy = .acceptEither }
        await dave.online()
        let id = try await dave.client.send("classic", to: "bob")
        _ = await bob.waitMessage(from: "dave", "classic")
        await dave.waitTick(id, .delivered)
        #expect(try session(dave, with: "bob")?.establishment == .x3dh)
        #expect(try session(bob, with: "dave")?.establishment == .x3dh)
        #expect(try await dave.client.sessionEstablishment(with: "bob") == .x3dh)
        // Bob (acceptEither) still reaches PQXDH peers with PQXDH.
        let toAlice = try await bob.client.send("to a PQ peer", to: "alice")
        _ = await alice.waitMessage(from: "bob", "to a PQ peer")
        await bob.waitTick(toAlice, .delivered)
        #expect(try session(alice, with: "bob")?.establishment == .pqxdh)
        for u in [alice, bob, carol, dave] { await u.client.stop() }
        await relay.finish()
    }

    /// A relay that strips Kyber prekeys from bundles: a requirePQXDH sender refuses at once; an
    /// acceptEither sender falls back to X3DH, and the requirePQXDH recipient drops that X3DH
    /// prekey message (it never becomes a session or a message), while sessions set up before
    /// go on.
    @Test func aRelayStrippingKyberPrekeysIsDetectedOnBothSides() async throws {
        let relay = try ClientTestRelay()
        let stripper = Mutex<KyberStrippingStore?>(nil)
        relay.wrapStore = { base in
            let s = KyberStrippingStore(base)
            stripper.withLock { $0 = s }
            return s
        }
        try await relay.start()
        let strip = try #require(stripper.withLock { $0 })
        let bob = try User.make("bob", relay), erin = try User.make("erin", relay)
        await bob.online()
        await erin.online()
        let before = try await erin.client.send("before", to: "bob")
        _ = await bob.waitMessage(from: "erin", "before")
        await erin.waitTick(before, .delivered)
        #expect(try session(bob, with: "erin")?.establishment == .pqxdh)

        strip.stripping = true
        let alice = try User.make("alice", relay)
        await alice.online()
        await #expect(throws: ClientError.postQuantumRequired("bob")) { try await alice.client.send("refused", to: "bob") }
        let dave = try User.make("dave", relay) { $0.postQuantumPolicy = .acceptEither }
        await dave.online()
        let downgraded = try await dave.client.send("downgraded", to: "bob")
        await dave.waitTick(downgraded, .sent)
        #expect(try session(dave, with: "bob")?.establishment == .x3dh)
        // Erin's next message is queued after Dave's: once it is shown, Dave's was processed.
        let marker = try await erin.client.send("marker", to: "bob")
        _ = await bob.waitMessage(from: "erin", "marker")
        await erin.waitTick(marker, .delivered)
        #expect(try bob.store.message(downgraded) == nil)
        #expect(try session(bob, with: "dave") == nil)
        #expect(try await bob.client.messages(in: "dave").isEmpty)
        for u in [alice, bob, dave, erin] { await u.client.stop() }
        await relay.finish()
    }

    @Test func aRestartFromSQLiteKeepsKyberPrekeysAndDecryptsAPQXDHMessage() async throws {
        let relay = try await ClientTestRelay.start()
        let path = relay.directory.appendingPathComponent("bob-pq.sqlite").path
        let bob = try User.makeSQLite("bob", relay, path: path)
        await bob.online()
        await bob.client.stop()
        let before = try bob.store.kyberPreKeys()
        #expect(before.count == 101)
        // Alice writes while Bob's process is gone: a PQXDH prekey message waits on the relay.
        let alice = try User.make("alice", relay)
        await alice.online()
        let id = try await alice.client.send("after your restart", to: "bob")
        await alice.waitTick(id, .sent)
        // A new process: the file opened again with its key.
        let reopened = try SQLiteClientStore.open(path: path, secret: .keyFile(User.sqliteKey))
        let after = try reopened.kyberPreKeys()
        #expect(after.map(\.id) == before.map(\.id))
        #expect(after.map(\.keyPair.seed) == before.map(\.keyPair.seed))
        #expect(after.map(\.signature) == before.map(\.signature))
        #expect(after.map(\.kind) == before.map(\.kind))
        let again = try bob.reopened(relay, store: reopened)
        await again.online()
        _ = await again.waitMessage(from: "alice", "after your restart")
        await alice.waitTick(id, .delivered)
        #expect(try session(again, with: "alice")?.establishment == .pqxdh)
        #expect(try reopened.loadKyberPreKey(id: 2) == nil)  // the one-time key Alice used
        #expect(try reopened.kyberPreKeys().count == 100)
        await again.client.stop()
        await alice.client.stop()
        await relay.finish()
    }

    @Test func kyberPrekeysAreReplenishedBelowTenAndTheLastResortKeyRotates() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay)
        await alice.online()
        func reconnect() async {
            await alice.client.stop()
            await alice.online()
        }
        // Others use up 91 one-time Kyber prekeys: the next login's Welcome (9 left) makes the
        // client publish 100 more, ids 102…201.
        for _ in 0..<91 { _ = try await relay.relay.store.claimBundles(account: "alice", devices: nil) }
        #expect(try await relay.relay.store.kyberPrekeyCount(account: "alice", deviceID: 1) == 9)
        await reconnect()
        #expect(try await relay.relay.store.kyberPrekeyCount(account: "alice", deviceID: 1) == 109)
        #expect(try alice.store.kyberPreKeys().filter { $0.kind == .oneTime }.map(\.id) == Array(2...201))

        // The last-resort key rotates with the signed prekey: every two days, kept 30 days.
        func lastResorts() throws -> [UInt32] { try alice.store.kyberPreKeys().filter { $0.kind == .lastResort }.map(\.id) }
        relay.clock.advance(by: 2 * Self.day - 1)
        await reconnect()
        #expect(try lastResorts() == [1])
        relay.clock.advance(by: 1)
        await reconnect()
        #expect(try lastResorts() == [1, 202])
        for _ in 0..<109 { _ = try await relay.relay.store.claimBundles(account: "alice", devices: nil) }
        let published = try #require(try await relay.relay.store.claimBundles(account: "alice", devices: [1]).first)
        #expect(published.kyber?.id == 202 && published.kyberIsLastResort)
        relay.clock.advance(by: 30 * Self.day)
        await reconnect()
        // Key 1 went 30 days after 202 replaced it; 202 (30 days old) was rotated: the Welcome's
        // replenishment took ids 203…302 first, so the new last-resort key is 303.
        #expect(try lastResorts() == [202, 303])
        await alice.client.stop()
        await relay.finish()
    }
}
