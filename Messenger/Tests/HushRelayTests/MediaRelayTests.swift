import Foundation
import Hush
import HushClient
import HushTransport
import Testing
@testable import HushRelay

/// Media (§19): capabilities over the Noise channel, blobs over HTTP on the relay's port, on a
/// real relay over loopback with a disk store.
@Suite(.serialized) struct MediaRelayTests {
    struct Setup {
        let relay: TestRelay
        let folder: URL
        let store: DiskMediaStore
        var http: MediaHTTPClient { MediaHTTPClient(host: "127.0.0.1", port: relay.port) }
        func stop() async {
            await relay.stop()
            try? FileManager.default.removeItem(at: folder)
        }
    }

    static func start(maxBlob: Int? = nil, perDay: Int? = nil) async throws -> Setup {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hush-media-\(UUID().uuidString)")
        let store = try DiskMediaStore(folder: folder)
        var service = try MediaService(store: store)
        if let maxBlob { service.maxBlobSize = maxBlob }
        if let perDay { service.uploadBytesPerDay = perDay }
        let relay = try await TestRelay.start { $0.media = service }
        return Setup(relay: relay, folder: folder, store: store)
    }

    func grant(_ c: RelayTestClient, _ rid: UInt32, size: UInt64) async throws -> RelayStanza {
        var s = RelayStanza()
        s.requestMediaUpload.requestID = rid
        s.requestMediaUpload.size = size
        try await c.send(s)
        return try await c.wait { s in
            switch s.body {
            case .mediaUploadGranted(let g) where g.requestID == rid: s
            case .error(let e) where e.requestID == rid: s
            default: nil
            }
        }
    }

    func granted(_ s: RelayStanza) throws -> RelayMediaUploadGranted {
        guard case .mediaUploadGranted(let g)? = s.body else { throw MediaStoreError.io("no grant: \(s)") }
        return g
    }

    static func hex(_ d: Data) -> String { d.map { String(format: "%02x", $0) }.joined() }

    /// Uploads `blob` in 50,000-byte pieces.
    func put(_ http: MediaHTTPClient, _ g: RelayMediaUploadGranted, _ blob: [UInt8], token: [UInt8]? = nil,
             size: Int? = nil, id: String? = nil, progress: (Int) -> Void = { _ in }) async throws {
        var offset = 0
        try await http.upload(mediaID: id ?? Self.hex(g.mediaID), token: token ?? Array(g.token), size: size ?? blob.count,
                              progress: progress) {
            guard offset < blob.count else { return nil }
            let end = min(blob.count, offset + 50_000)
            defer { offset = end }
            return Array(blob[offset..<end])
        }
    }

    func get(_ http: MediaHTTPClient, _ id: String, from offset: Int = 0) async throws -> [UInt8] {
        var out: [UInt8] = []
        try await http.download(mediaID: id, from: offset) { out += $0 }
        return out
    }

    func refusal(_ body: () async throws -> Void) async -> MediaTransferError? {
        do { try await body(); return nil } catch let e as MediaTransferError { return e } catch { return .badResponse("\(error)") }
    }

    @Test func capabilityStanza() async throws {
        let s = try await Self.start(maxBlob: 1_000_000)
        let c = try await RelayTestClient.register(s.relay, TestDevice("alice"))
        let g = try granted(try await grant(c, 7, size: 1_000))
        #expect(g.mediaID.count == 16 && g.token.count == 48 && g.size == 1_000)
        #expect(g.expiresAt == s.relay.clock.now + 600_000)
        // The token's clear part: be64(expires) || be64(size).
        #expect(Array(g.token.prefix(16)) == MediaCapability.be64(g.expiresAt) + MediaCapability.be64(1_000))
        let g2 = try granted(try await grant(c, 8, size: 1_000))
        #expect(g2.mediaID != g.mediaID)
        if case .error(let e)? = try await grant(c, 9, size: 1_000_001).body { #expect(e.code == .mediaTooLarge) } else { Issue.record("no error") }
        if case .error(let e)? = try await grant(c, 10, size: 0).body { #expect(e.code == .malformedStanza) } else { Issue.record("no error") }
        await c.close()
        await s.stop()
        // A relay without media says UNAVAILABLE.
        let plain = try await TestRelay.start()
        let d = try await RelayTestClient.register(plain, TestDevice("bob"))
        if case .error(let e)? = try await grant(d, 1, size: 10).body { #expect(e.code == .unavailable) } else { Issue.record("no error") }
        await d.close()
        await plain.stop()
    }

    /// §19.4: grants take their size from the device's daily volume, which refills over the day.
    @Test func uploadVolumePerDevice() async throws {
        let s = try await Self.start(perDay: 86_400)  // one byte per second
        let c = try await RelayTestClient.register(s.relay, TestDevice("alice"))
        let other = try await RelayTestClient.register(s.relay, TestDevice("bob"))
        _ = try granted(try await grant(c, 1, size: 80_000))
        if case .error(let e)? = try await grant(c, 2, size: 6_401).body { #expect(e.code == .mediaQuotaExceeded && e.requestID == 2) } else {
            Issue.record("no error")
        }
        _ = try granted(try await grant(c, 3, size: 6_400))   // the refusal took nothing
        _ = try granted(try await grant(other, 4, size: 86_400))  // per device
        if case .error(let e)? = try await grant(c, 5, size: 1).body { #expect(e.code == .mediaQuotaExceeded) } else { Issue.record("no error") }
        s.relay.clock.advance(by: 1_000_000)  // 1,000 s: 1,000 bytes back
        _ = try granted(try await grant(c, 6, size: 1_000))
        await c.close()
        await other.close()
        await s.stop()
    }

    /// The capability key file: created once (mode 0600), the same key on every later start.
    @Test func mediaKeyFileIsKept() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-media-key-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try RelayKeyFiles.mediaKey(in: dir)
        let again = try RelayKeyFiles.mediaKey(in: dir)
        #expect(first.count == 32 && first == again)
        let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/media.key")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        try Data("abcd\n".utf8).write(to: URL(fileURLWithPath: dir + "/media.key"))
        #expect(throws: RelayKeyFiles.Error.malformed("media.key")) { try RelayKeyFiles.mediaKey(in: dir) }
    }

    @Test func encryptedRoundTripOverLoopback() async throws {
        let s = try await Self.start()
        let c = try await RelayTestClient.register(s.relay, TestDevice("alice"))
        let plain = (0..<300_001).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let enc = try MediaEncryptor(plaintextSize: plain.count)
        let blob = try enc.push(plain) + enc.finish().ciphertext
        let digest = SHA256.hash(blob)
        #expect(blob.count == MediaFormat.ciphertextSize(plaintextSize: plain.count))
        let g = try granted(try await grant(c, 1, size: UInt64(blob.count)))
        var reported: [Int] = []
        try await put(s.http, g, blob) { reported.append($0) }
        #expect(reported.last == blob.count && reported == reported.sorted())
        #expect(try s.store.count() == 1)
        // On disk: exactly the ciphertext, named by the id.
        #expect(try Data(contentsOf: s.folder.appendingPathComponent(Self.hex(g.mediaID))) == Data(blob))
        let back = try await get(s.http, Self.hex(g.mediaID))
        #expect(back == blob)
        let dec = try MediaDecryptor(key: enc.key, digest: digest, plaintextSize: plain.count)
        let opened = try dec.push(back)
        try dec.finish()
        #expect(opened == plain)
        // Written once: a second PUT with the same capability is 409.
        #expect(await refusal { try await put(s.http, g, blob) } == .refused(status: 409, code: "exists"))
        await c.close()
        await s.stop()
    }

    @Test func rejectedUploads() async throws {
        let s = try await Self.start(maxBlob: 2_000_000)
        let c = try await RelayTestClient.register(s.relay, TestDevice("alice"))
        let blob = [UInt8](repeating: 0x5A, count: 10_000)
        let g = try granted(try await grant(c, 1, size: 10_000))
        var wrong = Array(g.token)
        wrong[40] ^= 1
        #expect(await refusal { try await put(s.http, g, blob, token: wrong) } == .refused(status: 403, code: "capability-invalid"))
        // A valid token for another id.
        let other = try granted(try await grant(c, 2, size: 10_000))
        #expect(await refusal { try await put(s.http, g, blob, token: Array(other.token)) } == .refused(status: 403, code: "capability-invalid"))
        // A token whose clear size was changed.
        var bigger = Array(g.token)
        bigger[15] ^= 0x01
        #expect(await refusal { try await put(s.http, g, blob + [0], token: bigger, size: 10_001) } == .refused(status: 403, code: "capability-invalid"))
        #expect(await refusal { try await put(s.http, g, Array(blob.prefix(9_999))) } == .refused(status: 400, code: "size-mismatch"))
        #expect(await refusal { try await put(s.http, g, blob, token: []) } == .refused(status: 401, code: "capability-missing"))
        // Over the limit: refused from Content-Length before any body byte is read.
        let huge = try granted(try await grant(c, 3, size: 2_000_000))
        #expect(await refusal {
            try await s.http.upload(mediaID: Self.hex(huge.mediaID), token: Array(huge.token), size: 2_000_001) { [UInt8](repeating: 0, count: 65_536) }
        } == .refused(status: 413, code: "too-large"))
        #expect(await refusal { try await put(s.http, g, blob, id: "zz") } == .refused(status: 404, code: "not-found"))
        // Expired: valid until expires_at, refused from then on.
        s.relay.clock.advance(by: 600_000)
        #expect(await refusal { try await put(s.http, g, blob) } == .refused(status: 403, code: "capability-expired"))
        #expect(try s.store.count() == 0)
        // Nothing was left behind on disk.
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.folder.path).isEmpty)
        // Downloads of unknown or malformed ids.
        #expect(await refusal { _ = try await get(s.http, Self.hex(g.mediaID)) } == .refused(status: 404, code: "not-found"))
        #expect(await refusal { _ = try await get(s.http, "NOTHEX") } == .refused(status: 404, code: "not-found"))
        await c.close()
        await s.stop()
    }

    struct Drop: Error {}

    @Test func rangeAndResumeAfterADroppedConnection() async throws {
        let s = try await Self.start()
        let c = try await RelayTestClient.register(s.relay, TestDevice("alice"))
        let blob = (0..<400_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 9) }
        let g = try granted(try await grant(c, 1, size: UInt64(blob.count)))
        try await put(s.http, g, blob)
        let id = Self.hex(g.mediaID)
        #expect(try await get(s.http, id, from: 399_000) == Array(blob[399_000...]))
        #expect(await refusal { _ = try await get(s.http, id, from: 400_000) } == .refused(status: 416, code: "range-not-satisfiable"))
        // The first download is cut once 150,000 bytes arrived (the client drops the connection).
        var had: [UInt8] = []
        do {
            try await s.http.download(mediaID: id) { piece in
                had += piece
                if had.count >= 150_000 { throw Drop() }
            }
            Issue.record("not dropped")
        } catch is Drop {}
        #expect(had.count >= 150_000 && had.count < blob.count)
        let total = try await s.http.download(mediaID: id, from: had.count) { had += $0 }
        #expect(total == blob.count)
        #expect(had == blob)
        await c.close()
        await s.stop()
    }

    @Test func blobsExpireAfterThirtyDays() async throws {
        let s = try await Self.start()
        let c = try await RelayTestClient.register(s.relay, TestDevice("alice"))
        let old = try granted(try await grant(c, 1, size: 1_000))
        try await put(s.http, old, [UInt8](repeating: 1, count: 1_000))
        s.relay.clock.advance(by: 29 * 86_400_000)
        let young = try granted(try await grant(c, 2, size: 1_000))
        try await put(s.http, young, [UInt8](repeating: 2, count: 1_000))
        #expect(await s.relay.relay.purgeExpiredMedia() == 0)
        s.relay.clock.advance(by: 86_400_000)  // old is now exactly 30 days old: expired
        #expect(await refusal { _ = try await get(s.http, Self.hex(old.mediaID)) } == .refused(status: 404, code: "not-found"))
        #expect(try await get(s.http, Self.hex(young.mediaID)) == [UInt8](repeating: 2, count: 1_000))
        #expect(await s.relay.relay.purgeExpiredMedia() == 1)
        #expect(try s.store.count() == 1)
        #expect(!FileManager.default.fileExists(atPath: s.folder.appendingPathComponent(Self.hex(old.mediaID)).path))
        await c.close()
        await s.stop()
    }
}

/// The checks every ``MediaStore`` passes (disk and memory).
@Suite struct MediaStoreConformanceTests {
    static func stores() throws -> [(String, any MediaStore, URL?)] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hush-media-\(UUID().uuidString)")
        return [("memory", InMemoryMediaStore(), nil), ("disk", try DiskMediaStore(folder: folder), folder)]
    }

    @Test func conformance() throws {
        for (name, store, folder) in try Self.stores() {
            defer { if let folder { try? FileManager.default.removeItem(at: folder) } }
            try Self.check(name, store, folder)
        }
    }

    /// The checks, on an empty `store` (PostgresTests runs them on ``PostgresMediaStore`` too).
    static func check(_ name: String, _ store: any MediaStore, _ folder: URL?) throws {
        do {
            let id = [UInt8](repeating: 1, count: 16), id2 = [UInt8](repeating: 2, count: 16)
            #expect(throws: MediaStoreError.badID, "\(name)") { try store.beginUpload(id: [1], size: 1, createdAt: 0) }
            let up = try store.beginUpload(id: id, size: 5, createdAt: 1_000)
            try [1, 2, 3].withUnsafeBytes { (b: UnsafeRawBufferPointer) throws(MediaStoreError) in try up.append(b) }
            #expect(try store.open(id: id) == nil, "\(name): invisible before commit")
            #expect(throws: MediaStoreError.tooLong, "\(name)") {
                try [4, 5, 6].withUnsafeBytes { (b: UnsafeRawBufferPointer) throws(MediaStoreError) in try up.append(b) }
            }
            #expect(throws: MediaStoreError.tooShort(expected: 5, actual: 3), "\(name)") { try up.commit() }
            try [4, 5].withUnsafeBytes { (b: UnsafeRawBufferPointer) throws(MediaStoreError) in try up.append(b) }
            // Two uploads of one id: the first commit wins.
            let rival = try store.beginUpload(id: id, size: 1, createdAt: 1_000)
            try up.commit()
            try [9].withUnsafeBytes { (b: UnsafeRawBufferPointer) throws(MediaStoreError) in try rival.append(b) }
            #expect(throws: MediaStoreError.exists, "\(name)") { try rival.commit() }
            rival.abort()
            #expect(throws: MediaStoreError.exists, "\(name)") { try store.beginUpload(id: id, size: 1, createdAt: 0) }
            let r = try #require(try store.open(id: id))
            #expect(r.size == 5 && r.createdAt == 1_000, "\(name)")
            #expect(try r.read(offset: 0, count: 100) == [1, 2, 3, 4, 5], "\(name)")
            #expect(try r.read(offset: 3, count: 1) == [4], "\(name)")
            #expect(try r.read(offset: 5, count: 1) == [], "\(name)")
            r.close()
            // An aborted upload leaves nothing.
            let dropped = try store.beginUpload(id: id2, size: 1, createdAt: 2_000)
            dropped.abort()
            #expect(try store.open(id: id2) == nil && store.count() == 1, "\(name)")
            let second = try store.beginUpload(id: id2, size: 0, createdAt: 2_000)
            try second.commit()
            #expect(try store.purge(createdBefore: 1_000) == 0, "\(name)")
            #expect(try store.purge(createdBefore: 1_001) == 1, "\(name)")
            #expect(try store.count() == 1 && store.open(id: id) == nil, "\(name)")
            if let folder { #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == [DiskMediaStore.hex(id2)]) }
            // Reads that cross a store's internal pieces (1 MiB rows in PostgreSQL), in place too.
            let id3 = [UInt8](repeating: 3, count: 16)
            let big = (0..<2_500_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
            let up3 = try store.beginUpload(id: id3, size: big.count, createdAt: 3_000)
            var at = 0
            while at < big.count {
                let end = min(big.count, at + 300_001)
                try big[at..<end].withUnsafeBytes { (b: UnsafeRawBufferPointer) throws(MediaStoreError) in try up3.append(b) }
                at = end
            }
            try up3.commit()
            let r3 = try #require(try store.open(id: id3))
            #expect(r3.size == big.count, "\(name)")
            #expect(try r3.read(offset: 1_048_000, count: 1_000) == Array(big[1_048_000..<1_049_000]), "\(name)")
            #expect(try r3.read(offset: 2_499_990, count: 100) == Array(big[2_499_990...]), "\(name)")
            var piece = [UInt8](repeating: 0, count: 262_144)
            let n = try piece.withUnsafeMutableBytes { (b) throws(MediaStoreError) in try r3.read(offset: 2_000_000, into: b) }
            #expect(n == 262_144 && piece == Array(big[2_000_000..<2_262_144]), "\(name)")
            var all: [UInt8] = []
            while all.count < big.count { all += try r3.read(offset: all.count, count: 262_144) }
            #expect(all == big, "\(name)")
            r3.close()
        }
    }
}
