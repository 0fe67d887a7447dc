import Foundation
import Hush
import HushRelay
import HushTransport
import Synchronization
import Testing
@testable import HushClient

extension User {
    /// Another device (`id`) of this user's account: the same identity key pair, its own
    /// registration id, store and device key. It registers itself (relay spec §5.1) with a link
    /// token that this user, device 1 and online, asks the relay for (§22.4, as
    /// ``HushClient/linkDevice(code:)`` does). Tokens reserve the lowest free id: those for
    /// lower ids than `id` are asked for and left unused (they expire).
    func device(_ id: UInt32, _ relay: ClientTestRelay) async throws -> User {
        var granted = try await client.requestLinkToken()
        while granted.deviceID < id { granted = try await client.requestLinkToken() }
        #expect(granted.deviceID == id)
        let store = InMemoryClientStore(identity: try self.store.identityKeyPair(), registrationID: try RegistrationID.generate(using: SystemRandom()))
        let client = try HushClient.create(account: name, deviceID: id, store: store, configuration: relay.configuration())
        try store.setSetting(DeviceSettingKey.linkToken, Array(granted.token))
        return User(client: client, store: store, log: EventLog(client))
    }

    /// The first stored message event of `conversation` with `body` and `direction`.
    func waitMessage(in conversation: String, _ body: String, _ direction: MessageDirection) async -> StoredMessage {
        let e = await log.first {
            if case .message(let m) = $0 { m.conversation == conversation && m.body == body && m.direction == direction } else { false }
        }
        guard case .message(let m) = e else { fatalError() }
        return m
    }
}

/// Several devices per account, the client side (Docs/client.md §Several devices): one stanza
/// with a payload per device (relay spec §7.1), sync transcripts to one's own other devices,
/// MISMATCHED_DEVICES handling (§7.6). Real clients and a real relay over loopback.
@Suite(.serialized, .timeLimit(.minutes(2))) struct FanOutEndToEndTests {
    /// The `Send`s logged-in connections handed the relay.
    final class Wire: Sendable {
        let all = Mutex<[RelaySend]>([])
        let sealed = Mutex<[RelaySealedSend]>([])
        func hook(_ stanza: RelayStanza) {
            if case .send(let s)? = stanza.body { all.withLock { $0.append(s) } }
            if case .sealedSend(let s)? = stanza.body { sealed.withLock { $0.append(s) } }
        }
        func sends(to account: String, id: UInt64) -> [RelaySend] {
            all.withLock { $0.filter { $0.account == account && $0.clientMessageID == id } }
        }
        func sends(to account: String) -> [RelaySend] { all.withLock { $0.filter { $0.account == account } } }
    }

    func relay(_ wire: Wire) async throws -> ClientTestRelay {
        let relay = try ClientTestRelay()
        relay.hook = { wire.hook($0) }
        try await relay.start()
        return relay
    }

    @Test func twoDevicesEachMessagesReachEveryDeviceAndTranscriptsTheSendersOthers() async throws {
        let wire = Wire()
        let relay = try await relay(wire)
        let alice1 = try User.make("alice", relay), bob1 = try User.make("bob", relay)
        // A device learns its account's other devices at login (ListDevices, then FetchPrekeys for
        // the new ones): alice/1 logs in again after alice/2 registered, bob/2 after bob/1; the
        // earlier ones ask. (Device 1 registers first: it asks for the others' link tokens.)
        await alice1.online()
        await bob1.online()
        let alice2 = try await alice1.device(2, relay), bob2 = try await bob1.device(2, relay)
        await alice2.online()
        await alice1.client.stop()
        await alice1.online()
        await bob2.online()
        #expect(try await alice1.client.ownDevices() == [2])
        #expect(try await bob2.client.ownDevices() == [1])
        #expect(try await alice2.client.refreshOwnDevices() == [1])
        #expect(try await bob1.client.refreshOwnDevices() == [2])

        // alice/1 → bob: both of bob's devices get it; alice/2 gets the transcript.
        let hi = try await alice1.client.send("hi bob", to: "bob")
        let at1 = await bob1.waitMessage(from: "alice", "hi bob")
        let at2 = await bob2.waitMessage(from: "alice", "hi bob")
        #expect(at1.id == hi && at2.id == hi && at1.direction == .incoming)
        let copy = await alice2.waitMessage(in: "bob", "hi bob", .outgoing)
        let original = try #require(try alice1.store.message(hi))
        #expect(copy.id == hi && copy.state == .sent && copy.sentAt == original.sentAt)
        await alice1.waitTick(hi, .delivered)
        // Either device's read receipt makes it read (the first one wins; ticks only advance).
        #expect(try await bob2.client.markRead("alice") == 1)
        await alice1.waitTick(hi, .read)
        // One ✓✓ for two delivery receipts (✓ may be skipped when a receipt beats the relay's ack).
        let ticks = await alice1.log.ticks(hi)
        #expect(ticks.suffix(2) == [.delivered, .read] && ticks.filter { $0 == .delivered }.count == 1)
        // On the wire: one Send to bob, a payload per device, all_devices; one to alice/2.
        let toBob = wire.sends(to: "bob", id: hi.clientMessageID)
        #expect(toBob.count == 1)
        #expect(toBob.first?.allDevices == true && toBob.first?.payloads.map(\.deviceID) == [1, 2] && toBob.first?.devices == [])
        let transcripts = wire.sends(to: "alice").filter { $0.allDevices }
        #expect(transcripts.count == 1 && transcripts.first?.payloads.map(\.deviceID) == [2])

        // bob/2 replies: both of alice's devices get it, bob/1 the transcript.
        let reply = try await bob2.client.send("hi alice", to: "alice")
        let r1 = await alice1.waitMessage(from: "bob", "hi alice")
        let r2 = await alice2.waitMessage(in: "bob", "hi alice", .incoming)
        #expect(r1.id == reply && r2.id == reply)
        let bobCopy = await bob1.waitMessage(in: "alice", "hi alice", .outgoing)
        #expect(bobCopy.id == reply)
        await bob2.waitTick(reply, .delivered)

        // alice/2 now holds the same conversation as alice/1: her message out, bob's in.
        let history = try await alice2.client.messages(in: "bob")
        #expect(history.map(\.body) == ["hi bob", "hi alice"] && history.map(\.direction) == [.outgoing, .incoming])

        // alice/1 again (sealed now that bob shared an access key, or logged in): every device.
        let again = try await alice1.client.send("again", to: "bob")
        _ = await bob1.waitMessage(from: "alice", "again")
        _ = await bob2.waitMessage(from: "alice", "again")
        _ = await alice2.waitMessage(in: "bob", "again", .outgoing)
        await alice1.waitTick(again, .delivered)
        // alice/1 holds the access key bob/2 shared: "again" went sealed, a payload per device.
        // (Each of bob's devices uploads its own key for the account, so the relay may refuse it
        // with ACCESS_DENIED and it goes logged in: Docs/client.md §Several devices, "Not done".)
        let sealedToBob = wire.sealed.withLock { $0.filter { $0.account == "bob" } }
        let sealedForm = sealedToBob.contains { $0.allDevices && $0.payloads.map(\.deviceID) == [1, 2] && $0.devices.isEmpty && $0.payload.isEmpty }
        #expect(sealedForm)
        // Receipts for the last messages may still be on their way to the relay.
        for u in [alice1, alice2, bob1, bob2] {
            #expect(try await eventually { try await u.client.outboxCount() == 0 }, "\(u.name).\(u.client.deviceID)")
        }
        for u in [alice1, alice2, bob1, bob2] { await u.client.stop() }
        await relay.finish()
    }

    @Test func aMessageWrittenOfflineGoesToEveryDeviceWithItsTranscriptWhenTheConnectionReturns() async throws {
        let wire = Wire()
        let relay = try await relay(wire)
        let alice1 = try User.make("alice", relay), bob1 = try User.make("bob", relay)
        for u in [alice1, bob1] { await u.online() }
        let alice2 = try await alice1.device(2, relay), bob2 = try await bob1.device(2, relay)
        for u in [alice2, bob2] { await u.online() }
        #expect(try await alice1.client.refreshOwnDevices() == [2])  // logged in before alice/2 existed
        let warm = try await alice1.client.send("warm", to: "bob")
        await alice1.waitTick(warm, .delivered)
        _ = await alice2.waitMessage(in: "bob", "warm", .outgoing)

        await alice1.client.stop()
        let id = try await alice1.client.send("written offline", to: "bob")
        // Deferred: the message for bob and its transcript for alice/2, content only.
        let items = try alice1.store.outbox()
        #expect(items.map(\.account) == ["bob", "alice"] && items.allSatisfy { $0.devices.isEmpty })
        #expect(items.first?.message == id && items.last?.message == nil)
        #expect(try MessageContent(decoding: try #require(items.last).payload)
            == .syncTranscript(destination: "bob", message: try MessageContent(decoding: try #require(items.first).payload)))

        await alice1.online()
        _ = await bob1.waitMessage(from: "alice", "written offline")
        _ = await bob2.waitMessage(from: "alice", "written offline")
        let copy = await alice2.waitMessage(in: "bob", "written offline", .outgoing)
        #expect(copy.id == id)
        await alice1.waitTick(id, .delivered)
        let lists: [[UInt32]] = wire.sends(to: "bob", id: id.clientMessageID).map { $0.payloads.map(\.deviceID) }
        #expect(lists == [[1, 2]])
        #expect(try bob2.store.messages(in: "alice", before: nil, limit: 10).map(\.body) == ["warm", "written offline"])
        for u in [alice1, alice2, bob1, bob2] { await u.client.stop() }
        await relay.finish()
    }

    @Test func aGroupMessageReachesTheSendersOtherDevicesInTheSameMultiSend() async throws {
        let relay = try ClientTestRelay()
        let multi = Mutex<[RelayMultiSend]>([])
        relay.hook = { stanza in if case .multiSend(let m)? = stanza.body { multi.withLock { $0.append(m) } } }
        try await relay.start()
        let alice1 = try User.make("alice", relay), bob = try User.make("bob", relay)
        for u in [alice1, bob] { await u.online() }
        let alice2 = try await alice1.device(2, relay)
        await alice2.online()
        #expect(try await alice1.client.refreshOwnDevices() == [2])
        #expect(try await alice2.client.refreshOwnDevices() == [1])

        // The group's state goes to alice/2 too.
        let created = try await alice1.client.createGroup(name: "trip", members: ["bob"])
        let group = created.id
        _ = await alice2.log.first { $0 == .groupChanged(created) }
        _ = await bob.log.first { $0 == .groupChanged(created) }

        let hello = try await alice1.client.sendGroup("hello group", to: group)
        _ = await bob.waitMessage(in: group.conversation, "hello group", .incoming)
        let copy = await alice2.waitMessage(in: group.conversation, "hello group", .outgoing)
        #expect(copy.id == hello && copy.state == .sent)
        await alice1.waitTick(hello, .delivered)
        // One MultiSend: bob's device, then alice's other devices, each account with all_devices.
        let sent = multi.withLock { $0 }
        #expect(sent.count == 1)
        #expect(sent.first?.recipients.map(\.account) == ["bob", "alice"] && sent.first?.recipients.map(\.devices) == [[1], [2]])
        #expect(sent.first?.recipients.map(\.allDevices) == [true, true])
        #expect(try await alice1.client.memberTicks(hello) == ["bob": .delivered])

        // bob writes to alice one to one first (his mismatch adds alice/2), then to the group:
        // both of alice's devices get it.
        _ = try await bob.client.send("hi alice", to: "alice")
        _ = await alice2.waitMessage(in: "bob", "hi alice", .incoming)
        _ = try await bob.client.sendGroup("reply", to: group)
        _ = await alice1.waitMessage(in: group.conversation, "reply", .incoming)
        _ = await alice2.waitMessage(in: group.conversation, "reply", .incoming)
        for u in [alice1, alice2, bob] { await u.client.stop() }
        await relay.finish()
    }

    @Test func aTextTooLongForOneStanzaToEveryDeviceGoesAsOneSendPerDevice() async throws {
        let wire = Wire()
        let relay = try await relay(wire)
        let alice = try User.make("alice", relay), bob1 = try User.make("bob", relay)
        for u in [alice, bob1] { await u.online() }
        let bob2 = try await bob1.device(2, relay)
        await bob2.online()
        let warm = try await alice.client.send("warm", to: "bob")
        await alice.waitTick(warm, .delivered)
        // Two copies of a 40,000-byte text exceed one 65,519-byte frame.
        let long = String(repeating: "x", count: 40_000)
        let id = try await alice.client.send(long, to: "bob")
        _ = await bob1.waitMessage(from: "alice", long)
        _ = await bob2.waitMessage(from: "alice", long)
        await alice.waitTick(id, .delivered)
        let sends = wire.sends(to: "bob").filter { $0.payloads.isEmpty && $0.payload.count > 40_000 }
        let devices: [[UInt32]] = sends.map(\.devices)
        #expect(devices == [[1], [2]])
        #expect(sends.map(\.clientMessageID).first == id.clientMessageID)
        let flagged = sends.contains { $0.allDevices }
        #expect(!flagged)
        for u in [alice, bob1, bob2] { await u.client.stop() }
        await relay.finish()
    }

    @Test func aSentFileAppearsOnTheSendersOtherDeviceWhichCanDownloadIt() async throws {
        let s = try await MediaClientTests.start()
        let alice1 = try User.make("alice", s.relay), bob = try User.make("bob", s.relay)
        for u in [alice1, bob] { await u.online() }
        let alice2 = try await alice1.device(2, s.relay)
        await alice2.online()
        #expect(try await alice1.client.refreshOwnDevices() == [2])
        let bytes = MediaClientTests.pattern(20_000)
        let file = try MediaClientTests.file(s, "notes.txt", bytes)
        let id = try await alice1.client.sendMedia(file: file, contentType: "text/plain", to: "bob", library: s.library("alice"))
        let summary = "📎 notes.txt (text/plain, 20,000 bytes)"
        _ = await bob.waitMessage(from: "alice", summary)
        let copy = await alice2.waitMessage(in: "bob", summary, .outgoing)
        #expect(copy.id == id)
        let pointer = try #require(try await alice2.client.mediaPointer(for: id))
        #expect(try await bob.client.mediaPointer(for: id) == pointer)
        let url = try await alice2.client.downloadMedia(pointer, into: s.library("alice2"))
        #expect(try Data(contentsOf: url) == Data(bytes))
        for u in [alice1, alice2, bob] { await u.client.stop() }
        await s.finish()
    }

    @Test func aDeviceAddedLaterGetsTheNextMessageAfterOneMismatch() async throws {
        let wire = Wire()
        let relay = try await relay(wire)
        // alice on the encrypted SQLite store: the repaired item is rewritten there in place.
        let path = relay.directory.appendingPathComponent("alice-client.sqlite").path
        let alice = try User.makeSQLite("alice", relay, path: path), bob1 = try User.make("bob", relay)
        await alice.online()
        await bob1.online()
        let one = try await alice.client.send("one", to: "bob")
        _ = await bob1.waitMessage(from: "alice", "one")
        await alice.waitTick(one, .delivered)

        // bob/3 registers after alice built her sessions.
        let bob3 = try await bob1.device(3, relay)
        await bob3.online()
        let two = try await alice.client.send("two", to: "bob")
        _ = await bob1.waitMessage(from: "alice", "two")
        let at3 = await bob3.waitMessage(from: "alice", "two")
        #expect(at3.id == two)
        // Both receipts may come before the relay's ack of the resend (ticks only advance).
        await alice.waitTick(two, .delivered)
        #expect(try await eventually { try await alice.client.outboxCount() == 0 })
        // Exactly one mismatch: the first Send listed [1], the resend (same id) [1, 3].
        let sends = wire.sends(to: "bob", id: two.clientMessageID)
        let lists: [[UInt32]] = sends.map { $0.payloads.map(\.deviceID) }
        #expect(lists == [[1], [1, 3]])
        let allFlagged = sends.allSatisfy { $0.allDevices }
        #expect(allFlagged)
        #expect(try alice.store.sessionDevices(for: "bob") == [1, 3])
        // No duplicate anywhere.
        #expect(try bob1.store.messages(in: "alice", before: nil, limit: 10).map(\.body) == ["one", "two"])
        #expect(try bob3.store.messages(in: "alice", before: nil, limit: 10).map(\.body) == ["two"])
        for u in [alice, bob1, bob3] { await u.client.stop() }
        await relay.finish()
    }

    @Test func aSessionWithADeviceTheRelayDoesNotKnowIsDroppedAndTheMessageResent() async throws {
        let wire = Wire()
        let relay = try await relay(wire)
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay)
        await alice.online()
        await bob.online()
        let one = try await alice.client.send("one", to: "bob")
        _ = await bob.waitMessage(from: "alice", "one")
        await alice.waitTick(one, .delivered)
        // A stale session: alice holds one for bob/7, which the relay never had.
        let real = ProtocolAddress(name: "bob", deviceID: 1), ghost = ProtocolAddress(name: "bob", deviceID: 7)
        let record = try #require(try alice.store.loadSession(for: real))
        try alice.store.storeSession(record, for: ghost)
        _ = try alice.store.saveIdentity(try #require(try alice.store.identity(for: real)), for: ghost)
        #expect(try alice.store.sessionDevices(for: "bob") == [1, 7])

        let two = try await alice.client.send("two", to: "bob")
        _ = await bob.waitMessage(from: "alice", "two")
        await alice.waitTick(two, .delivered)
        let lists: [[UInt32]] = wire.sends(to: "bob", id: two.clientMessageID).map { $0.payloads.map(\.deviceID) }
        #expect(lists == [[1, 7], [1]])
        #expect(try alice.store.sessionDevices(for: "bob") == [1])
        #expect(try bob.store.messages(in: "alice", before: nil, limit: 10).map(\.body) == ["one", "two"])
        for u in [alice, bob] { await u.client.stop() }
        await relay.finish()
    }

    @Test func aDeviceListThatNeverSettlesIsGivenUpAfterThreeRetries() async throws {
        let wire = Wire()
        let relay = try ClientTestRelay()
        relay.hook = { wire.hook($0) }
        let stripper = Mutex<KyberStrippingStore?>(nil)
        relay.wrapStore = { base in
            let s = KyberStrippingStore(base)
            stripper.withLock { $0 = s }
            return s
        }
        try await relay.start()
        let strip = try #require(stripper.withLock { $0 })
        let alice = try User.make("alice", relay), bob1 = try User.make("bob", relay)
        await alice.online()
        await bob1.online()
        let one = try await alice.client.send("one", to: "bob")
        await alice.waitTick(one, .delivered)
        let bob2 = try await bob1.device(2, relay)
        await bob2.online()
        // bob/2's bundle now comes without its Kyber prekey: alice (requirePQXDH) builds no
        // session with it, so every resend is missing it again.
        strip.stripping = true
        let two = try await alice.client.send("two", to: "bob")
        _ = await alice.log.first { $0 == .sendFailed(two, .mismatchedDevices) }
        #expect(wire.sends(to: "bob", id: two.clientMessageID).count == HushClient.maxMismatchRetries + 1)
        #expect(try await alice.client.outboxCount() == 0)
        #expect(try alice.store.message(two)?.state == .pending)
        for u in [alice, bob1, bob2] { await u.client.stop() }
        await relay.finish()
    }
}

/// The byte formats of fan-out (Docs/client.md §Store, §Content).
@Suite struct FanOutFormatTests {
    @Test func syncTranscriptBytes() throws {
        let content = MessageContent.syncTranscript(destination: "bob", message: .text(id: 5, sentAt: 1_000, body: "hi"))
        #expect(content.encoded == [0x06, 0x03, 0x62, 0x6F, 0x62, 0x01, 0x05, 0xE8, 0x07, 0x68, 0x69])
        #expect(try MessageContent(decoding: content.encoded) == content)
        #expect(content.kind == .syncTranscript)
    }

    @Test func syncTranscriptRejectsWhatIsNotASentMessage() {
        #expect(throws: MessageContent.DecodeError.unknownType(0x02)) {
            try MessageContent(decoding: [0x06, 0x01, 0x61, 0x02, 0x01, 0x01])
        }
        #expect(throws: MessageContent.DecodeError.badCount(0)) { try MessageContent(decoding: [0x06, 0x00, 0x01, 0x01, 0x01]) }
        #expect(throws: MessageContent.DecodeError.truncated) { try MessageContent(decoding: [0x06, 0x05, 0x61]) }
        #expect(throws: MessageContent.DecodeError.truncated) { try MessageContent(decoding: [0x06, 0x01, 0x61]) }
        #expect(throws: MessageContent.DecodeError.notUTF8) { try MessageContent(decoding: [0x06, 0x01, 0xFF, 0x01, 0x01, 0x01]) }
    }

    @Test func fanOutPayloadBytesAndRoundTrip() throws {
        let inner = SessionCiphertext(contentType: .message, message: [0xAA], certificateExpiration: 0x0102)
        let payload = FanOutPayload(content: [0x01, 0x02], copies: [FanOutPayload.Copy(device: 3, inner: inner, envelope: [0xE1, 0x09])])
        #expect(payload.encoded == [0xF1, 0x02, 0x01, 0x02, 0x01, 0x03, 0x0B]
            + [0x01, 0x01, 0, 0, 0, 0, 0, 0, 0x01, 0x02, 0xAA] + [0x02, 0xE1, 0x09])
        #expect(FanOutPayload(decoding: payload.encoded) == payload)
        #expect(payload.devices == [3] && payload.earliestExpiration == 0x0102)
        // Every truncation, and every other first byte, is nil (never a crash).
        let bytes = payload.encoded
        for n in 0..<bytes.count { #expect(FanOutPayload(decoding: Array(bytes.prefix(n))) == nil) }
        #expect(FanOutPayload(decoding: bytes + [0]) == nil)
        #expect(FanOutPayload(decoding: [0xE1] + bytes.dropFirst()) == nil)
        // A repeated device, device 0, no copies: nil.
        let twice = FanOutPayload(content: [1], copies: [payload.copies[0], payload.copies[0]])
        #expect(FanOutPayload(decoding: twice.encoded) == nil)
        var zero = payload
        zero.copies[0].device = 0
        #expect(FanOutPayload(decoding: zero.encoded) == nil)
        #expect(FanOutPayload(decoding: [0xF1, 0x01, 0x01, 0x00]) == nil)
    }
}
