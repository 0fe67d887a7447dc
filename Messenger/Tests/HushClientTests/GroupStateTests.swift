import Hush
import Testing
@testable import HushClient

@Suite struct GroupStateTests {
    let id = GroupID(bytes: Array(0..<16))!

    @Test func groupIDConversation() {
        #expect(id.conversation == "#000102030405060708090a0b0c0d0e0f")
        #expect(GroupID(conversation: id.conversation) == id)
        #expect(GroupID(conversation: "#000102030405060708090A0B0C0D0E0F") == nil)  // lowercase only
        #expect(GroupID(conversation: "alice") == nil)
        #expect(GroupID(conversation: "#00") == nil)
        #expect(GroupID(conversation: "x000102030405060708090a0b0c0d0e0f") == nil)
        #expect(GroupID(bytes: [1, 2, 3]) == nil)
    }

    @Test func exactBytes() throws {
        let state = try #require(GroupState(id: id, revision: 300, name: "hi", members: ["carol", "alice", "bob", "alice"], admins: ["alice", "dave"]))
        #expect(state.members == ["alice", "bob", "carol"])
        #expect(state.admins == ["alice"])  // dave is no member
        let expected: [UInt8] = [0x01] + Array(0..<16) + [0xAC, 0x02, 0x02, 0x68, 0x69, 0x03,
                                 0x05] + Array("alice".utf8) + [0x01,
                                 0x03] + Array("bob".utf8) + [0x00,
                                 0x05] + Array("carol".utf8) + [0x00]
        #expect(state.encoded == expected)
        #expect(try GroupState(decoding: expected) == state)
        #expect(MessageContent.groupState(state).encoded == [0x10] + expected)
        #expect(try MessageContent(decoding: [0x10] + expected) == .groupState(state))
        #expect(MessageContent.groupLeave(id).encoded == [0x12] + Array(0..<16))
        #expect(try MessageContent(decoding: [0x12] + Array(0..<16)) == .groupLeave(id))
        #expect(MessageContent.senderKey(group: id, distribution: [0x33, 1]).encoded == [0x11] + Array(0..<16) + [0x33, 1])
        #expect(try MessageContent(decoding: [0x11] + Array(0..<16) + [0x33]) == .senderKey(group: id, distribution: [0x33]))
    }

    @Test func invalidStatesAreRefused() {
        #expect(GroupState(id: id, revision: 1, name: "", members: [String](), admins: [String]()) == nil)
        #expect(GroupState(id: id, revision: 1, name: "", members: ["alice"], admins: [String]()) == nil)
        #expect(GroupState(id: id, revision: 1, name: "", members: ["Alice"], admins: ["Alice"]) == nil)
        #expect(GroupState(id: id, revision: 1, name: String(repeating: "n", count: 101), members: ["a"], admins: ["a"]) == nil)
        #expect(GroupState(id: id, revision: 1, name: "", members: (0...256).map { "m\($0)" }, admins: ["m1"]) == nil)
        #expect(GroupState(id: id, revision: 1, name: "", members: (0..<256).map { "m\($0)" }, admins: ["m1"]) != nil)
    }

    @Test func everyMalformedInputIsATypedError() {
        func error(_ bytes: [UInt8]) -> GroupState.DecodeError? {
            do { _ = try GroupState(decoding: bytes); return nil } catch { return error }
        }
        let head: [UInt8] = [0x01] + Array(0..<16) + [0x01, 0x00]  // revision 1, empty name
        func member(_ name: String, _ role: UInt8) -> [UInt8] { [UInt8(name.utf8.count)] + Array(name.utf8) + [role] }
        #expect(error([]) == .empty)
        #expect(error([0x02] + Array(0..<16)) == .unsupportedVersion(2))
        #expect(error([0x01, 0x00]) == .truncated)
        #expect(error([0x01] + Array(0..<16) + [0x80]) == .truncated)
        #expect(error([0x01] + Array(0..<16) + [0x80, 0x00]) == .badVarint)
        #expect(error([0x01] + Array(0..<16) + [0x01, 0x65]) == .badName)  // 101 bytes
        #expect(error([0x01] + Array(0..<16) + [0x01, 0x01, 0xFF, 0x01]) == .badName)  // not UTF-8
        #expect(error(head + [0x00]) == .badMemberCount(0))
        #expect(error(head + [0x81, 0x02]) == .badMemberCount(257))
        #expect(error(head + [0x01] + member("Bob", 1)) == .badAccount)
        #expect(error(head + [0x02] + member("bob", 1) + member("alice", 0)) == .notAscending)
        #expect(error(head + [0x02] + member("bob", 1) + member("bob", 0)) == .notAscending)
        #expect(error(head + [0x01] + member("bob", 2)) == .badRole(2))
        #expect(error(head + [0x01] + member("bob", 0)) == .noAdmin)
        #expect(error(head + [0x01] + member("bob", 1) + [0x00]) == .trailingBytes)
        #expect(error(head + [0x02] + member("bob", 1)) == .truncated)
        #expect(error(head + [0x01] + member("bob", 1)) == nil)
        #expect(throws: MessageContent.DecodeError.badGroupState(.noAdmin)) { try MessageContent(decoding: [0x10] + head + [0x01] + member("bob", 0)) }
        #expect(throws: MessageContent.DecodeError.truncated) { try MessageContent(decoding: [0x12] + Array(0..<15)) }
        #expect(throws: MessageContent.DecodeError.trailingBytes) { try MessageContent(decoding: [0x12] + Array(0..<17)) }
        #expect(throws: MessageContent.DecodeError.truncated) { try MessageContent(decoding: [0x11] + Array(0..<16)) }
    }

    @Test func supersedingAndLeaving() throws {
        let a = try #require(GroupState(id: id, revision: 2, name: "x", members: ["alice", "bob", "carol"], admins: ["bob"]))
        let b = try #require(GroupState(id: id, revision: 2, name: "y", members: ["alice", "bob"], admins: ["bob"]))
        let c = try #require(GroupState(id: id, revision: 3, name: "x", members: ["alice"], admins: ["alice"]))
        // Same revision: the greater encoding wins, on every member alike.
        #expect(a.isSuperseded(by: b) != b.isSuperseded(by: a))
        #expect(a.isSuperseded(by: c) && !c.isSuperseded(by: a))
        #expect(!a.isSuperseded(by: a))
        // The last admin leaves: the first remaining member becomes one.
        let left = try #require(a.without("bob"))
        #expect(left.members == ["alice", "carol"] && left.admins == ["alice"] && left.revision == 2)
        #expect(try #require(GroupState(id: id, revision: 1, name: "", members: ["bob"], admins: ["bob"])).without("bob") == nil)
    }

    @Test func sendPayloadRoundTrips() {
        let p = GroupSendPayload(recipients: [("bob", [1, 2]), ("carol", [300])], envelope: [0xE2, 0x03, 0xAA])
        #expect(p.encoded == [0x01, 0x02, 0x03] + Array("bob".utf8) + [0x02, 0x01, 0x02, 0x05] + Array("carol".utf8) + [0x01, 0xAC, 0x02, 0xE2, 0x03, 0xAA])
        #expect(GroupSendPayload(decoding: p.encoded) == p)
        #expect(p.devices == [1, 2, 300])
        #expect(GroupSendPayload(decoding: []) == nil)
        #expect(GroupSendPayload(decoding: [0x01, 0x00]) == nil)  // no recipient
        #expect(GroupSendPayload(decoding: [0x01, 0x01, 0x03] + Array("bob".utf8) + [0x00]) == nil)  // no device
        #expect(GroupSendPayload(decoding: [0x01, 0x01, 0x09] + Array("bob".utf8)) == nil)  // truncated name
        #expect(GroupSendPayload(decoding: [0x01, 0x01, 0x03] + Array("bob".utf8) + [0x01, 0x80, 0x80, 0x80, 0x80, 0x10]) == nil)  // > u32
    }

    @Test func recipientsAreCutIntoMultiSendsOf256Devices() {
        // 20 accounts × 16 devices = 320: 16 accounts (256 devices) in the first, 4 in the second.
        let many = (0..<20).map { (account: "m\($0)", devices: Array(UInt32(1)...16)) }
        let chunks = HushClient.chunks(many)
        #expect(chunks.map { $0.reduce(0) { $0 + $1.devices.count } } == [256, 64])
        #expect(chunks.flatMap { $0.map(\.account) } == many.map(\.account))
        let regrouped = HushClient.regroup([("a", 1), ("a", 2), ("b", 1), ("a", 3)][...])
        #expect(regrouped.map(\.account) == ["a", "b", "a"] && regrouped.map(\.devices) == [[1, 2], [1], [3]])
    }

    @Test func groupCiphertextIsKeptForResealing() throws {
        let inner = SessionCiphertext(contentType: .groupMessage, message: [9, 8], certificateExpiration: 258)
        #expect(inner.encoded == [0x01, 0x07, 0, 0, 0, 0, 0, 0, 1, 2, 9, 8])
        #expect(try SessionCiphertext(decoding: inner.encoded) == inner)
    }
}
