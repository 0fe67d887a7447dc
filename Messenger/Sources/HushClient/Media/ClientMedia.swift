import Foundation
import Hush
import HushTransport

/// How a client moves blobs to and from the relay (``MediaHTTPClient`` in production; tests may
/// wrap it, e.g. to drop a connection mid-download).
public protocol MediaTransport: Sendable {
    func upload(mediaID: String, token: [UInt8], size: Int, progress: (Int) -> Void, body: () async throws -> [UInt8]?) async throws
    @discardableResult
    func download(mediaID: String, from offset: Int, sink: ([UInt8]) async throws -> Void) async throws -> Int
}

extension MediaHTTPClient: MediaTransport {}

/// Bytes done of a transfer (ciphertext bytes: the blob's).
public struct MediaProgress: Sendable, Equatable {
    public var done: Int
    public var total: Int
    public init(done: Int, total: Int) {
        self.done = done
        self.total = total
    }
}

/// An upload capability from the relay (Docs/spec/relay.md §19.1).
public struct MediaUploadGrant: Sendable {
    public let mediaID: MediaID
    public let token: [UInt8]
    public let expiresAt: UInt64
    public let size: Int
}

extension HushClient {
    /// Plaintext bytes read from a file per step.
    static let mediaReadSize = 65_536
    /// Times a download resumes after a dropped connection before it gives up.
    public static let mediaDownloadRetries = 3

    var mediaTransport: any MediaTransport {
        configuration.mediaTransport ?? MediaHTTPClient(host: configuration.endpoint.host, port: configuration.endpoint.port)
    }

    /// Asks the relay for the right to upload one blob of `size` bytes.
    public func requestMediaUpload(size: Int) async throws(ClientError) -> MediaUploadGrant {
        guard size > 0 else { throw .invalidArgument("media size") }
        let reply = try await request { rid in
            var s = RelayStanza()
            s.requestMediaUpload.requestID = rid
            s.requestMediaUpload.size = UInt64(size)
            return s
        }
        guard case .mediaUploadGranted(let g)? = reply.body, let id = MediaID(bytes: Array(g.mediaID)),
              g.token.count == 48, g.size == UInt64(size)
        else { throw .invalidArgument("media grant") }
        return MediaUploadGrant(mediaID: id, token: Array(g.token), expiresAt: g.expiresAt, size: size)
    }

    /// Encrypts `file` under a fresh key, uploads the blob (streamed, `progress` after each
    /// piece) and returns the pointer; nothing is sent to anyone. With `library`, a copy of the
    /// file goes to its `Sent/` folder.
    /// - Throws: ``ClientError`` (the capability), ``MediaError`` (file too large or changed while
    ///   read), ``MediaTransferError`` (the relay refused, the connection dropped), file errors.
    public func uploadMedia(file: URL, contentType: String, fileName: String? = nil, thumbnail: [UInt8] = [],
                            library: MediaLibrary? = nil, progress: @Sendable (MediaProgress) -> Void = { _ in }) async throws -> MediaPointer {
        let size = try (FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.intValue ?? 0
        guard size <= MediaFormat.maxPlaintextSize else { throw MediaError.fileTooLarge(size: size, limit: MediaFormat.maxPlaintextSize) }
        let name = fileName ?? file.lastPathComponent
        // Check the pointer's fields before spending an upload.
        _ = try MediaPointer(mediaID: MediaID(bytes: [UInt8](repeating: 0, count: 16))!, key: SecureBytes(zeroes: 32),
                             digest: [UInt8](repeating: 0, count: 32), plaintextSize: size, contentType: contentType,
                             fileName: name, thumbnail: thumbnail)
        let blobSize = MediaFormat.ciphertextSize(plaintextSize: size)
        let grant = try await requestMediaUpload(size: blobSize)
        let encryptor = try MediaEncryptor(plaintextSize: size, random: configuration.random)
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        var digest: [UInt8]?
        try await mediaTransport.upload(mediaID: grant.mediaID.hex, token: grant.token, size: blobSize,
                                        progress: { progress(MediaProgress(done: $0, total: blobSize)) }) {
            guard digest == nil else { return nil }
            while true {
                var piece = try handle.read(upToCount: Self.mediaReadSize).map { [UInt8]($0) } ?? []
                if piece.isEmpty {
                    let (tail, d) = try encryptor.finish()
                    digest = d
                    return tail
                }
                defer { sodiumWipe(&piece) }
                let out = try encryptor.push(piece)
                if !out.isEmpty { return out }
            }
        }
        guard let digest else { throw MediaError.plaintextSizeMismatch(expected: size, actual: 0) }
        let pointer = try MediaPointer(mediaID: grant.mediaID, key: encryptor.key, digest: digest, plaintextSize: size,
                                       contentType: contentType, fileName: name, thumbnail: thumbnail)
        if let library {
            let folder = library.folder(for: contentType, sent: true)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: file, to: library.freePath(in: folder, name: name, id: pointer.mediaID, contentType: contentType))
        }
        return pointer
    }

    /// Uploads `file` and sends its pointer to `recipient` as a media message.
    @discardableResult
    public func sendMedia(file: URL, contentType: String, to recipient: String, thumbnail: [UInt8] = [],
                          library: MediaLibrary? = nil, progress: @Sendable (MediaProgress) -> Void = { _ in }) async throws -> MessageID {
        guard DeviceBinding.isValidAccountName(recipient) else { throw ClientError.invalidArgument("account name") }
        let pointer = try await uploadMedia(file: file, contentType: contentType, thumbnail: thumbnail, library: library, progress: progress)
        return try await sendContent(to: recipient, body: pointer.summary, pointer: pointer) { counter, now in
            .media(id: counter, sentAt: now, pointer: pointer)
        }
    }

    /// The pointer of a media message in the store (sent or received), nil for other messages.
    public func mediaPointer(for id: MessageID) throws(ClientError) -> MediaPointer? {
        guard let bytes = try Self.storeStep({ try store.setting(SettingKey.mediaPointer(id)) }) else { return nil }
        return try? MediaPointer(decoding: bytes)
    }

    /// Downloads the blob `pointer` names into `library`'s `.partial/` folder (resuming from what
    /// an earlier attempt left there, and after up to ``mediaDownloadRetries`` dropped
    /// connections), then checks and decrypts it into the folder for its type; the file's URL.
    /// A rejected blob leaves nothing behind.
    /// - Throws: ``MediaError`` (truncated, tampered, substituted, wrong key…),
    ///   ``MediaTransferError`` (404 once expired, a connection that keeps dropping), file errors.
    public func downloadMedia(_ pointer: MediaPointer, into library: MediaLibrary,
                              progress: @Sendable (MediaProgress) -> Void = { _ in }) async throws -> URL {
        let expected = MediaFormat.ciphertextSize(plaintextSize: pointer.plaintextSize)
        let partial = library.partialBlob(pointer.mediaID)
        try FileManager.default.createDirectory(at: partial.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: partial.path) {
            guard FileManager.default.createFile(atPath: partial.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw CocoaError(.fileWriteUnknown)
            }
        }
        let writer = try FileHandle(forWritingTo: partial)
        var have = Int(try writer.seekToEnd())
        var retries = 0
        while have < expected {
            do {
                try await mediaTransport.download(mediaID: pointer.mediaID.hex, from: have) { piece in
                    guard have + piece.count <= expected else { throw MediaError.oversized(expected: expected) }
                    try writer.write(contentsOf: piece)
                    have += piece.count
                    progress(MediaProgress(done: have, total: expected))
                }
                break
            } catch MediaTransferError.connectionLost {
                retries += 1
                guard retries <= Self.mediaDownloadRetries else {
                    try? writer.close()
                    throw MediaTransferError.connectionLost(received: have)
                }
            } catch {
                try? writer.close()
                // Anything but a dropped connection is final (a refusal, a blob longer than its size).
                try? FileManager.default.removeItem(at: partial)
                throw error
            }
        }
        try writer.close()
        // Check and decrypt into a hidden file next to the destination; rename only on success.
        let folder = library.folder(for: pointer.contentType, sent: false)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let temp = folder.appendingPathComponent(".\(pointer.mediaID.hex).part")
        FileManager.default.createFile(atPath: temp.path, contents: nil, attributes: [.posixPermissions: 0o600])
        do {
            let decryptor = try MediaDecryptor(pointer: pointer)
            let reader = try FileHandle(forReadingFrom: partial)
            defer { try? reader.close() }
            let out = try FileHandle(forWritingTo: temp)
            defer { try? out.close() }
            while let piece = try reader.read(upToCount: Self.mediaReadSize), !piece.isEmpty {
                var plain = try decryptor.push([UInt8](piece))
                if !plain.isEmpty { try out.write(contentsOf: plain) }
                sodiumWipe(&plain)
            }
            try decryptor.finish()
        } catch {
            try? FileManager.default.removeItem(at: temp)
            try? FileManager.default.removeItem(at: partial)
            throw error
        }
        let final = library.freePath(in: folder, name: pointer.fileName, id: pointer.mediaID, contentType: pointer.contentType)
        try FileManager.default.moveItem(at: temp, to: final)
        try? FileManager.default.removeItem(at: partial)
        return final
    }
}
