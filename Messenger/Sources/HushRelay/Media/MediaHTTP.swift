import Foundation
import Hush
import NIOCore
import NIOHTTP1
import NIOPosix

/// A value the event loop hands to the thread pool and back; only one side touches it at a time
/// (each step starts after the previous one completed).
final class PoolBox<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

/// The media endpoints' error codes (Docs/spec/relay.md §17.3): the status and the code word
/// sent in the `X-Hush-Error` header and as the body.
public enum MediaHTTPError: String, Error, Sendable, CaseIterable {
    case notFound = "not-found"
    case capabilityMissing = "capability-missing"
    case capabilityInvalid = "capability-invalid"
    case capabilityExpired = "capability-expired"
    case lengthRequired = "length-required"
    case sizeMismatch = "size-mismatch"
    case tooLarge = "too-large"
    case exists = "exists"
    case rangeNotSatisfiable = "range-not-satisfiable"
    case methodNotAllowed = "method-not-allowed"
    case storageFailure = "storage-failure"

    public var status: HTTPResponseStatus {
        switch self {
        case .notFound: .notFound
        case .capabilityMissing: .unauthorized
        case .capabilityInvalid, .capabilityExpired: .forbidden
        case .lengthRequired: .lengthRequired
        case .sizeMismatch: .badRequest
        case .tooLarge: .payloadTooLarge
        case .exists: .conflict
        case .rangeNotSatisfiable: .rangeNotSatisfiable
        case .methodNotAllowed: .methodNotAllowed
        case .storageFailure: .internalServerError
        }
    }
}

/// One request to `/v1/media/<id>`: a streamed `PUT` (upload with a capability) or `GET` (with an
/// optional `Range: bytes=N-` / `bytes=N-M`). Runs on the connection's event loop; store calls
/// run on NIO's thread pool, at most one at a time per request, and reading from the socket
/// pauses while more than ``maxQueuedWrites`` store steps (each up to ``writeGather`` bytes) wait,
/// so memory stays bounded.
final class MediaExchange {
    static let path = "/v1/media/"
    static let maxQueuedWrites = 4
    /// A transfer during which no body byte moved for this long is dropped (a stalled upload,
    /// or a reader that stopped reading); checked every ``watchdogPeriod``.
    static let idleLimit = TimeAmount.seconds(60)
    static let watchdogPeriod = TimeAmount.seconds(10)

    let service: MediaService
    let head: HTTPRequestHead
    let id: [UInt8]?
    let now: UInt64
    private(set) var finished = false
    /// An upload under way: the queue of store steps and the bytes accepted so far.
    private var upload: PoolBox<(any MediaUpload)?>?
    private var chain: EventLoopFuture<Void>?
    private var queued = 0
    private var bodyBytes = 0
    private var grantedSize = 0
    private var readsPaused = false
    private var rejected = false
    private var lastActivity = NIODeadline.now()
    private var watchdog: RepeatedTask?

    init(service: MediaService, head: HTTPRequestHead, path: String, now: UInt64) {
        self.service = service
        self.head = head
        self.now = now
        let hex = String(path.dropFirst(Self.path.count))
        if hex.utf8.count == 32, hex == hex.lowercased(), let bytes = try? Hex.decode(hex) { id = bytes } else { id = nil }
    }

    static func blobID(fromPath path: String) -> Bool { path.hasPrefix(Self.path) }

    // MARK: requests

    func begin(context: ChannelHandlerContext, handler: HTTPEndpointHandler) {
        guard let id else { return reject(context, handler, .notFound) }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        watchdog = context.eventLoop.scheduleRepeatedTask(initialDelay: Self.watchdogPeriod, delay: Self.watchdogPeriod) { task in
            let (me, context) = bound.value
            guard !me.finished else { return task.cancel() }
            if NIODeadline.now() - me.lastActivity > Self.idleLimit {
                task.cancel()
                // The close runs connectionClosed(), which aborts an upload after its queued
                // store steps (never under one), and a download stops at its next completion.
                context.close(promise: nil)
            }
        }
        switch head.method {
        case .PUT: beginUpload(context: context, handler: handler, id: id)
        case .GET: break  // answered at .end
        default: reject(context, handler, .methodNotAllowed)
        }
    }

    func body(context: ChannelHandlerContext, handler: HTTPEndpointHandler, _ buffer: ByteBuffer) {
        guard head.method == .PUT, !rejected, let upload else { return }
        lastActivity = .now()
        bodyBytes += buffer.readableBytes
        guard bodyBytes <= grantedSize else {
            // More than Content-Length said: HTTP framing prevents this, but never store it.
            upload.value?.abort()
            return reject(context, handler, .tooLarge)
        }
        // Gathered into one store step per ``writeGather`` bytes (socket reads bring ≤ 64 KiB):
        // a quarter of the thread-pool hops, the same bytes in memory at most.
        gathered.append(buffer)
        gatheredBytes += buffer.readableBytes
        if gatheredBytes >= Self.writeGather { flushGathered(context: context) }
    }

    static let writeGather = 262_144
    private var gathered: [ByteBuffer] = []
    private var gatheredBytes = 0

    private func flushGathered(context: ChannelHandlerContext) {
        guard !gathered.isEmpty else { return }
        let parts = gathered
        gathered = []
        gatheredBytes = 0
        enqueue(context: context) { box in
            for part in parts {
                try part.withUnsafeReadableBytes { (raw) throws(MediaStoreError) in try box.value?.append(raw) }
            }
        }
    }

    func end(context: ChannelHandlerContext, handler: HTTPEndpointHandler) {
        guard !rejected else { return }
        switch head.method {
        case .PUT:
            guard upload != nil else { return }
            flushGathered(context: context)
            enqueue(context: context) { box in try box.value?.commit() }
            let bound = NIOLoopBound((self, handler, context), eventLoop: context.eventLoop)
            chain?.assumeIsolated().whenComplete { result in
                let (me, handler, context) = bound.value
                switch result {
                case .success:
                    MediaMetrics.uploads.increment()
                    MediaMetrics.uploadBytes.increment(by: me.grantedSize)
                    me.respond(context, handler, .created, body: "stored\n")
                case .failure(let error as MediaStoreError) where error == .exists: me.reject(context, handler, .exists)
                case .failure(MediaStoreError.tooShort): me.reject(context, handler, .sizeMismatch)
                case .failure: me.reject(context, handler, .storageFailure)
                }
            }
        case .GET:
            if let id { download(context: context, handler: handler, id: id) }
        default: break
        }
    }

    func connectionClosed() {
        watchdog?.cancel()
        if downloadReader != nil, !finished { return stopDownload() }
        guard let upload, !finished else { return }
        // The upload's own steps may still be queued: abort after them.
        let box = upload
        if let chain {
            chain.whenComplete { _ in _ = NIOThreadPool.singleton.runIfActive(eventLoop: chain.eventLoop) { box.value?.abort() } }
        } else {
            box.value?.abort()
        }
        finished = true
    }

    // MARK: upload

    private func beginUpload(context: ChannelHandlerContext, handler: HTTPEndpointHandler, id: [UInt8]) {
        if head.headers.contains(name: "Transfer-Encoding") { return reject(context, handler, .lengthRequired) }
        guard let lengthText = head.headers.first(name: "Content-Length"), let length = Int(lengthText), length >= 0 else {
            return reject(context, handler, .lengthRequired)
        }
        guard length <= service.maxBlobSize else { return reject(context, handler, .tooLarge) }
        guard let auth = head.headers.first(name: "Authorization"), auth.hasPrefix("Hush-Upload "),
              case let hex = String(auth.dropFirst("Hush-Upload ".count)), hex.utf8.count == 96, hex == hex.lowercased(),
              let token = try? Hex.decode(hex)
        else { return reject(context, handler, .capabilityMissing) }
        switch MediaCapability.verify(token: token, mediaID: id, contentLength: length, now: now, service: service) {
        case .failure(.missing): return reject(context, handler, .capabilityMissing)
        case .failure(.invalid): return reject(context, handler, .capabilityInvalid)
        case .failure(.expired): return reject(context, handler, .capabilityExpired)
        case .failure(.sizeMismatch): return reject(context, handler, .sizeMismatch)
        case .success(let size): grantedSize = size
        }
        let box = PoolBox<(any MediaUpload)?>(nil)
        upload = box
        let store = service.store, size = grantedSize, createdAt = now
        chain = NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) {
            box.value = try store.beginUpload(id: id, size: size, createdAt: createdAt)
        }
        if head.headers.first(name: "Expect")?.lowercased() == "100-continue" {
            context.writeAndFlush(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: head.version, status: .continue))),
                                  promise: nil)
        }
    }

    /// Runs `step` on the thread pool after the steps before it; a failed step fails the rest.
    private func enqueue(context: ChannelHandlerContext, _ step: @escaping @Sendable (PoolBox<(any MediaUpload)?>) throws -> Void) {
        guard let upload, let previous = chain else { return }
        queued += 1
        if queued > Self.maxQueuedWrites, !readsPaused {
            readsPaused = true
            _ = context.channel.setOption(ChannelOptions.autoRead, value: false)
        }
        let box = upload
        let loop = context.eventLoop
        let next = previous.flatMap { NIOThreadPool.singleton.runIfActive(eventLoop: loop) { try step(box) } }
        chain = next
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        next.assumeIsolated().whenComplete { _ in
            let (me, context) = bound.value
            me.queued -= 1
            if me.readsPaused, me.queued <= 1 {
                me.readsPaused = false
                _ = context.channel.setOption(ChannelOptions.autoRead, value: true)
                context.read()
            }
        }
    }

    // MARK: download

    private func download(context: ChannelHandlerContext, handler: HTTPEndpointHandler, id: [UInt8]) {
        let store = service.store
        // A blob is served while now < createdAt + TTL (§19.5).
        let ttl = service.ttlMilliseconds, now = self.now
        let bound = NIOLoopBound((self, handler, context), eventLoop: context.eventLoop)
        NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) { () throws -> PoolBox<(any MediaReader)?> in
            PoolBox(try store.open(id: id))
        }.assumeIsolated().whenComplete { result in
            let (me, handler, context) = bound.value
            guard case .success(let box) = result else { return me.reject(context, handler, .storageFailure) }
            guard let reader = box.value, reader.createdAt &+ ttl > now else {
                box.value?.close()
                return me.reject(context, handler, .notFound)
            }
            let size = reader.size
            var start = 0, end = size  // [start, end)
            var status = HTTPResponseStatus.ok
            if let range = me.head.headers.first(name: "Range") {
                switch Self.parseRange(range, size: size) {
                case .none: break
                case .some(.none):
                    reader.close()
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Range", value: "bytes */\(size)")
                    return me.reject(context, handler, .rangeNotSatisfiable, extra: headers)
                case .some(.some(let r)):
                    start = r.lowerBound; end = r.upperBound; status = .partialContent
                }
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/octet-stream")
            headers.add(name: "Content-Length", value: String(end - start))
            headers.add(name: "Accept-Ranges", value: "bytes")
            if status == .partialContent { headers.add(name: "Content-Range", value: "bytes \(start)-\(end - 1)/\(size)") }
            if !me.head.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: me.head.version, status: status, headers: headers))),
                          promise: nil)
            me.stream(context: context, reader: box, from: start, to: end)
        }
    }

    /// Streams `[offset, end)` of the blob: one read at a time on the thread pool, and the next
    /// read starts as soon as the previous one arrived, while its bytes are written, so disk
    /// reads and socket writes overlap. At most ``maxUnflushedChunks`` chunks wait for the
    /// socket, so a download holds at most that many plus one ``downloadChunk`` in memory
    /// whatever the blob's size, and a slow reader slows the reads down.
    private func stream(context: ChannelHandlerContext, reader box: PoolBox<(any MediaReader)?>, from offset: Int, to end: Int) {
        downloadReader = box
        downloadNext = offset
        downloadEnd = end
        pump(context: context)
    }

    static let downloadChunk = 262_144
    static let maxUnflushedChunks = 2
    private var downloadReader: PoolBox<(any MediaReader)?>?
    private var downloadNext = 0
    private var downloadEnd = 0
    private var downloadReading = false
    private var downloadUnflushed = 0

    /// Ends a download early. The reader is closed now, or, if a read is running on the thread
    /// pool, by that read's completion: never under a running read.
    private func stopDownload() {
        finished = true
        watchdog?.cancel()
        if !downloadReading { downloadReader?.value?.close() }
    }

    private func pump(context: ChannelHandlerContext) {
        guard !finished, let box = downloadReader else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        guard context.channel.isActive else { return stopDownload() }
        if downloadNext >= downloadEnd {
            guard !downloadReading, downloadUnflushed == 0 else { return }
            box.value?.close()
            MediaMetrics.downloads.increment()
            let keepAlive = head.isKeepAlive
            finished = true
            watchdog?.cancel()
            context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).assumeIsolated().whenComplete { _ in
                if !keepAlive { bound.value.1.close(promise: nil) }
            }
            return
        }
        guard !downloadReading, downloadUnflushed < Self.maxUnflushedChunks else { return }
        downloadReading = true
        let offset = downloadNext
        let count = min(Self.downloadChunk, downloadEnd - offset)
        let allocator = context.channel.allocator
        NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) { () throws -> ByteBuffer in
            var buffer = allocator.buffer(capacity: count)
            let n = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw throws(MediaStoreError) in
                guard let reader = box.value else { return 0 }
                return try reader.read(offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<count]))
            }
            _ = n
            return buffer
        }.assumeIsolated().whenComplete { result in
            let (me, context) = bound.value
            me.downloadReading = false
            guard !me.finished else {
                box.value?.close()  // stopped while this read ran: closed here, not under it
                return
            }
            guard case .success(let buffer) = result, buffer.readableBytes > 0 else {
                // The blob shrank or the read failed mid-response: the length is promised, so close.
                box.value?.close()
                me.finished = true
                me.watchdog?.cancel()
                context.close(promise: nil)
                return
            }
            let count = buffer.readableBytes
            me.downloadNext += count
            me.downloadUnflushed += 1
            context.writeAndFlush(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer)))).assumeIsolated().whenComplete { written in
                let (me, context) = bound.value
                me.downloadUnflushed -= 1
                guard case .success = written else { return me.stopDownload() }
                me.lastActivity = .now()
                MediaMetrics.downloadBytes.increment(by: count)
                me.pump(context: context)
            }
            me.pump(context: context)
        }
    }

    /// `bytes=N-` or `bytes=N-M` (one range). nil: no usable Range header (serve it all, as
    /// RFC 9110 §14.2 allows); .some(nil): unsatisfiable (N ≥ size).
    static func parseRange(_ value: String, size: Int) -> Range<Int>?? {
        guard value.hasPrefix("bytes=") else { return nil }
        let spec = value.dropFirst(6)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return nil }
        guard let first = Int(spec[..<dash]), first >= 0 else { return nil }
        let lastText = spec[spec.index(after: dash)...]
        var last = size - 1
        if !lastText.isEmpty {
            guard let l = Int(lastText), l >= first else { return nil }
            last = min(l, size - 1)
        }
        guard first < size else { return .some(nil) }
        return .some(first..<(last + 1))
    }

    // MARK: responses

    private func reject(_ context: ChannelHandlerContext, _ handler: HTTPEndpointHandler, _ error: MediaHTTPError,
                        extra: HTTPHeaders = HTTPHeaders()) {
        guard !finished else { return }
        rejected = true
        MediaMetrics.refused(error.rawValue)
        var headers = extra
        headers.add(name: "X-Hush-Error", value: error.rawValue)
        // A rejected upload's body is not read: close after the response.
        let close = head.method == .PUT || !head.isKeepAlive
        respond(context, handler, error.status, body: error.rawValue + "\n", headers: headers, close: close)
        if let upload { let box = upload; chain?.whenComplete { _ in box.value?.abort() } }
    }

    private func respond(_ context: ChannelHandlerContext, _ handler: HTTPEndpointHandler, _ status: HTTPResponseStatus,
                         body: String, headers extra: HTTPHeaders = HTTPHeaders(), close: Bool = false) {
        guard !finished else { return }
        finished = true
        watchdog?.cancel()
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        var headers = extra
        headers.add(name: "Content-Type", value: "text/plain")
        headers.add(name: "Content-Length", value: String(buffer.readableBytes))
        let closing = close || !head.isKeepAlive
        if closing { headers.add(name: "Connection", value: "close") }
        context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).assumeIsolated().whenComplete { _ in
            if closing { context.close(promise: nil) }
        }
    }
}
