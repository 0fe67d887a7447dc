import Foundation
import Hush
import HushTransport
import Testing
@testable import HushRelay

/// Sealed sender on the wire (`Docs/spec/relay.md` §20): `SetSealedAccess` on a logged-in
/// connection, `SealedSend` on an anonymous (NK) one, with a real relay over loopback.
@Suite(.serialized) struct RelaySealedSenderTests {
    static let key = Data((1...16).map { UInt8($0) })

    static func setAccess(_ c: RelayTestClient, key: Data, anyone: Bool = false, rid: UInt32 = 7) async throws -> RelayStanza {
        var s = RelayStanza()
        s.setSealedAccess.requestID = rid
        s.setSealedAccess.accessKey = key
        s.setSealedAccess.allowAnyone = anyone
        try await c.send(s)
        // The answer (Ok or Error with this request id), past any Deliver pushed meanwhile.
        return try await c.wait { stanza -> RelayStanza? in
            switch stanza.body {
            case .ok(let o)? where o.requestID == rid: stanza
            case .error(let e)? where e.requestID == rid: stanza
            default: nil
            }
        }
    }

    static func sealed(_ c: RelayTestClient, _ cmid: UInt64, to account: String, devices: [UInt32] = [1], key: Data = key,
                       payload: Data = Data("sealed".utf8)) async throws -> RelayStanza {
        var s = RelayStanza()
        s.sealedSend.clientMessageID = cmid
        s.sealedSend.account = account
        s.sealedSend.devices = devices
        s.sealedSend.accessKey = key
        s.sealedSend.payload = payload
        try await c.send(s)
        return try await c.next()
    }

    static func anonymous(_ relay: TestRelay) async throws -> RelayTestClient {
        try await RelayTestClient.connect(relay, nil, pattern: .nk, hello: RelayClientHello())
    }

    static func expectErrorFor(_ s: RelayStanza, _ code: RelayErrorCode, cmid: UInt64, device: UInt32 = 0,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        expectError(s, code, device: device, sourceLocation: sourceLocation)
        if case .error(let e)? = s.body { #expect(e.clientMessageID == cmid, sourceLocation: sourceLocation) }
    }

    @Test func sealedSendIsDeliveredWithoutASender() async throws {
        let relay = try await TestRelay.start()
        let bob = TestDevice("bob")
        let b = try await RelayTestClient.register(relay, bob)
        try await b.waitQueueEmpty()
        let ok = try await Self.setAccess(b, key: Self.key)
        guard case .ok(let o)? = ok.body else { Issue.record("no ok: \(ok)"); return }
        #expect(o.requestID == 7)

        let anon = try await Self.anonymous(relay)
        #expect(anon.welcome?.account == "")
        #expect(anon.welcome?.deviceID == 0)
        let ack = try await Self.sealed(anon, 0xDEAD_BEEF_0000_0001, to: "bob")
        guard case .serverAck(let sa)? = ack.body else { Issue.record("no server ack: \(ack)"); return }
        #expect(sa.clientMessageID == 0xDEAD_BEEF_0000_0001)
        #expect(sa.serverTime == relay.clock.now)
        let d = try await b.nextDeliver()
        #expect(d.senderAccount == "")
        #expect(d.senderDevice == 0)
        #expect(d.payload == Data("sealed".utf8))
        #expect(d.serverTime == sa.serverTime)

        // A retry (same id) is the same message: the first time again, nothing stored.
        relay.clock.advance(by: 5_000)
        let again = try await Self.sealed(anon, 0xDEAD_BEEF_0000_0001, to: "bob", payload: Data("other".utf8))
        guard case .serverAck(let sa2)? = again.body else { Issue.record("no server ack: \(again)"); return }
        #expect(sa2.serverTime == sa.serverTime)
        try await b.ack([d.serverID])
        _ = try await b.ping(1)
        #expect(try await relay.relay.store.queueDepth(account: "bob", deviceID: 1) == 0)

        // Offline: queued under the recipient's anonymous scope, never a sender's name.
        await b.close()
        _ = try await Self.sealed(anon, 99, to: "bob")
        let stored = try await relay.relay.store.pending(account: "bob", deviceID: 1, after: 0, limit: 10)
        #expect(stored.map(\.senderAccount) == ["*bob"])
        #expect(stored.map(\.senderDevice) == [0])
        let b2 = try await RelayTestClient.login(relay, bob)
        let drained = try await b2.receiveAndAck(1)
        #expect(drained.map(\.senderAccount) == [""])
        #expect(drained.map(\.senderDevice) == [0])
        try await b2.waitQueueEmpty()
        await anon.close()
        await b2.close()
        await relay.stop()
    }

    @Test func accessIsCheckedAndRefusalsAreTyped() async throws {
        let relay = try await TestRelay.start()
        let bob = TestDevice("bob"), carol = TestDevice("carol")
        let b = try await RelayTestClient.register(relay, bob)
        try await b.waitQueueEmpty()
        let c = try await RelayTestClient.register(relay, carol)
        try await c.waitQueueEmpty()
        _ = try await Self.setAccess(b, key: Self.key)
        let anon = try await Self.anonymous(relay)

        var wrong = Self.key
        wrong[15] ^= 1
        Self.expectErrorFor(try await Self.sealed(anon, 1, to: "bob", key: wrong), .accessDenied, cmid: 1)
        // Carol set no access: nobody may send her sealed messages.
        Self.expectErrorFor(try await Self.sealed(anon, 2, to: "carol"), .accessDenied, cmid: 2)
        // An unknown or invalid name is the same answer as a wrong key (no account enumeration).
        Self.expectErrorFor(try await Self.sealed(anon, 3, to: "nobody"), .accessDenied, cmid: 3)
        Self.expectErrorFor(try await Self.sealed(anon, 4, to: "Not A Name"), .accessDenied, cmid: 4)
        // The §7.1 checks come first.
        Self.expectErrorFor(try await Self.sealed(anon, 5, to: "bob", key: Data(repeating: 1, count: 15)), .malformedStanza, cmid: 5)
        Self.expectErrorFor(try await Self.sealed(anon, 6, to: "bob", devices: []), .malformedStanza, cmid: 6)
        Self.expectErrorFor(try await Self.sealed(anon, 7, to: "bob", devices: [1, 1]), .malformedStanza, cmid: 7)
        Self.expectErrorFor(try await Self.sealed(anon, 8, to: "bob", payload: Data(count: 64_001)), .payloadTooLarge, cmid: 8)
        // With the key: a device that does not exist is named (the sender refreshes its list).
        Self.expectErrorFor(try await Self.sealed(anon, 9, to: "bob", devices: [1, 7]), .unknownDevice, cmid: 9, device: 7)
        #expect(try await relay.relay.store.queueDepth(account: "bob", deviceID: 1) == 0)

        // Logged-in connections cannot send sealed (it would name the sender); anonymous ones
        // cannot set access, nor Send.
        Self.expectErrorFor(try await Self.sealed(c, 10, to: "bob"), .notAnonymous, cmid: 10)
        expectError(try await Self.setAccess(anon, key: Self.key), .unauthenticated)
        #expect(anon.backlog.isEmpty)
        var send = RelayStanza()
        send.send.clientMessageID = 11
        send.send.account = "bob"
        send.send.devices = [1]
        send.send.payload = Data("x".utf8)
        try await anon.send(send)
        Self.expectErrorFor(try await anon.next(), .unauthenticated, cmid: 11)
        // An access key of the wrong length is refused, and changes nothing.
        let bad = try await Self.setAccess(b, key: Data(repeating: 2, count: 17), rid: 8)
        expectError(bad, .malformedStanza)
        if case .error(let e)? = bad.body { #expect(e.requestID == 8) }
        guard case .serverAck? = try await Self.sealed(anon, 12, to: "bob").body else { Issue.record("the key changed"); return }
        #expect(try await relay.relay.store.queueDepth(account: "bob", deviceID: 1) == 1)

        // Unrestricted: any 16 bytes are accepted; restricted again: only the key.
        _ = try await Self.setAccess(c, key: Data(), anyone: true)
        guard case .serverAck? = try await Self.sealed(anon, 13, to: "carol", key: wrong).body else { Issue.record("anyone refused"); return }
        _ = try await Self.setAccess(c, key: Self.key, anyone: false)
        Self.expectErrorFor(try await Self.sealed(anon, 14, to: "carol", key: wrong), .accessDenied, cmid: 14)
        guard case .serverAck? = try await Self.sealed(anon, 15, to: "carol").body else { Issue.record("key refused"); return }
        // A resend of a stored message after the key changed is still that message (its first
        // time), not ACCESS_DENIED: the sender must not fall back to a logged-in copy.
        let first = try await Self.sealed(anon, 16, to: "carol")
        guard case .serverAck(let f)? = first.body else { Issue.record("not stored: \(first)"); return }
        _ = try await Self.setAccess(c, key: wrong, anyone: false)
        relay.clock.advance(by: 1_000)
        let resent = try await Self.sealed(anon, 16, to: "carol")
        guard case .serverAck(let r)? = resent.body else { Issue.record("resend refused: \(resent)"); return }
        #expect(r.serverTime == f.serverTime)
        Self.expectErrorFor(try await Self.sealed(anon, 17, to: "carol"), .accessDenied, cmid: 17)
        // The anonymous connection survived every refusal.
        _ = try await anon.ping(3)
        await anon.close()
        await b.close()
        await c.close()
        await relay.stop()
    }
}
