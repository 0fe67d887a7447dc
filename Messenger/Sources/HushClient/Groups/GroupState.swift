import Foundation
import Hush
import HushTransport

/// A group's identifier: 16 random bytes drawn by its creator (`Docs/spec/client.md` §6.1).
/// Its conversation in the store is `"#"` followed by the 32 lowercase hex digits, which no
/// account name can be (account names have no `#`, relay spec §5).
public struct GroupID: Hashable, Sendable, CustomStringConvertible {
    /// Bytes of an id.
    public static let byteCount = 16
    /// The 16 bytes.
    public let bytes: [UInt8]

    /// An id from its 16 bytes (nil for any other length).
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = Array(bytes)
    }

    /// The id of a group conversation (`"#" + 32 lowercase hex digits`), nil for any other string.
    public init?(conversation: String) {
        let utf8 = Array(conversation.utf8)
        guard utf8.count == 1 + 2 * Self.byteCount, utf8[0] == UInt8(ascii: "#") else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(Self.byteCount)
        for i in stride(from: 1, to: utf8.count, by: 2) {
            guard let hi = Self.nibble(utf8[i]), let lo = Self.nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        bytes = out
    }

    /// A fresh random id.
    public static func random(using random: some RandomSource) throws(CryptoError) -> GroupID {
        var b = [UInt8](repeating: 0, count: byteCount)
        let filled: Result<Void, CryptoError> = b.withUnsafeMutableBytes { p in Result { () throws(CryptoError) in try random.fill(p) } }
        try filled.get()
        return GroupID(bytes: b)!
    }

    /// 32 lowercase hex digits.
    public var hex: String { bytes.map { String(format: "%02x", $0) }.joined() }
    /// The group's conversation name in the store and in events.
    public var conversation: String { "#" + hex }
    public var description: String { conversation }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}

/// A group's membership as its admins set it (`Docs/spec/client.md` §6.2): a revision, a name,
/// the members and which of them are admins. An admin's device sends the whole state, inside
/// the pairwise sessions, to every member (and to members it removes); a receiver accepts it only
/// from an admin of the state it holds (§6.3), so no member can forge an admin's change.
///
/// ```
/// state  = 0x01 || group_id (16) || varint(revision) || varint(len(name)) || name (UTF-8)
///          || varint(n) || n × (varint(len(account)) || account || role)
/// role   = 0x00 member | 0x01 admin
/// ```
/// Members are distinct valid account names in strictly ascending byte order, 1 ≤ n ≤ 256,
/// at least one admin; the name is 0–100 bytes. Any input yields a state or a ``DecodeError``.
public struct GroupState: Sendable, Equatable {
    /// The encoding's version byte.
    public static let version: UInt8 = 0x01
    /// Most members of a group (§6.2).
    public static let maxMembers = 256
    /// Most UTF-8 bytes of a group name.
    public static let maxNameBytes = 100

    /// The group.
    public var id: GroupID
    /// Increases with every admin change (the creator's first state is 1).
    public var revision: UInt64
    /// The group's name.
    public var name: String
    /// The members, ascending.
    public private(set) var members: [String]
    /// The admins, a subset of ``members``, ascending.
    public private(set) var admins: [String]

    /// Why bytes are not a group state.
    public enum DecodeError: Error, Equatable, Sendable {
        case empty
        case unsupportedVersion(UInt8)
        case truncated
        case badVarint
        case badName
        case badMemberCount(UInt64)
        case badAccount
        case notAscending
        case badRole(UInt8)
        case noAdmin
        case trailingBytes
    }

    /// A state; `members` and `admins` are sorted and deduplicated, admins not among the members
    /// are dropped. Nil when the result breaks the rules above (no member, more than 256, an
    /// invalid account name, no admin, a name over 100 bytes).
    public init?(id: GroupID, revision: UInt64, name: String, members: some Sequence<String>, admins: some Sequence<String>) {
        let m = Array(Set(members)).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let set = Set(m)
        let a = Array(Set(admins).filter { set.contains($0) }).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        guard !m.isEmpty, m.count <= Self.maxMembers, m.allSatisfy(DeviceBinding.isValidAccountName), !a.isEmpty,
              name.utf8.count <= Self.maxNameBytes else { return nil }
        self.id = id
        self.revision = revision
        self.name = name
        self.members = m
        self.admins = a
    }

    /// Whether `account` is a member.
    public func isMember(_ account: String) -> Bool { members.contains(account) }
    /// Whether `account` is an admin.
    public func isAdmin(_ account: String) -> Bool { admins.contains(account) }

    /// The canonical encoding (above).
    public var encoded: [UInt8] {
        var out: [UInt8] = [Self.version]
        out += id.bytes
        Varint.append(revision, to: &out)
        Varint.append(UInt64(name.utf8.count), to: &out)
        out += Array(name.utf8)
        Varint.append(UInt64(members.count), to: &out)
        for m in members {
            Varint.append(UInt64(m.utf8.count), to: &out)
            out += Array(m.utf8)
            out.append(isAdmin(m) ? 1 : 0)
        }
        return out
    }

    /// Decodes `bytes`, checking every rule of the encoding.
    public init(decoding bytes: [UInt8]) throws(DecodeError) {
        guard let first = bytes.first else { throw .empty }
        guard first == Self.version else { throw .unsupportedVersion(first) }
        guard bytes.count >= 1 + GroupID.byteCount else { throw .truncated }
        let id = GroupID(bytes: bytes[1..<1 + GroupID.byteCount])!
        var r = Varint.Reader(bytes: bytes, offset: 1 + GroupID.byteCount)
        func read() throws(DecodeError) -> UInt64 {
            do { return try r.read() } catch { throw error == .truncated ? .truncated : .badVarint }
        }
        func take(_ n: UInt64) throws(DecodeError) -> ArraySlice<UInt8> {
            guard n <= UInt64(bytes.count - r.offset) else { throw .truncated }
            let s = bytes[r.offset..<r.offset + Int(n)]
            r.offset += Int(n)
            return s
        }
        let revision = try read()
        let nameLength = try read()
        guard nameLength <= UInt64(Self.maxNameBytes) else { throw .badName }
        guard let name = String(validating: try take(nameLength), as: UTF8.self) else { throw .badName }
        let n = try read()
        guard (1...UInt64(Self.maxMembers)).contains(n) else { throw .badMemberCount(n) }
        var members: [String] = [], admins: [String] = []
        var previous: [UInt8]?
        for _ in 0..<n {
            let length = try read()
            guard length <= UInt64(RelayProtocol.Limits.accountNameLength.upperBound) else { throw .badAccount }
            let raw = Array(try take(length))
            guard let account = String(validating: raw, as: UTF8.self), DeviceBinding.isValidAccountName(account) else { throw .badAccount }
            if let previous, !previous.lexicographicallyPrecedes(raw) { throw .notAscending }
            previous = raw
            let role = try take(1).first!
            guard role <= 1 else { throw .badRole(role) }
            members.append(account)
            if role == 1 { admins.append(account) }
        }
        guard !admins.isEmpty else { throw .noAdmin }
        guard r.offset == bytes.count else { throw .trailingBytes }
        self.id = id
        self.revision = revision
        self.name = name
        self.members = members
        self.admins = admins
    }

    /// Whether a receiver holding `self` takes `other` from an admin (§6.3): a higher revision,
    /// or the same revision with a greater encoding (so that concurrent changes of two admins
    /// end in the same state on every member).
    func isSuperseded(by other: GroupState) -> Bool {
        other.revision > revision || (other.revision == revision && encoded.lexicographicallyPrecedes(other.encoded))
    }

    /// The state a receiver `receiver` holds after an admin change `incoming` from `sender`
    /// (§6.3), nil when it ignores it (`held` stays).
    public static func accepting(_ incoming: GroupState, from sender: String, held: GroupState?, receiver: String) -> GroupState? {
        if let held {
            guard held.id == incoming.id, held.isAdmin(sender), held.isSuperseded(by: incoming) else { return nil }
            return incoming
        }
        // An invitation: from an admin of the new state, which must name the receiver.
        guard incoming.isAdmin(sender), incoming.isMember(receiver) else { return nil }
        return incoming
    }

    /// The state a receiver `receiver` holds after another device of its own account sent it
    /// `incoming` (§6.7): that device is the user, so any state that supersedes the held one
    /// (revision, then byte order), or, holding none, one that names `receiver` (a device linked
    /// later learning the account's groups). Nil when it ignores it.
    public static func acceptingFromOwnDevice(_ incoming: GroupState, held: GroupState?, receiver: String) -> GroupState? {
        if let held {
            guard held.id == incoming.id, held.isSuperseded(by: incoming) else { return nil }
            return incoming
        }
        return incoming.isMember(receiver) ? incoming : nil
    }

    /// The state a receiver `receiver` holds after `sender` announced that it leaves (§6.4),
    /// nil when it ignores the announcement (`held` stays).
    public static func leaving(_ sender: String, held: GroupState, receiver: String) -> GroupState? {
        guard held.isMember(sender), sender != receiver else { return nil }
        return held.without(sender)
    }

    /// The state without `account` (a member who left, §6.4): if no admin remains, the first
    /// remaining member (in byte order) becomes one, as every member computes alike. Nil if no
    /// member would remain.
    func without(_ account: String) -> GroupState? {
        let rest = members.filter { $0 != account }
        var keptAdmins = admins.filter { $0 != account }
        if keptAdmins.isEmpty, let first = rest.first { keptAdmins = [first] }
        return GroupState(id: id, revision: revision, name: name, members: rest, admins: keptAdmins)
    }
}

/// What a prepared group item in the outbox carries (`Docs/client.md` §Store): the recipients
/// in the multi-recipient envelope's header order, then the `0xE2` envelope itself.
///
/// ```
/// payload = 0x01 || varint(k) || k × (varint(len(account)) || account || varint(m) || m × varint(device))
///           || envelope (the rest)
/// ```
/// 1 ≤ k ≤ 256 accounts, each with 1–16 devices (relay spec §21). Any input yields a value or nil.
public struct GroupSendPayload: Equatable, Sendable {
    /// The recipients, in header order.
    public var recipients: [(account: String, devices: [UInt32])]
    /// The `0xE2` multi-recipient envelope (Docs/spec/envelope.md §6).
    public var envelope: [UInt8]

    public static func == (a: GroupSendPayload, b: GroupSendPayload) -> Bool {
        a.envelope == b.envelope && a.recipients.count == b.recipients.count
            && zip(a.recipients, b.recipients).allSatisfy { $0.account == $1.account && $0.devices == $1.devices }
    }

    /// The encoding (above).
    public var encoded: [UInt8] {
        var out: [UInt8] = [0x01]
        Varint.append(UInt64(recipients.count), to: &out)
        for r in recipients {
            Varint.append(UInt64(r.account.utf8.count), to: &out)
            out += Array(r.account.utf8)
            Varint.append(UInt64(r.devices.count), to: &out)
            for d in r.devices { Varint.append(UInt64(d), to: &out) }
        }
        return out + envelope
    }

    /// Every device, in header order.
    public var devices: [UInt32] { recipients.flatMap(\.devices) }

    /// A payload.
    public init(recipients: [(account: String, devices: [UInt32])], envelope: [UInt8]) {
        self.recipients = recipients
        self.envelope = envelope
    }

    /// Decodes the encoding; nil for anything else.
    public init?(decoding bytes: [UInt8]) {
        guard bytes.first == 0x01 else { return nil }
        var r = Varint.Reader(bytes: bytes, offset: 1)
        guard let k = try? r.read(), (1...256).contains(k) else { return nil }
        var recipients: [(account: String, devices: [UInt32])] = []
        for _ in 0..<k {
            guard let length = try? r.read(), length <= UInt64(RelayProtocol.Limits.accountNameLength.upperBound),
                  length <= UInt64(bytes.count - r.offset),
                  let account = String(validating: bytes[r.offset..<r.offset + Int(length)], as: UTF8.self) else { return nil }
            r.offset += Int(length)
            guard let m = try? r.read(), (1...16).contains(m) else { return nil }
            var devices: [UInt32] = []
            for _ in 0..<m {
                guard let d = try? r.read(), d <= UInt64(UInt32.max) else { return nil }
                devices.append(UInt32(d))
            }
            recipients.append((account, devices))
        }
        self.recipients = recipients
        envelope = Array(bytes[r.offset...])
    }
}
