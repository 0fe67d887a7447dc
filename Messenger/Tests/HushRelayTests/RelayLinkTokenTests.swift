import Foundation
import Hush
import HushTransport
import Testing
@testable import HushRelay

/// Link tokens (spec §5.1, §22.4), end to end over loopback: only device 1 gets them, each
/// reserves its own device id, and a new device of an account that has devices registers only
/// with an open token for its id: so a removed device cannot register itself again.
@Suite(.serialized) struct RelayLinkTokenTests {
    /// Sends `RequestLinkToken{rid}` on `c` and returns the answer for `rid` (`LinkToken` or `Error`).
    static func ask(_ c: RelayTestClient, _ rid: UInt32) async throws -> RelayStanza {
        var s = RelayStanza()
        s.requestLinkToken.requestID = rid
        try await c.send(s)
        return try await reply(c, rid)
    }

    static func reply(_ c: RelayTestClient, _ rid: UInt32) async throws -> RelayStanza {
        try await c.wait { st -> RelayStanza? in
            switch st.body {
            case .linkToken(let t) where t.requestID == rid: st
            case .error(let e) where e.requestID == rid: st
            default: nil
            }
        }
    }

    static func token(_ s: RelayStanza, sourceLocation: SourceLocation = #_sourceLocation) throws -> RelayLinkToken {
        guard case .linkToken(let t)? = s.body else {
            Issue.record("expected LinkToken, got \(s)", sourceLocation: sourceLocation)
            throw ClientError.unexpected("\(s)")
        }
        return t
    }

    /// The error and close code of a registration the relay refuses.
    static func refused(_ relay: TestRelay, _ device: TestDevice, _ hello: RelayClientHello) async throws -> (RelayErrorCode?, UInt16?) {
        let c = try await RelayTestClient.connect(relay, device, pattern: .xx, hello: hello, expectWelcome: false)
        let (code, stanzas) = await c.closeCode()
        if case .error(let e)? = stanzas.first?.body { return (e.code, code) }
        return (nil, code)
    }

    static let invalid: (RelayErrorCode?, UInt16?) = (.invalidLinkToken, RelayProtocol.CloseCode.loginRejected.rawValue)

    @Test func onlyDeviceOneGetsTokensAndEachReservesTheLowestFreeID() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice")
        let a1 = try await RelayTestClient.register(relay, alice)
        try await a1.waitQueueEmpty()

        let first = try Self.token(try await Self.ask(a1, 7))
        #expect(first.requestID == 7 && first.token.count == 16 && first.deviceID == 2)
        #expect(first.expiresAt == relay.clock.now + 600_000)
        // Pipelined requests: each its own id (the open reservation of 2 counts), distinct tokens.
        var s = RelayStanza()
        s.requestLinkToken.requestID = 8
        try await a1.send(s)
        s.requestLinkToken.requestID = 9
        try await a1.send(s)
        let second = try Self.token(try await Self.reply(a1, 8)), third = try Self.token(try await Self.reply(a1, 9))
        #expect(second.deviceID == 3 && third.deviceID == 4)
        #expect(Set([first.token, second.token, third.token]).count == 3)
        // The relay keeps only SHA-256 of each token, with the id it reserves.
        #expect(try await relay.relay.store.devices(account: "alice").map(\.deviceID) == [1])

        // Device 3 registers with its token (out of order: 2's is still open).
        let alice3 = alice.sibling(3)
        let a3 = try await RelayTestClient.connect(relay, alice3, pattern: .xx, hello: alice3.registerHello(linkToken: second.token))
        #expect(a3.welcome?.registered == true && a3.welcome?.deviceID == 3)
        try await a3.waitQueueEmpty()
        // A device other than 1: LINK_FORBIDDEN, the connection stays.
        Self.expectRequestError(try await Self.ask(a3, 10), .linkForbidden, requestID: 10)
        _ = try await a3.ping(11)
        // Anonymous: UNAUTHENTICATED.
        let anon = try await RelaySealedSenderTests.anonymous(relay)
        Self.expectRequestError(try await Self.ask(anon, 12), .unauthenticated, requestID: 12)
        // The next one skips the registered 3 and the open 2 and 4.
        #expect(try Self.token(try await Self.ask(a1, 13)).deviceID == 5)
        for c in [a1, a3, anon] { await c.close() }
        await relay.stop()
    }

    static func expectRequestError(_ s: RelayStanza, _ code: RelayErrorCode, requestID: UInt32, sourceLocation: SourceLocation = #_sourceLocation) {
        RelayDeviceManagementTests.expectRequestError(s, code, requestID: requestID, sourceLocation: sourceLocation)
    }

    @Test func aNewDeviceRegistersOnlyWithAnOpenTokenForItsID() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice")
        let a1 = try await RelayTestClient.register(relay, alice)
        try await a1.waitQueueEmpty()
        let for2 = try Self.token(try await Self.ask(a1, 1))
        let for3 = try Self.token(try await Self.ask(a1, 2))
        #expect(for2.deviceID == 2 && for3.deviceID == 3)
        let alice2 = alice.sibling(2)

        // No token, a wrong one, another length, the token of another id: INVALID_LINK_TOKEN, 4002.
        #expect(try await Self.refused(relay, alice2, alice2.registerHello) == Self.invalid)
        var wrong = for2.token
        wrong[0] ^= 1
        #expect(try await Self.refused(relay, alice2, alice2.registerHello(linkToken: wrong)) == Self.invalid)
        #expect(try await Self.refused(relay, alice2, alice2.registerHello(linkToken: for2.token.prefix(15))) == Self.invalid)
        #expect(try await Self.refused(relay, alice2, alice2.registerHello(linkToken: for3.token)) == Self.invalid)
        // Another account's device with alice's token: not its account.
        let bob = TestDevice("bob")
        _ = try await RelayTestClient.register(relay, bob)
        let bob2 = bob.sibling(2)
        #expect(try await Self.refused(relay, bob2, bob2.registerHello(linkToken: for2.token)) == Self.invalid)
        #expect(try await relay.relay.store.devices(account: "alice").map(\.deviceID) == [1])

        // The right one: registered, and used.
        let a2 = try await RelayTestClient.connect(relay, alice2, pattern: .xx, hello: alice2.registerHello(linkToken: for2.token))
        #expect(a2.welcome?.registered == true && a2.welcome?.deviceID == 2)
        try await a2.waitQueueEmpty()
        await a2.close()
        // The same registration again (a lost Welcome, a restored backup): idempotent, with or
        // without the used token.
        for hello in [alice2.registerHello(linkToken: for2.token), alice2.registerHello] {
            let again = try await RelayTestClient.connect(relay, alice2, pattern: .xx, hello: hello)
            #expect(again.welcome?.registered == true && again.welcome?.deviceID == 2)
            await again.close()
        }
        // A used token registers nothing else: another key under id 2 is DEVICE_TAKEN, and after
        // 2 is removed the token is still used.
        let other2 = alice.sibling(2)
        #expect(try await Self.refused(relay, other2, other2.registerHello(linkToken: for2.token)) == (.deviceTaken, 4002))
        let gone = try await RelayDeviceManagementTests.remove(a1, 2, 3)
        RelayDeviceManagementTests.expectOK(gone, 3)
        #expect(try await Self.refused(relay, other2, other2.registerHello(linkToken: for2.token)) == Self.invalid)

        // Expired (the relay's clock passes the ten minutes): refused.
        relay.clock.advance(by: 600_000)
        let alice3 = alice.sibling(3)
        #expect(try await Self.refused(relay, alice3, alice3.registerHello(linkToken: for3.token)) == Self.invalid)
        // A fresh token (the expired reservation of 3 is gone: 2 is the lowest free id again).
        let fresh = try Self.token(try await Self.ask(a1, 4))
        #expect(fresh.deviceID == 2)
        let a2new = try await RelayTestClient.connect(relay, other2, pattern: .xx, hello: other2.registerHello(linkToken: fresh.token))
        #expect(a2new.welcome?.deviceID == 2)
        for c in [a1, a2new] { await c.close() }
        await relay.stop()
    }

    /// The attack §22.2 used to admit: a removed device holds the identity key and signs a new
    /// binding; without a token from device 1 the relay refuses it, under any id.
    @Test func aRemovedDeviceCannotRegisterItselfAgain() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice")
        let a1 = try await RelayTestClient.register(relay, alice)
        try await a1.waitQueueEmpty()
        let alice2 = alice.sibling(2)
        let a2 = try await RelayTestClient.registerLinked(relay, alice2, via: a1)
        try await a2.waitQueueEmpty()
        RelayDeviceManagementTests.expectOK(try await RelayDeviceManagementTests.remove(a1, 2, 5), 5)
        let (closed, _) = await a2.closeCode()
        #expect(closed == RelayProtocol.CloseCode.deviceRemoved.rawValue)

        // Its old static key, a new one, its old id, another id: all refused.
        #expect(try await Self.refused(relay, alice2, alice2.registerHello) == Self.invalid)
        for id in [UInt32(2), 3, 16, 1_000] {
            let reborn = alice.sibling(id)
            #expect(try await Self.refused(relay, reborn, reborn.registerHello) == Self.invalid, "device \(id)")
        }
        #expect(try await relay.relay.store.devices(account: "alice").map(\.deviceID) == [1])
        await a1.close()
        await relay.stop()
    }

    /// Account recovery (§5.1): an account whose devices all removed themselves has none; the
    /// identity key holder registers again without a token (and the next device needs one).
    @Test func anAccountWithoutDevicesIsRecoveredWithTheIdentityKey() async throws {
        let relay = try await TestRelay.start()
        let zoe = TestDevice("zoe", 2)
        let z2 = try await RelayTestClient.register(relay, zoe)  // a new account: no token
        try await z2.waitQueueEmpty()
        RelayDeviceManagementTests.expectOK(try await RelayDeviceManagementTests.remove(z2, 2, 1), 1)
        _ = await z2.closeCode()
        #expect(try await relay.relay.store.devices(account: "zoe").isEmpty)
        let back = zoe.sibling(1)
        let z1 = try await RelayTestClient.register(relay, back)
        #expect(z1.welcome?.registered == true && z1.welcome?.deviceID == 1)
        let next = zoe.sibling(2)
        #expect(try await Self.refused(relay, next, next.registerHello) == Self.invalid)
        await z1.close()
        await relay.stop()
    }

    /// Over 4 open tokens the oldest is revoked: the newest request wins (§22.4).
    @Test func aFifthOpenTokenRevokesTheOldest() async throws {
        let relay = try await TestRelay.start()
        let alice = TestDevice("alice")
        let a1 = try await RelayTestClient.register(relay, alice)
        try await a1.waitQueueEmpty()
        var tokens: [RelayLinkToken] = []
        for rid in UInt32(1)...4 {
            tokens.append(try Self.token(try await Self.ask(a1, rid)))
            relay.clock.advance(by: 1)
        }
        #expect(tokens.map(\.deviceID) == [2, 3, 4, 5])
        let fifth = try Self.token(try await Self.ask(a1, 5))
        #expect(fifth.deviceID == 2)
        let alice2 = alice.sibling(2)
        #expect(try await Self.refused(relay, alice2, alice2.registerHello(linkToken: tokens[0].token)) == Self.invalid)
        let a2 = try await RelayTestClient.connect(relay, alice2, pattern: .xx, hello: alice2.registerHello(linkToken: fifth.token))
        #expect(a2.welcome?.deviceID == 2)
        // The others are still open.
        let alice3 = alice.sibling(3)
        let a3 = try await RelayTestClient.connect(relay, alice3, pattern: .xx, hello: alice3.registerHello(linkToken: tokens[1].token))
        #expect(a3.welcome?.deviceID == 3)
        for c in [a1, a2, a3] { await c.close() }
        await relay.stop()
    }
}
