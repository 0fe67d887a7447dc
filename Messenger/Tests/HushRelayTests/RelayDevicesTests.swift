import Foundation
import Hush
import HushTransport
import Testing
@testable import HushRelay

/// Several devices per account on the wire (`Docs/spec/relay.md` §7.6): `all_devices` sends and
/// their `MISMATCHED_DEVICES` answers, with a real relay over loopback.
@Suite(.serialized) struct RelayDevicesTests {
    /// Expects exactly `Error{MISMATCHED_DEVICES, client_message_id, account, missing, extra}`.
    static func expectMismatch(_ s: RelayStanza, cmid: UInt64, account: String, missing: [UInt32], extra: [UInt32],
                               sourceLocation: SourceLocation = #_sourceLocation) {
        var expected = RelayError()
        expected.code = .mismatchedDevices
        expected.clientMessageID = cmid
        expected.account = account
        expected.missing = missing
        expected.extra = extra
        guard case .error(let e)? = s.body else {
            Issue.record("expected MISMATCHED_DEVICES, got \(s)", sourceLocation: sourceLocation)
            return
        }
        #expect(e == expected, sourceLocation: sourceLocation)
    }

    /// Sends `Send{all_devices: true}`; returns its answer (`ServerAck` or `Error` with this id).
    static func sendAll(_ c: RelayTestClient, _ cmid: UInt64, to account: String, _ devices: [UInt32],
                        allDevices: Bool = true) async throws -> RelayStanza {
        var s = RelayStanza()
        s.send.clientMessageID = cmid
        s.send.account = account
        s.send.devices = devices
        s.send.payload = Data("all".utf8)
        s.send.allDevices = allDevices
        try await c.send(s)
        return try await Self.answer(c, cmid)
    }

    static func answer(_ c: RelayTestClient, _ cmid: UInt64) async throws -> RelayStanza {
        try await c.wait { s in
            switch s.body {
            case .serverAck(let a)? where a.clientMessageID == cmid: s
            case .error(let e)? where e.clientMessageID == cmid: s
            default: nil
            }
        }
    }

    static func depth(_ relay: TestRelay, _ account: String, _ device: UInt32) async throws -> Int {
        try await relay.relay.store.queueDepth(account: account, deviceID: device)
    }

    @Test func mismatchTheComparisonIsExact() {
        typealias M = RelayConnection.DeviceMismatch
        #expect(RelayConnection.deviceMismatch(listed: [2, 1], registered: [1, 2], excluding: nil) == nil)
        #expect(RelayConnection.deviceMismatch(listed: [1], registered: [3, 1, 2], excluding: nil) == M(missing: [2, 3], extra: []))
        #expect(RelayConnection.deviceMismatch(listed: [9, 1, 5], registered: [1], excluding: nil) == M(missing: [], extra: [5, 9]))
        #expect(RelayConnection.deviceMismatch(listed: [2], registered: [1, 2], excluding: 1) == nil)
        #expect(RelayConnection.deviceMismatch(listed: [1, 2], registered: [1, 2], excluding: 1) == M(missing: [], extra: [1]))
        #expect(RelayConnection.deviceMismatch(listed: [1], registered: [1], excluding: 1) == M(missing: [], extra: [1]))
    }

    @Test func sendWithAllDevicesMustListExactlyTheAccountsDevices() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice"), bob = TestDevice("bob")
        let a = try await RelayTestClient.register(relay, alice)
        try await a.waitQueueEmpty()
        let a2 = try await RelayTestClient.registerLinked(relay, alice.sibling(2))
        try await a2.waitQueueEmpty()
        let a3 = try await RelayTestClient.registerLinked(relay, alice.sibling(3))
        try await a3.waitQueueEmpty()
        let b = try await RelayTestClient.register(relay, bob)
        try await b.waitQueueEmpty()
        let b2 = try await RelayTestClient.registerLinked(relay, bob.sibling(2))
        try await b2.waitQueueEmpty()

        Self.expectMismatch(try await Self.sendAll(a, 1, to: "bob", [1]), cmid: 1, account: "bob", missing: [2], extra: [])
        Self.expectMismatch(try await Self.sendAll(a, 2, to: "bob", [7, 2, 1, 5]), cmid: 2, account: "bob", missing: [], extra: [5, 7])
        Self.expectMismatch(try await Self.sendAll(a, 3, to: "bob", [2, 9]), cmid: 3, account: "bob", missing: [1], extra: [9])
        // Nothing stored, nothing remembered for dedupe.
        #expect(try await Self.depth(relay, "bob", 1) == 0)
        #expect(try await Self.depth(relay, "bob", 2) == 0)
        // The account check comes first; the §7.1 limits before it.
        expectError(try await Self.sendAll(a, 4, to: "nobody", [1]), .unknownAccount)
        expectError(try await Self.sendAll(a, 5, to: "bob", [1, 1]), .malformedStanza)
        // Without all_devices, an unknown device is UNKNOWN_DEVICE as before.
        expectError(try await Self.sendAll(a, 6, to: "bob", [1, 9], allDevices: false), .unknownDevice, device: 9)

        // The exact list: stored once per device, then a resend of the same id is a duplicate.
        let ok = try await Self.sendAll(a, 1, to: "bob", [2, 1])
        guard case .serverAck(let sa)? = ok.body else { Issue.record("no server ack: \(ok)"); return }
        #expect(sa.serverTime == relay.clock.now)
        #expect(try await b.nextDeliver().payload == Data("all".utf8))
        #expect(try await b2.nextDeliver().payload == Data("all".utf8))

        // One's own account: every device but the sending one.
        Self.expectMismatch(try await Self.sendAll(a, 10, to: "alice", [2]), cmid: 10, account: "alice", missing: [3], extra: [])
        Self.expectMismatch(try await Self.sendAll(a, 11, to: "alice", [1, 2, 3]), cmid: 11, account: "alice", missing: [], extra: [1])
        let own = try await Self.sendAll(a, 12, to: "alice", [3, 2])
        guard case .serverAck? = own.body else { Issue.record("no server ack: \(own)"); return }
        #expect(try await a2.nextDeliver().senderDevice == 1)
        #expect(try await a3.nextDeliver().senderDevice == 1)
        #expect(try await Self.depth(relay, "alice", 1) == 0)

        for c in [a, a2, a3, b, b2] { await c.close() }
        await relay.stop()
    }

    @Test func sealedSendWithAllDevicesIsCheckedAfterTheAccessCheck() async throws {
        let relay = try await TestRelay.start()
        let bob = TestDevice("bob")
        let b = try await RelayTestClient.register(relay, bob)
        try await b.waitQueueEmpty()
        let b2 = try await RelayTestClient.registerLinked(relay, bob.sibling(2))
        try await b2.waitQueueEmpty()
        _ = try await RelaySealedSenderTests.setAccess(b, key: RelaySealedSenderTests.key)
        let anon = try await RelaySealedSenderTests.anonymous(relay)

        func sealed(_ cmid: UInt64, _ devices: [UInt32], key: Data = RelaySealedSenderTests.key) async throws -> RelayStanza {
            var s = RelayStanza()
            s.sealedSend.clientMessageID = cmid
            s.sealedSend.account = "bob"
            s.sealedSend.devices = devices
            s.sealedSend.accessKey = key
            s.sealedSend.payload = Data("sealed".utf8)
            s.sealedSend.allDevices = true
            try await anon.send(s)
            return try await Self.answer(anon, cmid)
        }
        // A wrong key is ACCESS_DENIED before the devices are looked at (they are not revealed).
        RelaySealedSenderTests.expectErrorFor(try await sealed(1, [1], key: Data(repeating: 9, count: 16)), .accessDenied, cmid: 1)
        Self.expectMismatch(try await sealed(2, [1, 3]), cmid: 2, account: "bob", missing: [2], extra: [3])
        #expect(try await Self.depth(relay, "bob", 1) == 0)
        let ok = try await sealed(3, [1, 2])
        guard case .serverAck? = ok.body else { Issue.record("no server ack: \(ok)"); return }
        #expect(try await b.nextDeliver().senderAccount == "")
        #expect(try await b2.nextDeliver().senderAccount == "")
        for c in [anon, b, b2] { await c.close() }
        await relay.stop()
    }

    @Test func multiSendReportsTheFirstMismatchedRecipient() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice"), bob = TestDevice("bob"), carol = TestDevice("carol")
        var clients: [RelayTestClient] = []
        for d in [alice, alice.sibling(2), bob, bob.sibling(2), carol, carol.sibling(2)] {
            let c = try await RelayTestClient.registerAny(relay, d)
            try await c.waitQueueEmpty()
            clients.append(c)
        }
        let a = clients[0]
        func multi(_ cmid: UInt64, _ recipients: [(String, [UInt32], Bool)]) async throws -> RelayStanza {
            let n = recipients.reduce(0) { $0 + $1.1.count }
            var s = RelayMultiSendTests.stanza(cmid, recipients.map { (account: $0.0, devices: $0.1) },
                                               RelayMultiSendTests.rawEnvelope(headers: n, box: 40))
            for (i, r) in recipients.enumerated() { s.multiSend.recipients[i].allDevices = r.2 }
            try await a.send(s)
            return try await Self.answer(a, cmid)
        }
        // bob (first) is fine, carol lacks device 2, then alice's own list names the sender.
        Self.expectMismatch(try await multi(1, [("bob", [1, 2], true), ("carol", [1], true), ("alice", [1, 2], true)]),
                            cmid: 1, account: "carol", missing: [2], extra: [])
        Self.expectMismatch(try await multi(2, [("bob", [1, 2], true), ("alice", [1, 2], true)]),
                            cmid: 2, account: "alice", missing: [], extra: [1])
        // A recipient without all_devices keeps UNKNOWN_DEVICE; recipient order decides.
        RelayMultiSendTests.expectMultiError(try await multi(3, [("carol", [1, 9], false), ("bob", [1], true)]), .unknownDevice,
                                             cmid: 3, account: "carol", device: 9)
        Self.expectMismatch(try await multi(4, [("bob", [1], true), ("carol", [1, 9], false)]),
                            cmid: 4, account: "bob", missing: [2], extra: [])
        RelayMultiSendTests.expectMultiError(try await multi(5, [("bob", [1, 2], true), ("nobody", [1], true)]), .unknownAccount,
                                             cmid: 5, account: "nobody")
        for (account, device) in [("bob", 1), ("bob", 2), ("carol", 1), ("carol", 2), ("alice", 2)] as [(String, UInt32)] {
            #expect(try await Self.depth(relay, account, device) == 0)
        }
        let ok = try await multi(6, [("bob", [2, 1], true), ("alice", [2], true), ("carol", [1], false)])
        guard case .serverAck? = ok.body else { Issue.record("no server ack: \(ok)"); return }
        // Delivered, not yet acked: one queued copy each.
        for (account, device) in [("bob", 1), ("bob", 2), ("carol", 1), ("alice", 2)] as [(String, UInt32)] {
            #expect(try await Self.depth(relay, account, device) == 1)
        }
        #expect(try await Self.depth(relay, "carol", 2) == 0)
        for c in clients { await c.close() }
        await relay.stop()
    }
}
