import Foundation
import Synchronization

/// Where the relay keeps media blobs (Docs/spec/relay.md §17): opaque ciphertext named by a
/// 16-byte id, written once, read by byte range, purged after the media TTL. Its calls block
/// (file or network I/O); the HTTP handler runs them on a thread pool, never on an event loop.
/// ``DiskMediaStore`` keeps them in a folder, ``InMemoryMediaStore`` in memory (tests); an
/// object store can implement the same four calls.
public protocol MediaStore: Sendable {
    /// Starts writing blob `id`, which will have exactly `size` bytes. Nothing is visible until
    /// ``MediaUpload/commit()``. Throws ``MediaStoreError/exists`` if `id` was committed.
    func beginUpload(id: [UInt8], size: Int, createdAt: UInt64) throws(MediaStoreError) -> any MediaUpload
    /// A reader of committed blob `id`, or nil.
    func open(id: [UInt8]) throws(MediaStoreError) -> (any MediaReader)?
    /// Removes every blob committed before `cutoff` (Unix ms); the number removed.
    func purge(createdBefore cutoff: UInt64) throws(MediaStoreError) -> Int
    /// Committed blobs (for metrics and tests).
    func count() throws(MediaStoreError) -> Int
}

/// One blob being written. Not Sendable: one upload is driven by one connection in order.
public protocol MediaUpload: AnyObject {
    /// Appends bytes; throws ``MediaStoreError/tooLong`` past the announced size.
    func append(_ bytes: UnsafeRawBufferPointer) throws(MediaStoreError)
    /// Makes the blob visible; throws ``MediaStoreError/tooShort`` unless exactly the announced
    /// size was appended, or ``MediaStoreError/exists`` if another upload of the id won.
    func commit() throws(MediaStoreError)
    /// Drops what was written (idempotent; also after a failed commit).
    func abort()
}

/// One committed blob being read.
public protocol MediaReader: AnyObject {
    /// The blob's length.
    var size: Int { get }
    /// When it was committed (Unix ms).
    var createdAt: UInt64 { get }
    /// Up to `count` bytes from `offset`; empty at the end.
    func read(offset: Int, count: Int) throws(MediaStoreError) -> [UInt8]
    /// Reads up to `buffer.count` bytes from `offset` into `buffer`; the count, 0 at the end.
    /// (Has a default in terms of ``read(offset:count:)``; a store that can read in place
    /// implements it to save a copy.)
    func read(offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(MediaStoreError) -> Int
    /// Releases the reader (idempotent).
    func close()
}

extension MediaReader {
    public func read(offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(MediaStoreError) -> Int {
        let bytes = try read(offset: offset, count: buffer.count)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        return bytes.count
    }
}

/// Why a media store call failed.
public enum MediaStoreError: Error, Equatable, Sendable {
    /// A blob with this id was already committed.
    case exists
    /// More bytes than announced were appended.
    case tooLong
    /// Commit with fewer bytes than announced.
    case tooShort(expected: Int, actual: Int)
    /// The id is not 16 bytes.
    case badID
    /// The storage failed (the message names the operation, never a key or content).
    case io(String)
}

/// Blobs in memory, for tests (bounded only by the relay's per-blob limit).
public final class InMemoryMediaStore: MediaStore {
    struct Blob { let bytes: [UInt8]; let createdAt: UInt64 }
    let blobs = Mutex<[[UInt8]: Blob]>([:])

    public init() {}

    public func beginUpload(id: [UInt8], size: Int, createdAt: UInt64) throws(MediaStoreError) -> any MediaUpload {
        guard id.count == 16 else { throw .badID }
        guard blobs.withLock({ $0[id] == nil }) else { throw .exists }
        return Upload(store: self, id: id, size: size, createdAt: createdAt)
    }

    public func open(id: [UInt8]) throws(MediaStoreError) -> (any MediaReader)? {
        blobs.withLock { $0[id] }.map { Reader(blob: $0) }
    }

    public func purge(createdBefore cutoff: UInt64) throws(MediaStoreError) -> Int {
        blobs.withLock { blobs in
            let old = blobs.filter { $0.value.createdAt < cutoff }.map(\.key)
            for id in old { blobs[id] = nil }
            return old.count
        }
    }

    public func count() throws(MediaStoreError) -> Int { blobs.withLock { $0.count } }

    final class Upload: MediaUpload {
        let store: InMemoryMediaStore, id: [UInt8], size: Int, createdAt: UInt64
        var bytes: [UInt8] = []
        init(store: InMemoryMediaStore, id: [UInt8], size: Int, createdAt: UInt64) {
            self.store = store; self.id = id; self.size = size; self.createdAt = createdAt
        }
        func append(_ chunk: UnsafeRawBufferPointer) throws(MediaStoreError) {
            guard bytes.count + chunk.count <= size else { throw .tooLong }
            bytes += chunk
        }
        func commit() throws(MediaStoreError) {
            guard bytes.count == size else { throw .tooShort(expected: size, actual: bytes.count) }
            let blob = Blob(bytes: bytes, createdAt: createdAt)
            let won = store.blobs.withLock { blobs -> Bool in
                guard blobs[id] == nil else { return false }
                blobs[id] = blob
                return true
            }
            bytes = []
            guard won else { throw .exists }
        }
        func abort() { bytes = [] }
    }

    final class Reader: MediaReader {
        let blob: Blob
        init(blob: Blob) { self.blob = blob }
        var size: Int { blob.bytes.count }
        var createdAt: UInt64 { blob.createdAt }
        func read(offset: Int, count: Int) throws(MediaStoreError) -> [UInt8] {
            guard offset < blob.bytes.count else { return [] }
            return Array(blob.bytes[offset..<min(blob.bytes.count, offset + count)])
        }
        func close() {}
    }
}

#if os(Linux)
/// glibc's `sync_file_range(2)`, looked up at run time (Swift's Glibc module hides it behind
/// `_GNU_SOURCE`); nil if the C library lacks it, and then the commit's fsync does all the work.
private let startWriteback: (@convention(c) (Int32, off_t, off_t, UInt32) -> Int32)? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (Int32, off_t, off_t, UInt32) -> Int32).self)
}()
#endif

/// Blobs as files in one folder: `<hex id>` for a committed blob, written first as
/// `tmp-<hex id>-<random>` and renamed into place on commit (`link(2)`, which fails if the name
/// exists, so the first commit wins). The commit time is the file's modification time, set
/// from the relay's clock at commit, so the purge needs no other index.
public final class DiskMediaStore: MediaStore {
    let folder: URL

    /// A store in `folder` (created if missing); leftover temporary files are removed.
    public init(folder: URL) throws(MediaStoreError) {
        self.folder = folder
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasPrefix("tmp-") {
                try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
            }
        } catch { throw .io("create media folder") }
    }

    static func hex(_ id: [UInt8]) -> String { id.map { String(format: "%02x", $0) }.joined() }

    func path(_ id: [UInt8]) -> String { folder.appendingPathComponent(Self.hex(id)).path }

    public func beginUpload(id: [UInt8], size: Int, createdAt: UInt64) throws(MediaStoreError) -> any MediaUpload {
        guard id.count == 16 else { throw .badID }
        guard !FileManager.default.fileExists(atPath: path(id)) else { throw .exists }
        let temp = folder.appendingPathComponent("tmp-\(Self.hex(id))-\(UInt64.random(in: 0...UInt64.max))").path
        let fd = Foundation.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io("create upload file") }
        return Upload(fd: fd, temp: temp, final: path(id), size: size, createdAt: createdAt)
    }

    public func open(id: [UInt8]) throws(MediaStoreError) -> (any MediaReader)? {
        guard id.count == 16 else { return nil }
        let fd = Foundation.open(path(id), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw .io("open blob")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else { Foundation.close(fd); throw .io("stat blob") }
        return Reader(fd: fd, size: Int(st.st_size), createdAt: Self.milliseconds(st.st_mtim))
    }

    public func purge(createdBefore cutoff: UInt64) throws(MediaStoreError) -> Int {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder.path) } catch { throw .io("list media folder") }
        var removed = 0
        for name in names where name.utf8.count == 32 && !name.hasPrefix("tmp-") {
            let p = folder.appendingPathComponent(name).path
            var st = stat()
            guard stat(p, &st) == 0, Self.milliseconds(st.st_mtim) < cutoff else { continue }
            if unlink(p) == 0 { removed += 1 }
        }
        return removed
    }

    public func count() throws(MediaStoreError) -> Int {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.utf8.count == 32 && !$0.hasPrefix("tmp-") }.count
        } catch { throw .io("list media folder") }
    }

    static func milliseconds(_ t: timespec) -> UInt64 { UInt64(max(0, t.tv_sec)) * 1_000 + UInt64(max(0, t.tv_nsec)) / 1_000_000 }

    final class Upload: MediaUpload {
        var fd: Int32
        let temp: String, final: String, size: Int, createdAt: UInt64
        var written = 0
        /// Bytes whose write-back to disk was started (Linux).
        var startedWriteback = 0
        static let writebackStep = 2 << 20
        #if os(Linux)
        /// `SYNC_FILE_RANGE_WRITE` (linux/fs.h): start writing the range's dirty pages, do not wait.
        static let syncFileRangeWrite: UInt32 = 2
        #endif
        init(fd: Int32, temp: String, final: String, size: Int, createdAt: UInt64) {
            self.fd = fd; self.temp = temp; self.final = final; self.size = size; self.createdAt = createdAt
        }
        deinit { abort() }

        func append(_ bytes: UnsafeRawBufferPointer) throws(MediaStoreError) {
            guard fd >= 0 else { throw .io("write after close") }
            guard written + bytes.count <= size else { throw .tooLong }
            var offset = 0
            while offset < bytes.count {
                let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 { if errno == EINTR { continue }; throw .io("write blob") }
                offset += n
            }
            written += bytes.count
            #if os(Linux)
            // Start the disk write of every full 2 MiB behind us now (`sync_file_range`, no wait),
            // so that commit's fsync finds most of the blob on disk already instead of writing
            // all of it after the last byte arrived.
            if written - startedWriteback >= Self.writebackStep {
                let upTo = written - written % Self.writebackStep
                _ = startWriteback?(fd, off_t(startedWriteback), off_t(upTo - startedWriteback), Self.syncFileRangeWrite)
                startedWriteback = upTo
            }
            #endif
        }

        func commit() throws(MediaStoreError) {
            guard fd >= 0 else { throw .io("commit after close") }
            guard written == size else { throw .tooShort(expected: size, actual: written) }
            var times = [timespec(tv_sec: Int(createdAt / 1_000), tv_nsec: Int(createdAt % 1_000) * 1_000_000),
                         timespec(tv_sec: Int(createdAt / 1_000), tv_nsec: Int(createdAt % 1_000) * 1_000_000)]
            guard fsync(fd) == 0, futimens(fd, &times) == 0 else { abort(); throw .io("sync blob") }
            Foundation.close(fd)
            fd = -1
            defer { unlink(temp) }
            guard link(temp, final) == 0 else {
                if errno == EEXIST { throw .exists }
                throw .io("link blob")
            }
        }

        func abort() {
            if fd >= 0 { Foundation.close(fd); fd = -1 }
            unlink(temp)
        }
    }

    final class Reader: MediaReader {
        var fd: Int32
        let size: Int, createdAt: UInt64
        init(fd: Int32, size: Int, createdAt: UInt64) { self.fd = fd; self.size = size; self.createdAt = createdAt }
        deinit { close() }
        func read(offset: Int, count: Int) throws(MediaStoreError) -> [UInt8] {
            guard fd >= 0 else { throw .io("read after close") }
            guard offset < size, count > 0 else { return [] }
            var out = [UInt8](repeating: 0, count: min(count, size - offset))
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(offset)) }
            guard n >= 0 else { throw .io("read blob") }
            out.removeLast(out.count - n)
            return out
        }
        func read(offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(MediaStoreError) -> Int {
            guard fd >= 0 else { throw .io("read after close") }
            guard offset < size, buffer.count > 0 else { return 0 }
            while true {
                let n = pread(fd, buffer.baseAddress!, min(buffer.count, size - offset), off_t(offset))
                if n >= 0 { return n }
                if errno != EINTR { throw .io("read blob") }
            }
        }
        func close() { if fd >= 0 { Foundation.close(fd); fd = -1 } }
    }
}
