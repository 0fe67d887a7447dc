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
