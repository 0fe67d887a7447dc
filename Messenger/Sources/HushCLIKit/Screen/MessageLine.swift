import Foundation
import HushClient

/// How ticks and colours are drawn: ANSI (blue ✓✓ for read) or plain text (no escape codes;
/// read is spelled out).
public enum TerminalStyle: Sendable, Equatable {
    case ansi
    case plain

    /// ANSI when standard output is a terminal and `NO_COLOR` is unset (no-color.org).
    public static func detect(environment: [String: String] = ProcessInfo.processInfo.environment,
                              isTerminal: Bool = isatty(1) == 1) -> TerminalStyle {
        isTerminal && environment["NO_COLOR"] == nil && environment["TERM"] != "dumb" ? .ansi : .plain
    }
}

/// The escape sequences the screen uses (nothing else is emitted).
public enum ANSI {
    public static let blue = "\u{1B}[34m"
    public static let dim = "\u{1B}[2m"
    public static let bold = "\u{1B}[1m"
    public static let reset = "\u{1B}[0m"
    /// Cursor home.
    public static let home = "\u{1B}[H"
    /// Clear to the end of the line.
    public static let clearLine = "\u{1B}[K"
    /// Clear to the end of the screen.
    public static let clearBelow = "\u{1B}[J"
}

/// WhatsApp's ticks as text.
public enum TickMark {
    /// `pending` "…" (in the outbox), `sent` "✓" (the relay has it), `delivered` "✓✓" (the
    /// recipient's device has it), `read`: a blue "✓✓" in ANSI, "✓✓ read" in plain text.
    public static func mark(_ state: TickState, style: TerminalStyle) -> String {
        switch state {
        case .pending: "…"
        case .sent: "✓"
        case .delivered: "✓✓"
        case .read: style == .ansi ? ANSI.blue + "✓✓" + ANSI.reset : "✓✓ read"
        }
    }

    /// The columns the mark takes on screen.
    public static func width(_ state: TickState, style: TerminalStyle) -> Int {
        switch state {
        case .pending, .sent: 1
        case .delivered: 2
        case .read: style == .ansi ? 2 : 7
        }
    }
}

/// A clock time as the screen shows it.
public enum ClockText {
    /// `HH:MM` of `ms` (Unix milliseconds) in `timeZone`.
    public static func time(_ ms: UInt64, timeZone: TimeZone) -> String {
        let seconds = Int64(ms / 1_000)
        let offset = Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds))))
        let local = seconds + offset
        let minutes = ((local / 60) % 1_440 + 1_440) % 1_440
        return pad(minutes / 60) + ":" + pad(minutes % 60)
    }

    /// `HH:MM` when `ms` falls on the same local day as `now`, else `YYYY-MM-DD HH:MM`.
    public static func lastSeen(_ ms: UInt64, now: UInt64, timeZone: TimeZone) -> String {
        func day(_ t: UInt64) -> Int64 {
            let s = Int64(t / 1_000)
            let local = s + Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(s))))
            return local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        }
        if day(ms) == day(now) { return "today at " + time(ms, timeZone: timeZone) }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day], from: Date(timeIntervalSince1970: TimeInterval(ms / 1_000)))
        return "\(c.year ?? 0)-\(pad(Int64(c.month ?? 0)))-\(pad(Int64(c.day ?? 0))) " + time(ms, timeZone: timeZone)
    }

    static func pad(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
}

/// One message as the chat screen and `hush inbox` print it:
/// `HH:MM you: text ✓✓` for an outgoing message (with its ticks), `HH:MM bob: text` for an
/// incoming one. Long texts wrap under the text column.
public enum MessageLine {
    /// The message's lines for a screen `width` columns wide (at least one line).
    /// - Parameter peerLabel: the name shown for incoming messages (default: the sender's
    ///   account, which is the conversation's in a 1:1 chat).
    public static func render(_ message: StoredMessage, peerLabel: String? = nil, style: TerminalStyle,
                              timeZone: TimeZone, width: Int = .max) -> [String] {
        let outgoing = message.direction == .outgoing
        // Outgoing: when it was written here; incoming: when the relay accepted it (the
        // sender's clock when unknown).
        let time = ClockText.time(outgoing || message.serverTime == 0 ? message.sentAt : message.serverTime, timeZone: timeZone)
        let who = outgoing ? "you" : (peerLabel ?? message.id.account)
        let prefix = "\(time) \(who): "
        let indent = String(repeating: " ", count: prefix.count)
        // Control characters would move the cursor or inject escape codes: shown as U+FFFD.
        let text = String(String.UnicodeScalarView(message.body.unicodeScalars.map {
            $0.properties.generalCategory == .control ? "\u{FFFD}" : $0
        }))
        let tick = outgoing ? " " + TickMark.mark(message.state, style: style) : ""
        let tickWidth = outgoing ? 1 + TickMark.width(message.state, style: style) : 0
        let room = max(8, width - prefix.count)
        var chunks: [String] = []
        var rest = Substring(text)
        repeat {
            var take = rest.prefix(room)
            if take.count < rest.count, let space = take.lastIndex(of: " "), space > take.startIndex {
                take = rest[rest.startIndex..<space]
                rest = rest[rest.index(after: space)...]
            } else {
                rest = rest.dropFirst(take.count)
            }
            chunks.append(String(take))
        } while !rest.isEmpty
        var lines = chunks.enumerated().map { ($0.offset == 0 ? prefix : indent) + $0.element }
        if let last = lines.last, last.count + tickWidth > width, width != .max {
            lines.append(indent + String(tick.dropFirst()))
        } else {
            lines[lines.count - 1] += tick
        }
        return lines
    }
}
