import Foundation
import Hush
import Testing
@testable import HushClient

/// `TestVectors/client/group-state.json` (Docs/spec/client.md §6.2–§6.4, written by
/// `Tools/group-vectors/group_state_vectors.py` from the spec): HushClient decodes and encodes
/// every valid state to the same bytes and fields, refuses every invalid one with the named error,
/// and applies every acceptance case as listed.
@Suite struct GroupStateVectorTests {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../TestVectors/client/group-state.json").standardized

    struct Vectors: Decodable {
        struct Member: Decodable { let account: String; let admin: Bool }
        struct Valid: Decodable {
            let name: String, hex: String, group_id: String, revision: UInt64, group_name: String
            let members: [Member]
        }
        struct Invalid: Decodable { let name: String, hex: String, error: String }
        struct Accept: Decodable {
            let name: String, held: String?, receiver: String, sender: String
            let state: String?, leave: Bool?, result: String?
        }
        let format: String
        let valid: [Valid]
        let invalid: [Invalid]
        let accept: [Accept]
    }

    static func bytes(_ hex: String) -> [UInt8] { try! Hex.decode(hex) }

    static func name(_ e: GroupState.DecodeError) -> String {
        switch e {
        case .empty: "empty"
        case .unsupportedVersion: "unsupported_version"
        case .truncated: "truncated"
        case .badVarint: "bad_varint"
        case .badName: "bad_name"
        case .badMemberCount: "bad_member_count"
        case .badAccount: "bad_account"
        case .notAscending: "not_ascending"
        case .badRole: "bad_role"
        case .noAdmin: "no_admin"
        case .trailingBytes: "trailing_bytes"
        }
    }

    static func load() throws -> Vectors {
        let v = try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: file))
        #expect(v.format == "hush-group-state-vectors/1")
        return v
    }

    @Test func validStatesDecodeAndEncodeExactly() throws {
        let v = try Self.load()
        #expect(v.valid.count == 5)
        for c in v.valid {
            let s = try GroupState(decoding: Self.bytes(c.hex))
            #expect(s.id.hex == c.group_id && s.revision == c.revision && s.name == c.group_name, "\(c.name)")
            #expect(s.members == c.members.map(\.account), "\(c.name)")
            #expect(s.admins == c.members.filter(\.admin).map(\.account), "\(c.name)")
            #expect(s.encoded == Self.bytes(c.hex), "\(c.name)")
            let built = GroupState(id: s.id, revision: c.revision, name: c.group_name, members: c.members.map(\.account),
                                   admins: c.members.filter(\.admin).map(\.account))
            #expect(built?.encoded == Self.bytes(c.hex), "\(c.name)")
        }
    }

    @Test func invalidStatesAreTheNamedError() throws {
        let v = try Self.load()
        #expect(v.invalid.count == 33)
        for c in v.invalid {
            do {
                _ = try GroupState(decoding: Self.bytes(c.hex))
                Issue.record("\(c.name): decoded")
            } catch {
                #expect(Self.name(error) == c.error, "\(c.name)")
            }
        }
    }

    @Test func acceptanceAndLeaving() throws {
        let v = try Self.load()
        #expect(v.accept.count == 17)
        for c in v.accept {
            let held = try c.held.map { try GroupState(decoding: Self.bytes($0)) }
            let after: GroupState?
            if c.leave == true {
                after = held.flatMap { GroupState.leaving(c.sender, held: $0, receiver: c.receiver) } ?? held
            } else {
                let incoming = try GroupState(decoding: Self.bytes(try #require(c.state)))
                after = GroupState.accepting(incoming, from: c.sender, held: held, receiver: c.receiver) ?? held
            }
            #expect(after.map { Array($0.encoded) } == c.result.map(Self.bytes), "\(c.name)")
        }
    }
}
