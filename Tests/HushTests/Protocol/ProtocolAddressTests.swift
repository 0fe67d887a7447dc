import Foundation
import Hush
import Testing

/// `ProtocolAddress` caches its name's hash: equality, hashing and Codable must behave exactly as
/// for a plain (name, deviceID) value.
@Suite struct ProtocolAddressTests {
    @Test func equalityAndHashingFollowNameAndDevice() {
        let a = ProtocolAddress(name: "alice", deviceID: 1)
        let same = ProtocolAddress(name: String("alice".reversed().reversed()), deviceID: 1)
        #expect(a == same)
        #expect(a.hashValue == same.hashValue)
        #expect(a != ProtocolAddress(name: "alice", deviceID: 2))
        #expect(a != ProtocolAddress(name: "alicf", deviceID: 1))
        // Canonically equivalent strings are equal Swift strings, and equal addresses.
        #expect(ProtocolAddress(name: "caf\u{E9}", deviceID: 1) == ProtocolAddress(name: "cafe\u{301}", deviceID: 1))
        #expect(ProtocolAddress(name: "caf\u{E9}", deviceID: 1).hashValue == ProtocolAddress(name: "cafe\u{301}", deviceID: 1).hashValue)
        var set: Set<ProtocolAddress> = [a, same, ProtocolAddress(name: "bob", deviceID: 1)]
        #expect(set.count == 2)
        set.remove(same)
        #expect(set == [ProtocolAddress(name: "bob", deviceID: 1)])
        #expect(a.description == "alice.1")
    }

    @Test func codableShapeIsNameAndDeviceOnly() throws {
        let a = ProtocolAddress(name: "alice", deviceID: 7)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = try encoder.encode(a)
        #expect(String(decoding: json, as: UTF8.self) == #"{"deviceID":7,"name":"alice"}"#)
        let decoded = try JSONDecoder().decode(ProtocolAddress.self, from: json)
        #expect(decoded == a)
        #expect(decoded.hashValue == a.hashValue)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ProtocolAddress.self, from: Data(#"{"name":"alice"}"#.utf8))
        }
    }
}
