import Foundation
import HushClient

/// The `hush` command's media parts: content types from file names, the progress bar, and
/// saving received media into the home's `Media/` folder (Docs/client.md §Media).
public enum MediaCLI {
    /// The MIME type for a file name's extension (`application/octet-stream` if unknown).
    public static func contentType(forFileName name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "jpg", "jpeg": "image/jpeg"
        case "png": "image/png"
        case "gif": "image/gif"
        case "webp": "image/webp"
        case "heic": "image/heic"
        case "mp4", "m4v": "video/mp4"
        case "mov": "video/quicktime"
        case "webm": "video/webm"
        case "mp3": "audio/mpeg"
        case "m4a": "audio/mp4"
        case "ogg", "opus": "audio/ogg"
        case "wav": "audio/wav"
        case "pdf": "application/pdf"
        case "txt": "text/plain"
        case "zip": "application/zip"
        default: "application/octet-stream"
        }
    }

    /// `[██████░░░░░░░░░░░░░░]  30%  3.1/10.4 MB` (ASCII `#`/`-` with `ascii`).
    public static func bar(_ p: MediaProgress, width: Int = 20, ascii: Bool = false) -> String {
        let fraction = p.total > 0 ? min(1, Double(p.done) / Double(p.total)) : 1
        let filled = Int((fraction * Double(width)).rounded(.down))
        let on = ascii ? "#" : "█", off = ascii ? "-" : "░"
        let percent = String(Int((fraction * 100).rounded(.down)))
        let mb = { (n: Int) in String(format: "%.1f", Double(n) / 1_000_000) }
        return "[" + String(repeating: on, count: filled) + String(repeating: off, count: width - filled) + "] "
            + String(repeating: " ", count: max(0, 3 - percent.count)) + percent + "%  " + mb(p.done) + "/" + mb(p.total) + " MB"
    }

    /// A progress reporter that rewrites one line on stderr, at most once per whole percent.
    public final class ProgressLine: @unchecked Sendable {
        private let lock = NSLock()
        private var lastPercent = -1
        private let ascii: Bool
        private let label: String

        public init(label: String, ascii: Bool) {
            self.label = label
            self.ascii = ascii
        }

        public func report(_ p: MediaProgress) {
            let percent = p.total > 0 ? p.done * 100 / p.total : 100
            let line: String? = lock.withLock {
                guard percent != lastPercent else { return nil }
                lastPercent = percent
                return "\r\(label) \(MediaCLI.bar(p, ascii: ascii))"
            }
            if let line { FileHandle.standardError.write(Data(line.utf8)) }
        }

        /// Ends the line.
        public func finish() { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// The home's media folder.
    public static func library(_ home: HushHome) -> MediaLibrary {
        MediaLibrary(root: home.directory.appendingPathComponent("Media", isDirectory: true))
    }

    static func savedKey(_ id: MessageID) -> String { "cli.media-saved.\(id.account).\(id.device).\(id.clientMessageID)" }

    /// Where a media message's file was saved on this device, if it was.
    public static func savedPath(_ account: Account, _ id: MessageID) -> String? {
        ((try? account.store.setting(savedKey(id))) ?? nil).flatMap { String(bytes: $0, encoding: .utf8) }
    }

    /// Downloads every received media message not saved yet into `Media/`; one line per file
    /// (`saved Media/Hush Images/cat.jpg` or why not).
    public static func saveReceived(_ account: Account, progress: Bool, ascii: Bool) async -> [String] {
        var lines: [String] = []
        let library = library(account.home)
        guard let conversations = try? await account.client.conversations() else { return lines }
        for c in conversations {
            guard let messages = try? await account.client.messages(in: c.account, limit: 200) else { continue }
            for m in messages where m.direction == .incoming {
                if let line = await save(account, m, library: library, progress: progress, ascii: ascii) { lines.append(line) }
            }
        }
        return lines
    }

    /// Saves one received media message's file if it is one and was not saved yet; the line to show.
    public static func save(_ account: Account, _ m: StoredMessage, library: MediaLibrary? = nil, progress: Bool = false,
                            ascii: Bool = true) async -> String? {
        guard m.direction == .incoming, savedPath(account, m.id) == nil,
              let pointer = try? await account.client.mediaPointer(for: m.id) else { return nil }
        let name = pointer.fileName.isEmpty ? pointer.contentType : pointer.fileName
        let bar = progress ? ProgressLine(label: "↓ \(name)", ascii: ascii) : nil
        do {
            let url = try await account.client.downloadMedia(pointer, into: library ?? Self.library(account.home)) { bar?.report($0) }
            bar?.finish()
            let relative = String(url.path.dropFirst(account.home.directory.path.count + 1))
            try? account.store.setSetting(savedKey(m.id), Array(relative.utf8))
            return "saved \(relative) (from \(m.conversation))"
        } catch {
            bar?.finish()
            return "not saved: \(name) from \(m.conversation): \(error)"
        }
    }
}
