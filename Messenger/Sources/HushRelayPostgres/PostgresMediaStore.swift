import Dispatch
import Foundation
import Hush
import HushRelay
import Logging
import PostgresNIO
import Synchronization

/// ``MediaStore`` on PostgreSQL (schema migration 7): every relay node on one database serves
/// every node's media, with nothing but the database shared (Docs/spec/relay.md §19,
/// Docs/architecture.md §5b).
///
/// - An upload is a row of `media_uploads`; its bytes go into `media_chunks` in rows of
///   ``chunkSize`` (1 MiB; the last one shorter), each its own committed statement as it fills.
/// - ``MediaUpload/commit()`` names the upload in `media_blobs` under its media id; only then
///   can it be opened. The first commit of an id wins (the id is the primary key); a retried
///   commit that already went through is recognised by its upload id, so a lost answer never
///   turns into a false `exists`.
/// - A reader fetches one chunk row at a time and keeps the last one, so a download's 256 KiB
///   reads cost one query per MiB.
/// - ``purge(createdBefore:)`` deletes blobs committed before the cutoff and uploads started
///   before it that were never committed (a node that died mid-upload), their chunks with them.
///
/// The ``MediaStore`` calls block (the relay runs them on its thread pool, never on an event
/// loop): each one runs its queries as a task and waits for it, at most
/// ``PostgresStoreConfiguration/operationTimeout``, retrying a lost connection within that
/// time like every other store call. Not for an event loop, and not for a task on Swift's
/// cooperative pool (it would block one of its few threads).
public final class PostgresMediaStore: MediaStore {
    /// Bytes per `media_chunks` row.
    public static let chunkSize = 1 << 20

    let client: PostgresClient
    let timeout: Duration
    let logger: Logger

    /// Media in the database of `store` (the same pool and schema).
    public init(store: PostgresRelayStore) {
        client = store.client
        timeout = store.configuration.operationTimeout
        logger = Logger(label: "hush-relay.postgres.media")
    }

    /// The upload-capability key (§19.1) of the deployment: made by the first node that asks
    /// (32 bytes from the CSPRNG) and kept in the database, so that every node honours every
    /// node's grants — a client behind a load balancer may get its grant from one node and
    /// `PUT` to another. Whoever can read the database can mint upload capabilities (not read
    /// any message: blobs are end-to-end encrypted).
    public func sharedCapabilityKey() async throws -> SecureBytes {
        var fresh = try SecureBytes(randomCount: 32).withUnsafeBytes { Data($0) }
        defer { fresh.resetBytes(in: 0..<fresh.count) }
        let candidate = fresh
        let stored: Data = try await retrying(timeout: timeout, logger: logger) { [client] in
            try await client.query("INSERT INTO media_capability_key (key) VALUES (\(candidate)) ON CONFLICT (one) DO NOTHING")
            for try await key in try await client.query("SELECT key FROM media_capability_key").decode(Data.self) { return key }
            throw MediaStoreError.io("no media capability key")
        }
        var bytes = [UInt8](stored)
        defer { SecureBytes.wipe(&bytes) }
        guard bytes.count == 32 else { throw MediaStoreError.io("media capability key") }
        return SecureBytes(copying: bytes)
    }

    /// Runs `body` as a task and blocks this (thread-pool) thread until it ends.
    func blocking<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresClient) async throws -> T) throws(MediaStoreError) -> T {
        let result = Mutex<Result<T, RelayStoreError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let client = self.client, timeout = self.timeout, logger = self.logger
        Task {
            do throws(RelayStoreError) {
                let value = try await retrying(timeout: timeout, logger: logger) { try await body(client) }
                result.withLock { $0 = .success(value) }
            } catch {
                result.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        switch result.withLock({ $0 }) {
        case .success(let value)?: return value
        case .failure?, nil: throw .io(what)
        }
    }

    public func beginUpload(id: [UInt8], size: Int, createdAt: UInt64) throws(MediaStoreError) -> any MediaUpload {
        guard id.count == 16 else { throw .badID }
        let media = Data(id), started = Int64(clamping: createdAt), length = Int64(size)
        let uploadID: Int64? = try blocking("begin upload") { client in
            let rows = try await client.query("""
                WITH taken AS (SELECT 1 FROM media_blobs WHERE media_id = \(media))
                INSERT INTO media_uploads (media_id, size, started_at)
                SELECT \(media), \(length), \(started) WHERE NOT EXISTS (SELECT 1 FROM taken)
                RETURNING upload_id
                """)
            for try await id in rows.decode(Int64.self) { return id }
            return nil
        }
        guard let uploadID else { throw .exists }
        return Upload(store: self, mediaID: media, uploadID: uploadID, size: size, createdAt: started)
    }

    public func open(id: [UInt8]) throws(MediaStoreError) -> (any MediaReader)? {
        guard id.count == 16 else { return nil }
        let media = Data(id)
        let found: (Int64, Int64, Int64)? = try blocking("open blob") { client in
            let rows = try await client.query("SELECT upload_id, size, created_at FROM media_blobs WHERE media_id = \(media)")
            for try await row in rows.decode((Int64, Int64, Int64).self) { return row }
            return nil
        }
        guard let (upload, size, created) = found else { return nil }
        return Reader(store: self, uploadID: upload, size: Int(size), createdAt: UInt64(max(0, created)))
    }

    public func purge(createdBefore cutoff: UInt64) throws(MediaStoreError) -> Int {
        let before = Int64(clamping: cutoff)
        return try blocking("purge media") { client in
            // Committed blobs before the cutoff, then never-committed uploads started before it;
            // their chunks go with them (ON DELETE CASCADE).
            var removed = 0
            let rows = try await client.query("""
                WITH old AS (SELECT upload_id FROM media_blobs WHERE created_at < \(before))
                DELETE FROM media_uploads WHERE upload_id IN (SELECT upload_id FROM old) RETURNING upload_id
                """)
            for try await _ in rows.decode(Int64.self) { removed += 1 }
            try await client.query("""
                DELETE FROM media_uploads u WHERE u.started_at < \(before)
                    AND NOT EXISTS (SELECT 1 FROM media_blobs b WHERE b.upload_id = u.upload_id)
                """)
            return removed
        }
    }

    public func count() throws(MediaStoreError) -> Int {
        try blocking("count media") { client in
            for try await n in try await client.query("SELECT count(*)::bigint FROM media_blobs").decode(Int64.self) { return Int(n) }
            return 0
        }
    }

    final class Upload: MediaUpload {
        let store: PostgresMediaStore
        let mediaID: Data, uploadID: Int64, size: Int, createdAt: Int64
        /// Bytes not yet in a chunk row (less than one chunk).
        var pending: [UInt8] = []
        var nextSeq: Int32 = 0
        var written = 0
        var closed = false

        init(store: PostgresMediaStore, mediaID: Data, uploadID: Int64, size: Int, createdAt: Int64) {
            self.store = store; self.mediaID = mediaID; self.uploadID = uploadID; self.size = size; self.createdAt = createdAt
            pending.reserveCapacity(min(size, PostgresMediaStore.chunkSize))
        }

        deinit { if !closed { abort() } }

        func append(_ bytes: UnsafeRawBufferPointer) throws(MediaStoreError) {
            guard !closed else { throw .io("write after close") }
            guard written + bytes.count <= size else { throw .tooLong }
            var offset = 0
            while offset < bytes.count {
                let take = min(PostgresMediaStore.chunkSize - pending.count, bytes.count - offset)
                pending.append(contentsOf: bytes[offset..<(offset + take)])
                offset += take
                if pending.count == PostgresMediaStore.chunkSize { try flush() }
            }
            written += bytes.count
        }

        /// Writes `pending` as the next chunk row (a retry after a lost answer finds it there).
        private func flush() throws(MediaStoreError) {
            guard !pending.isEmpty else { return }
            let chunk = Data(pending), seq = nextSeq, upload = uploadID
            try store.blocking("write blob") { client in
                try await client.query("""
                    INSERT INTO media_chunks (upload_id, seq, bytes) VALUES (\(upload), \(seq), \(chunk))
                    ON CONFLICT (upload_id, seq) DO NOTHING
                    """)
            }
            pending.removeAll(keepingCapacity: true)
            nextSeq += 1
        }

        func commit() throws(MediaStoreError) {
            guard !closed else { throw .io("commit after close") }
            guard written == size else { throw .tooShort(expected: size, actual: written) }
            try flush()
            let media = mediaID, upload = uploadID, length = Int64(size), created = createdAt
            let winner: Int64? = try store.blocking("commit blob") { client in
                let rows = try await client.query("""
                    WITH ins AS (
                        INSERT INTO media_blobs (media_id, upload_id, size, created_at) VALUES (\(media), \(upload), \(length), \(created))
                        ON CONFLICT (media_id) DO NOTHING RETURNING upload_id)
                    SELECT upload_id FROM ins UNION ALL SELECT upload_id FROM media_blobs WHERE media_id = \(media) LIMIT 1
                    """)
                for try await id in rows.decode(Int64.self) { return id }
                return nil
            }
            closed = true
            guard winner == uploadID else {
                dropRows()
                throw .exists
            }
        }

        func abort() {
            guard !closed else { return }
            closed = true
            pending = []
            dropRows()
        }

        private func dropRows() {
            let upload = uploadID
            _ = try? store.blocking("drop upload") { client in
                try await client.query("""
                    DELETE FROM media_uploads u WHERE u.upload_id = \(upload)
                        AND NOT EXISTS (SELECT 1 FROM media_blobs b WHERE b.upload_id = u.upload_id)
                    """)
            }
        }
    }

    final class Reader: MediaReader {
        let store: PostgresMediaStore
        let uploadID: Int64
        let size: Int, createdAt: UInt64
        /// The last chunk row read, by sequence number.
        var cached: (seq: Int32, bytes: [UInt8])?
        var closed = false

        init(store: PostgresMediaStore, uploadID: Int64, size: Int, createdAt: UInt64) {
            self.store = store; self.uploadID = uploadID; self.size = size; self.createdAt = createdAt
        }

        private func chunk(_ seq: Int32) throws(MediaStoreError) -> [UInt8] {
            if let cached, cached.seq == seq { return cached.bytes }
            let upload = uploadID
            let bytes: [UInt8]? = try store.blocking("read blob") { client in
                let rows = try await client.query("SELECT bytes FROM media_chunks WHERE upload_id = \(upload) AND seq = \(seq)")
                for try await data in rows.decode(Data.self) { return [UInt8](data) }
                return nil
            }
            // A committed blob has every chunk; a missing one is a damaged store.
            guard let bytes else { throw .io("read blob") }
            cached = (seq, bytes)
            return bytes
        }

        func read(offset: Int, count: Int) throws(MediaStoreError) -> [UInt8] {
            guard !closed else { throw .io("read after close") }
            guard offset < size, count > 0 else { return [] }
            var out: [UInt8] = []
            var at = offset
            let end = min(size, offset + count)
            while at < end {
                let seq = Int32(at / PostgresMediaStore.chunkSize)
                let bytes = try chunk(seq)
                let start = at - Int(seq) * PostgresMediaStore.chunkSize
                guard start < bytes.count else { throw .io("read blob") }
                let take = min(bytes.count - start, end - at)
                out += bytes[start..<(start + take)]
                at += take
            }
            return out
        }

        func close() {
            closed = true
            cached = nil
        }
    }
}
