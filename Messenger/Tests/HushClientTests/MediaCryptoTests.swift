import Hush
import Testing
@testable import HushClient

@Suite struct MediaFormatTests {
    @Test func paddingCurveAndBlobSizes() {
        // Values checked against the formula in Python (math.log / math.pow, IEEE-754 doubles).
        let table: [(Int, Int, Int)] = [(0, 541, 582), (1, 541, 582), (541, 541, 582), (542, 568, 609), (1_000, 1_020, 1_061),
                                        (65_536, 67_789, 67_847), (100_000, 100_155, 100_213), (1_000_000, 1_041_743, 1_042_039),
                                        (52_428_800, 54_211_841, 54_225_941)]
        for (size, padded, blob) in table {
            #expect(MediaFormat.paddedSize(size) == padded, "size \(size)")
            #expect(MediaFormat.ciphertextSize(plaintextSize: size) == blob, "size \(size)")
        }
        #expect(MediaFormat.maxPlaintextSize == 102_224_512)
        #expect(MediaFormat.ciphertextSize(plaintextSize: MediaFormat.maxPlaintextSize) <= MediaFormat.maxCiphertextSize)
        #expect(MediaFormat.ciphertextSize(plaintextSize: MediaFormat.maxPlaintextSize + 1) > MediaFormat.maxCiphertextSize)
        // Padded sizes never shrink and grow by at most 5 % above the minimum.
        var last = 0
        for size in stride(from: 0, to: 3_000_000, by: 997) {
            let p = MediaFormat.paddedSize(size)
            #expect(p >= size && p >= last)
            if size > 541 { #expect(Double(p) <= Double(size) * 1.05 + 1) }
            last = p
        }
    }
}

/// Encrypts `plaintext` in slices of `slice` bytes: the blob and its digest.
func encryptMedia(_ plaintext: [UInt8], slice: Int = 10_000, random: some RandomSource = SystemRandom())
    throws -> (blob: [UInt8], digest: [UInt8], key: SecureBytes) {
    let enc = try MediaEncryptor(plaintextSize: plaintext.count, random: random)
    var blob: [UInt8] = []
    var offset = 0
    while offset < plaintext.count {
        let end = min(plaintext.count, offset + slice)
        blob += try enc.push(Array(plaintext[offset..<end]))
        offset = end
    }
    let (tail, digest) = try enc.finish()
    return (blob + tail, digest, enc.key)
}

/// Decrypts `blob` in slices; the plaintext, or the MediaError.
func decryptMedia(_ blob: [UInt8], key: SecureBytes, digest: [UInt8], size: Int, slice: Int = 7_777) -> Result<[UInt8], MediaError> {
    do throws(MediaError) {
        let dec = try MediaDecryptor(key: key, digest: digest, plaintextSize: size)
        var out: [UInt8] = []
        var offset = 0
        while offset < blob.count {
            let end = min(blob.count, offset + slice)
            out += try dec.push(Array(blob[offset..<end]))
            offset = end
        }
        try dec.finish()
        return .success(out)
    } catch { return .failure(error) }
}

@Suite(.serialized) struct MediaCryptoTests {
    static func pattern(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) } }

    @Test(arguments: [0, 1, 540, 541, 542, 65_535, 65_536, 65_537, 200_001])
    func roundTripExactSizes(size: Int) throws {
        let plain = Self.pattern(size)
        let (blob, digest, key) = try encryptMedia(plain)
        #expect(blob.count == MediaFormat.ciphertextSize(plaintextSize: size))
        #expect(digest == SHA256.hash(blob))
        #expect(try decryptMedia(blob, key: key, digest: digest, size: size).get() == plain)
        // Any slicing of the input gives the same plaintext.
        #expect(try decryptMedia(blob, key: key, digest: digest, size: size, slice: 1 << 20).get() == plain)
        // Whole chunks pushed at once are sealed (and opened) in place: the same format.
        let (big, bigDigest, bigKey) = try encryptMedia(plain, slice: 1 << 20)
        #expect(big.count == blob.count)
        #expect(bigDigest == SHA256.hash(big))
        #expect(try decryptMedia(big, key: bigKey, digest: bigDigest, size: size, slice: 65_536 + 17).get() == plain)
        #expect(try decryptMedia(big, key: bigKey, digest: bigDigest, size: size).get() == plain)
    }

    @Test func deterministicWithInjectedRandomness() throws {
        let seed = [UInt8](repeating: 7, count: 32)
        let a = try encryptMedia(Self.pattern(1_000), random: ReplayRandom(seed))
        #expect(a.key == SecureBytes(copying: seed))
        // The secretstream header is libsodium's own randomness: two blobs differ even under one key.
        let b = try encryptMedia(Self.pattern(1_000), random: ReplayRandom(seed))
        #expect(a.blob != b.blob)
        #expect(try decryptMedia(b.blob, key: a.key, digest: b.digest, size: 1_000).get() == Self.pattern(1_000))
    }

    @Test func tamperedByteInALaterChunk() throws {
        let size = 200_000
        let (blob, digest, key) = try encryptMedia(Self.pattern(size))
        var bad = blob
        let chunk2Start = SecretStream.headerByteCount + 2 * (MediaFormat.chunkSize + SecretStream.chunkOverhead)
        bad[chunk2Start + 100] ^= 0x01
        #expect(decryptMedia(bad, key: key, digest: digest, size: size) == .failure(.tampered(chunk: 2)))
    }

    @Test func tamperedHeaderOrFirstChunkIsADigestMismatch() throws {
        let (blob, digest, key) = try encryptMedia(Self.pattern(5_000))
        for index in [0, 23, 24, 500, blob.count - 1] {
            var bad = blob
            bad[index] ^= 0x80
            // One chunk only (5,000 bytes pad to 5,xxx): a failure at chunk 0 with a wrong digest.
            #expect(decryptMedia(bad, key: key, digest: digest, size: 5_000) == .failure(.digestMismatch), "byte \(index)")
        }
    }

    @Test func truncatedAndOversizedBlobs() throws {
        let size = 70_000
        let (blob, digest, key) = try encryptMedia(Self.pattern(size))
        let expected = MediaFormat.ciphertextSize(plaintextSize: size)
        #expect(decryptMedia(Array(blob.dropLast()), key: key, digest: digest, size: size) == .failure(.truncated(expected: expected, actual: expected - 1)))
        // Cut at a chunk boundary: every byte present authenticates, the final chunk is missing.
        let firstChunkEnd = SecretStream.headerByteCount + MediaFormat.chunkSize + SecretStream.chunkOverhead
        #expect(decryptMedia(Array(blob[..<firstChunkEnd]), key: key, digest: digest, size: size)
            == .failure(.truncated(expected: expected, actual: firstChunkEnd)))
        #expect(decryptMedia([], key: key, digest: digest, size: size) == .failure(.truncated(expected: expected, actual: 0)))
        #expect(decryptMedia(blob + [0], key: key, digest: digest, size: size) == .failure(.oversized(expected: expected)))
    }

    @Test func substitutedBlobIsADigestMismatch() throws {
        let size = 3_000
        let original = try encryptMedia(Self.pattern(size))
        // Another valid blob of the same length (another file, another key) served in its place.
        let other = try encryptMedia([UInt8](repeating: 0xAB, count: size))
        #expect(other.blob.count == original.blob.count)
        #expect(decryptMedia(other.blob, key: original.key, digest: original.digest, size: size) == .failure(.digestMismatch))
        // The same blob with a pointer that claims a size of another padding bucket: wrong length.
        #expect(decryptMedia(original.blob, key: original.key, digest: original.digest, size: 600)
            == .failure(.oversized(expected: MediaFormat.ciphertextSize(plaintextSize: 600))))
    }

    @Test func wrongKey() throws {
        let size = 100_000
        let (blob, digest, _) = try encryptMedia(Self.pattern(size))
        let wrong = try SecureBytes(randomCount: 32)
        #expect(decryptMedia(blob, key: wrong, digest: digest, size: size) == .failure(.wrongKey))
        #expect(throws: MediaError.invalidKey) { try MediaDecryptor(key: SecureBytes(zeroes: 31), digest: digest, plaintextSize: size) }
    }

    @Test func sizeDeclaredSmallerInTheSameBucketIsMalformedPadding() throws {
        // The sender's blob for 1,000 bytes read as 999 bytes (same padded size): byte 999 is
        // file data, not zero padding; digest and key are right, so the blob is malformed.
        var plain = Self.pattern(1_000)
        plain[999] = 0x55
        let (blob, digest, key) = try encryptMedia(plain)
        #expect(MediaFormat.paddedSize(999) == MediaFormat.paddedSize(1_000))
        #expect(decryptMedia(blob, key: key, digest: digest, size: 999) == .failure(.malformedBlob(chunk: 0)))
        // Zero trailing byte: indistinguishable from padding, decrypts to the 999 bytes.
        plain[999] = 0
        let z = try encryptMedia(plain)
        #expect(try decryptMedia(z.blob, key: z.key, digest: z.digest, size: 999).get() == Array(plain[..<999]))
    }

    @Test func encryptorChecksTheAnnouncedSize() throws {
        let enc = try MediaEncryptor(plaintextSize: 10)
        #expect(throws: MediaError.plaintextSizeMismatch(expected: 10, actual: 11)) { try enc.push([UInt8](repeating: 1, count: 11)) }
        _ = try enc.push([UInt8](repeating: 1, count: 4))
        #expect(throws: MediaError.plaintextSizeMismatch(expected: 10, actual: 4)) { try enc.finish() }
        #expect(throws: MediaError.fileTooLarge(size: MediaFormat.maxPlaintextSize + 1, limit: MediaFormat.maxPlaintextSize)) {
            try MediaEncryptor(plaintextSize: MediaFormat.maxPlaintextSize + 1)
        }
    }
}

@Suite struct MediaPointerTests {
    static func sample(thumbnail: [UInt8] = [0xFF, 0xD8], name: String = "cat.jpg") throws -> MediaPointer {
        try MediaPointer(mediaID: MediaID(bytes: Array(0..<16))!, key: SecureBytes(copying: [UInt8](repeating: 0x11, count: 32)),
                         digest: [UInt8](repeating: 0x22, count: 32), plaintextSize: 300, contentType: "image/jpeg",
                         fileName: name, thumbnail: thumbnail)
    }

    @Test func exactBytesAndRoundTrip() throws {
        let p = try Self.sample()
        let expected: [UInt8] = [0x01] + Array(0..<16) + [UInt8](repeating: 0x11, count: 32) + [UInt8](repeating: 0x22, count: 32)
            + [0xAC, 0x02] + [10] + Array("image/jpeg".utf8) + [7] + Array("cat.jpg".utf8) + [2, 0xFF, 0xD8]
        #expect(p.encoded == expected)
        #expect(try MediaPointer(decoding: expected) == p)
        #expect(!p.description.contains("11111111"))
        #expect(p.mediaID.hex == "000102030405060708090a0b0c0d0e0f")
        #expect(MediaID(hex: "000102030405060708090a0b0c0d0e0f") == p.mediaID)
        #expect(MediaID(hex: "000102030405060708090A0B0C0D0E0F") == nil)
        #expect(MediaID(hex: "0001") == nil)
    }

    @Test func everyMalformedInputIsATypedError() throws {
        func error(_ bytes: [UInt8]) -> MediaPointer.DecodeError? {
            do { _ = try MediaPointer(decoding: bytes); return nil } catch { return error }
        }
        let good = try Self.sample().encoded
        #expect(error([]) == .empty)
        #expect(error([0x02] + good.dropFirst()) == .unknownVersion(2))
        #expect(error(Array(good.prefix(80))) == .truncated)
        for cut in 81..<good.count { #expect(error(Array(good.prefix(cut))) == .truncated, "cut \(cut)") }
        #expect(error(good + [0]) == .trailingBytes)
        let head = Array(good.prefix(81))
        #expect(error(head + [0x80, 0x00]) == .badVarint)
        #expect(error(head + [0x80, 0x80, 0x80, 0x40]) == .sizeTooLarge(0x40 << 21))
        func withFields(_ type: [UInt8], _ name: [UInt8], _ thumb: [UInt8]) -> [UInt8] {
            head + [0x01, UInt8(type.count)] + type + [UInt8(name.count)] + name + [0x00] + thumb
        }
        #expect(error(withFields(Array("image".utf8), [], [])) == .badContentType)
        #expect(error(withFields(Array("Image/jpeg".utf8), [], [])) == .badContentType)
        #expect(error(withFields(Array("a/b/c".utf8), [], [])) == .badContentType)
        #expect(error(withFields(Array("a/b".utf8), Array("x/y".utf8), [])) == .badFileName)
        #expect(error(withFields(Array("a/b".utf8), Array("..".utf8), [])) == .badFileName)
        #expect(error(withFields(Array("a/b".utf8), [0x61, 0x0A], [])) == .badFileName)
        #expect(error(withFields(Array("a/b".utf8), [0xC3], [])) == .badFileName)
        #expect(error(withFields(Array("a/b".utf8), [], [])) == nil)
        let big = head + [0x01, 3] + Array("a/b".utf8) + [0x00, 0x81, 0x80, 0x02]
        #expect(error(big) == .thumbnailTooLarge(32_769))
        #expect(throws: MediaPointer.DecodeError.thumbnailTooLarge(32_769)) { try Self.sample(thumbnail: [UInt8](repeating: 0, count: 32_769)) }
        // Short inputs of every first byte never trap.
        for a in 0...255 { _ = error([UInt8(a)] + good.dropFirst().prefix(90)) }
    }
}

@Suite struct MediaContentTests {
    @Test func mediaMessageContent() throws {
        let p = try MediaPointerTests.sample()
        let content = MessageContent.media(id: 5, sentAt: 300, pointer: p)
        #expect(content.encoded == [0x05, 0x05, 0xAC, 0x02] + p.encoded)
        #expect(try MessageContent(decoding: content.encoded) == content)
        #expect(throws: MessageContent.DecodeError.badMediaPointer(.trailingBytes)) {
            try MessageContent(decoding: content.encoded + [0])
        }
        #expect(throws: MessageContent.DecodeError.badMediaPointer(.empty)) { try MessageContent(decoding: [0x05, 0x01, 0x01]) }
        #expect(throws: MessageContent.DecodeError.truncated) { try MessageContent(decoding: [0x05, 0x01]) }
        #expect(p.summary == "📎 cat.jpg (image/jpeg, 300 bytes)")
    }
}
