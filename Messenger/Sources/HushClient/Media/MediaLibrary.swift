import Foundation

/// The media folder, laid out as WhatsApp's (Docs/client.md §Media):
///
/// ```
/// Media/
///   Hush Images/          received images          Hush Images/Sent/      images this device sent
///   Hush Video/           …                        Hush Video/Sent/
///   Hush Audio/                                    Hush Audio/Sent/
///   Hush Documents/       everything else          Hush Documents/Sent/
///   .partial/<hex id>.blob   ciphertext of downloads in progress (resumed from its length)
/// ```
/// Received files are written there only after their blob was fully checked and decrypted.
public struct MediaLibrary: Sendable {
    /// The `Media` folder.
    public let root: URL

    public init(root: URL) { self.root = root }

    /// The four kinds of media folder.
    public enum Kind: String, Sendable, CaseIterable {
        case images = "Hush Images", video = "Hush Video", audio = "Hush Audio", documents = "Hush Documents"

        /// A name for a file that came without one.
        public var singular: String {
            switch self {
            case .images: "image"
            case .video: "video"
            case .audio: "audio"
            case .documents: "document"
            }
        }
    }

    /// The folder kind for a MIME type.
    public static func kind(of contentType: String) -> Kind {
        if contentType.hasPrefix("image/") { return .images }
        if contentType.hasPrefix("video/") { return .video }
        if contentType.hasPrefix("audio/") { return .audio }
        return .documents
    }

    /// Where received files of `contentType` go.
    public func folder(for contentType: String, sent: Bool) -> URL {
        let base = root.appendingPathComponent(Self.kind(of: contentType).rawValue, isDirectory: true)
        return sent ? base.appendingPathComponent("Sent", isDirectory: true) : base
    }

    /// Ciphertext of an unfinished download.
    func partialBlob(_ id: MediaID) -> URL {
        root.appendingPathComponent(".partial", isDirectory: true).appendingPathComponent("\(id.hex).blob")
    }

    /// A free path in `folder` for `name` (`cat.jpg`, then `cat-1.jpg`, …); a file without a name
    /// gets `HUSH-<id prefix>.<ext>`.
    func freePath(in folder: URL, name: String, id: MediaID, contentType: String) -> URL {
        var base = name
        if base.isEmpty {
            let ext = contentType.split(separator: "/").last.map { "." + $0 } ?? ""
            base = "HUSH-\(id.hex.prefix(12))\(ext)"
        }
        let stem = (base as NSString).deletingPathExtension, ext = (base as NSString).pathExtension
        var candidate = folder.appendingPathComponent(base)
        var n = 1
        while FileManager.default.fileExists(atPath: candidate.path) {
            candidate = folder.appendingPathComponent(ext.isEmpty ? "\(stem)-\(n)" : "\(stem)-\(n).\(ext)")
            n += 1
        }
        return candidate
    }
}
