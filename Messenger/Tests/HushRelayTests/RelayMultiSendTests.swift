import Foundation
import Hush
import HushTransport
import Testing
@testable import HushRelay

/// Groups fan-out on the wire (`Docs/spec/relay.md` §21): `MultiSend` of a real
/// multi-recipient envelope (`Docs/spec/envelope.md` §6) to several accounts' devices, with a
/// real relay over loopback.
@Suite(.serialized) struct RelayMultiSendTests {
    typealias Recipients = [(account: String, devices: [UInt32])]

    /// The sender and its relay-issued certificate.
    struct Sender {
        let device: TestDevice
        let certificate: SenderCertificate
        var identity: IdentityKeyPair { IdentityKeyPair(privateKey: device.identity) }

        init(_ device: TestDevice, _ relay: TestRelay) throws {
            self.device = device
            certificate = try relay.identity.senderCertificates!.issue(account: device.account, deviceID: device.deviceID,
                                                                        identityKey: device.identity.publicKey, now: relay.clock.now)
        }

        /// Seals `text` for the devices of `recipients` in header order (§21.1): each device's
        /// header to its account's identity key.
        func seal(_ text: String, _ recipients: Recipients, identities: [String: TestDevice]) throws -> MultiRecipientEnvelope {
            let keys = recipients.flatMap { r in r.devices.map { _ in IdentityKey(publicKey: identities[r.account]!.identity.publicKey) } }
            return try MultiRecipientEnvelope.seal(Array(text.utf8), contentType: .groupMessage, certificate: certificate,
                                                   senderIdentity: identity, to: keys)
        }
    }

    static func stanza(_ cmid: UInt64, _ recipients: Recipients, _ envelope: [UInt8]) -> RelayStanza {
        var s = RelayStanza()
        s.multiSend.clientMessageID = cmid
        s.multiSend.recipients = recipients.map { r in
            var m = RelayMultiRecipient()
            m.account = r.account
            m.devices = r.devices
            return m
        }
        s.multiSend.envelope = Data(envelope)
        return s
    }

    /// Sends a `MultiSend`; returns its answer (`ServerAck` or `Error` with this id).
    static func multiSend(_ c: RelayTestClient, _ cmid: UInt64, _ recipients: Recipients, _ envelope: [UInt8]) async throws -> RelayStanza {
        try await c.send(stanza(cmid, recipients, envelope))
        return try await c.wait { s in
            switch s.body {
            case .serverAck(let a)? where a.clientMessageID == cmid: s
            case .error(let e)? where e.clientMessageID == cmid: s
            default: nil
            }
        }
    }

    static func ackTime(_ s: RelayStanza, sourceLocation: SourceLocation = #_sourceLocation) -> UInt64? {
        guard case .serverAck(let a)? = s.body else {
            Issue.record("expected a ServerAck, got \(s)", sourceLocation: sourceLocation)
            return nil
        }
        return a.serverTime
    }

    /// Expects exactly `Error{code, client_message_id: cmid, account, device_id: device}` (no request id).
    static func expectMultiError(_ s: RelayStanza, _ code: RelayErrorCode, cmid: UInt64, account: String = "", device: UInt32 = 0,
                                 sourceLocation: SourceLocation = #_sourceLocation) {
        var expected = RelayError()
        expected.code = code
        expected.clientMessageID = cmid
        expected.account = account
        expected.deviceID = device
        guard case .error(let e)? = s.body else {
            Issue.record("expected \(code), got \(s)", sourceLocation: sourceLocation)
            return
        }
        #expect(e == expected, sourceLocation: sourceLocation)
    }

    /// `varint` as envelope.md §1 (unsigned LEB128).
    static func varint(_ value: Int) -> [UInt8] {
        var v = value, out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
        return out
    }

    /// A structurally valid `0xE2` envelope with `headers` headers and a `box`-byte payload box of
    /// arbitrary bytes (the relay checks no cryptography); `ephemeral` a canonical key.
    static func rawEnvelope(headers: Int, box: Int) -> [UInt8] {
        let ephemeral = try! Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation
        var bytes: [UInt8] = [0xE2] + varint(headers) + ephemeral
        for h in 0..<headers { bytes += [UInt8](repeating: UInt8(truncatingIfNeeded: h + 1), count: 96) }
        bytes += varint(box) + (0..<box).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        return bytes
    }

    /// The `0xE3` copy of `raw` (from ``rawEnvelope(headers:box:)``) for header `index`, laid out
    /// from envelope.md §6 by hand: `0xE3 || varint(L) || e_pub || header || payload box`.
    static func expectedCopy(_ raw: [UInt8], headers: Int, index: Int) -> [UInt8] {
        let start = 1 + varint(headers).count
        let ephemeral = Array(raw[start..<(start + 32)])
        let header = Array(raw[(start + 32 + 96 * index)..<(start + 32 + 96 * (index + 1))])
        var rest = start + 32 + 96 * headers
        var box = 0, shift = 0
        while true {
            let b = raw[rest]
            rest += 1
            box |= Int(b & 0x7F) << shift
            shift += 7
            if b & 0x80 == 0 { break }
        }
        let payload = Array(raw[rest...])
        #expect(payload.count == box)
        return [0xE3] + varint(32 + 96 + box) + ephemeral + header + payload
    }

    // MARK: tests

    @Test func copyIDsMatchTheSpecVectors() {
        #expect(RelayConnection.multiSendCopyID(1, account: "bob", deviceID: 1) == 0x6a8c_95db_c48d_17e7)
        #expect(RelayConnection.multiSendCopyID(1, account: "bob", deviceID: 2) == 0x6cb6_189c_0706_bf6d)
        #expect(RelayConnection.multiSendCopyID(0x0123_4567_89ab_cdef, account: "carol.x_y-z", deviceID: 7) == 0x9d88_4136_1759_05b2)
    }

    /// Steps 1–3 (§21.2) on any input: every truncation and many bit flips of an envelope,
    /// under random recipient lists, give a parsed envelope or a typed rejection (never a
    /// trap), and an accepted one has exactly one header per listed device.
    @Test func theStanzaChecksAreTotal() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Int(state % UInt64(bound))
        }
        let genuine = Self.rawEnvelope(headers: 3, box: 40)
        var envelopes = (0...genuine.count).map { Array(genuine.prefix($0)) }
        for i in genuine.indices {
            for bit in [0x01, 0x80] as [UInt8] {
                var b = genuine
                b[i] ^= bit
                envelopes.append(b)
            }
        }
        let ids: [UInt32] = [0, 1, 2, 3, UInt32(1) << 31, UInt32(Int32.max)]
        let allowed: Set<RelayErrorCode> = [.malformedStanza, .tooManyRecipients, .malformedEnvelope, .payloadTooLarge]
        var accepted = 0
        for envelope in envelopes {
            for _ in 0..<4 {
                var m = RelayMultiSend()
                m.clientMessageID = 1
                m.envelope = Data(envelope)
                // Mostly one valid list of 3 devices (so that the envelope's checks are reached).
                if next(3) == 0 {
                    m.recipients = (0..<next(4)).map { _ in
                        var r = RelayMultiRecipient()
                        r.account = ["bob", "carol", ""][next(3)]
                        r.devices = (0..<next(5)).map { _ in ids[next(ids.count)] }
                        return r
                    }
                } else {
                    m.recipients = Self.stanza(1, [("bob", [1, 2]), ("carol", [1])], envelope).multiSend.recipients
                }
                let devices = m.recipients.reduce(0) { $0 + $1.devices.count }
                switch RelayConnection.multiSendEnvelope(m) {
                case .success(let parsed):
                    accepted += 1
                    #expect(parsed.recipientCount == devices)
                    #expect(Set(m.recipients.map(\.account)).count == m.recipients.count)
                case .failure(let r):
                    #expect(allowed.contains(r.code))
                    #expect(r.deviceID == 0)
                }
            }
        }
        #expect(accepted > 0)
    }

    @Test func eachDeviceGetsExactlyItsCopyOnlineAndOffline() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice"), bob = TestDevice("bob"), carol = TestDevice("carol"), dave = TestDevice("dave")
        let identities = ["bob": bob, "carol": carol, "dave": dave]
        let a = try await RelayTestClient.register(relay, alice)
        try await a.waitQueueEmpty()
        // Online: bob.1, carol.1, carol.3. Offline (registered, then gone): bob.2, carol.2, dave.1.
        var online: [String: RelayTestClient] = [:]
        for d in [bob, carol, carol.sibling(3)] {
            let c = try await RelayTestClient.registerAny(relay, d)
            try await c.waitQueueEmpty()
            online["\(d.account).\(d.deviceID)"] = c
        }
        let offline = [bob.sibling(2), carol.sibling(2), dave]   // each with its own device key, kept for the login
        for d in offline {
            let c = try await RelayTestClient.registerAny(relay, d)
            try await c.waitQueueEmpty()
            await c.close()
        }
        let sender = try Sender(alice, relay)
        // Carol's devices listed out of id order: the header order is the list order.
        let recipients: Recipients = [("bob", [1, 2]), ("carol", [3, 1, 2]), ("dave", [1])]
        let envelope = try sender.seal("group hello", recipients, identities: identities)
        let order = recipients.flatMap { r in r.devices.map { "\(r.account).\($0)" } }
        let validator = CertificateValidator(trustRoot: relay.identity.trustRoot)

        relay.clock.advance(by: 1_000)
        let answer = try await Self.multiSend(a, 0xA11CE, recipients, envelope.serialized)
        guard let time = Self.ackTime(answer) else { return }
        #expect(time == relay.clock.now)

        func check(_ d: RelayDeliver, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let index = order.firstIndex(of: name)!
            #expect(d.payload == Data(try envelope.delivered(to: index)), sourceLocation: sourceLocation)
            #expect(d.senderAccount == "alice" && d.senderDevice == 1, sourceLocation: sourceLocation)
            #expect(d.serverTime == time, sourceLocation: sourceLocation)
            let me = IdentityKeyPair(privateKey: identities[String(name.split(separator: ".")[0])]!.identity)
            let opened = try MultiRecipientEnvelope.open(Array(d.payload), recipientIdentity: me, validator: validator, now: relay.clock.now)
            #expect(opened.message == Array("group hello".utf8), sourceLocation: sourceLocation)
            #expect(opened.sender.senderID == "alice" && opened.sender.deviceID == 1, sourceLocation: sourceLocation)
            #expect(opened.contentType == .groupMessage, sourceLocation: sourceLocation)
            // Another account's identity cannot open it.
            let other = IdentityKeyPair(privateKey: (name.hasPrefix("bob") ? carol : bob).identity)
            #expect(throws: EnvelopeError.authenticationFailed, sourceLocation: sourceLocation) {
                try MultiRecipientEnvelope.open(Array(d.payload), recipientIdentity: other, validator: validator, now: relay.clock.now)
            }
        }
        for (name, c) in online.sorted(by: { $0.key < $1.key }) {
            let d = try await c.nextDeliver()
            try check(d, name)
            try await c.ack([d.serverID])
            _ = try await c.ping(1)
            #expect(c.backlog.isEmpty, "one copy only")
            await c.close()
        }
        // Offline devices: queued with the sender's name, drained on login.
        for d in offline {
            let stored = try await relay.relay.store.pending(account: d.account, deviceID: d.deviceID, after: 0, limit: 10)
            #expect(stored.count == 1)
            #expect(stored.first?.senderAccount == "alice" && stored.first?.senderDevice == 1)
            let c = try await RelayTestClient.login(relay, d)
            let drained = try await c.receiveAndAck(1)
            try check(drained[0], "\(d.account).\(d.deviceID)")
            try await c.waitQueueEmpty()
            _ = try await c.ping(1)
            #expect(try await relay.relay.store.queueDepth(account: d.account, deviceID: d.deviceID) == 0)
            await c.close()
        }
        await a.close()
        await relay.stop()
    }

    @Test func everyCheckIsTypedAndStoresNothing() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice"), bob = TestDevice("bob"), carol = TestDevice("carol")
        let a = try await RelayTestClient.register(relay, alice)
        try await a.waitQueueEmpty()
        for d in [bob, bob.sibling(2), carol] {
            let c = try await RelayTestClient.registerAny(relay, d)
            try await c.waitQueueEmpty()
            await c.close()
        }
        // An onlooker: bob's third device, online throughout; it must be unaffected.
        let watcher = try await RelayTestClient.registerLinked(relay, bob.sibling(3))
        try await watcher.waitQueueEmpty()
        let three = Self.rawEnvelope(headers: 3, box: 40)
        let good: Recipients = [("bob", [1, 2]), ("carol", [1])]

        // Step 1: the recipient lists.
        Self.expectMultiError(try await Self.multiSend(a, 1, [], three), .malformedStanza, cmid: 1)
        let many: Recipients = (0...256).map { ("m\($0)", [1]) }
        Self.expectMultiError(try await Self.multiSend(a, 2, many, Self.rawEnvelope(headers: 257, box: 16)), .tooManyRecipients, cmid: 2)
        // Over the bound and repeating an account: the bound comes first.
        Self.expectMultiError(try await Self.multiSend(a, 3, many + [("m0", [1])], three), .tooManyRecipients, cmid: 3)
        let wide: Recipients = (0..<17).map { ("w\($0)", Array(1...16)) }   // 272 devices, each list valid
        Self.expectMultiError(try await Self.multiSend(a, 4, wide, three), .tooManyRecipients, cmid: 4)
        Self.expectMultiError(try await Self.multiSend(a, 5, [("bob", [1]), ("carol", [1]), ("bob", [2])], three),
                              .malformedStanza, cmid: 5, account: "bob")
        Self.expectMultiError(try await Self.multiSend(a, 6, [("bob", [1, 2]), ("carol", [])], three), .malformedStanza, cmid: 6, account: "carol")
        Self.expectMultiError(try await Self.multiSend(a, 7, [("bob", [1, 1]), ("carol", [1])], three), .malformedStanza, cmid: 7, account: "bob")
        Self.expectMultiError(try await Self.multiSend(a, 8, [("bob", [1, 2]), ("carol", [0])], three), .malformedStanza, cmid: 8, account: "carol")
        Self.expectMultiError(try await Self.multiSend(a, 9, [("bob", [1, 2]), ("carol", [UInt32(1) << 31])], three),
                              .malformedStanza, cmid: 9, account: "carol")
        Self.expectMultiError(try await Self.multiSend(a, 10, [("bob", Array(1...17))], Self.rawEnvelope(headers: 17, box: 16)),
                              .malformedStanza, cmid: 10, account: "bob")
        // Step 1 comes before step 2: a bad list with a bad envelope is malformed as a stanza.
        Self.expectMultiError(try await Self.multiSend(a, 11, [("bob", [1, 1])], [0xE2]), .malformedStanza, cmid: 11, account: "bob")

        // Step 2: the envelope.
        // Empty, truncated, the wrong type byte, a byte short, a byte over, a delivered (0xE3) copy.
        let bads: [[UInt8]] = [[], [0xE2], [0xE1] + three.dropFirst(), Array(three.dropLast()), three + [0],
                               Self.expectedCopy(three, headers: 3, index: 0)]
        for (i, bad) in bads.enumerated() {
            Self.expectMultiError(try await Self.multiSend(a, 20 + UInt64(i), good, bad), .malformedEnvelope, cmid: 20 + UInt64(i))
        }
        // The header count must be the device count.
        Self.expectMultiError(try await Self.multiSend(a, 30, good, Self.rawEnvelope(headers: 2, box: 40)), .malformedEnvelope, cmid: 30)
        Self.expectMultiError(try await Self.multiSend(a, 31, good, Self.rawEnvelope(headers: 4, box: 40)), .malformedEnvelope, cmid: 31)
        // Step 2 before step 4: an unknown account with a bad envelope.
        Self.expectMultiError(try await Self.multiSend(a, 32, [("nobody", [1])], [0xE2, 0x01]), .malformedEnvelope, cmid: 32)

        // Step 3: each copy at most 64,000 bytes (1 + 3 + 128 + box).
        let big = Self.rawEnvelope(headers: 1, box: 63_869)
        #expect(Self.expectedCopy(big, headers: 1, index: 0).count == 64_001)
        Self.expectMultiError(try await Self.multiSend(a, 40, [("bob", [1])], big), .payloadTooLarge, cmid: 40)
        // Step 3 before step 4.
        Self.expectMultiError(try await Self.multiSend(a, 41, [("nobody", [1])], big), .payloadTooLarge, cmid: 41)

        // Step 4: existence, the first failure in recipient order, before anything is stored.
        Self.expectMultiError(try await Self.multiSend(a, 50, [("bob", [1]), ("nobody", [1]), ("carol", [1])], three),
                              .unknownAccount, cmid: 50, account: "nobody")
        Self.expectMultiError(try await Self.multiSend(a, 51, [("bob", [1]), ("Bob", [1]), ("carol", [1])], three),
                              .unknownAccount, cmid: 51, account: "Bob")
        Self.expectMultiError(try await Self.multiSend(a, 52, [("bob", [1, 9]), ("nobody", [1])], three),
                              .unknownDevice, cmid: 52, account: "bob", device: 9)
        Self.expectMultiError(try await Self.multiSend(a, 53, [("nobody", [1]), ("bob", [9, 1])], three),
                              .unknownAccount, cmid: 53, account: "nobody")
        Self.expectMultiError(try await Self.multiSend(a, 54, [("bob", [2, 1]), ("carol", [5, 4])], Self.rawEnvelope(headers: 4, box: 40)),
                              .unknownDevice, cmid: 54, account: "carol", device: 5)

        // Nothing was stored, nothing pushed, and the refused ids are not remembered.
        for (account, device) in [("bob", UInt32(1)), ("bob", 2), ("bob", 3), ("carol", 1)] {
            #expect(try await relay.relay.store.queueDepth(account: account, deviceID: device) == 0)
        }
        _ = try await watcher.ping(1)
        #expect(watcher.backlog.isEmpty)
        // The sender's connection survived every refusal; a good MultiSend with a refused id is new.
        _ = try await a.ping(2)
        guard Self.ackTime(try await Self.multiSend(a, 50, good, three)) != nil else { return }
        for (account, device) in [("bob", UInt32(1)), ("bob", 2), ("carol", 1)] {
            let stored = try await relay.relay.store.pending(account: account, deviceID: device, after: 0, limit: 10)
            #expect(stored.count == 1)
        }
        // The exactly-64,000-byte copy is accepted, byte for byte §6's layout.
        let largest = Self.rawEnvelope(headers: 1, box: 63_868)
        guard Self.ackTime(try await Self.multiSend(a, 60, [("bob", [3])], largest)) != nil else { return }
        let d = try await watcher.nextDeliver()
        #expect(d.payload.count == 64_000)
        #expect(Array(d.payload) == Self.expectedCopy(largest, headers: 1, index: 0))

        // Other connections unaffected by malformed MultiSends: the watcher's Send still works.
        let sent = try await watcher.sendAndWait(70, to: "alice", "still here")
        guard case .serverAck? = sent.body else { Issue.record("\(sent)"); return }
        #expect(try await a.nextDeliver().payload == Data("still here".utf8))
        await a.close()
        await watcher.close()
        await relay.stop()
    }

    @Test func anonymousConnectionsAreRefused() async throws {
        let relay = try await TestRelay.start()
        let bob = TestDevice("bob")
        let b = try await RelayTestClient.register(relay, bob)
        try await b.waitQueueEmpty()
        await b.close()
        let anon = try await RelayTestClient.connect(relay, nil, pattern: .nk, hello: RelayClientHello())
        try await anon.send(Self.stanza(77, [("bob", [1])], Self.rawEnvelope(headers: 1, box: 16)))
        Self.expectMultiError(try await anon.next(), .unauthenticated, cmid: 77)
        _ = try await anon.ping(1)   // still open
        #expect(try await relay.relay.store.queueDepth(account: "bob", deviceID: 1) == 0)
        await anon.close()
        await relay.stop()
    }

    @Test func aRateLimitedMultiSendNamesItsID() async throws {
        let relay = try await TestRelay.start { $0.stanzaBurst = 1; $0.stanzaRate = 0.000_1 }
        let a = try await RelayTestClient.register(relay, TestDevice("alice"))
        try await a.waitQueueEmpty()
        let b = try await RelayTestClient.register(relay, TestDevice("bob"))
        try await b.waitQueueEmpty()
        await b.close()
        let raw = Self.rawEnvelope(headers: 1, box: 16)
        guard Self.ackTime(try await Self.multiSend(a, 1, [("bob", [1])], raw)) != nil else { return }
        // The bucket is empty: a MultiSend to one device takes one token, as a Send does.
        Self.expectMultiError(try await Self.multiSend(a, 2, [("bob", [1])], raw), .rateLimited, cmid: 2)
        #expect(try await relay.relay.store.queueDepth(account: "bob", deviceID: 1) == 1)
        await a.close()
        await relay.stop()
    }

    /// §21.2: a MultiSend takes one token per 16 listed devices (rounded up).
    @Test func aMultiSendCostsATokenPerSixteenDevices() {
        func stanza(_ devices: Int) -> RelayStanza {
            var s = RelayStanza()
            s.multiSend.recipients = (0..<devices).map { i in
                var r = RelayMultiRecipient()
                r.account = "a\(i)"
                r.devices = [1]
                return r
            }
            return s
        }
        #expect([0, 1, 16, 17, 32, 33, 256].map { RelayConnection.tokens(stanza($0)) } == [1, 1, 1, 2, 2, 3, 16])
        var send = RelayStanza()
        send.send.devices = Array(1...16)
        #expect(RelayConnection.tokens(send) == 1)
        var bucket = TokenBucket(rate: 0, burst: 17, now: 0)
        #expect(bucket.take(16, now: 0) && !bucket.take(2, now: 0) && bucket.take(now: 0) && !bucket.take(now: 0))
    }

    @Test func aRetryStoresOneCopyPerDevice() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice"), bob = TestDevice("bob"), carol = TestDevice("carol")
        let identities = ["bob": bob, "carol": carol]
        let a = try await RelayTestClient.register(relay, alice)
        try await a.waitQueueEmpty()
        for d in [bob, bob.sibling(2), carol] {
            let c = try await RelayTestClient.registerAny(relay, d)
            try await c.waitQueueEmpty()
            await c.close()
        }
        let sender = try Sender(alice, relay)
        let recipients: Recipients = [("bob", [1, 2]), ("carol", [1])]
        let first = try sender.seal("once", recipients, identities: identities)
        guard let t0 = Self.ackTime(try await Self.multiSend(a, 9, recipients, first.serialized)) else { return }

        // The same id again: the same bytes, a re-sealed envelope, fewer recipients — the
        // original time each time, nothing stored.
        relay.clock.advance(by: 1_000)
        #expect(Self.ackTime(try await Self.multiSend(a, 9, recipients, first.serialized)) == t0)
        let resealed = try sender.seal("once", recipients, identities: identities)
        #expect(resealed.serialized != first.serialized)
        #expect(Self.ackTime(try await Self.multiSend(a, 9, recipients, resealed.serialized)) == t0)
        let fewer: Recipients = [("carol", [1])]
        #expect(Self.ackTime(try await Self.multiSend(a, 9, fewer, try sender.seal("once", fewer, identities: identities).serialized)) == t0)
        for (i, (account, device)) in [("bob", UInt32(1)), ("bob", 2), ("carol", 1)].enumerated() {
            let stored = try await relay.relay.store.pending(account: account, deviceID: device, after: 0, limit: 10)
            #expect(stored.map(\.payload) == [Data(try first.delivered(to: i))])
            #expect(stored.map(\.serverTime) == [t0])
        }
        // More recipients with the same id: only the new device's copy is stored (at the new
        // time); the answer is the earliest time.
        let b3 = try await RelayTestClient.registerLinked(relay, bob.sibling(3))
        try await b3.waitQueueEmpty()
        let more: Recipients = [("bob", [1, 2, 3]), ("carol", [1])]
        let third = try sender.seal("once", more, identities: identities)
        #expect(Self.ackTime(try await Self.multiSend(a, 9, more, third.serialized)) == t0)
        let pushed = try await b3.nextDeliver()
        #expect(pushed.payload == Data(try third.delivered(to: 2)))
        #expect(pushed.serverTime == relay.clock.now)
        await b3.close()
        // The copies share the device's dedupe scope with its Sends (§21.3): a Send with a
        // copy's id is that copy.
        let copyID = RelayConnection.multiSendCopyID(9, account: "bob", deviceID: 1)
        let send = try await a.sendAndWait(copyID, to: "bob", [1], "other")
        #expect(Self.ackTime(send) == t0)
        #expect(try await relay.relay.store.queueDepth(account: "bob", deviceID: 1) == 1)
        await a.close()
        await relay.stop()
    }

    @Test func aRetryAfterAPartialQueueFullCompletesIt() async throws {
        let relay = try await TestRelay.start { $0.queueCap = 2 }
        let alice = TestDevice("alice"), bob = TestDevice("bob"), carol = TestDevice("carol"), dave = TestDevice("dave")
        let identities = ["bob": bob, "carol": carol, "dave": dave]
        let a = try await RelayTestClient.register(relay, alice)
        try await a.waitQueueEmpty()
        for d in [bob, bob.sibling(2), carol, dave] {
            let c = try await RelayTestClient.registerAny(relay, d)
            try await c.waitQueueEmpty()
            await c.close()
        }
        // Carol's queue is full.
        for id in UInt64(1)...2 { _ = try await a.sendAndWait(id, to: "carol", "filler \(id)") }
        let sender = try Sender(alice, relay)
        let recipients: Recipients = [("bob", [1, 2]), ("carol", [1]), ("dave", [1])]
        let first = try sender.seal("partial", recipients, identities: identities)
        relay.clock.advance(by: 1_000)
        let t0 = relay.clock.now
        Self.expectMultiError(try await Self.multiSend(a, 0xBEEF, recipients, first.serialized), .queueFull, cmid: 0xBEEF, account: "carol", device: 1)
        // The other devices' copies are stored (the error says which one was refused).
        for (index, (account, device)) in [(0, ("bob", UInt32(1))), (1, ("bob", 2)), (3, ("dave", 1))] {
            let stored = try await relay.relay.store.pending(account: account, deviceID: device, after: 0, limit: 10)
            #expect(stored.map(\.payload) == [Data(try first.delivered(to: index))])
        }
        #expect(try await relay.relay.store.queueDepth(account: "carol", deviceID: 1) == 2)

        // Carol drains; the retry (re-sealed) stores her copy only, and answers the first time.
        let c = try await RelayTestClient.login(relay, carol)
        _ = try await c.receiveAndAck(2)
        try await c.waitQueueEmpty()
        _ = try await c.ping(1)
        relay.clock.advance(by: 1_000)
        let resealed = try sender.seal("partial", recipients, identities: identities)
        #expect(Self.ackTime(try await Self.multiSend(a, 0xBEEF, recipients, resealed.serialized)) == t0)
        let d = try await c.nextDeliver()
        #expect(d.payload == Data(try resealed.delivered(to: 2)))
        #expect(d.serverTime == relay.clock.now)
        let opened = try MultiRecipientEnvelope.open(Array(d.payload), recipientIdentity: IdentityKeyPair(privateKey: carol.identity),
                                                     validator: CertificateValidator(trustRoot: relay.identity.trustRoot), now: relay.clock.now)
        #expect(opened.message == Array("partial".utf8))
        for (account, device) in [("bob", UInt32(1)), ("bob", 2), ("dave", 1), ("carol", 1)] {
            #expect(try await relay.relay.store.queueDepth(account: account, deviceID: device) == 1)
        }
        await c.close()
        await a.close()
        await relay.stop()
    }
}

/// `MultiSend` on PostgreSQL (its group committer batches the copies' enqueues): two nodes of one
/// deployment, recipients on both.
extension PostgresTests {
    @Test func multiSendOnTwoNodes() async throws {
        typealias M = RelayMultiSendTests
        let config = try TestPostgres.configuration()
        let n1 = try await PostgresNode.start(config, node: "n1")
        let n2 = try await PostgresNode.start(config, node: "n2")
        let alice = TestDevice("alice"), bob = TestDevice("bob"), carol = TestDevice("carol")
        let bob2 = bob.sibling(2)
        let identities = ["bob": bob, "carol": carol]
        let a = try await RelayTestClient.register(n1.relay, alice)
        try await a.waitQueueEmpty()
        let b1 = try await RelayTestClient.register(n2.relay, bob)
        try await b1.waitQueueEmpty()
        let c1 = try await RelayTestClient.register(n1.relay, carol)
        try await c1.waitQueueEmpty()
        let gone = try await RelayTestClient.registerLinked(n2.relay, bob2, via: b1)
        try await gone.waitQueueEmpty()
        await gone.close()

        let sender = try M.Sender(alice, n1.relay)
        let recipients: M.Recipients = [("bob", [1, 2]), ("carol", [1])]
        let envelope = try sender.seal("on postgres", recipients, identities: identities)
        guard let time = M.ackTime(try await M.multiSend(a, 42, recipients, envelope.serialized)) else { return }
        #expect(time == n1.relay.clock.now)
        let validator = CertificateValidator(trustRoot: n1.relay.identity.trustRoot)
        for (client, index, identity) in [(b1, 0, bob), (c1, 2, carol)] {
            let d = try await client.nextDeliver()
            #expect(d.payload == Data(try envelope.delivered(to: index)))
            #expect(d.senderAccount == "alice" && d.senderDevice == 1 && d.serverTime == time)
            let opened = try MultiRecipientEnvelope.open(Array(d.payload), recipientIdentity: IdentityKeyPair(privateKey: identity.identity),
                                                         validator: validator, now: n1.relay.clock.now)
            #expect(opened.message == Array("on postgres".utf8))
            try await client.ack([d.serverID])
            _ = try await client.ping(1)
        }
        // A resend (re-sealed) stores nothing; a refusal stores nothing.
        let again = try sender.seal("on postgres", recipients, identities: identities)
        #expect(M.ackTime(try await M.multiSend(a, 42, recipients, again.serialized)) == time)
        M.expectMultiError(try await M.multiSend(a, 43, [("bob", [1]), ("carol", [5])], M.rawEnvelope(headers: 2, box: 16)),
                           .unknownDevice, cmid: 43, account: "carol", device: 5)
        M.expectMultiError(try await M.multiSend(a, 44, [("bob", [1]), ("nobody", [1])], M.rawEnvelope(headers: 2, box: 16)),
                           .unknownAccount, cmid: 44, account: "nobody")
        _ = try await b1.ping(2)
        _ = try await c1.ping(2)
        #expect(b1.backlog.isEmpty && c1.backlog.isEmpty)
        #expect(try await n1.store.queueDepth(account: "bob", deviceID: 1) == 0)
        #expect(try await n1.store.queueDepth(account: "carol", deviceID: 1) == 0)
        // The offline device drains its one copy on node 1.
        let b2 = try await RelayTestClient.login(n1.relay, bob2)
        let drained = try await b2.receiveAndAck(1)
        #expect(drained.map(\.payload) == [Data(try envelope.delivered(to: 1))])
        try await b2.waitQueueEmpty()
        for c in [a, b1, c1, b2] { await c.close() }
        await n1.stop()
        await n2.stop()
    }
}
