import Foundation
import HushClient

/// What `hush chat` knows about the other party's presence.
public enum PeerStatus: Sendable, Equatable {
    /// Nothing heard yet.
    case unknown
    case online
    /// Offline since (Unix ms).
    case lastSeen(UInt64)
    /// Their privacy setting hides it.
    case hidden
}

/// The relay connection as `hush chat` shows it.
public enum LinkStatus: Sendable, Equatable {
    case connecting
    /// Logged in, receiving what was queued.
    case syncing
    case online
    /// Lost; retrying in `seconds`.
    case retrying(seconds: Double)
    /// The relay refused this device (its reason).
    case failed(String)
    case offline
}

/// The state of the chat screen and its rendering: a pure value, so that what a person sees is
/// unit-tested (and asserted under tmux).
///
/// Layout, `height` lines of at most `width` columns:
/// ```
/// hush · alice ⇄ bob · relay online          ← who, and the relay connection
/// bob: online                                ← presence, or "bob: typing…"
/// ─────────────
/// 12:03 bob: hi                              ← the last messages that fit, oldest first
/// 12:04 you: hello ✓✓
/// ─────────────                              ← or a notice (identity change, errors)
/// > draft text                               ← the input line
/// ```
public struct ChatScreen: Sendable, Equatable {
    public var me: String
    /// The contact, or the group's name in a group chat.
    public var peer: String
    /// A group chat's members (nil in a 1:1 chat): shown instead of presence, and each incoming
    /// message is labelled with its sender.
    public var groupMembers: [String]?
    /// Shown in sequence order.
    public private(set) var messages: [StoredMessage] = []
    public var peerStatus: PeerStatus = .unknown
    /// The peer's typing indicator expires at this time (Unix ms); nil when not typing.
    public var peerTypingUntil: UInt64?
    public var connection: LinkStatus = .connecting
    /// One line above the input (an identity change, a failed send, a message in another chat).
    public var notice: String?
    /// What is being typed.
    public var input: String = ""
    /// Messages kept (older ones scroll away).
    public static let maxMessages = 500

    public init(me: String, peer: String) {
        self.me = me
        self.peer = peer
    }

    /// Adds `message` or replaces the one with its id (keeping sequence order).
    public mutating func upsert(_ message: StoredMessage) {
        if let i = messages.firstIndex(where: { $0.id == message.id }) {
            var m = message
            m.state = max(m.state, messages[i].state)
            messages[i] = m
            return
        }
        let i = messages.lastIndex(where: { $0.sequence <= message.sequence }).map { $0 + 1 } ?? 0
        messages.insert(message, at: message.sequence == 0 ? messages.count : i)
        if messages.count > Self.maxMessages { messages.removeFirst(messages.count - Self.maxMessages) }
    }

    /// Advances the ticks of message `id` (never back). Returns whether anything changed.
    @discardableResult
    public mutating func advance(_ id: MessageID, to state: TickState) -> Bool {
        guard let i = messages.firstIndex(where: { $0.id == id }), messages[i].state < state else { return false }
        messages[i].state = state
        return true
    }

    /// Whether the peer's typing indicator is showing at `now`.
    public func peerIsTyping(now: UInt64) -> Bool { (peerTypingUntil ?? 0) > now }

    /// The header's relay part.
    func connectionText() -> String {
        switch connection {
        case .connecting: "relay connecting…"
        case .syncing: "relay syncing…"
        case .online: "relay online"
        case .retrying(let s): "relay offline, retrying in " + String(format: "%.1f", s) + " s"
        case .failed(let why): "relay refused: \(why)"
        case .offline: "relay offline"
        }
    }

    /// The presence line.
    func presenceText(now: UInt64, timeZone: TimeZone) -> String {
        if let members = groupMembers { return "members: " + members.joined(separator: ", ") }
        if peerIsTyping(now: now) { return "\(peer): typing…" }
        switch peerStatus {
        case .unknown: return "\(peer): last seen unknown"
        case .online: return "\(peer): online"
        case .lastSeen(let t): return "\(peer): last seen " + ClockText.lastSeen(t, now: now, timeZone: timeZone)
        case .hidden: return "\(peer): last seen hidden"
        }
    }

    /// Exactly `height` lines (at least 5) for a `width`-column terminal, without line ends.
    public func render(width: Int, height: Int, style: TerminalStyle, timeZone: TimeZone, now: UInt64) -> [String] {
        let width = max(20, width), height = max(5, height)
        let rule = String(repeating: "─", count: width)
        var header = "hush · \(me) ⇄ \(peer) · " + connectionText()
        if header.count > width { header = String(header.prefix(width)) }
        var lines = [style == .ansi ? ANSI.bold + header + ANSI.reset : header,
                     String(presenceText(now: now, timeZone: timeZone).prefix(width)), rule]
        let room = height - 5
        var body: [String] = []
        for m in messages.reversed() where body.count < room {
            let rendered = MessageLine.render(m, peerLabel: groupMembers == nil ? peer : nil, style: style, timeZone: timeZone, width: width)
            body.insert(contentsOf: rendered, at: 0)
        }
        if body.count > room { body.removeFirst(body.count - room) }
        lines += Array(repeating: "", count: room - body.count) + body
        lines.append(notice.map { String($0.prefix(width)) } ?? rule)
        // The input line shows the end of a long draft.
        let prompt = "> "
        lines.append(prompt + String(input.suffix(width - prompt.count - 1)))
        return lines
    }

    /// The bytes that draw the screen: cursor home, each line cleared to its end, the cursor
    /// left after the draft.
    public func frame(width: Int, height: Int, style: TerminalStyle, timeZone: TimeZone, now: UInt64) -> String {
        let lines = render(width: width, height: height, style: style, timeZone: timeZone, now: now)
        return ANSI.home + lines.map { $0 + ANSI.clearLine }.joined(separator: "\r\n") + ANSI.clearBelow
    }
}
