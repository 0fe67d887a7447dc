import Foundation
import Hush
import HushTransport
import Testing
@testable import HushRelay

/// Sender certificates (§16), presence (§17) and ephemeral messages (§18), over loopback.
@Suite(.serialized) struct RelayServicesTests {
    func request(_ c: RelayTestClient, _ rid: UInt32, _ build: (inout RelayStanza) -> Void) async throws -> RelayStanza {
        var s = RelayStanza()
        build(&s)
        try await c.send(s)
        return try await c.wait { s in
            switch s.body {
            case .ok(let o) where o.requestID == rid: s
            case .senderCertificate(let c) where c.requestID == rid: s
            case .error(let e) where e.requestID == rid: s
            default: nil
            }
        }
    }

    func errorCode(_ s: RelayStanza) -> RelayErrorCode? {
        if case .error(let e)? = s.body { e.code } else { nil }
    }

    func getCertificate(_ c: RelayTestClient, _ rid: UInt32) async throws -> RelayStanza {
        try await request(c, rid) { $0.getSenderCertificate.requestID = rid }
    }

    func subscribe(_ c: RelayTestClient, _ rid: UInt32, _ accounts: [String]) async throws -> RelayStanza {
        try await request(c, rid) { $0.subscribePresence.requestID = rid; $0.subscribePresence.accounts = accounts }
    }

    func privacy(_ c: RelayTestClient, _ rid: UInt32, _ v: RelayPresenceVisibility, _ allowed: [String] = []) async throws -> RelayStanza {
        try await request(c, rid) {
            $0.setPresencePrivacy.requestID = rid
            $0.setPresencePrivacy.visibility = v
            $0.setPresencePrivacy.allowed = allowed
        }
    }

    func nextPresence(_ c: RelayTestClient) async throws -> RelayPresence {
        try await c.wait { if case .presence(let p)? = $0.body { p } else { nil } }
    }

    @Test func senderCertificateCertifiesTheDevicesIdentityForSevenDays() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice", 3)
        let a = try await RelayTestClient.register(relay, alice)
        let reply = try await getCertificate(a, 7)
        guard case .senderCertificate(let issued)? = reply.body else { Issue.record("\(reply)"); return }
        let cert = try SenderCertificate(serialized: Array(issued.certificate))
        try CertificateValidator(trustRoot: relay.identity.trustRoot).validate(cert, now: relay.clock.now)
        #expect(cert.senderID == "alice")
        #expect(cert.deviceID == 3)
        #expect(cert.identityKey.publicKey.rawRepresentation == alice.identity.publicKey.rawRepresentation)
        #expect(cert.expiration == relay.clock.now + 7 * 86_400_000)
        #expect(issued.expiration == cert.expiration)
        // Expired a millisecond after its expiration.
        #expect(throws: CertificateError.expired(expiration: cert.expiration, now: cert.expiration)) {
            try CertificateValidator(trustRoot: relay.identity.trustRoot).validate(cert, now: cert.expiration)
        }
        await a.close()
        await relay.stop()
    }

    @Test func senderCertificateRejections() async throws {
        let relay = try await TestRelay.start()
        // Anonymous connections get none.
        let anon = try await RelayTestClient.connect(relay, nil, pattern: .nk, hello: RelayClientHello())
        #expect(errorCode(try await getCertificate(anon, 1)) == .unauthenticated)
        await anon.close()
        // Burst of 10, then rate limited (the test clock does not move).
        let a = try await RelayTestClient.register(relay, TestDevice("alice"))
        for i in 1...10 { #expect(errorCode(try await getCertificate(a, UInt32(i))) == nil) }
        #expect(errorCode(try await getCertificate(a, 11)) == .rateLimited)
        relay.clock.advance(by: 60_000)
        #expect(errorCode(try await getCertificate(a, 12)) == nil)
        await a.close()
        await relay.stop()
    }

    @Test func relayWithoutServerKeyAnswersUnavailable() async throws {
        let relay = try await TestRelay.start()
        let bare = Relay(store: relay.relay.store, identity: try RelayIdentity(
            staticKey: relay.identity.staticKey, certificate: relay.identity.certificate, trustRoot: relay.identity.trustRoot,
            now: relay.clock.now / 1_000))
        #expect(bare.services.certificates == nil)
        await relay.stop()
    }

    @Test func presenceOnlineLastSeenAndPrivacy() async throws {
        let relay = try await TestRelay.start()
        let aliceDevice = TestDevice("alice")
        var a = try await RelayTestClient.register(relay, aliceDevice)
        let b = try await RelayTestClient.register(relay, TestDevice("bob"))
        let c = try await RelayTestClient.register(relay, TestDevice("carol"))

        #expect(errorCode(try await subscribe(b, 1, ["alice", "dave"])) == nil)
        var p = try await nextPresence(b)
        #expect(p.account == "alice" && p.online && !p.hidden && p.lastSeen == relay.clock.now)
        p = try await nextPresence(b)
        #expect(p.account == "dave" && !p.online && p.lastSeen == 0)

        // Alice leaves: bob sees her offline with the time.
        relay.clock.advance(by: 5_000)
        await a.close()
        p = try await nextPresence(b)
        #expect(p.account == "alice" && !p.online && p.lastSeen == relay.clock.now)
        let seen = relay.clock.now

        // Back, then contacts only: bob allowed, carol not.
        relay.clock.advance(by: 5_000)
        a = try await RelayTestClient.login(relay, aliceDevice)
        p = try await nextPresence(b)
        #expect(p.account == "alice" && p.online && p.lastSeen == relay.clock.now)
        #expect(seen < relay.clock.now)
        #expect(errorCode(try await privacy(a, 2, .presenceContacts, ["bob"])) == nil)
        p = try await nextPresence(b)
        #expect(p.account == "alice" && p.online && !p.hidden)
        #expect(errorCode(try await subscribe(c, 3, ["alice"])) == nil)
        p = try await nextPresence(c)
        #expect(p == { var h = RelayPresence(); h.account = "alice"; h.hidden = true; return h }())

        // Nobody: bob is told it is hidden now.
        #expect(errorCode(try await privacy(a, 4, .presenceNobody)) == nil)
        p = try await nextPresence(b)
        #expect(p.account == "alice" && p.hidden && !p.online && p.lastSeen == 0)
        await a.close()
        await b.close()
        await c.close()
        await relay.stop()
    }

    @Test func presenceRejections() async throws {
        let relay = try await TestRelay.start()
        let anon = try await RelayTestClient.connect(relay, nil, pattern: .nk, hello: RelayClientHello())
        #expect(errorCode(try await subscribe(anon, 1, ["bob"])) == .unauthenticated)
        #expect(errorCode(try await privacy(anon, 2, .presenceNobody)) == .unauthenticated)
        await anon.close()

        let a = try await RelayTestClient.register(relay, TestDevice("alice"))
        let tooMany = (0...RelayProtocol.ServiceLimits.maxPresenceSubscriptions).map { "u\($0)" }
        #expect(errorCode(try await subscribe(a, 1, tooMany)) == .listTooLong)
        let tooLong = (0...RelayProtocol.ServiceLimits.maxPresenceAllowList).map { "u\($0)" }
        #expect(errorCode(try await privacy(a, 2, .presenceContacts, tooLong)) == .listTooLong)
        #expect(errorCode(try await subscribe(a, 3, ["Bob"])) == .invalidAccountName)
        #expect(errorCode(try await subscribe(a, 4, ["bob", "bob"])) == .malformedStanza)
        // 10 requests so far in the burst of 10 → 4 used; 6 more pass, then rate limited.
        for i in 5...10 { #expect(errorCode(try await subscribe(a, UInt32(i), [])) == nil) }
        #expect(errorCode(try await subscribe(a, 11, [])) == .rateLimited)
        await a.close()
        await relay.stop()
    }

    @Test func lastSeenAndPrivacySurviveReopeningTheSQLiteStore() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("presence-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("presence.sqlite").path
        do {
            let s = try SQLitePresenceStore(path: path)
            try await s.setLastSeen("alice", 1_000)
            try await s.setLastSeen("alice", 900)  // earlier: ignored
            try await s.setPrivacy("alice", PresencePrivacy(visibility: .contacts, allowed: ["bob", "carol"]))
        }
        let s = try SQLitePresenceStore(path: path)
        #expect(try await s.lastSeen("alice") == 1_000)
        #expect(try await s.lastSeen("bob") == nil)
        #expect(try await s.privacy("alice") == PresencePrivacy(visibility: .contacts, allowed: ["bob", "carol"]))
        #expect(try await s.privacy("bob") == nil)
        let m = InMemoryPresenceStore()
        try await m.setLastSeen("a", 5)
        try await m.setLastSeen("a", 4)
        #expect(try await m.lastSeen("a") == 5)
    }

    func nextError(_ c: RelayTestClient) async throws -> RelayErrorCode {
        try await c.wait { s -> RelayErrorCode? in if case .error(let e)? = s.body { e.code } else { nil } }
    }

    func ephemeral(_ c: RelayTestClient, to account: String, _ payload: [UInt8]) async throws {
        var s = RelayStanza()
        s.sendEphemeral.account = account
        s.sendEphemeral.payload = Data(payload)
        try await c.send(s)
    }

    @Test func ephemeralReachesOnlyOnlineDevicesAndIsNeverQueued() async throws {
        let relay = try await TestRelay.start()
        let bobDevice = TestDevice("bob")
        let a = try await RelayTestClient.register(relay, TestDevice("alice"))
        var b = try await RelayTestClient.register(relay, bobDevice)
        try await b.waitQueueEmpty()
        try await ephemeral(a, to: "bob", [1, 2, 3])
        let d = try await b.wait { if case .deliverEphemeral(let e)? = $0.body { e } else { nil } }
        #expect(d.senderAccount == "alice" && d.senderDevice == 1 && Array(d.payload) == [1, 2, 3] && d.serverTime == relay.clock.now)

        // Bob offline: the indicator is dropped. After he returns, the first thing after
        // QueueEmpty is the marker message, not the indicator.
        await b.close()
        while relay.relay.onlineDevices > 1 { try await Task.sleep(for: .milliseconds(5)) }
        try await ephemeral(a, to: "bob", [9])
        _ = try await a.ping(1)  // the relay handled the ephemeral send
        b = try await RelayTestClient.login(relay, bobDevice)
        try await b.waitQueueEmpty()
        #expect(try await a.sendAndWait(5, to: "bob", "marker").body.map { if case .serverAck = $0 { true } else { false } } == true)
        let next = try await b.next()
        guard case .deliver(let m)? = next.body else { Issue.record("expected the marker, got \(next)"); return }
        #expect(Array(m.payload) == Array("marker".utf8))
        await a.close()
        await b.close()
        await relay.stop()
    }

    @Test func ephemeralRejections() async throws {
        let relay = try await TestRelay.start()
        let a = try await RelayTestClient.register(relay, TestDevice("alice"))
        try await ephemeral(a, to: "bob", [UInt8](repeating: 0, count: RelayProtocol.ServiceLimits.maxEphemeralPayload + 1))
        #expect(try await nextError(a) == .payloadTooLarge)
        try await ephemeral(a, to: "Bob", [1])
        #expect(try await nextError(a) == .invalidAccountName)
        // Burst of 20 (two used by the rejected ones above? no: they failed before the limiter).
        for _ in 0..<20 { try await ephemeral(a, to: "bob", [1]) }
        try await ephemeral(a, to: "bob", [1])
        #expect(try await nextError(a) == .rateLimited)
        let anon = try await RelayTestClient.connect(relay, nil, pattern: .nk, hello: RelayClientHello())
        try await ephemeral(anon, to: "bob", [1])
        #expect(try await nextError(anon) == .unauthenticated)
        await anon.close()
        await a.close()
        await relay.stop()
    }
}
