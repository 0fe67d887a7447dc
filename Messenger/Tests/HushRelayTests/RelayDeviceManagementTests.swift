import Foundation
import Hush
import HushTransport
import Testing
@testable import HushRelay

/// Several devices per account, the relay's part (`Docs/spec/relay.md` §7.1 "A payload per
/// device", §20.3, §22): per-device payloads, the device list, removal and the provisioning
/// channel, with a real relay over loopback.
@Suite(.serialized) struct RelayDeviceManagementTests {
    /// Sends `stanza` and returns the answer carrying request id `rid` (`Ok`, `Error`, or the
    /// request's own answer).
    static func request(_ c: RelayTestClient, _ stanza: RelayStanza, _ rid: UInt32) async throws -> RelayStanza {
        try await c.send(stanza)
        return try await c.wait { s in
            switch s.body {
            case .ok(let o)? where o.requestID == rid: s
            case .error(let e)? where e.requestID == rid: s
            case .deviceList(let l)? where l.requestID == rid: s
            case .provisioningAddress(let a)? where a.requestID == rid: s
            default: nil
            }
        }
    }

    static func expectRequestError(_ s: RelayStanza, _ code: RelayErrorCode, requestID: UInt32, device: UInt32 = 0,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        var expected = RelayError()
        expected.code = code
        expected.requestID = requestID
        expected.deviceID = device
        guard case .error(let e)? = s.body else {
            Issue.record("expected \(code), got \(s)", sourceLocation: sourceLocation)
            return
        }
        #expect(e == expected, sourceLocation: sourceLocation)
    }

    static func expectOK(_ s: RelayStanza, _ rid: UInt32, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .ok(let o)? = s.body, o.requestID == rid else {
            Issue.record("expected Ok{\(rid)}, got \(s)", sourceLocation: sourceLocation)
            return
        }
    }

    static func list(_ c: RelayTestClient, _ rid: UInt32) async throws -> RelayStanza {
        var s = RelayStanza()
        s.listDevices.requestID = rid
        return try await request(c, s, rid)
    }

    static func remove(_ c: RelayTestClient, _ device: UInt32, _ rid: UInt32) async throws -> RelayStanza {
        var s = RelayStanza()
        s.removeDevice.requestID = rid
        s.removeDevice.deviceID = device
        return try await request(c, s, rid)
    }

    static func openProvisioning(_ c: RelayTestClient, _ rid: UInt32) async throws -> RelayStanza {
        var s = RelayStanza()
        s.openProvisioning.requestID = rid
        return try await request(c, s, rid)
    }

    static func sendProvisioning(_ c: RelayTestClient, _ address: Data, _ body: Data, _ rid: UInt32) async throws -> RelayStanza {
        var s = RelayStanza()
        s.sendProvisioning.requestID = rid
        s.sendProvisioning.address = address
        s.sendProvisioning.body = body
        return try await request(c, s, rid)
    }

    static func perDevice(_ c: RelayTestClient, _ cmid: UInt64, to account: String, _ payloads: [(UInt32, String)],
                          allDevices: Bool = true, configure: (inout RelaySend) -> Void = { _ in }) async throws -> RelayStanza {
        var s = RelayStanza()
        s.send.clientMessageID = cmid
        s.send.account = account
        s.send.allDevices = allDevices
        s.send.payloads = payloads.map { d, p in
            var dp = RelayDevicePayload()
            dp.deviceID = d
            dp.payload = Data(p.utf8)
            return dp
        }
        configure(&s.send)
        try await c.send(s)
        return try await RelayDevicesTests.answer(c, cmid)
    }

    static func info(_ d: TestDevice, registrationID: UInt32 = 0) -> RelayDeviceInfo {
        var i = RelayDeviceInfo()
        i.deviceID = d.deviceID
        i.staticKey = Data(d.key.publicKey.rawRepresentation)
        i.registrationID = registrationID
        return i
    }

    // MARK: payloads per device (§7.1, §20.3)

    @Test func aPayloadPerDeviceEachDeviceGetsItsOwn() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice"), bob = TestDevice("bob")
        let a = try await RelayTestClient.register(relay, alice)
        try await a.waitQueueEmpty()
        let b1 = try await RelayTestClient.register(relay, bob)
        try await b1.waitQueueEmpty()
        let b2 = try await RelayTestClient.registerLinked(relay, bob.sibling(2))
        try await b2.waitQueueEmpty()

        let ack = try await Self.perDevice(a, 10, to: "bob", [(2, "for two"), (1, "for one")])
        guard case .serverAck(let first)? = ack.body else { Issue.record("no ServerAck: \(ack)"); return }
        #expect(first.serverTime == relay.clock.now)
        let d1 = try await b1.nextDeliver(), d2 = try await b2.nextDeliver()
        #expect(d1.payload == Data("for one".utf8) && d2.payload == Data("for two".utf8))
        #expect(d1.senderAccount == "alice" && d1.senderDevice == 1 && d1.serverTime == first.serverTime)
        // Each copy is remembered under its copy id (§21.3) in the sender's scope.
        for d: UInt32 in [1, 2] {
            let copy = RelayConnection.multiSendCopyID(10, account: "bob", deviceID: d)
            #expect(try await relay.relay.store.acceptedTime(senderAccount: "alice", senderDevice: 1, clientMessageID: copy) == first.serverTime)
        }
        #expect(try await relay.relay.store.acceptedTime(senderAccount: "alice", senderDevice: 1, clientMessageID: 10) == nil)

        // A resend (another payload even) stores nothing and keeps the first time.
        relay.clock.advance(by: 5_000)
        let again = try await Self.perDevice(a, 10, to: "bob", [(1, "changed"), (2, "changed")])
        guard case .serverAck(let second)? = again.body else { Issue.record("no ServerAck: \(again)"); return }
        #expect(second.serverTime == first.serverTime)
        try await b1.ack([d1.serverID])
        try await b2.ack([d2.serverID])
        _ = try await b1.ping(1)
        _ = try await b2.ping(1)
        let depths = (try await RelayDevicesTests.depth(relay, "bob", 1), try await RelayDevicesTests.depth(relay, "bob", 2))
        #expect(depths == (0, 0))

        // all_devices: the payloads' devices are the list (§7.6).
        RelayDevicesTests.expectMismatch(try await Self.perDevice(a, 11, to: "bob", [(1, "x")]), cmid: 11, account: "bob",
                                         missing: [2], extra: [])
        RelayDevicesTests.expectMismatch(try await Self.perDevice(a, 12, to: "bob", [(1, "x"), (2, "x"), (5, "x")]), cmid: 12,
                                         account: "bob", missing: [], extra: [5])
        // Without all_devices, an unknown listed device is UNKNOWN_DEVICE, nothing stored.
        expectError(try await Self.perDevice(a, 13, to: "bob", [(1, "x"), (7, "x")], allDevices: false), .unknownDevice, device: 7)
        expectError(try await Self.perDevice(a, 14, to: "nobody", [(1, "x")]), .unknownAccount)
        expectError(try await Self.perDevice(a, 15, to: "Bad Name", [(1, "x")]), .unknownAccount)
        #expect(try await RelayDevicesTests.depth(relay, "bob", 1) == 0)

        // The limits: not with devices or payload, 1–16 distinct valid ids, payloads ≤ 64,000 bytes.
        expectError(try await Self.perDevice(a, 20, to: "bob", [(1, "x"), (2, "x")]) { $0.devices = [1] }, .malformedStanza)
        expectError(try await Self.perDevice(a, 21, to: "bob", [(1, "x"), (2, "x")]) { $0.payload = Data("p".utf8) }, .malformedStanza)
        expectError(try await Self.perDevice(a, 22, to: "bob", [(1, "x"), (1, "y")]), .malformedStanza)
        expectError(try await Self.perDevice(a, 23, to: "bob", [(0, "x")]), .malformedStanza)
        expectError(try await Self.perDevice(a, 24, to: "bob", (1...17).map { (UInt32($0), "x") }), .malformedStanza)
        expectError(try await Self.perDevice(a, 25, to: "bob", [(1, "x"), (2, String(repeating: "z", count: 64_001))]),
                    .payloadTooLarge)
        let big = try await Self.perDevice(a, 26, to: "bob", [(1, String(repeating: "z", count: 64_000)), (2, "small")])
        guard case .serverAck? = big.body else { Issue.record("64,000 bytes refused: \(big)"); return }
        await relay.stop()
    }

    @Test func aSealedSendWithAPayloadPerDevice() async throws {
        let relay = try await TestRelay.start()
        let bob = TestDevice("bob")
        let b1 = try await RelayTestClient.register(relay, bob)
        try await b1.waitQueueEmpty()
        let b2 = try await RelayTestClient.registerLinked(relay, bob.sibling(2))
        try await b2.waitQueueEmpty()
        let set = try await RelaySealedSenderTests.setAccess(b1, key: RelaySealedSenderTests.key)
        guard case .ok? = set.body else { Issue.record("no ok: \(set)"); return }
        let anon = try await RelaySealedSenderTests.anonymous(relay)

        func sealed(_ cmid: UInt64, key: Data = RelaySealedSenderTests.key, _ payloads: [(UInt32, String)]) async throws -> RelayStanza {
            var s = RelayStanza()
            s.sealedSend.clientMessageID = cmid
            s.sealedSend.account = "bob"
            s.sealedSend.accessKey = key
            s.sealedSend.allDevices = true
            s.sealedSend.payloads = payloads.map { d, p in
                var dp = RelayDevicePayload()
                dp.deviceID = d
                dp.payload = Data(p.utf8)
                return dp
            }
            try await anon.send(s)
            return try await anon.next()
        }
        let ack = try await sealed(0x1234_5678_9abc_def0, [(1, "one"), (2, "two")])
        guard case .serverAck(let first)? = ack.body else { Issue.record("no ServerAck: \(ack)"); return }
        let d1 = try await b1.nextDeliver(), d2 = try await b2.nextDeliver()
        #expect(d1.payload == Data("one".utf8) && d2.payload == Data("two".utf8))
        #expect(d1.senderAccount == "" && d1.senderDevice == 0 && d2.senderAccount == "")
        let scope = AnonymousSender.scope(recipient: "bob")
        let copy = RelayConnection.multiSendCopyID(0x1234_5678_9abc_def0, account: "bob", deviceID: 1)
        #expect(try await relay.relay.store.acceptedTime(senderAccount: scope, senderDevice: 0, clientMessageID: copy) == first.serverTime)

        // Bob changes his key: a resend is still recognised (by the first device's copy id).
        let changed = try await RelaySealedSenderTests.setAccess(b1, key: Data(repeating: 0x42, count: 16))
        guard case .ok? = changed.body else { Issue.record("no ok: \(changed)"); return }
        let resent = try await sealed(0x1234_5678_9abc_def0, [(1, "one"), (2, "two")])
        guard case .serverAck(let again)? = resent.body else { Issue.record("no ServerAck: \(resent)"); return }
        #expect(again.serverTime == first.serverTime)
        // A new message with the old key: denied; an unknown account: the same answer.
        RelaySealedSenderTests.expectErrorFor(try await sealed(2, [(1, "x"), (2, "x")]), .accessDenied, cmid: 2)
        let mismatch = try await sealed(3, key: Data(repeating: 0x42, count: 16), [(1, "x")])
        RelayDevicesTests.expectMismatch(mismatch, cmid: 3, account: "bob", missing: [2], extra: [])
        RelaySealedSenderTests.expectErrorFor(try await sealed(4, key: Data(repeating: 1, count: 15), [(1, "x")]), .malformedStanza, cmid: 4)
        await relay.stop()
    }

    // MARK: the device list and removal (§22.1, §22.2)

    @Test func listAndRemoveDevices() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice"), bob = TestDevice("bob")
        let a1 = try await RelayTestClient.register(relay, alice)
        try await a1.waitQueueEmpty()
        let alice2 = alice.sibling(2), alice3 = alice.sibling(3)
        let a2 = try await RelayTestClient.registerLinked(relay, alice2, via: a1)
        try await a2.waitQueueEmpty()
        let a3 = try await RelayTestClient.registerLinked(relay, alice3, via: a1)
        try await a3.waitQueueEmpty()
        let b = try await RelayTestClient.register(relay, bob)
        try await b.waitQueueEmpty()

        // Every device of one's own account, ascending, with its static key.
        let listed = try await Self.list(a2, 5)
        guard case .deviceList(let l)? = listed.body else { Issue.record("no DeviceList: \(listed)"); return }
        #expect(l.requestID == 5 && l.devices == [Self.info(alice), Self.info(alice2), Self.info(alice3)])
        guard case .deviceList(let bl)? = try await Self.list(b, 6).body else { Issue.record("no DeviceList"); return }
        #expect(bl.devices == [Self.info(bob)])

        // Who may remove whom; an unknown or invalid id.
        Self.expectRequestError(try await Self.remove(a2, 3, 7), .deviceRemovalForbidden, requestID: 7)
        Self.expectRequestError(try await Self.remove(a2, 1, 8), .deviceRemovalForbidden, requestID: 8)
        Self.expectRequestError(try await Self.remove(a1, 1, 9), .deviceRemovalForbidden, requestID: 9)
        Self.expectRequestError(try await Self.remove(a1, 9, 10), .unknownDevice, requestID: 10, device: 9)
        Self.expectRequestError(try await Self.remove(a1, 0, 11), .malformedStanza, requestID: 11)
        // Only one's own account: bob's device 1 asking for device 2 means bob's (which does not exist).
        Self.expectRequestError(try await Self.remove(b, 2, 12), .unknownDevice, requestID: 12, device: 2)

        // Device 2 has queued messages when device 1 removes it: they go, and its connection
        // is closed with 4008.
        await a2.close()
        _ = try await b.sendAndWait(1, to: "alice", [1, 2], "queued for two")
        _ = try await a1.nextDeliver()
        #expect(try await RelayDevicesTests.depth(relay, "alice", 2) == 1)
        let a2again = try await RelayTestClient.login(relay, alice2)
        Self.expectOK(try await Self.remove(a1, 2, 13), 13)
        let (code, _) = await a2again.closeCode()
        #expect(code == RelayProtocol.CloseCode.deviceRemoved.rawValue)
        await #expect(throws: RelayStoreError.unknownDevice(2)) { try await relay.relay.store.queueDepth(account: "alice", deviceID: 2) }
        guard case .deviceList(let after)? = try await Self.list(a1, 14).body else { Issue.record("no DeviceList"); return }
        #expect(after.devices == [Self.info(alice), Self.info(alice3)])
        // It cannot log in, sends to it fail, and all_devices no longer expects it.
        let gone = try await RelayTestClient.connect(relay, alice2, pattern: .ik, hello: alice2.loginHello, expectWelcome: false)
        expectError(try await gone.next(), .unknownDevice)
        let (refused, _) = await gone.closeCode()
        #expect(refused == RelayProtocol.CloseCode.loginRejected.rawValue)
        expectError(try await b.sendAndWait(2, to: "alice", [2], "x"), .unknownDevice, device: 2)
        let all = try await RelayDevicesTests.sendAll(b, 3, to: "alice", [1, 3])
        guard case .serverAck? = all.body else { Issue.record("all_devices without the removed one refused: \(all)"); return }
        RelayDevicesTests.expectMismatch(try await RelayDevicesTests.sendAll(b, 4, to: "alice", [1, 2, 3]), cmid: 4, account: "alice",
                                         missing: [], extra: [2])

        // A device removes itself: Ok, then 4008 on its own connection.
        Self.expectOK(try await Self.remove(a3, 3, 15), 15)
        let (own, _) = await a3.closeCode()
        #expect(own == RelayProtocol.CloseCode.deviceRemoved.rawValue)
        // Its id is free again: a new device (new static key) registers as 2, with a new link
        // token (the removed device cannot register itself again: RelayLinkTokenTests).
        let fresh = alice.sibling(2)
        let a2new = try await RelayTestClient.registerLinked(relay, fresh, via: a1)
        try await a2new.waitQueueEmpty()
        guard case .deviceList(let last)? = try await Self.list(a2new, 16).body else { Issue.record("no DeviceList"); return }
        #expect(last.devices == [Self.info(alice), Self.info(fresh)])

        // Anonymous connections cannot list or remove.
        let anon = try await RelaySealedSenderTests.anonymous(relay)
        Self.expectRequestError(try await Self.list(anon, 17), .unauthenticated, requestID: 17)
        Self.expectRequestError(try await Self.remove(anon, 2, 18), .unauthenticated, requestID: 18)
        await relay.stop()
    }

    // MARK: the provisioning channel (§22.3)

    @Test func provisioningHandsOneMessageToTheNewDevice() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice")
        let a = try await RelayTestClient.register(relay, alice)
        try await a.waitQueueEmpty()
        let newDevice = try await RelaySealedSenderTests.anonymous(relay)

        let opened = try await Self.openProvisioning(newDevice, 1)
        guard case .provisioningAddress(let address)? = opened.body else { Issue.record("no address: \(opened)"); return }
        #expect(address.address.count == 16 && address.expiresAt == relay.clock.now + 600_000)
        // Asked again: the same address.
        guard case .provisioningAddress(let same)? = try await Self.openProvisioning(newDevice, 2).body else { Issue.record("no address"); return }
        #expect(same.address == address.address && same.expiresAt == address.expiresAt)
        #expect(relay.relay.provisioning.count == 1)

        let body = Data((0..<4_096).map { UInt8(truncatingIfNeeded: $0) })
        Self.expectOK(try await Self.sendProvisioning(a, address.address, body, 3), 3)
        let got = try await newDevice.wait { s -> RelayProvisioningMessage? in
            if case .provisioningMessage(let m)? = s.body { m } else { nil }
        }
        #expect(got.body == body)
        // One message per address.
        Self.expectRequestError(try await Self.sendProvisioning(a, address.address, body, 4), .unknownProvisioningAddress, requestID: 4)
        #expect(relay.relay.provisioning.count == 0)
        // The provisioning connection is still anonymous and usable.
        guard case .pong? = try await newDevice.ping(9).body else { Issue.record("no pong"); return }

        // The checks, in order.
        Self.expectRequestError(try await Self.sendProvisioning(a, Data(repeating: 1, count: 15), body, 5), .malformedStanza, requestID: 5)
        Self.expectRequestError(try await Self.sendProvisioning(a, address.address, Data(), 6), .malformedStanza, requestID: 6)
        Self.expectRequestError(try await Self.sendProvisioning(a, address.address, body + [0], 7), .payloadTooLarge, requestID: 7)
        Self.expectRequestError(try await Self.sendProvisioning(newDevice, address.address, body, 8), .unauthenticated, requestID: 8)
        Self.expectRequestError(try await Self.openProvisioning(a, 9), .notAnonymous, requestID: 9)

        // An address whose connection closed is gone; so is an expired one.
        let other = try await RelaySealedSenderTests.anonymous(relay)
        guard case .provisioningAddress(let closing)? = try await Self.openProvisioning(other, 1).body else { Issue.record("no address"); return }
        await other.close()
        let third = try await RelaySealedSenderTests.anonymous(relay)
        guard case .provisioningAddress(let expiring)? = try await Self.openProvisioning(third, 1).body else { Issue.record("no address"); return }
        #expect(expiring.address != closing.address)
        relay.clock.advance(by: 600_000)
        Self.expectRequestError(try await Self.sendProvisioning(a, expiring.address, body, 11), .unknownProvisioningAddress, requestID: 11)
        // (The closed one: by then its connection's end has been handled.)
        Self.expectRequestError(try await Self.sendProvisioning(a, closing.address, body, 12), .unknownProvisioningAddress, requestID: 12)

        // A sending device's rate: 1/s, burst 5 (the clock stands still); refusals before the
        // rate check take no token.
        let bob = try await RelayTestClient.register(relay, TestDevice("bob"))
        try await bob.waitQueueEmpty()
        Self.expectRequestError(try await Self.sendProvisioning(bob, Data(repeating: 1, count: 3), body, 19), .malformedStanza, requestID: 19)
        var answers: [RelayErrorCode] = []
        for rid in UInt32(20)..<UInt32(28) {
            let answer = try await Self.sendProvisioning(bob, Data(repeating: UInt8(rid), count: 16), body, rid)
            if case .error(let e)? = answer.body { answers.append(e.code) }
        }
        #expect(answers == Array(repeating: .unknownProvisioningAddress, count: 5) + Array(repeating: .rateLimited, count: 3))
        await relay.stop()
    }

    @Test func anUnusedProvisioningAddressExpiresWith4009() async throws {
        let relay = try await TestRelay.start { $0.provisioningLifetime = .milliseconds(300) }
        let waiting = try await RelaySealedSenderTests.anonymous(relay)
        guard case .provisioningAddress(let a)? = try await Self.openProvisioning(waiting, 1).body else { Issue.record("no address"); return }
        #expect(a.expiresAt == relay.clock.now + 300)
        let (code, _) = await waiting.closeCode()
        #expect(code == RelayProtocol.CloseCode.provisioningExpired.rawValue)
        #expect(relay.relay.provisioning.count == 0)
        await relay.stop()
    }

    /// Once its message arrived, the provisioning connection is an ordinary anonymous one: its
    /// address's expiry no longer closes it (no 4009).
    @Test func aUsedProvisioningConnectionOutlivesItsAddress() async throws {
        let lifetime = Duration.seconds(2)
        let relay = try await TestRelay.start { $0.provisioningLifetime = lifetime }
        let alice = try await RelayTestClient.register(relay, TestDevice("alice"))
        try await alice.waitQueueEmpty()
        let used = try await RelaySealedSenderTests.anonymous(relay)
        let opened = ContinuousClock.now
        guard case .provisioningAddress(let b)? = try await Self.openProvisioning(used, 1).body else { Issue.record("no address"); return }
        Self.expectOK(try await Self.sendProvisioning(alice, b.address, Data("hi".utf8), 2), 2)
        _ = try await used.wait { s -> RelayProvisioningMessage? in if case .provisioningMessage(let m)? = s.body { m } else { nil } }
        // Only meaningful if the message came well before the expiry (a very slow machine
        // cannot tell the two apart; the test then checks nothing more).
        guard ContinuousClock.now - opened < lifetime / 2 else { await relay.stop(); return }
        try await Task.sleep(until: opened.advanced(by: lifetime + .milliseconds(500)), clock: .continuous)
        guard case .pong? = try await used.ping(3).body else { Issue.record("closed after its message"); return }
        await relay.stop()
    }
}
