import Foundation

/// What the plaintext of a message between two HushClient devices carries (`Docs/client.md`
/// §Content). The first byte is the content type; the relay never sees it (it is inside the
/// session encryption and the sealed envelope).
///
/// ```
/// 0x01 text               varint(message id) || varint(sent at, Unix ms) || UTF-8 text
/// 0x02 delivery receipt   varint(n) || n × varint(message id)        1 ≤ n ≤ 256
/// 0x03 read receipt       varint(n) || n × varint(message id)        1 ≤ n ≤ 256
/// 0x04 typing             state (0x00 stopped, 0x01 started) || varint(sent at, Unix ms)
/// 0x05 media              varint(message id) || varint(sent at, Unix ms) || MediaPointer (Docs/spec/media.md §3)
/// 0x06 sync transcript    varint(len(destination)) || destination (UTF-8, 1–64 bytes) || content (a 0x01 text or 0x05 media, as sent)
/// 0x07 read sync          varint(len(conversation)) || conversation (UTF-8, 1–64 bytes) || varint(n)
///                         || n × (varint(len(account)) || account (1–32) || varint(device) || varint(m) || m × varint(message id))
/// 0x08 device hello       (nothing more) a device linked to the account greets its other devices (§6.7)
/// 0x10 group state        GroupState (Docs/spec/client.md §6.2)
/// 0x11 sender key         group_id (16) || SenderKeyDistributionMessage (the rest; §6.5)
/// 0x12 group leave        group_id (16)   (the sender leaves the group, §6.4)
/// 0x30 session reset      varint(sent at, Unix ms)   (a restored device's first message, Docs/spec/backup.md §6)
/// 0x40 access key         16 bytes: the sender's sealed-sender access key (Docs/spec/relay.md §20.1)
/// ```
/// Varints are unsigned LEB128, at most 10 bytes, canonical (no trailing 0x80 groups).
/// Message ids are the sender's client message ids (``MessageID/clientMessageID``); a receipt
/// names messages of the device it is sent to.
public enum MessageContent: Sendable, Equatable {
    /// A text message.
    case text(id: UInt64, sentAt: UInt64, body: String)
    /// The receiving device stored these messages.
    case delivered([UInt64])
    /// The user read these messages.
    case read([UInt64])
    /// Typing started (true) or stopped (false) at `sentAt`.
    case typing(Bool, sentAt: UInt64)
    /// A file: the pointer to its encrypted blob on the relay (Docs/spec/media.md).
    case media(id: UInt64, sentAt: UInt64, pointer: MediaPointer)
    /// A message this account's sending device sent to `destination` (a conversation), copied to
    /// the account's other devices (Docs/client.md §Several devices): `message` is the `.text`
    /// or `.media` content exactly as it went to the destination, its id the sending device's.
    indirect case syncTranscript(destination: String, message: MessageContent)
    /// This account's user read these incoming messages of `conversation` on the sending device
    /// (another device of this account; Docs/spec/client.md §3b): ascending by (account bytes,
    /// device, id), no repeats, 1–256 of them (``readSyncs(conversation:messages:)`` builds them).
    case readSync(conversation: String, messages: [MessageID])
    /// A device linked to this account greets the account's other devices, which answer with
    /// the account's groups (Docs/spec/client.md §6.7; nothing is shown).
    case deviceHello
    /// The sender was restored from a backup and starts a new session (the session message
    /// carrying this is a prekey message; nothing is shown).
    case sessionReset(sentAt: UInt64)
    /// The sender's sealed-sender access key: with it, the recipient may send the sender sealed
    /// messages (Docs/spec/relay.md §20.1; nothing is shown).
    case accessKey([UInt8])
    /// A group's state from one of its admins (Docs/spec/client.md §6.2; nothing is shown).
    case groupState(GroupState)
    /// The sender's sender key for a group: its `SenderKeyDistributionMessage` bytes (§6.5;
    /// they hold a chain key, so they travel only inside a pairwise session).
    case senderKey(group: GroupID, distribution: [UInt8])
    /// The sender leaves the group (§6.4).
    case groupLeave(GroupID)

    /// Content type bytes.
    public enum Kind: UInt8, Sendable {
        case text = 0x01, delivered = 0x02, read = 0x03, typing = 0x04, media = 0x05, syncTranscript = 0x06, readSync = 0x07, deviceHello = 0x08
        case groupState = 0x10, senderKey = 0x11, groupLeave = 0x12
        case sessionReset = 0x30
        case accessKey = 0x40
    }

    /// Bytes of an access key (content 0x40).
    public static let accessKeyBytes = 16

    /// Ids in one receipt.
    public static let maxReceiptIDs = 256
    /// UTF-8 bytes of a sync transcript's destination.
    public static let maxDestinationBytes = 64
    /// UTF-8 bytes of an account name inside a read sync (relay spec §5: at most 32).
    public static let maxAccountBytes = 32
    /// UTF-8 bytes of a text (the relay's 64,000-byte payload limit leaves room for the envelope).
    public static let maxTextBytes = 60_000

    /// Why bytes are not content.
    public enum DecodeError: Error, Equatable, Sendable {
        case empty
        case unknownType(UInt8)
        case truncated
        case badVarint
        case badCount(Int)
        case notUTF8
        case trailingBytes
        case badTypingState(UInt8)
        case badMediaPointer(MediaPointer.DecodeError)
        case badGroupState(GroupState.DecodeError)
        /// Read sync entries, or the ids of one entry, not strictly ascending.
        case notAscending
    }

    /// The read syncs (content 0x07) for `messages` of `conversation`: sorted, without repeats,
    /// at most ``maxReceiptIDs`` ids each. Empty for no messages.
    public static func readSyncs(conversation: String, messages: [MessageID]) -> [MessageContent] {
        let sorted = Self.canonicalOrder(messages)
        return stride(from: 0, to: sorted.count, by: maxReceiptIDs).map {
            .readSync(conversation: conversation, messages: Array(sorted[$0..<min(sorted.count, $0 + maxReceiptIDs)]))
        }
    }

    /// Ascending by (account's UTF-8 bytes, device, id), repeats removed. Accounts compare by
    /// their bytes throughout (String's `==` would merge canonically equivalent spellings).
    static func canonicalOrder(_ messages: [MessageID]) -> [MessageID] {
        let keyed = messages.map { (account: Array($0.account.utf8), id: $0) }.sorted { a, b in
            if a.account != b.account { return a.account.lexicographicallyPrecedes(b.account) }
            return (a.id.device, a.id.clientMessageID) < (b.id.device, b.id.clientMessageID)
        }
        var out: [(account: [UInt8], id: MessageID)] = []
        for m in keyed {
            if let last = out.last, last.account == m.account, last.id.device == m.id.device,
               last.id.clientMessageID == m.id.clientMessageID { continue }
            out.append(m)
        }
        return out.map(\.id)
    }

    /// The encoding.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        switch self {
        case .text(let id, let sentAt, let body):
            out.append(Kind.text.rawValue)
            Varint.append(id, to: &out)
            Varint.append(sentAt, to: &out)
            out += Array(body.utf8)
        case .delivered(let ids), .read(let ids):
            out.append(self.kind.rawValue)
            Varint.append(UInt64(ids.count), to: &out)
            for id in ids { Varint.append(id, to: &out) }
        case .typing(let on, let sentAt):
            out.append(Kind.typing.rawValue)
            out.append(on ? 1 : 0)
            Varint.append(sentAt, to: &out)
        case .media(let id, let sentAt, let pointer):
            out.append(Kind.media.rawValue)
            Varint.append(id, to: &out)
            Varint.append(sentAt, to: &out)
            out += pointer.encoded
        case .syncTranscript(let destination, let message):
            out.append(Kind.syncTranscript.rawValue)
            Varint.append(UInt64(destination.utf8.count), to: &out)
            out += Array(destination.utf8)
            out += message.encoded
        case .readSync(let conversation, let messages):
            out.append(Kind.readSync.rawValue)
            Varint.append(UInt64(conversation.utf8.count), to: &out)
            out += Array(conversation.utf8)
            // One entry per sending device, in canonical order.
            var entries: [(account: [UInt8], device: UInt32, ids: [UInt64])] = []
            for m in Self.canonicalOrder(messages) {
                let account = Array(m.account.utf8)
                if let last = entries.last, last.account == account, last.device == m.device {
                    entries[entries.count - 1].ids.append(m.clientMessageID)
                } else {
                    entries.append((account, m.device, [m.clientMessageID]))
                }
            }
            Varint.append(UInt64(entries.count), to: &out)
            for e in entries {
                Varint.append(UInt64(e.account.count), to: &out)
                out += e.account
                Varint.append(UInt64(e.device), to: &out)
                Varint.append(UInt64(e.ids.count), to: &out)
                for id in e.ids { Varint.append(id, to: &out) }
            }
        case .deviceHello:
            out.append(Kind.deviceHello.rawValue)
        case .sessionReset(let sentAt):
            out.append(Kind.sessionReset.rawValue)
            Varint.append(sentAt, to: &out)
        case .accessKey(let key):
            out.append(Kind.accessKey.rawValue)
            out += key
        case .groupState(let state):
            out.append(Kind.groupState.rawValue)
            out += state.encoded
        case .senderKey(let group, let distribution):
            out.append(Kind.senderKey.rawValue)
            out += group.bytes
            out += distribution
        case .groupLeave(let group):
            out.append(Kind.groupLeave.rawValue)
            out += group.bytes
        }
        return out
    }

    /// The message id of a text or media message (nil for other content).
    public var messageID: UInt64? {
        switch self {
        case .text(let id, _, _), .media(let id, _, _): id
        default: nil
        }
    }

    /// The type.
    public var kind: Kind {
        switch self {
        case .text: .text
        case .delivered: .delivered
        case .read: .read
        case .typing: .typing
        case .media: .media
        case .syncTranscript: .syncTranscript
        case .readSync: .readSync
        case .deviceHello: .deviceHello
        case .sessionReset: .sessionReset
        case .accessKey: .accessKey
        case .groupState: .groupState
        case .senderKey: .senderKey
        case .groupLeave: .groupLeave
        }
    }

    /// Decodes `bytes`; any input yields content or a ``DecodeError``.
    public init(decoding bytes: [UInt8]) throws(DecodeError) {
        guard let first = bytes.first else { throw .empty }
        guard let kind = Kind(rawValue: first) else { throw .unknownType(first) }
        var r = Varint.Reader(bytes: bytes, offset: 1)
        switch kind {
        case .text:
            let id = try r.read(), sentAt = try r.read()
            guard let text = String(validating: bytes[r.offset...], as: UTF8.self) else { throw .notUTF8 }
            guard bytes.count - r.offset <= Self.maxTextBytes else { throw .badCount(bytes.count - r.offset) }
            self = .text(id: id, sentAt: sentAt, body: text)
            return
        case .delivered, .read:
            let n = try r.read()
            guard (1...UInt64(Self.maxReceiptIDs)).contains(n) else { throw .badCount(Int(clamping: n)) }
            var ids: [UInt64] = []
            for _ in 0..<n { ids.append(try r.read()) }
            self = kind == .delivered ? .delivered(ids) : .read(ids)
        case .typing:
            guard r.offset < bytes.count else { throw .truncated }
            let state = bytes[r.offset]
            r.offset += 1
            guard state <= 1 else { throw .badTypingState(state) }
            self = .typing(state == 1, sentAt: try r.read())
        case .media:
            let id = try r.read(), sentAt = try r.read()
            let pointer: MediaPointer
            do { pointer = try MediaPointer(decoding: Array(bytes[r.offset...])) } catch { throw .badMediaPointer(error) }
            self = .media(id: id, sentAt: sentAt, pointer: pointer)
            return
        case .syncTranscript:
            let length = try r.read()
            guard (1...UInt64(Self.maxDestinationBytes)).contains(length) else { throw .badCount(Int(clamping: length)) }
            guard UInt64(bytes.count - r.offset) >= length else { throw .truncated }
            let end = r.offset + Int(length)
            guard let destination = String(validating: bytes[r.offset..<end], as: UTF8.self) else { throw .notUTF8 }
            let rest = Array(bytes[end...])
            // Only a text or a media message is copied (anything else is not a sent message).
            guard let inner = rest.first else { throw .truncated }
            guard inner == Kind.text.rawValue || inner == Kind.media.rawValue else { throw .unknownType(inner) }
            self = .syncTranscript(destination: destination, message: try MessageContent(decoding: rest))
            return
        case .readSync:
            let conversation = try r.string(maxBytes: Self.maxDestinationBytes)
            let n = try r.read()
            guard (1...UInt64(Self.maxReceiptIDs)).contains(n) else { throw .badCount(Int(clamping: n)) }
            var messages: [MessageID] = []
            var previous: (account: [UInt8], device: UInt32)?
            for _ in 0..<n {
                let account = try r.string(maxBytes: Self.maxAccountBytes)
                let device = try r.read()
                guard (1...UInt64(Int32.max)).contains(device) else { throw .badCount(Int(clamping: device)) }
                let m = try r.read()
                guard m >= 1, m <= UInt64(Self.maxReceiptIDs - messages.count) else { throw .badCount(Int(clamping: m)) }
                let key = (Array(account.utf8), UInt32(device))
                if let previous {
                    let before = previous.account.lexicographicallyPrecedes(key.0)
                        || (previous.account == key.0 && previous.device < key.1)
                    guard before else { throw .notAscending }
                }
                previous = key
                var last: UInt64?
                for _ in 0..<m {
                    let id = try r.read()
                    if let last, id <= last { throw .notAscending }
                    last = id
                    messages.append(MessageID(account: account, device: UInt32(device), clientMessageID: id))
                }
            }
            self = .readSync(conversation: conversation, messages: messages)
        case .deviceHello:
            self = .deviceHello
        case .sessionReset:
            self = .sessionReset(sentAt: try r.read())
        case .accessKey:
            guard bytes.count - r.offset >= Self.accessKeyBytes else { throw .truncated }
            self = .accessKey(Array(bytes[r.offset..<r.offset + Self.accessKeyBytes]))
            r.offset += Self.accessKeyBytes
        case .groupState:
            do { self = .groupState(try GroupState(decoding: Array(bytes[1...]))) } catch { throw .badGroupState(error) }
            return
        case .senderKey, .groupLeave:
            guard bytes.count - 1 >= GroupID.byteCount else { throw .truncated }
            let group = GroupID(bytes: bytes[1...GroupID.byteCount])!
            if kind == .groupLeave {
                self = .groupLeave(group)
                r.offset += GroupID.byteCount
            } else {
                // The distribution message is parsed when it is processed (SenderKeyDistributionMessage).
                guard bytes.count > 1 + GroupID.byteCount else { throw .truncated }
                self = .senderKey(group: group, distribution: Array(bytes[(1 + GroupID.byteCount)...]))
                return
            }
        }
        guard r.offset == bytes.count else { throw .trailingBytes }
    }
}

/// Unsigned LEB128.
enum Varint {
    static func append(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    struct Reader {
        let bytes: [UInt8]
        var offset: Int

        /// `varint(len) || len bytes of UTF-8`, 1 ≤ len ≤ `maxBytes` (`badCount`), the bytes
        /// present (`truncated`), valid UTF-8 (`notUTF8`).
        mutating func string(maxBytes: Int) throws(MessageContent.DecodeError) -> String {
            let length = try read()
            guard (1...UInt64(maxBytes)).contains(length) else { throw .badCount(Int(clamping: length)) }
            guard UInt64(bytes.count - offset) >= length else { throw .truncated }
            let end = offset + Int(length)
            guard let s = String(validating: bytes[offset..<end], as: UTF8.self) else { throw .notUTF8 }
            offset = end
            return s
        }

        mutating func read() throws(MessageContent.DecodeError) -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            for i in 0..<10 {
                guard offset < bytes.count else { throw .truncated }
                let b = bytes[offset]
                offset += 1
                if i == 9, b > 1 { throw .badVarint }
                value |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 {
                    if i > 0, b == 0 { throw .badVarint }  // non-canonical
                    return value
                }
                shift += 7
            }
            throw .badVarint
        }
    }
}
