import Foundation
import Hush
import HushRelay
import Synchronization
import Testing
@testable import HushClient

/// Drops the first download's connection once `dropAfter` bytes arrived (the client closes
/// the TCP connection mid-body), then behaves as the real transport; records each call's offset.
final class DroppingTransport: MediaTransport, @unchecked Sendable {
    let inner: MediaHTTPClient
    let dropAfter: Int
    let offsets = Mutex<[Int]>([])
    struct Drop: Error {}

    init(port: Int, dropAfter: Int) {
        inner = MediaHTTPClient(host: "127.0.0.1", port: port)
        self.dropAfter = dropAfter
    }

    func upload(mediaID: String, token: [UInt8], size: Int, progress: (Int) -> Void, body: () async throws -> [UInt8]?) async throws {
        try await inner.upload(mediaID: mediaID, token: token, size: size, progress: progress, body: body)
    }

    func download(mediaID: String, from offset: Int, sink: ([UInt8]) async throws -> Void) async throws -> Int {
        let first = offsets.withLock { $0.append(offset); return $0.count == 1 }
        guard first else { return try await inner.download(mediaID: mediaID, from: offset, sink: sink) }
        var got = offset
        do {
            return try await inner.download(mediaID: mediaID, from: offset) { piece in
                try await sink(piece)
                got += piece.count
                if got >= dropAfter { throw Drop() }
            }
        } catch is Drop { throw MediaTransferError.connectionLost(received: got) }
    }
}

/// Drops every download after `dropAfter` bytes while `failing` is set (each attempt gets that
/// many more bytes); passes everything through once it is cleared.
final class FlakyTransport: MediaTransport, @unchecked Sendable {
    let inner: MediaHTTPClient
    let dropAfter: Int
    let failing = Mutex<Bool>(true)
    let offsets = Mutex<[Int]>([])
    struct Drop: Error {}

    init(port: Int, dropAfter: Int) {
        inner = MediaHTTPClient(host: "127.0.0.1", port: port)
        self.dropAfter = dropAfter
    }

    func upload(mediaID: String, token: [UInt8], size: Int, progress: (Int) -> Void, body: () async throws -> [UInt8]?) async throws {
        guard failing.withLock({ $0 }) else { return try await inner.upload(mediaID: mediaID, token: token, size: size, progress: progress, body: body) }
        // Takes two pieces of the blob, then the connection "drops".
        _ = try await body()
        _ = try await body()
        throw MediaTransferError.connectionLost(received: 0)
    }

    func download(mediaID: String, from offset: Int, sink: ([UInt8]) async throws -> Void) async throws -> Int {
        offsets.withLock { $0.append(offset) }
        guard failing.withLock({ $0 }) else { return try await inner.download(mediaID: mediaID, from: offset, sink: sink) }
        var got = 0
        do {
            return try await inner.download(mediaID: mediaID, from: offset) { piece in
                let take = Array(piece.prefix(dropAfter - got))
                try await sink(take)
                got += take.count
                if got >= dropAfter { throw Drop() }
            }
        } catch is Drop { throw MediaTransferError.connectionLost(received: offset + got) }
    }
}

@Suite(.serialized, .timeLimit(.minutes(2))) struct MediaClientTests {
    struct Setup {
        let relay: ClientTestRelay
        let mediaFolder: URL
        let home: URL
        func library(_ who: String) -> MediaLibrary { MediaLibrary(root: home.appendingPathComponent(who).appendingPathComponent("Media")) }
        func blobPath(_ p: MediaPointer) -> URL { mediaFolder.appendingPathComponent(p.mediaID.hex) }
        /// Replaces a stored blob's bytes, keeping its upload time (the file's modification time).
        func rewrite(_ p: MediaPointer, _ bytes: [UInt8]) throws {
            let path = blobPath(p).path
            let created = try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as! Date
            try FileManager.default.removeItem(atPath: path)
            try Data(bytes).write(to: blobPath(p))
            try FileManager.default.setAttributes([.modificationDate: created], ofItemAtPath: path)
        }
        func finish() async {
            await relay.finish()
            try? FileManager.default.removeItem(at: mediaFolder)
            try? FileManager.default.removeItem(at: home)
        }
    }

    static func start() async throws -> Setup {
        let relay = try ClientTestRelay()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hush-media-relay-\(UUID().uuidString)")
        let service = try MediaService(store: DiskMediaStore(folder: folder))
        relay.tune = { $0.media = service }
        try await relay.start()
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("hush-media-home-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        return Setup(relay: relay, mediaFolder: folder, home: home)
    }

    static func file(_ s: Setup, _ name: String, _ bytes: [UInt8]) throws -> URL {
        let url = s.home.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    static func pattern(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 151 &+ $0 >> 11) } }

    func waitMedia(_ u: User, from account: String) async -> StoredMessage {
        let e = await u.log.first { if case .message(let m) = $0 { m.conversation == account && m.body.hasPrefix("📎") } else { false } }
        guard case .message(let m) = e else { fatalError() }
        return m
    }

    @Test func photoSentReceivedAndDecryptedIntoTheMediaFolder() async throws {
        let s = try await Self.start()
        let alice = try User.make("alice", s.relay), bob = try User.make("bob", s.relay)
        await alice.online()
        await bob.online()
        let bytes = Self.pattern(150_001)
        let photo = try Self.file(s, "photo.jpg", bytes)
        let seen = Mutex<[MediaProgress]>([])
        let id = try await alice.client.sendMedia(file: photo, contentType: "image/jpeg", to: "bob", thumbnail: [0xFF, 0xD8, 0xFF],
                                                  library: s.library("alice")) { p in seen.withLock { $0.append(p) } }
        let blobSize = MediaFormat.ciphertextSize(plaintextSize: 150_001)
        #expect(seen.withLock { $0.last } == MediaProgress(done: blobSize, total: blobSize))
        #expect(try Data(contentsOf: s.library("alice").root.appendingPathComponent("Hush Images/Sent/photo.jpg")) == Data(bytes))
        let m = await waitMedia(bob, from: "alice")
        #expect(m.id == id)
        #expect(m.body == "📎 photo.jpg (image/jpeg, 150,001 bytes)")
        let pointer = try #require(try await bob.client.mediaPointer(for: id))
        #expect(pointer.thumbnail == [0xFF, 0xD8, 0xFF] && pointer.plaintextSize == 150_001)
        #expect(try await alice.client.mediaPointer(for: id) == pointer)
        // The relay holds exactly the blob the pointer's digest names, of the padded length.
        let blob = try Data(contentsOf: s.blobPath(pointer))
        #expect(blob.count == blobSize && SHA256.hash([UInt8](blob)) == pointer.digest)
        let down = Mutex<[MediaProgress]>([])
        let url = try await bob.client.downloadMedia(pointer, into: s.library("bob")) { p in down.withLock { $0.append(p) } }
        #expect(url.path == s.library("bob").root.appendingPathComponent("Hush Images/photo.jpg").path)
        #expect(try Data(contentsOf: url) == Data(bytes))
        #expect(down.withLock { $0.last } == MediaProgress(done: blobSize, total: blobSize))
        // A second download of the same pointer gets a fresh name; no partial files stay.
        let again = try await bob.client.downloadMedia(pointer, into: s.library("bob"))
        #expect(again.lastPathComponent == "photo-1.jpg")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.library("bob").root.appendingPathComponent(".partial").path).isEmpty)
        await alice.waitTick(id, .delivered)
        await alice.client.stop()
        await bob.client.stop()
        await s.finish()
    }

    @Test func downloadResumesAfterADroppedConnection() async throws {
        let s = try await Self.start()
        let transport = DroppingTransport(port: s.relay.port, dropAfter: 150_000)
        let alice = try User.make("alice", s.relay)
        let bob = try User.make("bob", s.relay) { $0.mediaTransport = transport }
        await alice.online()
        await bob.online()
        let bytes = Self.pattern(400_000)
        let pointer = try await alice.client.uploadMedia(file: try Self.file(s, "talk.pdf", bytes), contentType: "application/pdf")
        let url = try await bob.client.downloadMedia(pointer, into: s.library("bob"))
        let offsets = transport.offsets.withLock { $0 }
        #expect(offsets.count == 2 && offsets[0] == 0 && offsets[1] >= 150_000)
        #expect(url.path.hasSuffix("Media/Hush Documents/talk.pdf"))
        #expect(try Data(contentsOf: url) == Data(bytes))
        await alice.client.stop()
        await bob.client.stop()
        await s.finish()
    }

    @Test func aLaterCallResumesWhereAFailedDownloadStopped() async throws {
        let s = try await Self.start()
        let transport = FlakyTransport(port: s.relay.port, dropAfter: 40_000)
        let alice = try User.make("alice", s.relay)
        let bob = try User.make("bob", s.relay) { $0.mediaTransport = transport }
        await alice.online()
        await bob.online()
        let bytes = Self.pattern(300_000)
        let pointer = try await alice.client.uploadMedia(file: try Self.file(s, "notes.pdf", bytes), contentType: "application/pdf")
        // An upload that fails leaves no copy (not even its hidden one) in Sent/.
        let failingUpload = FlakyTransport(port: s.relay.port, dropAfter: 0)
        let carol = try User.make("carol", s.relay) { $0.mediaTransport = failingUpload }
        await carol.online()
        await #expect(throws: MediaTransferError.connectionLost(received: 0)) {
            _ = try await carol.client.uploadMedia(file: try Self.file(s, "big.pdf", Self.pattern(600_000)), contentType: "application/pdf",
                                                   library: s.library("carol"))
        }
        let carolSent = s.library("carol").root.appendingPathComponent("Hush Documents/Sent")
        #expect(try FileManager.default.contentsOfDirectory(atPath: carolSent.path).isEmpty)
        await carol.client.stop()
        // 1 + 3 attempts of 40,000 bytes each, then the call gives up and keeps what it had.
        await #expect(throws: MediaTransferError.connectionLost(received: 160_000)) {
            _ = try await bob.client.downloadMedia(pointer, into: s.library("bob"))
        }
        #expect(transport.offsets.withLock { $0 } == [0, 40_000, 80_000, 120_000])
        let docs = s.library("bob").root.appendingPathComponent("Hush Documents")
        #expect(try FileManager.default.contentsOfDirectory(atPath: docs.path).isEmpty)  // no file, no hidden part
        let partial = s.library("bob").root.appendingPathComponent(".partial/\(pointer.mediaID.hex).blob")
        #expect((try FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? NSNumber)?.intValue == 160_000)
        // The next call reads the 160,000 bytes back through the checks and asks only for the rest.
        transport.failing.withLock { $0 = false }
        let url = try await bob.client.downloadMedia(pointer, into: s.library("bob"))
        #expect(transport.offsets.withLock { $0 } == [0, 40_000, 80_000, 120_000, 160_000])
        #expect(try Data(contentsOf: url) == Data(bytes))
        #expect(try FileManager.default.contentsOfDirectory(atPath: docs.path) == ["notes.pdf"])
        #expect(!FileManager.default.fileExists(atPath: partial.path))
        await alice.client.stop()
        await bob.client.stop()
        await s.finish()
    }

    func downloadError(_ u: User, _ p: MediaPointer, _ s: Setup) async -> (any Error)? {
        do { _ = try await u.client.downloadMedia(p, into: s.library("bob")); return nil } catch { return error }
    }

    @Test func tamperedTruncatedSubstitutedWrongKeyAndExpiredBlobsAreRejected() async throws {
        let s = try await Self.start()
        let alice = try User.make("alice", s.relay), bob = try User.make("bob", s.relay)
        await alice.online()
        await bob.online()
        let size = 200_000
        func upload(_ name: String, _ fill: UInt8? = nil) async throws -> MediaPointer {
            let bytes = fill.map { [UInt8](repeating: $0, count: size) } ?? Self.pattern(size)
            return try await alice.client.uploadMedia(file: try Self.file(s, name, bytes), contentType: "image/png")
        }
        // A byte flipped on the relay's disk in chunk 1.
        let p1 = try await upload("a.png")
        var blob = try [UInt8](Data(contentsOf: s.blobPath(p1)))
        blob[24 + 65_553 + 10] ^= 0x01
        try s.rewrite(p1, blob)
        #expect(await downloadError(bob, p1, s) as? MediaError == .tampered(chunk: 1))
        // Truncated on the relay.
        let p2 = try await upload("b.png")
        let full = try [UInt8](Data(contentsOf: s.blobPath(p2)))
        try s.rewrite(p2, Array(full.prefix(100_000)))
        #expect(await downloadError(bob, p2, s) as? MediaError == .truncated(expected: full.count, actual: 100_000))
        // Another file's blob (same length) served under p3's id.
        let p3 = try await upload("c.png"), other = try await upload("d.png", 0x42)
        try s.rewrite(p3, try [UInt8](Data(contentsOf: s.blobPath(other))))
        #expect(await downloadError(bob, p3, s) as? MediaError == .digestMismatch)
        // The right blob, a wrong key in the pointer.
        let p4 = try await upload("e.png")
        let wrong = try MediaPointer(mediaID: p4.mediaID, key: SecureBytes(randomCount: 32), digest: p4.digest,
                                     plaintextSize: p4.plaintextSize, contentType: p4.contentType, fileName: p4.fileName)
        #expect(await downloadError(bob, wrong, s) as? MediaError == .wrongKey)
        // Nothing rejected reached the media folder.
        let images = s.library("bob").root.appendingPathComponent("Hush Images")
        #expect(try FileManager.default.contentsOfDirectory(atPath: images.path).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.library("bob").root.appendingPathComponent(".partial").path).isEmpty)
        // 30 days later the relay no longer serves it.
        s.relay.clock.advance(by: 30 * 86_400_000)
        #expect(await downloadError(bob, p4, s) as? MediaTransferError == .refused(status: 404, code: "not-found"))
        await alice.client.stop()
        await bob.client.stop()
        await s.finish()
    }
}
