import Foundation
import Hush
import HushPQ
import Testing
@testable import HushClient

/// The stored form of a Kyber prekey (Docs/client.md §Store, table `kyber_prekeys`): exact bytes, a
/// round trip, and any other bytes a typed error.
@Suite struct KyberPreKeyRecordCodingTests {
    static func record(_ kind: KyberPreKeyRecord.Kind = .lastResort) throws -> KyberPreKeyRecord {
        let random = SeededRandom(seed: 15)
        let identity = try IdentityKeyPair.generate(using: random)
        return try KyberPreKeyRecord.generate(id: 9, kind: kind, timestamp: 0x0102_0304_0506_0708, signedBy: identity, using: random)
    }

    @Test func exactBytesAndRoundTrip() throws {
        let r = try Self.record()
        let bytes = KyberPreKeyRecordCoding.encode(r)
        #expect(bytes.count == 137)
        #expect(bytes[0] == 2)
        #expect(Array(bytes[1..<9]) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(Array(bytes[9..<73]) == r.keyPair.seed.withUnsafeBytes { Array($0) })
        #expect(Array(bytes[73...]) == r.signature)
        let back = try KyberPreKeyRecordCoding.decode(id: 9, bytes)
        #expect(back.id == 9 && back.kind == .lastResort && back.timestamp == r.timestamp && back.signature == r.signature)
        #expect(back.keyPair.publicKey == r.keyPair.publicKey)
        #expect(KyberPreKeyRecordCoding.encode(try Self.record(.oneTime))[0] == 1)
    }

    @Test func garbageIsATypedError() throws {
        let good = KyberPreKeyRecordCoding.encode(try Self.record())
        #expect(throws: KyberPreKeyRecordCoding.DecodingError.wrongLength(0)) { try KyberPreKeyRecordCoding.decode(id: 1, []) }
        #expect(throws: KyberPreKeyRecordCoding.DecodingError.wrongLength(136)) { try KyberPreKeyRecordCoding.decode(id: 1, good.dropLast()) }
        #expect(throws: KyberPreKeyRecordCoding.DecodingError.wrongLength(138)) { try KyberPreKeyRecordCoding.decode(id: 1, good + [0]) }
        for kind: UInt8 in [0, 3, 0xFF] {
            var bad = good
            bad[0] = kind
            #expect(throws: KyberPreKeyRecordCoding.DecodingError.unknownKind(kind)) { try KyberPreKeyRecordCoding.decode(id: 1, bad) }
        }
        // Random bytes of every length up to 300: a record or a typed error, never a crash; a
        // 137-byte string with a known kind is a record (any 64 bytes are a seed).
        let random = SeededRandom(seed: 16)
        for n in 0...300 {
            let bytes = try random.secureBytes(count: n).withUnsafeBytes { Array($0) }
            do {
                let r = try KyberPreKeyRecordCoding.decode(id: 1, bytes)
                #expect(n == 137 && KyberPreKeyRecordCoding.encode(r) == bytes)
            } catch {
                #expect(n != 137 || !(1...2).contains(bytes[0]))
            }
        }
    }
}
