import Foundation
import Hush
import HushClient

extension Demo {
    /// Alice sends bob a photo: encrypted on her device with a fresh key (secretstream chunks,
    /// padded), uploaded to the relay's media store, and only a pointer (id, key, digest) sent in
    /// the message; bob downloads the blob, checks its SHA-256 and every chunk, decrypts it, and
    /// the file is byte for byte the one alice sent.
    func photo(from alice: Account, to bob: Account, root: URL) async throws {
        // A stand-in photo: 300 kB of deterministic bytes behind a JPEG header.
        var bytes: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0]
        var x: UInt32 = 2_463_534_242
        while bytes.count < 300_000 {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5
            bytes.append(UInt8(truncatingIfNeeded: x))
        }
        let file = root.appendingPathComponent("beach.jpg")
        try Data(bytes).write(to: file)
        let before = try bob.store.messages(in: "alice", before: nil, limit: 100).filter { $0.direction == .incoming }.count
        let id = try await alice.client.sendMedia(file: file, contentType: "image/jpeg", to: "bob", library: MediaCLI.library(alice.home))
        try await waitState(alice, id, .delivered, "✓✓ for alice's photo")
        try await waitIncoming(bob, from: "alice", count: before + 1, "bob to receive the photo's message")
        guard let pointer = try await bob.client.mediaPointer(for: id) else { throw CLIError.failed("bob's photo message has no media pointer") }
        let saved = try await bob.client.downloadMedia(pointer, into: MediaCLI.library(bob.home))
        guard try Data(contentsOf: saved) == Data(bytes) else { throw CLIError.failed("bob's downloaded photo differs from alice's") }
        let blob = MediaFormat.ciphertextSize(plaintextSize: bytes.count)
        step("alice → bob a photo (300,000 bytes): encrypted blob of \(blob) bytes on the relay, a \(pointer.encoded.count)-byte pointer in the message")
        let digest = Hex.encode(pointer.digest).prefix(16)
        let relative = saved.path.dropFirst(bob.home.directory.path.count + 1)
        step("bob downloads it: SHA-256 \(digest)… and every chunk checked, decrypted into \(relative), identical to alice's file")
    }

    /// Alice sends bob a message sealed: on an anonymous (NK) connection, with the access key bob
    /// shared with her, so the relay learns the recipient and never the sender; bob knows it is
    /// alice from the sender certificate inside the envelope.
    func sealedMessage(from alice: Account, to bob: Account, relay: EmbeddedRelay) async throws {
        let text = "This one the relay cannot attribute."
        let before = relay.sends(to: "bob")
        let incoming = try bob.store.messages(in: "alice", before: nil, limit: 100).filter { $0.direction == .incoming }.count
        let id = try await alice.client.send(text, to: "bob")
        try await waitState(alice, id, .delivered, "✓✓ for alice's sealed message")
        try await waitIncoming(bob, from: "alice", count: incoming + 1, "bob to receive the sealed message")
        let after = relay.sends(to: "bob")
        guard after.sealed == before.sealed + 1, after.loggedIn == before.loggedIn else {
            throw CLIError.failed("alice's message to bob did not go sealed (\(before) → \(after))")
        }
        guard try bob.store.messages(in: "alice", before: nil, limit: 100).last?.body == text else {
            throw CLIError.failed("bob's last message from alice is not the sealed one")
        }
        step("alice → bob \"\(text)\": SealedSend on an anonymous connection with bob's access key; bob sees it from alice (her certificate), ✓✓")
        step("so far the relay took \(after.sealed) sealed and \(after.loggedIn) logged-in messages for bob (the logged-in ones: alice's access key and first message, before she had his)")
    }
}
