import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Why a media transfer with the relay failed (Docs/spec/relay.md §19.3).
public enum MediaTransferError: Error, Equatable, Sendable {
    /// The relay answered with an error status; `code` is its `X-Hush-Error` word
    /// (`capability-expired`, `too-large`, …), empty if it sent none.
    case refused(status: Int, code: String)
    /// The connection ended before the whole body was sent or received; `received` is how many
    /// body bytes of the blob (counted from its start) arrived: resume a download from there.
    case connectionLost(received: Int)
    /// The relay's answer is not what the protocol says (a wrong `Content-Range`, no status).
    case badResponse(String)
    /// No TCP connection to the relay.
    case connectFailed
}

/// Streams blobs to and from the relay's `/v1/media/<id>` endpoints over HTTP/1.1 on the
/// relay's WebSocket port. One TCP connection per transfer; the connection closes if no byte
/// moves either way for ``idleTimeout``. Bodies move in pieces: memory stays at a few chunks whatever
/// the blob's size.
public struct MediaHTTPClient: Sendable {
    public let host: String
    public let port: Int
    /// A transfer with no byte read or written for this long is dropped (``MediaTransferError/connectionLost(received:)``).
    public var idleTimeout: TimeAmount = .seconds(30)

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// The endpoint for `relayURL` (`ws://host:port/…`): the same host and port.
    public init?(relayURL: URL) {
        guard let host = relayURL.host else { return nil }
        self.init(host: host, port: relayURL.port ?? (relayURL.scheme == "wss" ? 443 : 80))
    }

    typealias Channel = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

    private func connect() async throws(MediaTransferError) -> Channel {
        let idle = idleTimeout
        do {
            return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                // Reads of up to 256 KiB (NIO's default stops at 64 KiB): a quarter of the pieces
                // through the async stream for a large blob.
                .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 2_048, initial: 65_536, maximum: 262_144))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHTTPClientHandlers()
                        try sync.addHandler(IdleStateHandler(allTimeout: idle))
                        try sync.addHandler(IdleCloser())
                        return try Channel(wrappingChannelSynchronously: channel)
                    }
                }
        } catch { throw .connectFailed }
    }

    /// `PUT`s a blob of exactly `size` bytes under an upload capability. `body` returns the
    /// next piece of the blob, nil at its end; `progress` hears the bytes sent so far.
    /// - Throws: ``MediaTransferError``, or what `body` throws.
    public func upload(mediaID: String, token: [UInt8], size: Int, progress: (Int) -> Void = { _ in },
                       body: () async throws -> [UInt8]?) async throws {
        let channel = try await connect()
        var head = HTTPRequestHead(version: .http1_1, method: .PUT, uri: "/v1/media/\(mediaID)")
        head.headers.add(name: "Host", value: "\(host):\(port)")
        head.headers.add(name: "Content-Type", value: "application/octet-stream")
        head.headers.add(name: "Content-Length", value: String(size))
        head.headers.add(name: "Authorization", value: "Hush-Upload " + token.map { String(format: "%02x", $0) }.joined())
        let outcome: Result<Void, any Error> = try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            do {
                try await outbound.write(.head(head))
                var sent = 0
                while let piece = try await body() {
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: piece))))
                    sent += piece.count
                    progress(sent)
                }
                try await outbound.write(.end(nil))
            } catch let error as MediaTransferError {
                return .failure(error)
            } catch is CancellationError {
                return .failure(CancellationError())
            } catch {
                // The relay may have refused early and closed: its answer may still be readable.
                if let answer = try? await Self.readStatus(&iterator), answer.status >= 300 {
                    return .failure(MediaTransferError.refused(status: answer.status, code: answer.code))
                }
                return .failure(MediaTransferError.connectionLost(received: 0))
            }
            do {
                let answer = try await Self.readStatus(&iterator)
                guard answer.status == 201 else { return .failure(MediaTransferError.refused(status: answer.status, code: answer.code)) }
                return .success(())
            } catch { return .failure(error) }
        }
        try outcome.get()
    }

    /// Reads a response head and drains its body.
    private static func readStatus(_ iterator: inout NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator)
        async throws -> (status: Int, code: String) {
        var status: (Int, String)?
        do {
            while let part = try await iterator.next() {
                switch part {
                case .head(let h) where h.status == .continue: continue
                case .head(let h): status = (Int(h.status.code), h.headers.first(name: "X-Hush-Error") ?? "")
                case .body: break
                case .end:
                    guard let status else { throw MediaTransferError.badResponse("no status") }
                    return status
                }
            }
        } catch let error as MediaTransferError { throw error } catch {}
        if let status { return status }
        throw MediaTransferError.connectionLost(received: 0)
    }

    /// `GET`s a blob from byte `offset` on (a `Range` request when `offset > 0`), handing each
    /// piece to `sink`; the blob's total length. A dropped connection throws
    /// ``MediaTransferError/connectionLost(received:)`` with the bytes had so far (from the
    /// blob's start, `offset` included): call again from there.
    /// - Throws: ``MediaTransferError``, or what `sink` throws.
    @discardableResult
    public func download(mediaID: String, from offset: Int = 0, sink: ([UInt8]) async throws -> Void) async throws -> Int {
        let channel = try await connect()
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v1/media/\(mediaID)")
        head.headers.add(name: "Host", value: "\(host):\(port)")
        head.headers.add(name: "Connection", value: "close")
        if offset > 0 { head.headers.add(name: "Range", value: "bytes=\(offset)-") }
        return try await channel.executeThenClose { inbound, outbound in
            do { try await outbound.write(.head(head)); try await outbound.write(.end(nil)) } catch {
                throw MediaTransferError.connectionLost(received: offset)
            }
            var received = offset
            var total: Int?
            var skip = 0
            var expectedEnd = 0
            do {
                for try await part in inbound {
                    switch part {
                    case .head(let h):
                        switch h.status {
                        case .partialContent:
                            guard let range = h.headers.first(name: "Content-Range"),
                                  let parsed = Self.parseContentRange(range), parsed.start == offset
                            else { throw MediaTransferError.badResponse("Content-Range") }
                            total = parsed.total
                        case .ok:
                            guard let length = h.headers.first(name: "Content-Length").flatMap(Int.init) else {
                                throw MediaTransferError.badResponse("Content-Length")
                            }
                            total = length
                            skip = offset  // the relay ignored the range: drop what we had
                        default:
                            throw MediaTransferError.refused(status: Int(h.status.code), code: h.headers.first(name: "X-Hush-Error") ?? "")
                        }
                        expectedEnd = total ?? 0
                    case .body(let buffer):
                        var bytes = Array(buffer.readableBytesView)
                        if skip > 0 {
                            let drop = min(skip, bytes.count)
                            bytes.removeFirst(drop)
                            skip -= drop
                            if bytes.isEmpty { continue }
                        }
                        guard received + bytes.count <= expectedEnd else { throw MediaTransferError.badResponse("body longer than announced") }
                        try await sink(bytes)
                        received += bytes.count
                    case .end:
                        guard let total else { throw MediaTransferError.badResponse("no status") }
                        guard received == total else { throw MediaTransferError.connectionLost(received: received) }
                        return total
                    }
                }
            } catch let error as MediaTransferError { throw error } catch is HTTPParserError {
                throw MediaTransferError.connectionLost(received: received)
            } catch let error where !(error is ChannelError) && !(error is IOError) && !(error is NIOConnectionError) {
                throw error  // the sink's
            } catch {
                throw MediaTransferError.connectionLost(received: received)
            }
            throw MediaTransferError.connectionLost(received: received)
        }
    }

    /// `bytes a-b/total`.
    static func parseContentRange(_ value: String) -> (start: Int, end: Int, total: Int)? {
        guard value.hasPrefix("bytes ") else { return nil }
        let parts = value.dropFirst(6).split(separator: "/")
        guard parts.count == 2, let total = Int(parts[1]) else { return nil }
        let ends = parts[0].split(separator: "-")
        guard ends.count == 2, let a = Int(ends[0]), let b = Int(ends[1]), a <= b, b < total else { return nil }
        return (a, b, total)
    }
}

/// Closes a connection on which nothing was read for the idle timeout.
final class IdleCloser: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }
}
