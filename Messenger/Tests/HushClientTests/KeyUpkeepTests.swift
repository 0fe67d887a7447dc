import Foundation
import Hush
import HushRelay
import Testing
@testable import HushClient

/// Prekey replenishment, signed prekey rotation and sender certificate renewal, driven by the
/// injected clock (a reconnect runs the upkeep, as every ping tick does).
@Suite(.serialized, .timeLimit(.minutes(2))) struct KeyUpkeepTests {
    func reconnect(_ u: User) async {
        await u.client.stop()
        await u.online()
    }

    @Test func registrationUploadsOneHundredPrekeysAndReplenishesBelowTen() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay)
        await alice.online()
        #expect(try await relay.relay.store.prekeyCount(account: "alice", deviceID: 1) == 100)
        #expect(try alice.store.preKeyIDs() == Array(1...100))
        // Others use up 91: 9 left, so the next login's Welcome makes the client upload 100 more.
        for _ in 0..<91 { _ = try await relay.relay.store.claimBundles(account: "alice", devices: nil) }
        #expect(try await relay.relay.store.prekeyCount(account: "alice", deviceID: 1) == 9)
        await reconnect(alice)
        #expect(try await relay.relay.store.prekeyCount(account: "alice", deviceID: 1) == 109)
        #expect(try alice.store.preKeyIDs() == Array(1...200))
        await alice.client.stop()
        await relay.finish()
    }

    @Test func signedPrekeyRotatesEveryTwoDaysAndOldOnesGoAfterThirtyDays() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay)
        await alice.online()
        func published() async throws -> UInt32? {
            try await relay.relay.store.claimBundles(account: "alice", devices: [1]).first?.signedPrekey?.id
        }
        #expect(try await published() == 1)
        relay.clock.advance(by: 2 * 86_400_000 - 1)
        await reconnect(alice)
        #expect(try alice.store.signedPreKeys().map(\.id) == [1])  // not yet two days old
        relay.clock.advance(by: 1)
        await reconnect(alice)
        #expect(try alice.store.signedPreKeys().map(\.id) == [1, 2])
        #expect(try await published() == 2)
        // 30 days after key 2 replaced key 1, key 1 is deleted; key 2 (older than 2 days) is rotated too.
        relay.clock.advance(by: 30 * 86_400_000)
        await reconnect(alice)
        #expect(try alice.store.signedPreKeys().map(\.id) == [2, 3])
        #expect(try await published() == 3)
        await alice.client.stop()
        await relay.finish()
    }

    @Test func senderCertificateIsRenewedWithLessThanADayLeft() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay)
        await alice.online()
        let first = try #require(await alice.client.senderCertificate)
        #expect(first.expiration == relay.clock.now + 7 * 86_400_000)
        #expect(first.senderID == "alice" && first.deviceID == 1)
        relay.clock.advance(by: 5 * 86_400_000)
        await reconnect(alice)
        #expect(await alice.client.senderCertificate == first)  // two days left: kept
        relay.clock.advance(by: 86_400_000 + 1)
        await reconnect(alice)
        let renewed = try #require(await alice.client.senderCertificate)
        #expect(renewed.expiration == relay.clock.now + 7 * 86_400_000)
        await alice.client.stop()
        await relay.finish()
    }
}
