import Foundation
import Hush
import HushTransport
import Testing
@testable import HushRelay

func expectError(_ s: RelayStanza, _ code: RelayErrorCode, device: UInt32 = 0, sourceLocation: SourceLocation = #_sourceLocation) {
    guard case .error(let e)? = s.body else {
        Issue.record("expected error \(code), got \(s)", sourceLocation: sourceLocation)
        return
    }
    #expect(e.code == code, sourceLocation: sourceLocation)
    #expect(e.deviceID == device, sourceLocation: sourceLocation)
}

@Suite(.serialized) struct RelayEndToEndTests {
    @Test func onlineAndOfflineDelivery() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice")
        let bob = TestDevice("bob")
        let a = try await RelayTestClient.register(relay, alice)
        #expect(a.welcome?.registered == true)
        #expect(a.welcome?.account == "alice")
        try await a.waitQueueEmpty()
        var b = try await RelayTestClient.register(relay, bob, pattern: .ik)
        try await b.waitQueueEmpty()

        // Online: pushed at once, acked by the server first.
        let ack = try await a.sendAndWait(1, to: "bob", "hello")
        guard case .serverAck(let sa)? = ack.body else { Issue.record("no server ack: \(ack)"); return }
        #expect(sa.serverTime == relay.clock.now)
        let d = try await b.nextDeliver()
        #expect(d.payload == Data("hello".utf8))
        #expect(d.senderAccount == "alice")
        #expect(d.senderDevice == 1)
        try await b.ack([d.serverID])
        _ = try await b.ping(1)   // the ack was processed before the pong
        #expect(try await relay.relay.store.queueDepth(account: "bob", deviceID: 1) == 0)

        // Offline: queued, drained in order on login, then QueueEmpty.
        await b.close()
        for i in 2...4 { _ = try await a.sendAndWait(UInt64(i), to: "bob", "m\(i)") }
        b = try await RelayTestClient.login(relay, bob)
        #expect(b.welcome?.registered == false)
        let drained = try await b.receiveAndAck(3)
        #expect(drained.map(\.payload) == ["m2", "m3", "m4"].map { Data($0.utf8) })
        try await b.waitQueueEmpty()
        _ = try await b.ping(2)
        #expect(try await relay.relay.store.queueDepth(account: "bob", deviceID: 1) == 0)
        await a.close()
        await b.close()
        await relay.stop()
    }

    @Test func unackedMessagesAreRedeliveredAfterReconnect() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice"), bob = TestDevice("bob")
        let a = try await RelayTestClient.register(relay, alice)
        var b = try await RelayTestClient.register(relay, bob)
        _ = try await a.sendAndWait(1, to: "bob", "once")
        let first = try await b.nextDeliver()
        await b.close()   // no ack
        b = try await RelayTestClient.login(relay, bob)
        let again = try await b.nextDeliver()
        #expect(again.serverID == first.serverID)
        #expect(again.payload == first.payload)
        await a.close(); await b.close(); await relay.stop()
    }

    @Test func ordering() async throws {
        let relay = try await TestRelay.start()
        let a = try await RelayTestClient.register(relay, TestDevice("alice"))
        let bob = TestDevice("bob")
        var b = try await RelayTestClient.register(relay, bob)
        // Half while bob is online (pipelined, no waiting), half while offline.
        for i in 1...50 { try await a.sendMessage(UInt64(i), to: "bob", "\(i)") }
        let online = try await b.receiveAndAck(50)
        #expect(online.map { String(decoding: $0.payload, as: UTF8.self) } == (1...50).map(String.init))
        await b.close()
        for i in 51...150 { try await a.sendMessage(UInt64(i), to: "bob", "\(i)") }
        for _ in 51...150 { _ = try await a.wait { if case .serverAck? = $0.body { () } else { nil } } }
        b = try await RelayTestClient.login(relay, bob)
        let offline = try await b.receiveAndAck(100)   // more than the delivery window
        #expect(offline.map { String(decoding: $0.payload, as: UTF8.self) } == (51...150).map(String.init))
        #expect(offline.map(\.serverID) == offline.map(\.serverID).sorted())
        try await b.waitQueueEmpty()
        await a.close(); await b.close(); await relay.stop()
    }

    @Test func dedupeAcrossReconnect() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice")
        var a = try await RelayTestClient.register(relay, alice)
        let bob = TestDevice("bob")
        var b = try await RelayTestClient.register(relay, bob)
        await b.close()
        let first = try await a.sendAndWait(77, to: "bob", "only once")
        let again = try await a.sendAndWait(77, to: "bob", "only once")
        #expect(first == again)   // same ack, same server time
        await a.close()
        relay.clock.advance(by: 5_000)
        a = try await RelayTestClient.login(relay, alice)
        let third = try await a.sendAndWait(77, to: "bob", "only once")
        #expect(third == first)
        #expect(try await relay.relay.store.queueDepth(account: "bob", deviceID: 1) == 1)
        b = try await RelayTestClient.login(relay, bob)
        let d = try await b.nextDeliver()
        try await b.ack([d.serverID])
        try await b.waitQueueEmpty()
        await a.close(); await b.close(); await relay.stop()
    }

    @Test func multiDeviceSendAndUnknownRecipients() async throws {
        let relay = try await TestRelay.start()
        let a = try await RelayTestClient.register(relay, TestDevice("alice"))
        let bob = TestDevice("bob")
        let b1 = try await RelayTestClient.register(relay, bob)
        let b2 = try await RelayTestClient.registerLinked(relay, bob.sibling(2))
        #expect(b2.welcome?.deviceID == 2)
        _ = try await a.sendAndWait(1, to: "bob", [1, 2], "both")
        #expect(try await b1.nextDeliver().payload == Data("both".utf8))
        #expect(try await b2.nextDeliver().payload == Data("both".utf8))
        expectError(try await a.sendAndWait(2, to: "carol", "x"), .unknownAccount)
        expectError(try await a.sendAndWait(3, to: "bob", [1, 3], "x"), .unknownDevice, device: 3)
        expectError(try await a.sendAndWait(4, to: "bob", [], "x"), .malformedStanza)
        expectError(try await a.sendAndWait(5, to: "bob", [1, 1], "x"), .malformedStanza)
        await a.close(); await b1.close(); await b2.close(); await relay.stop()
    }

    @Test func ttlPurgeWithInjectedClock() async throws {
        let relay = try await TestRelay.start()
        let a = try await RelayTestClient.register(relay, TestDevice("alice"))
        let bob = TestDevice("bob")
        var b = try await RelayTestClient.register(relay, bob)
        await b.close()
        _ = try await a.sendAndWait(1, to: "bob", "old")
        relay.clock.advance(by: 29 * 86_400_000)
        #expect(await relay.relay.purgeExpired() == 0)
        _ = try await a.sendAndWait(2, to: "bob", "new")
        relay.clock.advance(by: 86_400_000)
        #expect(await relay.relay.purgeExpired() == 1)
        await a.close()
        // The relay's certificate is checked against the client's clock: keep the client's clock valid.
        b = try await RelayTestClient.login(relay, bob)
        let d = try await b.nextDeliver()
        #expect(d.payload == Data("new".utf8))
        try await b.ack([d.serverID])
        try await b.waitQueueEmpty()
        await b.close(); await relay.stop()
    }

    @Test func queueCap() async throws {
        let relay = try await TestRelay.start { $0.queueCap = 3 }
        let a = try await RelayTestClient.register(relay, TestDevice("alice"))
        let bob = TestDevice("bob")
        var b = try await RelayTestClient.register(relay, bob)
        await b.close()
        for i in 1...3 {
            guard case .serverAck? = try await a.sendAndWait(UInt64(i), to: "bob", "\(i)").body else { Issue.record("not acked"); return }
        }
        expectError(try await a.sendAndWait(4, to: "bob", "4"), .queueFull, device: 1)
        b = try await RelayTestClient.login(relay, bob)
        _ = try await b.receiveAndAck(3)
        _ = try await b.ping(1)
        guard case .serverAck? = try await a.sendAndWait(4, to: "bob", "4").body else { Issue.record("room after ack"); return }
        await a.close(); await b.close(); await relay.stop()
    }

    @Test func prekeysUploadFetchConsumeAndLowNotice() async throws {
        let relay = try await TestRelay.start { $0.fetchBurst = 3; $0.fetchRate = 0.000_1 }
        let bob = TestDevice("bob")
        let b = try await RelayTestClient.register(relay, bob)
        let a = try await RelayTestClient.register(relay, TestDevice("alice"))
        let spk = try Curve25519.KeyAgreement.PrivateKey()
        var up = RelayUploadPrekeys()
        up.requestID = 5
        up.registrationID = 1234
        up.signedPrekey.id = 1
        up.signedPrekey.publicKey = Data(spk.publicKey.rawRepresentation)
        up.signedPrekey.signature = Data(try XEdDSA.signature(for: spk.publicKey.signalRepresentation, using: bob.identity))
        let otks = try (1...10).map { _ in try Curve25519.KeyAgreement.PrivateKey() }
        up.oneTime = otks.enumerated().map { i, k in
            var p = RelayPrekey()
            p.id = UInt32(i + 1)
            p.publicKey = Data(k.publicKey.rawRepresentation)
            return p
        }
        var s = RelayStanza()
        s.uploadPrekeys = up
        try await b.send(s)
        let ok = try await b.wait { if case .ok(let o)? = $0.body { o } else { nil } }
        #expect(ok.requestID == 5)

        var fetch = RelayFetchPrekeys()
        fetch.requestID = 9
        fetch.account = "bob"
        var f = RelayStanza()
        f.fetchPrekeys = fetch
        try await a.send(f)
        let bundles = try await a.wait { if case .prekeyBundles(let p)? = $0.body { p } else { nil } }
        #expect(bundles.requestID == 9)
        #expect(bundles.identityKey == Data(bob.identity.publicKey.rawRepresentation))
        #expect(bundles.bundles.count == 1)
        let bundle = bundles.bundles[0]
        #expect(bundle.registrationID == 1234)
        #expect(bundle.oneTime.id == 1)
        #expect(bundle.signedPrekey.publicKey == up.signedPrekey.publicKey)
        // The bundle works with Hush's session builder.
        let hushBundle = PreKeyBundle(
            registrationID: bundle.registrationID, deviceID: bundle.deviceID,
            identityKey: IdentityKey(publicKey: try .init(rawRepresentation: bundles.identityKey)),
            signedPreKey: .init(id: bundle.signedPrekey.id, publicKey: try .init(rawRepresentation: bundle.signedPrekey.publicKey),
                                signature: Array(bundle.signedPrekey.signature)),
            oneTimePreKey: .init(id: bundle.oneTime.id, publicKey: try .init(rawRepresentation: bundle.oneTime.publicKey)))
        _ = try hushBundle.verifiedSignedPreKey()

        let low = try await b.wait { if case .prekeysLow(let l)? = $0.body { l } else { nil } }
        #expect(low.remaining == 9)

        // Rate limit per requester: burst 3, then RATE_LIMITED.
        for rid in UInt32(10)...11 {
            fetch.requestID = rid
            f.fetchPrekeys = fetch
            try await a.send(f)
            _ = try await a.wait { if case .prekeyBundles? = $0.body { () } else { nil } }
        }
        fetch.requestID = 12
        f.fetchPrekeys = fetch
        try await a.send(f)
        let limited = try await a.wait { if case .error(let e)? = $0.body, e.requestID == 12 { e } else { nil } }
        #expect(limited.code == .rateLimited)

        // A bad signed prekey signature and too many one-time prekeys are typed errors.
        up.requestID = 6
        up.signedPrekey.signature = Data(repeating: 1, count: 64)
        s.uploadPrekeys = up
        try await b.send(s)
        let bad = try await b.wait { if case .error(let e)? = $0.body, e.requestID == 6 { e } else { nil } }
        #expect(bad.code == .invalidSignature)
        up.requestID = 7
        up.clearSignedPrekey()
        up.oneTime = Array(repeating: up.oneTime[0], count: 101)
        s.uploadPrekeys = up
        try await b.send(s)
        let many = try await b.wait { if case .error(let e)? = $0.body, e.requestID == 7 { e } else { nil } }
        #expect(many.code == .tooManyPrekeys)
        await a.close(); await b.close(); await relay.stop()
    }
}
