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
    static let mediaReadSize = 262_144
    /// Times a download resumes after a dropped connection before it gives up.
    public static let mediaDownloadRetries = 3

    /// Reads up to `buffer.count` bytes of `fd` into `buffer` (retrying an interrupted read); 0 at
    /// the end of the file.
    static func readPiece(_ fd: Int32, into buffer: inout [UInt8]) throws -> Int {
        while true {
            let n = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress!, $0.count) }
            if n >= 0 { return n }
            if errno != EINTR { throw CocoaError(.fileReadUnknown) }
        }
    }

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
        // The `Sent/` copy is written from the pieces read for the upload (one read of the file,
        // not a second pass): to a hidden file, renamed into place only after the relay stored
        // the blob, removed if the upload fails.
        var sentCopy: (handle: FileHandle, writer: OverlappedFileWriter, temp: URL, folder: URL)?
        if let library {
            let folder = library.folder(for: contentType, sent: true)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let temp = folder.appendingPathComponent(".\(grant.mediaID.hex).sending")
            guard FileManager.default.createFile(atPath: temp.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw CocoaError(.fileWriteUnknown)
            }
            let handle = try FileHandle(forWritingTo: temp)
            sentCopy = (handle, OverlappedFileWriter(handle), temp, folder)
        }
        var sentCopyOpen = sentCopy != nil
        defer {
            if let sentCopy {
                if sentCopyOpen { try? sentCopy.handle.close() }
                try? FileManager.default.removeItem(at: sentCopy.temp)  // gone already after a rename
            }
        }
        var digest: [UInt8]?
        var piece = [UInt8](repeating: 0, count: Self.mediaReadSize)
        defer { sodiumWipe(&piece) }
        let fd = handle.fileDescriptor
        do {
            try await mediaTransport.upload(mediaID: grant.mediaID.hex, token: grant.token, size: blobSize,
                                            progress: { progress(MediaProgress(done: $0, total: blobSize)) }) {
                guard digest == nil else { return nil }
                while true {
                    let n = try Self.readPiece(fd, into: &piece)
                    if n == 0 {
                        let (tail, d) = try encryptor.finish()
                        digest = d
                        return tail
                    }
                    let out = try piece.withUnsafeBytes { raw in try encryptor.push(UnsafeRawBufferPointer(rebasing: raw[0..<n])) }
                    // Written while the next piece is read and encrypted.
                    try await sentCopy?.writer.write(Array(piece[0..<n]), wipe: true)
                    if !out.isEmpty { return out }
                }
            }
            try await sentCopy?.writer.finish()
        } catch {
            // No write may still be running when the copy is closed and removed (the defer above).
            await sentCopy?.writer.abandon()
            throw error
        }
        guard let digest else { throw MediaError.plaintextSizeMismatch(expected: size, actual: 0) }
        let pointer = try MediaPointer(mediaID: grant.mediaID, key: encryptor.key, digest: digest, plaintextSize: size,
                                       contentType: contentType, fileName: name, thumbnail: thumbnail)
        if let sentCopy {
            try sentCopy.handle.close()
            sentCopyOpen = false
            try FileManager.default.moveItem(at: sentCopy.temp,
                                             to: library!.freePath(in: sentCopy.folder, name: name, id: pointer.mediaID, contentType: contentType))
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
        // The blob is checked and decrypted as it arrives, into a hidden file next to its
        // destination that is renamed only once every check passed. The ciphertext also goes to
        // the partial file, so that a later call can resume after the process ended: it first
        // runs what the partial file holds through the decryptor, then asks for the rest.
        let folder = library.folder(for: pointer.contentType, sent: false)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let temp = folder.appendingPathComponent(".\(pointer.mediaID.hex).part")
        guard FileManager.default.createFile(atPath: temp.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown)
        }
        let decryptor: MediaDecryptor
        let out: FileHandle
        do {
            decryptor = try MediaDecryptor(pointer: pointer)
            out = try FileHandle(forWritingTo: temp)
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw error
        }
        defer { try? out.close() }
        // The plaintext is written (then wiped) while the next piece is checked and decrypted.
        let plainWriter = OverlappedFileWriter(out)
        /// After a failure: no write may still be running when the files are removed.
        func discard(partial removePartial: Bool, _ writers: OverlappedFileWriter...) async {
            for w in writers { await w.abandon() }
            await plainWriter.abandon()
            try? FileManager.default.removeItem(at: temp)
            if removePartial { try? FileManager.default.removeItem(at: partial) }
        }
        var have = 0
        do {
            // What an earlier call left (up to the blob's length; anything beyond it is dropped).
            let reader = try FileHandle(forReadingFrom: partial)
            var piece = [UInt8](repeating: 0, count: Self.mediaReadSize)
            while have < expected {
                let n = try Self.readPiece(reader.fileDescriptor, into: &piece)
                if n == 0 { break }
                let take = min(n, expected - have)
                let plain = try piece.withUnsafeBytes { try decryptor.push(UnsafeRawBufferPointer(rebasing: $0[0..<take])) }
                if !plain.isEmpty { try await plainWriter.write(plain, wipe: true) }
                have += take
            }
            try reader.close()
        } catch {
            await discard(partial: true)
            throw error
        }
        let writer = try FileHandle(forWritingTo: partial)
        defer { try? writer.close() }
        try writer.truncate(atOffset: UInt64(have))
        // The partial blob is written while the next piece is checked and decrypted.
        let partialWriter = OverlappedFileWriter(writer)
        var retries = 0
        while have < expected {
            do {
                try await mediaTransport.download(mediaID: pointer.mediaID.hex, from: have) { piece in
                    guard have + piece.count <= expected else { throw MediaError.oversized(expected: expected) }
                    try await partialWriter.write(piece)
                    let plain = try decryptor.push(piece)
                    if !plain.isEmpty { try await plainWriter.write(plain, wipe: true) }
                    have += piece.count
                    progress(MediaProgress(done: have, total: expected))
                }
                break
            } catch MediaTransferError.connectionLost {
                retries += 1
                guard retries <= Self.mediaDownloadRetries else {
                    // Kept: the partial file lets a later call resume.
                    await discard(partial: false, partialWriter)
                    throw MediaTransferError.connectionLost(received: have)
                }
            } catch {
                // Anything but a dropped connection is final (a refusal, a blob longer than its size).
                await discard(partial: true, partialWriter)
                throw error
            }
        }
        do {
            try await partialWriter.finish()
            try decryptor.finish()
            try await plainWriter.finish()
            try out.close()
        } catch {
            await discard(partial: true, partialWriter)
            throw error
        }
        let final = library.freePath(in: folder, name: pointer.fileName, id: pointer.mediaID, contentType: pointer.contentType)
        try FileManager.default.moveItem(at: temp, to: final)
        try? FileManager.default.removeItem(at: partial)
        return final
    }
}
