import Foundation
import Hush
import HushTransport
import Testing
@testable import HushRelay

/// Registration and login rejections: a typed Error stanza, then close 4002.
@Suite(.serialized) struct RelayRejectionTests {
    func rejected(_ relay: TestRelay, _ device: TestDevice?, pattern: RelayProtocol.Pattern = .xx, hello: RelayClientHello,
                  now: (@Sendable () -> UInt64)? = nil) async throws -> (RelayErrorCode?, UInt16?) {
        let c = try await RelayTestClient.connect(relay, device, pattern: pattern, hello: hello, now: now, expectWelcome: false)
        let (code, stanzas) = await c.closeCode()
        var error: RelayErrorCode?
        if case .error(let e)? = stanzas.first?.body { error = e.code }
        return (error, code)
    }

    @Test func registrationRejections() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice")
        let a = try await RelayTestClient.register(relay, alice)

        // Wrong signature: signed for another device key.
        var hello = TestDevice("bob").registerHello
        hello.register.deviceSignature = alice.registerHello.register.deviceSignature
        #expect(try await rejected(relay, TestDevice("bob"), hello: hello) == (.invalidSignature, 4002))

        // The name is taken by another identity key.
        let other = TestDevice("alice")
        let taken = try await rejected(relay, other, hello: other.registerHello)
        #expect(taken == (.accountTaken, 4002), "\(taken)")

        // Device id 1 of alice is bound to another static key.
        let impostor = alice.sibling(1)
        #expect(try await rejected(relay, impostor, hello: impostor.registerHello) == (.deviceTaken, 4002))

        // Bad names and keys.
        let upper = TestDevice("Alice")
        #expect(try await rejected(relay, upper, hello: upper.registerHello) == (.invalidAccountName, 4002))
        var badKey = TestDevice("carol").registerHello
        badKey.register.identityKey = Data([1, 2, 3])
        #expect(try await rejected(relay, TestDevice("carol"), hello: badKey) == (.invalidKey, 4002))

        // No action at all.
        #expect(try await rejected(relay, TestDevice("dave"), hello: RelayClientHello()) == (.unauthenticated, 4002))

        // Re-registering the same device is a login.
        await a.close()
        let again = try await RelayTestClient.register(relay, alice, pattern: .ik)
        #expect(again.welcome?.registered == true)
        await again.close()
        await relay.stop()
    }

    @Test func loginRejections() async throws {
        let relay = try await TestRelay.start()
        let bob = TestDevice("bob")
        let b = try await RelayTestClient.register(relay, bob)
        await b.close()
        #expect(try await rejected(relay, TestDevice("nobody"), pattern: .ik, hello: TestDevice("nobody").loginHello) == (.unknownAccount, 4002))
        let bob2 = bob.sibling(2)
        #expect(try await rejected(relay, bob2, pattern: .ik, hello: bob2.loginHello) == (.unknownDevice, 4002))
        // Claiming bob.1 with another Noise key.
        let thief = TestDevice("bob", 1)
        #expect(try await rejected(relay, thief, pattern: .ik, hello: bob.loginHello) == (.deviceKeyMismatch, 4002))
        // A login over the anonymous pattern.
        #expect(try await rejected(relay, nil, pattern: .nk, hello: bob.loginHello) == (.unauthenticated, 4002))
        // A client clock outside the window.
        let skewed: @Sendable () -> UInt64 = { [clock = relay.clock] in clock.now / 1_000 - 121 }
        #expect(try await rejected(relay, bob, pattern: .ik, hello: bob.loginHello, now: skewed) == (.clockSkew, 4002))
        await relay.stop()
    }

    @Test func replayedIKFirstMessage() async throws {
        let relay = try await TestRelay.start()
        let bob = TestDevice("bob")
        await (try await RelayTestClient.register(relay, bob)).close()
        let genuine = try await RelayTestClient.login(relay, bob)
        let captured = genuine.firstMessage
        await genuine.close()
        // An eavesdropper replays the captured first message on a new connection: the relay
        // answers (it cannot tell yet), then rejects the login and closes with 4002.
        let replay = try await TestWebSocket.connect(port: relay.port)
        try await replay.send(captured)
        guard case .binary = await replay.next() else { Issue.record("no handshake reply"); return }
        guard case .binary = await replay.next() else { Issue.record("no error stanza"); return }
        #expect(await replay.next() == .closed(4002))
        // The replay logged nobody in: once the genuine connection's close has been processed
        // (its client returned before the relay saw it), no device is online. Bounded wait.
        let deadline = ContinuousClock.now + .seconds(10)
        while relay.relay.onlineDevices != 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(relay.relay.onlineDevices == 0)
        await relay.stop()
    }

    @Test func newerConnectionReplacesOlder() async throws {
        let relay = try await TestRelay.start()
        let bob = TestDevice("bob")
        let first = try await RelayTestClient.register(relay, bob)
        try await first.waitQueueEmpty()
        let second = try await RelayTestClient.login(relay, bob)
        #expect(await first.closeCode().0 == 4003)
        _ = try await second.ping(1)
        #expect(relay.relay.onlineDevices == 1)
        await second.close()
        await relay.stop()
    }

    @Test func anonymousChannelMayOnlyPing() async throws {
        let relay = try await TestRelay.start()
        let c = try await RelayTestClient.connect(relay, nil, pattern: .nk, hello: RelayClientHello())
        #expect(c.welcome?.account == "")
        guard case .pong? = try await c.ping(3).body else { Issue.record("no pong"); return }
        let r = try await c.sendAndWait(1, to: "bob", "x")
        expectError(r, .unauthenticated)
        await c.close()
        await relay.stop()
    }
}
