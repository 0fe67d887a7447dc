/// The chat's input line, fed the bytes of a terminal in raw mode (no echo, no line editing by
/// the terminal). A pure state machine: UTF-8 is assembled across reads, escape sequences
/// (arrow keys…) are skipped.
public struct InputEditor: Sendable, Equatable {
    /// What a key did.
    public enum Action: Sendable, Equatable {
        /// The draft changed (to this text).
        case edited(String)
        /// Enter on a non-empty draft: this line is to be sent (the draft is now empty).
        case submit(String)
        /// Ctrl-C, Ctrl-D on an empty draft: leave.
        case quit
    }

    public private(set) var text: String = ""
    /// A UTF-8 sequence not complete yet.
    private var partial: [UInt8] = []
    private var inEscape = false
    private var escapeBracket = false
    /// Longest draft (characters) kept; more is ignored.
    public static let maxCharacters = 4_000

    public init() {}

    /// Consumes `bytes`; returns what happened, in order (consecutive edits are one).
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Action] {
        var actions: [Action] = []
        func edited() {
            if case .edited? = actions.last { actions.removeLast() }
            actions.append(.edited(text))
        }
        for b in bytes {
            if inEscape {
                // ESC [ params final (0x40…0x7E), or ESC + one byte.
                if !escapeBracket && (b == 0x5B || b == 0x4F) { escapeBracket = true; continue }
                if !escapeBracket || (0x40...0x7E).contains(b) { inEscape = false; escapeBracket = false }
                continue
            }
            switch b {
            case 0x1B: inEscape = true; partial = []
            case 0x03: actions.append(.quit); return actions
            case 0x04:
                if text.isEmpty { actions.append(.quit); return actions }
            case 0x0D, 0x0A:
                partial = []
                let line = text.trimmingSpaces()
                text = ""
                if line.isEmpty { edited() } else { actions.append(.submit(line)) }
            case 0x7F, 0x08:
                partial = []
                if !text.isEmpty { text.removeLast(); edited() }
            case 0x15:
                partial = []
                text = ""
                edited()
            case 0x09: appendScalar(" "); edited()
            case 0x00..<0x20: continue
            default:
                partial.append(b)
                let need = Self.sequenceLength(partial[0])
                if need == 0 { partial = []; continue }
                if partial.count < need { continue }
                let decoded = String(decoding: partial, as: UTF8.self)
                partial = []
                if decoded.unicodeScalars.allSatisfy({ $0 != "\u{FFFD}" }) && text.count < Self.maxCharacters {
                    text += decoded
                    edited()
                }
            }
        }
        return actions
    }

    private mutating func appendScalar(_ s: String) { if text.count < Self.maxCharacters { text += s } }

    static func sequenceLength(_ lead: UInt8) -> Int {
        switch lead {
        case 0x20..<0x80: 1
        case 0xC2...0xDF: 2
        case 0xE0...0xEF: 3
        case 0xF0...0xF4: 4
        default: 0
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
