import Foundation
import Hush
import HushTransport
import Synchronization
import Testing
@testable import HushClient

/// Polls `condition` every 2 ms until it holds; false after `limit` (the caller expects true).
func eventually(within limit: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return try await condition()
}

/// The outbox's delivery rules: re-sealing an envelope whose sender certificate expired while
/// it waited, per-conversation order across retryable errors, and a full inbound buffer
/// closing the connection instead of losing a message (Docs/client.md §Sending, §Connection).
@Suite(.serialized, .timeLimit(.minutes(2))) struct OutboxDeliveryTests {
    @Test func anEnvelopeSealedBeforeADisconnectThatOutlastsItsCertificateIsResealed() async throws {
        let relay = try ClientTestRelay()
        // While `blocking`, alice's sends to bob crash her connection at the relay (never stored).
        let blocking = Atomic<Bool>(false), dropped = Atomic<Int>(0)
        let accepted = Mutex<[(UInt64, [UInt8])]>([])
        relay.hook = { stanza in
            guard case .send(let m)? = stanza.body, m.account == "bob" else { return }
            if blocking.load(ordering: .relaxed) {
                dropped.add(1, ordering: .relaxed)
                throw CancellationError()
            }
            // A payload per device (Docs/client.md §Several devices): bob has one.
            accepted.withLock { $0.append((m.clientMessageID, Array(m.payloads.first?.payload ?? m.payload))) }
        }
        try await relay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice.online()
        await bob.online()
        let warm = try await alice.client.send("warm up", to: "bob")
        await alice.waitTick(warm, .delivered)
        let first = try #require(await alice.client.senderCertificate)

        blocking.store(true, ordering: .relaxed)
        let late = try await alice.client.send("sealed before the outage", to: "bob")
        let sealed = try #require(try alice.store.outbox().first { $0.message == late })
        let fan = try #require(FanOutPayload(decoding: sealed.payload))
        #expect(sealed.devices == [1] && fan.devices == [1])
        #expect(fan.copies[0].inner.certificateExpiration == first.expiration)
        #expect(fan.copies[0].inner.contentType == .message)
        #expect(await eventually { dropped.load(ordering: .relaxed) >= 1 })
        await alice.client.stop()
        await bob.client.stop()
        // Eight days later: the certificate in the envelope (at most 7 days) has expired.
        relay.clock.advance(by: 8 * 86_400_000)
        #expect(first.expiration < relay.clock.now)
        blocking.store(false, ordering: .relaxed)
        await bob.online()
        await alice.online()

        let received = await bob.waitMessage(from: "alice", "sealed before the outage")
        #expect(received.id == late)
        await alice.waitTick(late, .delivered)
        // Sent under the same client message id, in a new envelope with a renewed certificate.
        let resent = try #require(accepted.withLock { $0.first { $0.0 == sealed.clientMessageID } })
        #expect(resent.1 != fan.copies[0].envelope)
        let renewed = try #require(await alice.client.senderCertificate)
        #expect(renewed.expiration > relay.clock.now)
        #expect(await bob.log.messages(from: "alice").map(\.body) == ["warm up", "sealed before the outage"])
        // The ratchet did not advance twice: the session keeps working both ways.
        let next = try await alice.client.send("and after", to: "bob")
        _ = await bob.waitMessage(from: "alice", "and after")
        let back = try await bob.client.send("reply", to: "alice")
        _ = await alice.waitMessage(from: "bob", "reply")
        await alice.waitTick(next, .delivered)
        await bob.waitTick(back, .delivered)
        await alice.client.stop()
        await bob.client.stop()
        await relay.finish()
    }

    @Test func aQueueFullSendIsNotOvertakenByLaterOnesToTheSameAccount() async throws {
        let relay = try ClientTestRelay()
        relay.tune = { $0.queueCap = 3 }
        // Every Send to bob reaching the relay, in arrival order (QUEUE_FULL is decided after
        // the hook, so retries show up here too).
        let attempts = Mutex<[UInt64]>([])
        relay.hook = { stanza in
            if case .send(let m)? = stanza.body, m.account == "bob" { attempts.withLock { $0.append(m.clientMessageID) } }
        }
        try await relay.start()
        let pauses = Atomic<Int>(0)
        let pause = Duration.milliseconds(7)
        let alice = try User.make("alice", relay) { c in
            c.retryPause = pause
            c.sleep = { d in
                if d == pause { pauses.add(1, ordering: .relaxed) }
                try await Task.sleep(for: d)
            }
        }
        let bob = try User.make("bob", relay), carol = try User.make("carol", relay)
        for u in [alice, bob, carol] { await u.online() }
        let warm = try await alice.client.send("warm up", to: "bob")
        await alice.waitTick(warm, .delivered)
        #expect(await eventually { relay.relay.inFlight(account: "bob", deviceID: 1) == 0 })
        await bob.client.stop()
        attempts.withLock { $0 = [] }

        // Bob is away: his queue takes three, the fourth is refused (retryable) until he drains.
        var ids: [MessageID] = []
        for i in 1...8 { ids.append(try await alice.client.send("m\(i)", to: "bob")) }
        for id in ids.prefix(3) { await alice.waitTick(id, .sent) }
        #expect(await eventually { pauses.load(ordering: .relaxed) >= 3 })
        // Another conversation is not held up by bob's.
        let other = try await alice.client.send("to carol meanwhile", to: "carol")
        _ = await carol.waitMessage(from: "alice", "to carol meanwhile")
        #expect(try alice.store.message(ids[3])?.state == .pending)

        await bob.online()
        for id in ids { await alice.waitTick(id, .sent) }
        _ = await bob.waitMessage(from: "alice", "m8")
        #expect(await bob.log.messages(from: "alice").map(\.body) == ["warm up"] + (1...8).map { "m\($0)" })
        // The relay never saw a later message to bob before the refused one was accepted: the
        // attempts, repeats collapsed, are the send order.
        var collapsed: [UInt64] = []
        for a in attempts.withLock({ $0 }) where collapsed.last != a { collapsed.append(a) }
        #expect(collapsed == ids.map(\.clientMessageID))
        await alice.waitTick(other, .delivered)
        for u in [alice, bob, carol] { await u.client.stop() }
        await relay.finish()
    }

    @Test func aFullInboundBufferClosesTheConnectionAndLosesNothing() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay)
        // One received message may wait for bob's engine; a second closes the connection.
        let bob = try User.make("bob", relay) { $0.inboundBufferLimit = 1 }
        await alice.online()
        await bob.online()
        let warm = try await alice.client.send("warm up", to: "bob")
        await alice.waitTick(warm, .delivered)
        await bob.client.stop()
        var ids: [MessageID] = []
        for i in 1...20 { ids.append(try await alice.client.send("queued \(i)", to: "bob")) }
        for id in ids { await alice.waitTick(id, .sent) }

        // The relay sends the queue back to back after login: bob falls behind at once.
        await bob.online()
        _ = await bob.waitMessage(from: "alice", "queued 20")
        #expect(await bob.client.inboundOverflows >= 1)
        #expect(await bob.client.lastLinkError == .inboundOverflow)
        #expect(await bob.log.messages(from: "alice").map(\.body) == ["warm up"] + (1...20).map { "queued \($0)" })
        #expect(try bob.store.messages(in: "alice", before: nil, limit: 50).count == 21)
        for id in ids { await alice.waitTick(id, .delivered) }
        await alice.client.stop()
        await bob.client.stop()
        await relay.finish()
    }
}
