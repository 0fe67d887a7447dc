import Foundation

/// The controlling terminal: raw mode for the chat (no echo, no line buffering, keys as bytes;
/// Ctrl-C arrives as a byte, the screen handles it) and its size.
public final class Terminal: @unchecked Sendable {
    // Set once in enterRawMode, read in restore (same task).
    private var saved: termios?
    public init() {}

    /// Whether standard input is a terminal.
    public static var inputIsTerminal: Bool { isatty(0) == 1 }

    /// Raw mode on standard input (when it is a terminal).
    public func enterRawMode() {
        guard Self.inputIsTerminal else { return }
        var t = termios()
        guard tcgetattr(0, &t) == 0 else { return }
        saved = t
        t.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        t.c_iflag &= ~tcflag_t(IXON | ICRNL | BRKINT | INPCK | ISTRIP)
        t.c_cflag |= tcflag_t(CS8)
        withUnsafeMutableBytes(of: &t.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        tcsetattr(0, TCSAFLUSH, &t)
    }

    /// Back to how the terminal was.
    public func restore() {
        guard var t = saved else { return }
        tcsetattr(0, TCSAFLUSH, &t)
        saved = nil
    }

    /// Columns and rows of standard output (80×24 when unknown).
    public static func size() -> (width: Int, height: Int) {
        var w = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &w) == 0, w.ws_col > 0, w.ws_row > 0 { return (Int(w.ws_col), Int(w.ws_row)) }
        return (80, 24)
    }

    /// Writes all of `text` to standard output.
    public static func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(1, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { if errno == EINTR { continue }; return }
            offset += n
        }
        bytes.removeAll()
    }

    /// Standard input's bytes as they arrive, read on a thread of its own; finishes at end of input.
    public static func inputBytes() -> AsyncStream<[UInt8]> {
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream(bufferingPolicy: .bufferingNewest(256))
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 1_024)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                continuation.yield(Array(buffer[0..<n]))
            }
            continuation.finish()
        }
        thread.start()
        return stream
    }
}
