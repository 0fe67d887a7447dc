import Foundation
import Testing
@testable import HushTransport

/// The stanza size arithmetic of Docs/spec/relay.md §8.3 "Sizes", with every id and varint at
/// its largest: 36 one-time Kyber prekeys fit in an upload beside 100 X25519 one-time prekeys, a
/// signed and a last-resort prekey (37 do not), 39 alone (40 do not), and a fetch answer for 16
/// devices is 29,052 bytes.
@Suite struct KyberPrekeySizeTests {
    static let maxID = UInt32.max  // a 5-byte varint

    static func kyber() -> RelayKyberPrekey {
        var k = RelayKyberPrekey()
        k.id = maxID
        k.publicKey = Data(repeating: 0xAB, count: RelayProtocol.Limits.kyberPublicKeyLength)
        k.signature = Data(repeating: 0xCD, count: RelayProtocol.Limits.signatureLength)
        return k
    }

    static func signed() -> RelaySignedPrekey {
        var s = RelaySignedPrekey()
        s.id = maxID
        s.publicKey = Data(repeating: 1, count: 32)
        s.signature = Data(repeating: 2, count: 64)
        return s
    }

    static func oneTime() -> RelayPrekey {
        var p = RelayPrekey()
        p.id = maxID
        p.publicKey = Data(repeating: 3, count: 32)
        return p
    }

    static func upload(kyber n: Int, full: Bool) throws -> Int {
        var s = RelayStanza()
        s.uploadPrekeys.requestID = maxID
        s.uploadPrekeys.registrationID = maxID
        if full {
            s.uploadPrekeys.signedPrekey = signed()
            s.uploadPrekeys.oneTime = Array(repeating: oneTime(), count: 100)
            s.uploadPrekeys.kyberLastResort = kyber()
        }
        s.uploadPrekeys.kyberOneTime = Array(repeating: kyber(), count: n)
        return try (s.serializedBytes() as [UInt8]).count
    }

    @Test func uploadLimits() throws {
        #expect(try kyberEntry() == 1_646)
        #expect(try Self.upload(kyber: 36, full: true) <= RelayProtocol.Limits.maxStanza)
        #expect(try Self.upload(kyber: 37, full: true) > RelayProtocol.Limits.maxStanza)
        #expect(try Self.upload(kyber: 39, full: false) <= RelayProtocol.Limits.maxStanza)
        #expect(try Self.upload(kyber: 40, full: false) > RelayProtocol.Limits.maxStanza)
        #expect(RelayProtocol.Limits.kyberPrekeysPerStanza <= 36)
    }

    /// One `kyber_one_time` entry with its tag and length.
    func kyberEntry() throws -> Int {
        var u = RelayUploadPrekeys()
        u.kyberOneTime = [Self.kyber()]
        return try (u.serializedBytes() as [UInt8]).count
    }

    @Test func sixteenDeviceFetchAnswer() throws {
        var b = RelayPrekeyBundle()
        b.deviceID = Self.maxID
        b.registrationID = Self.maxID
        b.signedPrekey = Self.signed()
        b.oneTime = Self.oneTime()
        b.kyber = Self.kyber()
        b.kyberLastResort = true
        var s = RelayStanza()
        s.prekeyBundles.requestID = Self.maxID
        s.prekeyBundles.identityKey = Data(repeating: 9, count: 32)
        s.prekeyBundles.bundles = Array(repeating: b, count: RelayProtocol.Limits.maxDevicesPerAccount)
        let size = try (s.serializedBytes() as [UInt8]).count
        #expect(size == 29_052)
        #expect(size <= RelayProtocol.Limits.maxStanza)
    }
}
