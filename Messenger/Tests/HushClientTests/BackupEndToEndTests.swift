import Foundation
import Hush
import HushTransport
import Testing
@testable import HushClient

/// A lost phone, end to end over a real relay: alice exports a backup, her device is gone, she
/// restores it into a new store, and the conversation goes on — her history is back, sessions
/// are re-established (with bob, who had one, and carol, who had none: carol's first message is
/// built from alice's *new* prekeys, so the relay must have replaced the lost device's), and a
/// message she wrote offline before the backup is sent after the restore.
@Suite(.serialized, .timeLimit(.minutes(2))) struct BackupEndToEndTests {
    static let secret = BackupSecret.passphrase("lost my phone", limits: Argon2id.Limits(operations: 1, memoryBytes: 8 * 1024))

    @Test func restoredDeviceKeepsHistoryAndReestablishesSessions() async throws {
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay), bob = try User.make("bob", relay), carol = try User.make("carol", relay)
        await alice.online()
        await bob.online()
        await carol.online()

        let first = try await alice.client.send("before the backup", to: "bob")
        _ = await bob.waitMessage(from: "alice", "before the backup")
        await alice.waitTick(first, .delivered)
        _ = try await bob.client.send("reply before", to: "alice")
        _ = await alice.waitMessage(from: "bob", "reply before")
        // Written while offline: still pending when the backup is made.
        await alice.client.stop()
        let offline = try await alice.client.send("written offline", to: "bob")
        #expect(try alice.store.message(offline)?.state == .pending)

        var sink = BackupBytesSink()
        let exported = try HushBackup.export(store: alice.store, to: &sink, secret: Self.secret, now: relay.clock.now)
        #expect(exported.messages == 3 && exported.resent == 1)
        // The phone is lost (its store with it).

        let restored = try HushBackup.restore(from: BackupBytesSource(sink.bytes), secret: Self.secret,
                                              configuration: relay.configuration()) { p in
            InMemoryClientStore(identity: p.identity, registrationID: p.registrationID)
        }
        let again = try alice.reopened(relay, store: restored.store)
        #expect(try await again.client.messages(in: "bob").map(\.body) == ["before the backup", "reply before", "written offline"])
        await again.online()

        // The unsent message goes out after the session reset; bob stores it once.
        _ = await bob.waitMessage(from: "alice", "written offline")
        await again.waitTick(offline, .delivered)
        // Bob's session is the new one: his next message decrypts on the restored device.
        _ = try await bob.client.send("welcome back", to: "alice")
        _ = await again.waitMessage(from: "bob", "welcome back")
        let out = try await again.client.send("thanks", to: "bob")
        _ = await bob.waitMessage(from: "alice", "thanks")
        await again.waitTick(out, .delivered)
        #expect(out.clientMessageID >= HushBackup.restoredIDGap)

        // Carol never talked to alice: her session comes from alice's bundle on the relay,
        // which now holds only the restored device's prekeys.
        _ = try await carol.client.send("hi alice", to: "alice")
        _ = await again.waitMessage(from: "carol", "hi alice")
        #expect(try !again.store.flag(HushBackup.restoreReplacePreKeys))
        #expect(try await again.client.messages(in: "bob").map(\.body)
            == ["before the backup", "reply before", "written offline", "welcome back", "thanks"])
        #expect(try await bob.client.messages(in: "alice").filter { $0.body == "written offline" }.count == 1)

        await again.client.stop()
        await bob.client.stop()
        await carol.client.stop()
        await relay.finish()
    }

    @Test func withoutReplacingPrekeysTheRelayWouldHandOutLostKeys() async throws {
        // The relay side of the restore: UploadPrekeys.replace_one_time removes every one-time
        // prekey the lost device had uploaded, so none of them is handed out any more.
        let relay = try await ClientTestRelay.start()
        let alice = try User.make("alice", relay) { $0.preKeyBatch = 10 }
        await alice.online()
        #expect(try await relay.relay.store.prekeyCount(account: "alice", deviceID: 1) == 10)
        await alice.client.stop()
        var sink = BackupBytesSink()
        try HushBackup.export(store: alice.store, to: &sink, secret: Self.secret, now: relay.clock.now)
        var config = relay.configuration()
        config.preKeyBatch = 3
        let restored = try HushBackup.restore(from: BackupBytesSource(sink.bytes), secret: Self.secret, configuration: config) { p in
            InMemoryClientStore(identity: p.identity, registrationID: p.registrationID)
        }
        let again = try alice.reopened(relay, store: restored.store)
        await again.online()
        #expect(try await relay.relay.store.prekeyCount(account: "alice", deviceID: 1) == 3)
        let bundles = try await relay.relay.store.claimBundles(account: "alice", devices: [1])
        #expect(bundles[0].oneTime?.id == 11)  // the first of the restored device's keys, not 1
        await again.client.stop()
        await relay.finish()
    }
}
