import Foundation
import Hush

/// Where a backup's bytes go.
public protocol BackupSink {
    mutating func write(_ bytes: [UInt8]) throws(BackupError)
}

/// Where a backup's bytes come from: `read` returns up to `count` bytes, fewer only at the end.
public protocol BackupSource {
    mutating func read(_ count: Int) throws(BackupError) -> [UInt8]
}

/// Bytes in memory (tests, fuzzing).
public struct BackupBytesSource: BackupSource {
    let bytes: [UInt8]
    var offset = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public mutating func read(_ count: Int) throws(BackupError) -> [UInt8] {
        let end = min(bytes.count, offset + max(0, count))
        defer { offset = end }
        return Array(bytes[offset..<end])
    }
}

/// Collects the bytes in memory (tests).
public struct BackupBytesSink: BackupSink {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public mutating func write(_ bytes: [UInt8]) throws(BackupError) { self.bytes += bytes }
}

/// A file read or written sequentially; nothing but the current chunk is held.
public final class BackupFile: BackupSink, BackupSource {
    private let handle: FileHandle
    private let path: String

    /// Creates `path` for writing (owner-only; it must not exist: a backup never overwrites one).
    public static func create(_ path: String) throws(BackupError) -> BackupFile {
        guard !FileManager.default.fileExists(atPath: path) else { throw .io("\(path) exists") }
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let h = FileHandle(forWritingAtPath: path) else { throw .io("cannot create \(path)") }
        return BackupFile(handle: h, path: path)
    }

    /// Opens `path` for reading.
    public static func open(_ path: String) throws(BackupError) -> BackupFile {
        guard let h = FileHandle(forReadingAtPath: path) else { throw .io("cannot open \(path)") }
        return BackupFile(handle: h, path: path)
    }

    private init(handle: FileHandle, path: String) {
        self.handle = handle
        self.path = path
    }

    public func write(_ bytes: [UInt8]) throws(BackupError) {
        do { try handle.write(contentsOf: bytes) } catch { throw .io("writing \(path): \(error.localizedDescription)") }
    }

    public func read(_ count: Int) throws(BackupError) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count {
            let data: Data?
            do { data = try handle.read(upToCount: count - out.count) } catch { throw .io("reading \(path): \(error.localizedDescription)") }
            guard let data, !data.isEmpty else { break }
            out += data
        }
        return out
    }

    /// Flushes to stable storage (after the final chunk) and closes.
    public func finish() throws(BackupError) {
        do {
            try handle.synchronize()
            try handle.close()
        } catch { throw .io("closing \(path): \(error.localizedDescription)") }
    }

    /// Closes without syncing (after a failure).
    public func close() { try? handle.close() }
}

/// Writes the record stream as chunks (spec backup §2): memory is one chunk.
final class BackupWriter<Sink: BackupSink> {
    private(set) var sink: Sink
    private let encryptor: SecretStream.Encryptor
    private let header: [UInt8]
    private var pending: [UInt8] = []
    private var chunks = 0
    private(set) var records = 0

    init(sink: Sink, secret: BackupSecret, createdAt: UInt64, random: some RandomSource) throws(BackupError) {
        let salt: [UInt8]
        do { salt = try random.secureBytes(count: BackupFormat.saltByteCount).withUnsafeBytes { Array($0) } } catch { throw .crypto("random: \(error)") }
        var ops: UInt32 = 0, mem: UInt32 = 0
        if case .passphrase(_, let limits) = secret.kind {
            guard (BackupFormat.minimumOperations...BackupFormat.maximumOperations).contains(limits.operations),
                  limits.memoryBytes % 1024 == 0,
                  (BackupFormat.minimumMemoryKiB...BackupFormat.maximumMemoryKiB).contains(limits.memoryBytes / 1024)
            else { throw .kdfLimitsOutOfRange(operations: UInt32(clamping: limits.operations), memoryKiB: UInt32(clamping: limits.memoryBytes / 1024)) }
            ops = UInt32(limits.operations)
            mem = UInt32(limits.memoryBytes / 1024)
        }
        let k = try secret.backupKey(salt: salt, operations: ops, memoryKiB: mem)
        let (check, streamKey) = try BackupSecret.subkeys(k)
        do { encryptor = try SecretStream.Encryptor(key: streamKey) } catch { throw .crypto("secretstream: \(error)") }
        header = BackupHeader(kdf: secret.kdf, operations: ops, memoryKiB: mem, salt: salt, createdAt: createdAt,
                              keyCheck: check, streamHeader: encryptor.header).encoded
        self.sink = sink
        try self.sink.write(header)
        pending.reserveCapacity(BackupFormat.chunkPlaintextLimit * 2)
    }

    deinit { SecureBytes.wipe(&pending) }

    func write(_ record: BackupRecord) throws(BackupError) {
        record.append(to: &pending)
        records += 1
        while pending.count >= BackupFormat.chunkPlaintextLimit {
            try emit(Array(pending[..<BackupFormat.chunkPlaintextLimit]), tag: .message)
            pending.removeFirst(BackupFormat.chunkPlaintextLimit)
        }
    }

    /// Writes the rest as the final chunk (possibly empty).
    func finish() throws(BackupError) {
        try emit(pending, tag: .final)
        SecureBytes.wipe(&pending)
        pending = []
    }

    private func emit(_ plain: [UInt8], tag: SecretStream.Tag) throws(BackupError) {
        var plain = plain
        defer { SecureBytes.wipe(&plain) }
        let c: [UInt8]
        do { c = try encryptor.push(plain, tag: tag, associatedData: chunks == 0 ? header : []) } catch { throw .crypto("secretstream: \(error)") }
        var frame: [UInt8] = []
        BackupBytes.append32(UInt32(c.count), to: &frame)
        try sink.write(frame + c)
        chunks += 1
    }
}

/// Reads a backup record by record (spec backup §2, §4): memory is one chunk plus one record.
/// Any bytes give records or a typed ``BackupError``, never a crash.
final class BackupReader<Source: BackupSource> {
    private var source: Source
    private let decryptor: SecretStream.Decryptor
    private let header: [UInt8]
    /// When the backup was made (Unix ms, from the header; authenticated with chunk 0).
    let createdAt: UInt64
    private var buffer: [UInt8] = []
    private var offset = 0
    private var chunk = 0
    private var finished = false
    private(set) var records = 0

    init(source: Source, secret: BackupSecret) throws(BackupError) {
        self.source = source
        let head = try self.source.read(BackupFormat.headerByteCount)
        if head.count >= BackupFormat.magic.count, Array(head[..<BackupFormat.magic.count]) != BackupFormat.magic { throw .notABackup }
        let h = try BackupHeader(decoding: head)
        guard h.kdf == secret.kdf else { throw .secretKindMismatch(expected: h.kdf) }
        let k = try secret.backupKey(salt: h.salt, operations: h.operations, memoryKiB: h.memoryKiB)
        let (check, streamKey) = try BackupSecret.subkeys(k)
        guard ConstantTime.equals(check, h.keyCheck) else { throw .wrongSecret }
        do { decryptor = try SecretStream.Decryptor(key: streamKey, header: h.streamHeader) } catch { throw .damaged(chunk: 0) }
        header = head
        createdAt = h.createdAt
    }

    deinit { SecureBytes.wipe(&buffer) }

    /// The next record, or nil after the last one (the final chunk read, nothing after it).
    func next() throws(BackupError) -> BackupRecord? {
        while true {
            if let r = try parse() { return r }
            if finished {
                guard offset == buffer.count else { throw .invalidRecord(index: records, problem: .cutOff) }
                return nil
            }
            try pullChunk()
        }
    }

    private func parse() throws(BackupError) -> BackupRecord? {
        let available = buffer.count - offset
        guard available >= 5 else { return nil }
        let type = buffer[offset]
        let length = Int(BackupBytes.read32(buffer, offset + 1))
        guard length <= BackupFormat.recordLimit else { throw .invalidRecord(index: records, problem: .tooLong(length)) }
        guard available >= 5 + length else { return nil }
        var body = Array(buffer[(offset + 5)..<(offset + 5 + length)])
        defer { SecureBytes.wipe(&body) }
        offset += 5 + length
        let record: BackupRecord
        do { record = try BackupRecord(type: type, body: body) } catch { throw .invalidRecord(index: records, problem: error) }
        if case .profile = record, records > 0 { throw .invalidRecord(index: records, problem: .duplicateProfile) }
        if records == 0, record.kind != .profile { throw .invalidRecord(index: 0, problem: .missingProfile) }
        records += 1
        return record
    }

    private func pullChunk() throws(BackupError) {
        let lengthBytes = try source.read(4)
        guard lengthBytes.count == 4 else { throw .truncated }
        let length = Int(BackupBytes.read32(lengthBytes, 0))
        guard (SecretStream.chunkOverhead...BackupFormat.chunkCiphertextLimit).contains(length) else { throw .damaged(chunk: chunk) }
        let c = try source.read(length)
        guard c.count == length else { throw .truncated }
        let opened: (plaintext: [UInt8], tag: SecretStream.Tag)
        do { opened = try decryptor.pull(c, associatedData: chunk == 0 ? header : []) } catch { throw .damaged(chunk: chunk) }
        chunk += 1
        // Keep only the unread part of the buffer, then append.
        if offset > 0 {
            var old = buffer
            buffer = Array(buffer[offset...])
            SecureBytes.wipe(&old)
            offset = 0
        }
        var plain = opened.plaintext
        buffer += plain
        SecureBytes.wipe(&plain)
        switch opened.tag {
        case .final:
            finished = true
            guard try source.read(1).isEmpty else { throw .trailingData }
        case .message: break
        default: throw .damaged(chunk: chunk - 1)  // push/rekey tags are never written
        }
    }
}
