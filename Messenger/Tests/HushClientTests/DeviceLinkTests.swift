import Foundation
import Hush
import HushTransport
import Testing
@testable import HushClient

/// Linking, listing and removing devices end to end over a real relay on loopback
/// (Docs/client.md §Linked devices, spec relay §22).
@Suite(.serialized, .timeLimit(.minutes(2))) struct DeviceLinkTests {
    /// A second device of `primary`'s account, linked through the relay; not started.
    static func link(_ primary: User, _ relay: ClientTestRelay) async throws -> (User, ProvisioningMessage, UInt32) {
        let pending = try await HushLink.begin(configuration: relay.configuration())
        #expect(pending.code.hasPrefix("hush-link:") && pending.code.count == 81)
        let id = try await primary.client.linkDevice(code: pending.code)
        let message = try await pending.wait()
        let store = InMemoryClientStore(identity: message.identity, registrationID: try RegistrationID.generate())
        let client = try HushClient.create(linking: message, store: store, configuration: relay.configuration())
        return (User(client: client, store: store, log: EventLog(client)), message, id)
    }

    @Test func linkedDeviceJoinsTheAccountAndBothListIt() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay)
        await alice.online()
        try await alice.client.setReadReceipts(false)
        let (second, message, id) = try await Self.link(alice, relay)
        #expect(id == 2 && message.deviceID == 2 && message.account == "alice")
        #expect(message.identity.identityKey == (try alice.store.identityKeyPair()).identityKey)
        #expect(second.client.account == "alice" && second.client.deviceID == 2)
        #expect(try second.store.identityKeyPair().identityKey == (try alice.store.identityKeyPair()).identityKey)
        // The account-wide settings came along: the sealed-sender secret, read receipts off.
        #expect(try second.store.setting(SettingKey.sealedSecret) == alice.store.setting(SettingKey.sealedSecret))
        #expect(try second.store.setting(SettingKey.sealedSecret)?.count == 32)
        #expect(await second.client.readReceiptsEnabled == false)
        #expect(try second.store.u64(SettingKey.nextID) == 2 << 48 | 1)
        // The relay's link token (spec relay §22.4) is kept until the device has registered.
        #expect(message.linkToken.count == 16)
        #expect(try second.store.setting(DeviceSettingKey.linkToken) == message.linkToken.withUnsafeBytes { Array($0) })
        await second.online()
        #expect(try second.store.setting(DeviceSettingKey.linkToken) == nil)
        // Only device 1 links: the new device gets LINK_FORBIDDEN, typed, and nothing is sent.
        let other = try await HushLink.begin(configuration: relay.configuration())
        await #expect(throws: ClientError.relay(.linkForbidden)) { try await second.client.linkDevice(code: other.code) }
        await other.cancel()

        let fromPrimary = try await alice.client.devices()
        let fromSecond = try await second.client.devices()
        #expect(fromPrimary.map(\.id) == [1, 2] && fromSecond.map(\.id) == [1, 2])
        #expect(fromPrimary.map(\.isThisDevice) == [true, false] && fromSecond.map(\.isThisDevice) == [false, true])
        #expect(fromPrimary.map(\.staticKey) == fromSecond.map(\.staticKey))
        #expect(fromPrimary.allSatisfy { $0.staticKey.count == 32 } && fromPrimary[0].staticKey != fromPrimary[1].staticKey)
        #expect(fromPrimary[1].registrationID == (try second.store.localRegistrationID()))

        // The next link takes the next free id.
        let (third, _, id3) = try await Self.link(alice, relay)
        #expect(id3 == 3 && third.client.deviceID == 3)

        // The linked device speaks for the account: bob gets its message as alice's.
        let bob = try User.make("bob", relay)
        await bob.online()
        _ = try await second.client.send("from alice's second device", to: "bob")
        let got = await bob.waitMessage(from: "alice", "from alice's second device")
        #expect(got.id.device == 2)
        #expect(try await bob.client.identityNeedsApproval("alice") == false)

        await second.client.stop()
        await bob.client.stop()
        await alice.client.stop()
        await relay.finish()
    }

    /// A new device that registers after its link token expired (ten minutes on the relay's
    /// clock, spec relay §22.4) is refused with INVALID_LINK_TOKEN: a permanent failure; the
    /// relay lists no new device.
    @Test func aLinkTokenUsedAfterItsExpiryIsAPermanentFailure() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay)
        await alice.online()
        let (late, _, id) = try await Self.link(alice, relay)
        #expect(id == 2)
        relay.clock.advance(by: 600_000)
        await late.client.start()
        _ = await late.log.first { $0 == .connection(.failed(.invalidLinkToken)) }
        #expect(await late.client.connectionState == .failed(.invalidLinkToken))
        #expect(try await alice.client.devices().map(\.id) == [1])
        // Linked again: a new token for the same id, and it registers.
        let (again, _, id2) = try await Self.link(alice, relay)
        #expect(id2 == 2)
        await again.online()
        #expect(try await alice.client.devices().map(\.id) == [1, 2])
        for u in [late, again, alice] { await u.client.stop() }
        await relay.finish()
    }

    @Test func garbledCodesAreTypedErrorsAndSendNothing() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay)
        await alice.online()
        let pending = try await HushLink.begin(configuration: relay.configuration())
        let code = pending.code
        await #expect(throws: ClientError.invalidLinkCode(.wrongLength(3))) { try await alice.client.linkDevice(code: "hush-link:xyz") }
        await #expect(throws: ClientError.invalidLinkCode(.missingPrefix)) { try await alice.client.linkDevice(code: "hello") }
        var chars = Array(code)
        chars[40] = chars[40] == "A" ? "B" : "A"
        await #expect(throws: ClientError.invalidLinkCode(.checksumMismatch)) { try await alice.client.linkDevice(code: String(chars)) }
        // The address is still open: nothing was sent to it; the right code still works.
        let id = try await alice.client.linkDevice(code: code)
        #expect(id == 2)
        #expect(try await pending.wait().deviceID == 2)
        // Used once: the address is closed now.
        await #expect(throws: ClientError.relay(.unknownProvisioningAddress)) { try await alice.client.linkDevice(code: code) }
        await alice.client.stop()
        await relay.finish()
    }

    /// `SendProvisioning` is limited per device (1/s, burst 5, spec relay §22.3): the sixth try in
    /// a burst is `RATE_LIMITED` (the relay's clock does not move here).
    @Test func provisioningSendsAreRateLimited() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay)
        await alice.online()
        let nowhere = try LinkCode(address: [UInt8](repeating: 0x42, count: 16), publicKey: try Curve25519.KeyAgreement.PrivateKey().publicKey)
        for _ in 0..<5 {
            await #expect(throws: ClientError.relay(.unknownProvisioningAddress)) { try await alice.client.linkDevice(code: nowhere.string) }
        }
        await #expect(throws: ClientError.relay(.rateLimited)) { try await alice.client.linkDevice(code: nowhere.string) }
        relay.clock.advance(by: 1_000)
        await #expect(throws: ClientError.relay(.unknownProvisioningAddress)) { try await alice.client.linkDevice(code: nowhere.string) }
        await alice.client.stop()
        await relay.finish()
    }

    @Test func closedOrExpiredAddressIsUnknownToTheExistingDevice() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay)
        await alice.online()
        // The new device gave up (closed its provisioning connection).
        let gone = try await HushLink.begin(configuration: relay.configuration())
        await gone.cancel()
        await #expect(throws: ClientError.relay(.unknownProvisioningAddress)) { try await alice.client.linkDevice(code: gone.code) }
        await #expect(throws: ClientError.offline) { try await gone.wait() }

        // Ten minutes pass on the relay's clock: the address expires (4009 to the new device).
        let pending = try await HushLink.begin(configuration: relay.configuration())
        #expect(pending.expiresAt == relay.clock.now + 600_000)
        relay.clock.advance(by: 600_001)
        await #expect(throws: ClientError.relay(.unknownProvisioningAddress)) { try await alice.client.linkDevice(code: pending.code) }
        await alice.client.stop()
        await relay.finish()
    }

    @Test func anAddressStillOpenAtItsExpiryIsClosedWith4009() async throws {
        let relay = try ClientTestRelay()
        relay.tune = { $0.provisioningLifetime = .milliseconds(200) }
        try await relay.start()
        let alice = try User.make("alice", relay)
        await alice.online()
        let pending = try await HushLink.begin(configuration: relay.configuration())
        #expect(pending.expiresAt == relay.clock.now + 200)
        await #expect(throws: ClientError.linkExpired) { try await pending.wait() }
        await #expect(throws: ClientError.relay(.unknownProvisioningAddress)) { try await alice.client.linkDevice(code: pending.code) }
        await alice.client.stop()
        await relay.finish()
    }

    /// ``PendingLink/client(timeout:makeStore:)``: the message, the store and the client in one step.
    @Test func pendingLinkMakesTheClientInOneStep() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay)
        await alice.online()
        let pending = try await HushLink.begin(configuration: relay.configuration())
        let code = pending.code
        async let id = alice.client.linkDevice(code: code)
        let client = try await pending.client { identity, registrationID in
            InMemoryClientStore(identity: identity, registrationID: registrationID)
        }
        #expect(try await id == 2)
        #expect(client.account == "alice" && client.deviceID == 2)
        #expect(try client.store.identityKeyPair().identityKey == (try alice.store.identityKeyPair()).identityKey)
        let user = User(client: client, store: client.store, log: EventLog(client))
        await user.online()
        #expect(try await client.devices().map(\.id) == [1, 2])
        await client.stop()
        await alice.client.stop()
        await relay.finish()
    }

    @Test func removedDeviceIsClosedWith4008AndStaysRemoved() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay)
        await alice.online()
        let (second, _, id) = try await Self.link(alice, relay)
        await second.online()
        let mark = await second.log.mark()
        try await alice.client.removeDevice(id)
        _ = await second.log.next(after: mark) { $0 == .connection(.removed) }
        #expect(await second.client.connectionState == .removed)
        #expect(await second.client.isRemoved)
        // Seen on the live connection (close 4008), not at a new login: no attempt in between.
        let before = await second.log.all.dropFirst(mark).prefix { $0 != .connection(.removed) }
        #expect(!before.contains { if case .connection(.connecting) = $0 { true } else { false } })
        #expect(try await alice.client.devices().map(\.id) == [1])
        // No attempt after the removal (the connection loop ended there).
        let after = await second.log.all.dropFirst(mark).drop { $0 != .connection(.removed) }.dropFirst()
        #expect(!after.contains { if case .connection(.connecting) = $0 { true } else { false } })
        await #expect(throws: ClientError.offline) { try await second.client.devices() }
        await second.client.stop()
        #expect(await second.client.connectionState == .removed)

        // Restarted on the same store: removed at once, no connection.
        let reopened = try second.reopened(relay)
        await reopened.client.start()
        _ = await reopened.log.first { $0 == .connection(.removed) }
        #expect(!(await reopened.log.all).contains { if case .connection(.connecting) = $0 { true } else { false } })
        await reopened.client.stop()

        // Even a client that forgot the removal: its login is UNKNOWN_DEVICE, and that is final too
        // (it does not register itself again).
        try second.store.setFlag(DeviceSettingKey.removed, false)
        let forgetful = try second.reopened(relay)
        await forgetful.client.start()
        _ = await forgetful.log.first { $0 == .connection(.removed) }
        #expect(try second.store.flag(DeviceSettingKey.removed))
        #expect(try second.store.flag(SettingKey.registered))
        #expect(try await alice.client.devices().map(\.id) == [1])
        await forgetful.client.stop()

        await #expect(throws: ClientError.relay(.unknownDevice)) { try await alice.client.removeDevice(id) }
        await #expect(throws: ClientError.relay(.unknownDevice)) { try await alice.client.removeDevice(9) }
        await alice.client.stop()
        await relay.finish()
    }

    @Test func onlyDeviceOneRemovesOthersAndALinkedDeviceRemovesItself() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay)
        await alice.online()
        // Two links before either new device registered: the second does not get the first's id.
        let (second, _, id2) = try await Self.link(alice, relay)
        let (third, _, id3) = try await Self.link(alice, relay)
        #expect(id2 == 2 && id3 == 3)
        await second.online()
        await third.online()
        await #expect(throws: ClientError.relay(.deviceRemovalForbidden)) { try await second.client.removeDevice(1) }
        await #expect(throws: ClientError.relay(.deviceRemovalForbidden)) { try await second.client.removeDevice(3) }
        await #expect(throws: ClientError.relay(.deviceRemovalForbidden)) { try await alice.client.removeDevice(1) }
        #expect(try await alice.client.devices().map(\.id) == [1, 2, 3])

        let mark = await second.log.mark()
        try await second.client.removeDevice(2)
        _ = await second.log.next(after: mark) { $0 == .connection(.removed) }
        #expect(try await alice.client.devices().map(\.id) == [1, 3])
        #expect(try await third.client.devices().map(\.id) == [1, 3])
        // Its id is free again: the next link takes 2.
        let (again, _, id) = try await Self.link(alice, relay)
        #expect(id == 2)
        await again.online()
        #expect(try await alice.client.devices().map(\.id) == [1, 2, 3])
        for u in [second, third, again, alice] { await u.client.stop() }
        await relay.finish()
    }
}
