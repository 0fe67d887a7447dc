import Hush
import Testing
@testable import HushClient

@Suite struct MessageContentTests {
    @Test func exactBytes() {
        #expect(MessageContent.text(id: 5, sentAt: 300, body: "hi").encoded == [0x01, 0x05, 0xAC, 0x02, 0x68, 0x69])
        #expect(MessageContent.delivered([1, 128]).encoded == [0x02, 0x02, 0x01, 0x80, 0x01])
        #expect(MessageContent.read([7]).encoded == [0x03, 0x01, 0x07])
        #expect(MessageContent.typing(true, sentAt: 1).encoded == [0x04, 0x01, 0x01])
        #expect(MessageContent.typing(false, sentAt: 0).encoded == [0x04, 0x00, 0x00])
        #expect(MessageContent.sessionReset(sentAt: 300).encoded == [0x30, 0xAC, 0x02])
        #expect(MessageContent.accessKey(Array(0...15)).encoded == [0x40] + Array(0...15))
    }

    @Test func roundTrips() throws {
        let all: [MessageContent] = [.text(id: UInt64.max, sentAt: 1_800_000_000_000, body: "héllo ✓✓"), .delivered(Array(1...256)),
                                     .read([0]), .typing(true, sentAt: 42), .text(id: 1, sentAt: 2, body: ""),
                                     .accessKey([UInt8](repeating: 0xA5, count: 16))]
        for c in all { #expect(try MessageContent(decoding: c.encoded) == c) }
    }

    @Test func everyMalformedInputIsATypedError() {
        func error(_ bytes: [UInt8]) -> MessageContent.DecodeError? {
            do { _ = try MessageContent(decoding: bytes); return nil } catch { return error }
        }
        #expect(error([]) == .empty)
        #expect(error([0x09]) == .unknownType(9))
        #expect(error([0x02, 0x00]) == .badCount(0))
        #expect(error([0x02, 0x81, 0x02] + [UInt8](repeating: 1, count: 257)) == .badCount(257))
        #expect(error([0x01, 0x80]) == .truncated)
        #expect(error([0x01, 0x80, 0x00, 0x01]) == .badVarint)  // non-canonical
        #expect(error([0x01] + [UInt8](repeating: 0xFF, count: 10) + [0x01]) == .badVarint)  // > 64 bits
        #expect(error([0x04, 0x02, 0x00]) == .badTypingState(2))
        #expect(error([0x04]) == .truncated)
        #expect(error([0x04, 0x01, 0x01, 0xFF]) == .trailingBytes)
        #expect(error([0x03, 0x01, 0x01, 0x00]) == .trailingBytes)
        #expect(error([0x01, 0x01, 0x01, 0xFF]) == .notUTF8)
        #expect(error([0x40] + [UInt8](repeating: 1, count: 15)) == .truncated)
        #expect(error([0x40] + [UInt8](repeating: 1, count: 17)) == .trailingBytes)
        // Every short byte string decodes or fails with a typed error (never traps).
        for a in 0...255 { for b in [0, 1, 0x7F, 0x80, 0xFF] { _ = error([UInt8(a), UInt8(b)]); _ = error([UInt8(a), UInt8(b), 0x80]) } }
    }
}

@Suite struct SessionCiphertextTests {
    @Test func exactBytes() throws {
        let c = SessionCiphertext(contentType: .preKeyMessage, message: [0x12, 0xAA], certificateExpiration: 0x0102_0304_0506_0708)
        #expect(c.encoded == [0x01, 0x02, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x12, 0xAA])
        #expect(try SessionCiphertext(decoding: c.encoded) == c)
        let m = SessionCiphertext(contentType: .message, message: [0x11], certificateExpiration: 0)
        #expect(m.encoded == [0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x11])
        #expect(try SessionCiphertext(decoding: m.encoded) == m)
    }

    @Test func everyMalformedInputIsATypedError() {
        func error(_ bytes: [UInt8]) -> SessionCiphertext.DecodeError? {
            do { _ = try SessionCiphertext(decoding: bytes); return nil } catch { return error }
        }
        #expect(error([]) == .truncated)
        #expect(error([0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]) == .truncated)  // no message byte
        #expect(error([0x02, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x11]) == .unknownVersion(2))
        #expect(error([0x01, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0x11]) == .unknownType(3))
        #expect(error([0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x11]) == .unknownType(0))
        for n in 0...24 { for fill in [0x00, 0x01, 0x02, 0xFF] as [UInt8] { _ = error([UInt8](repeating: fill, count: n)) } }
    }
}

@Suite struct SafetyNumberTests {
    // RFC 7748 §6.1's two public keys; the digits were computed independently (Python hashlib).
    static let alice = IdentityKey(publicKey: try! .init(rawRepresentation: try! Hex.decode("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")))
    static let bob = IdentityKey(publicKey: try! .init(rawRepresentation: try! Hex.decode("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")))

    @Test func knownDigitsAndSymmetry() {
        let a = SafetyNumber(local: ("alice", Self.alice), remote: ("bob", Self.bob))
        let b = SafetyNumber(local: ("bob", Self.bob), remote: ("alice", Self.alice))
        #expect(a.digits == "211859583660101646076273530668953483193794561986989186008120")
        #expect(a == b)
        #expect(a.description == "21185 95836 60101 64607 62735 30668 95348 31937 94561 98698 91860 08120")
    }

    @Test func changesWithTheKeyOrTheName() {
        let a = SafetyNumber(local: ("alice", Self.alice), remote: ("bob", Self.bob))
        #expect(SafetyNumber(local: ("alice", Self.alice), remote: ("bob", Self.alice)) != a)
        #expect(SafetyNumber(local: ("alice", Self.alice), remote: ("bobby", Self.bob)) != a)
    }
}

@Suite struct BackoffTests {
    @Test func exponentialWithJitterAndACap() {
        let b = Backoff(base: .milliseconds(200), maximum: .seconds(30))
        #expect(b.delay(attempt: 1, unit: 0) == .milliseconds(100))
        #expect(b.delay(attempt: 1, unit: 0.5) == .milliseconds(150))
        #expect(b.delay(attempt: 3, unit: 0) == .milliseconds(400))
        #expect(b.delay(attempt: 3, unit: 0.999) == .milliseconds(799))
        #expect(b.delay(attempt: 20, unit: 0) == .seconds(15))
        #expect(b.delay(attempt: 1_000, unit: 0.999) == .milliseconds(29_985))
    }
}

/// Content 0x07, read sync (Docs/spec/client.md §2, §3b): exact bytes, the canonical order, every
/// limit and refusal.
@Suite struct ReadSyncContentTests {
    static func error(_ bytes: [UInt8]) -> MessageContent.DecodeError? {
        do { _ = try MessageContent(decoding: bytes); return nil } catch { return error }
    }

    @Test func exactBytesAndCanonicalOrder() throws {
        // bob/1 #5, bob/2 #3 and #200 read in "bob": one entry per sending device.
        let messages = [MessageID(account: "bob", device: 2, clientMessageID: 200), MessageID(account: "bob", device: 1, clientMessageID: 5),
                        MessageID(account: "bob", device: 2, clientMessageID: 3), MessageID(account: "bob", device: 2, clientMessageID: 3)]
        let syncs = MessageContent.readSyncs(conversation: "bob", messages: messages)
        let expected: [UInt8] = [0x07, 0x03, 0x62, 0x6F, 0x62, 0x02,
                                 0x03, 0x62, 0x6F, 0x62, 0x01, 0x01, 0x05,
                                 0x03, 0x62, 0x6F, 0x62, 0x02, 0x02, 0x03, 0xC8, 0x01]
        #expect(syncs.count == 1 && syncs.first?.encoded == expected)
        let decoded = try MessageContent(decoding: expected)
        #expect(decoded == .readSync(conversation: "bob", messages: [MessageID(account: "bob", device: 1, clientMessageID: 5),
                                                                       MessageID(account: "bob", device: 2, clientMessageID: 3),
                                                                       MessageID(account: "bob", device: 2, clientMessageID: 200)]))
        #expect(decoded.kind == .readSync)
        // A group conversation, two senders; accounts in byte order ("carol" < "dan"), then devices.
        let group = "#" + String(repeating: "ab", count: 16)
        let g = MessageContent.readSyncs(conversation: group, messages: [
            MessageID(account: "dan", device: 1, clientMessageID: 1), MessageID(account: "carol", device: 3, clientMessageID: 9),
        ])
        #expect(g.first?.encoded == [0x07, 0x21] + Array(group.utf8) + [0x02, 0x05] + Array("carol".utf8) + [0x03, 0x01, 0x09]
            + [0x03] + Array("dan".utf8) + [0x01, 0x01, 0x01])
        #expect(try MessageContent(decoding: g[0].encoded) == g[0])
        // 600 ids: 256 + 256 + 88, each decodes to its part.
        let many = (1...600).map { MessageID(account: "bob", device: UInt32($0 % 3 + 1), clientMessageID: UInt64($0)) }
        let parts = MessageContent.readSyncs(conversation: "bob", messages: many)
        #expect(parts.count == 3)
        var all: [MessageID] = []
        for p in parts {
            guard case .readSync(let c, let ids) = try MessageContent(decoding: p.encoded) else { Issue.record("not a read sync"); continue }
            #expect(c == "bob" && ids.count <= 256)
            all += ids
        }
        #expect(all == MessageContent.canonicalOrder(many) && all.count == 600)
        #expect(MessageContent.readSyncs(conversation: "bob", messages: []).isEmpty)
        // The largest ids and devices.
        let big = MessageContent.readSyncs(conversation: "a", messages: [MessageID(account: "z", device: UInt32(Int32.max), clientMessageID: .max)])
        #expect(try MessageContent(decoding: big[0].encoded) == big[0])
    }

    @Test func everyMalformedReadSyncIsATypedError() {
        let bob: [UInt8] = [0x03, 0x62, 0x6F, 0x62]
        let entry: [UInt8] = bob + [0x01, 0x01, 0x05]  // bob/1 #5
        #expect(Self.error([0x07]) == .truncated)
        #expect(Self.error([0x07, 0x00]) == .badCount(0))                          // empty conversation
        #expect(Self.error([0x07, 0x41] + [UInt8](repeating: 0x61, count: 65)) == .badCount(65))
        #expect(Self.error([0x07, 0x05, 0x62]) == .truncated)
        #expect(Self.error([0x07, 0x01, 0xFF, 0x01] + entry) == .notUTF8)
        #expect(Self.error([0x07] + bob) == .truncated)                             // no count
        #expect(Self.error([0x07] + bob + [0x00]) == .badCount(0))
        #expect(Self.error([0x07] + bob + [0x81, 0x02]) == .badCount(257))
        #expect(Self.error([0x07] + bob + [0x01, 0x00, 0x01, 0x01, 0x05]) == .badCount(0))     // empty account
        #expect(Self.error([0x07] + bob + [0x01, 0x21] + [UInt8](repeating: 0x61, count: 33) + [0x01, 0x01, 0x05]) == .badCount(33))
        #expect(Self.error([0x07] + bob + [0x01, 0x01, 0xC3, 0x01, 0x01, 0x05]) == .notUTF8)
        #expect(Self.error([0x07] + bob + [0x01] + bob + [0x00, 0x01, 0x05]) == .badCount(0))        // device 0
        #expect(Self.error([0x07] + bob + [0x01] + bob + [0x80, 0x80, 0x80, 0x80, 0x08, 0x01, 0x05]) == .badCount(1 << 31))
        #expect(Self.error([0x07] + bob + [0x01] + bob + [0x01, 0x00]) == .badCount(0))              // no ids
        #expect(Self.error([0x07] + bob + [0x01] + bob + [0x01, 0x81, 0x02]) == .badCount(257))
        #expect(Self.error([0x07] + bob + [0x01] + bob + [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]) == .badCount(Int.max))
        #expect(Self.error([0x07] + bob + [0x01] + bob + [0x01, 0x02, 0x05]) == .truncated)
        #expect(Self.error([0x07] + bob + [0x01] + bob + [0x01, 0x02, 0x05, 0x05]) == .notAscending)  // a repeated id
        #expect(Self.error([0x07] + bob + [0x01] + bob + [0x01, 0x02, 0x06, 0x05]) == .notAscending)
        #expect(Self.error([0x07] + bob + [0x02] + entry + entry) == .notAscending)                   // a repeated device
        #expect(Self.error([0x07] + bob + [0x02] + bob + [0x02, 0x01, 0x01] + entry) == .notAscending) // devices descending
        #expect(Self.error([0x07] + bob + [0x02] + [0x03] + Array("dan".utf8) + [0x01, 0x01, 0x01] + entry) == .notAscending)
        #expect(Self.error([0x07] + bob + [0x01] + entry + [0x00]) == .trailingBytes)
        #expect(Self.error([0x07] + bob + [0x02] + entry) == .truncated)
        // 256 ids over two entries is the limit; 257 is not.
        var twoHundred: [UInt8] = [0xC8, 0x01]
        for id in 1...200 { Varint.append(UInt64(id), to: &twoHundred) }
        #expect(Self.error([0x07] + bob + [0x02] + bob + [0x01] + twoHundred + bob + [0x02, 0x38] + (1...56).map { UInt8($0) }) == nil)
        #expect(Self.error([0x07] + bob + [0x02] + bob + [0x01] + twoHundred + bob + [0x02, 0x39] + (1...57).map { UInt8($0) }) == .badCount(57))
        // The device hello (0x08) is one byte.
        #expect(MessageContent.deviceHello.encoded == [0x08])
        #expect((try? MessageContent(decoding: [0x08])) == .deviceHello)
        #expect(Self.error([0x08, 0x00]) == .trailingBytes)
        // Any short input: a value or a typed error.
        for a in 0...255 { for b in [0, 1, 0x7F, 0x80, 0xFF] { _ = Self.error([0x07, UInt8(a), UInt8(b)]); _ = Self.error([0x07, 0x01, 0x61, UInt8(a), UInt8(b)]) } }
    }
}
