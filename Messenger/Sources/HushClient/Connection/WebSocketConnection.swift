import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

/// What a ``WebSocketConnection`` receives.
enum WebSocketEvent: Sendable, Equatable {
    /// One binary message.
    case binary([UInt8])
    /// The connection closed (with the peer's close code, if it sent one).
    case closed(UInt16?)
}

/// Errors of the WebSocket client.
public enum WebSocketError: Error, Equatable, Sendable {
    /// TCP connect or the HTTP upgrade failed.
    case connectFailed(String)
    /// The connection is closed.
    case closed
}

/// A minimal WebSocket client over NIOWebSocket (no TLS; the relay's Noise layer encrypts):
/// binary messages in, binary messages out, pings answered, close handshake. Messages are
/// single frames (the relay never fragments; Noise messages are at most 65,535 bytes).
final class WebSocketConnection: Sendable {
    let channel: Channel
    let events: AsyncStream<WebSocketEvent>
    private let overflow: Overflow

    static var group: MultiThreadedEventLoopGroup { .singleton }

    private init(channel: Channel, events: AsyncStream<WebSocketEvent>, overflow: Overflow) {
        self.channel = channel
        self.events = events
        self.overflow = overflow
    }

    /// Whether the connection was closed because `events` was full: the messages buffered
    /// before that are still delivered, in order; none after them is.
    var overflowed: Bool { overflow.happened.load(ordering: .acquiring) }

    /// Connects to `host:port` and upgrades `path` to a WebSocket. At most `bufferLimit` received
    /// messages wait in ``events``; one more closes the connection (``overflowed``) instead of
    /// dropping a message silently.
    static func connect(host: String, port: Int, path: String, timeout: TimeAmount = .seconds(10),
                        bufferLimit: Int = 4_096) async throws(WebSocketError) -> WebSocketConnection {
        // Bounded (the relay's delivery window, 64, bounds what it sends before we ack); the
        // oldest are kept, so that a message that does not fit is the newest and nothing after
        // it is ever handed on.
        let (stream, continuation) = AsyncStream<WebSocketEvent>.makeStream(bufferingPolicy: .bufferingOldest(max(1, bufferLimit)))
        let overflow = Overflow()
        let upgraded = group.next().makePromise(of: Void.self)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 17, automaticErrorHandling: true) { channel, _ in
                    channel.pipeline.addHandler(FrameHandler(continuation: continuation, overflow: overflow))
                }
                let config: NIOHTTPClientUpgradeSendableConfiguration = (upgraders: [upgrader], completionHandler: { _ in upgraded.succeed() })
                return channel.pipeline.addHTTPClientHandlers(withClientUpgrade: config).flatMap {
                    channel.pipeline.addHandler(UpgradeRequest(host: host, port: port, path: path, failed: upgraded))
                }
            }
        let channel: Channel
        do { channel = try await bootstrap.connect(host: host, port: port).get() } catch {
            upgraded.fail(WebSocketError.connectFailed("\(error)"))  // never leak the promise
            throw .connectFailed("\(error)")
        }
        // The upgrade must finish in time too.
        let timer = channel.eventLoop.scheduleTask(in: timeout) { upgraded.fail(WebSocketError.connectFailed("upgrade timed out")) }
        do { try await upgraded.futureResult.get() } catch {
            timer.cancel()
            channel.close(promise: nil)
            throw .connectFailed("\(error)")
        }
        timer.cancel()
        return WebSocketConnection(channel: channel, events: stream, overflow: overflow)
    }

    /// Writes one binary message (NIOWebSocket masks client frames itself). Calls made in order
    /// reach the wire in that order.
    func send(_ bytes: [UInt8]) {
        let frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: ByteBuffer(bytes: bytes))
        channel.writeAndFlush(frame, promise: nil)
    }

    /// Sends a close frame (1000) and closes.
    func close() async {
        var data = channel.allocator.buffer(capacity: 2)
        data.writeInteger(UInt16(1000))
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data)
        try? await channel.writeAndFlush(frame).get()
        try? await channel.close().get()
    }

    /// Drops the TCP connection at once.
    func abort() { channel.close(promise: nil) }
}

private final class UpgradeRequest: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    typealias OutboundOut = HTTPClientRequestPart
    let host: String
    let port: Int
    let path: String
    let failed: EventLoopPromise<Void>

    init(host: String, port: Int, path: String, failed: EventLoopPromise<Void>) {
        self.host = host
        self.port = port
        self.path = path
        self.failed = failed
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(host):\(port)")
        headers.add(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.fireChannelRead(data) }

    func channelInactive(context: ChannelHandlerContext) {
        // Closed before the upgrade completed (a no-op once it has).
        failed.fail(WebSocketError.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failed.fail(error)
        context.close(promise: nil)
    }
}

/// Set once when a received message did not fit in the event buffer.
private final class Overflow: Sendable {
    let happened = Atomic<Bool>(false)
}

private final class FrameHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame
    let continuation: AsyncStream<WebSocketEvent>.Continuation
    let overflow: Overflow
    // Touched only on the channel's event loop.
    private var closed = false

    init(continuation: AsyncStream<WebSocketEvent>.Continuation, overflow: Overflow) {
        self.continuation = continuation
        self.overflow = overflow
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary:
            var d = frame.unmaskedData
            if case .dropped = continuation.yield(.binary(d.readBytes(length: d.readableBytes) ?? [])) {
                // The consumer is a full buffer behind: end the stream after what it holds (no
                // close event fits either) and drop the connection; the relay keeps the rest.
                overflow.happened.store(true, ordering: .releasing)
                closed = true
                continuation.finish()
                context.close(promise: nil)
            }
        case .connectionClose:
            var d = frame.unmaskedData
            let code = d.readInteger(as: UInt16.self)
            finish(code)
            var reply = context.channel.allocator.buffer(capacity: 2)
            reply.writeInteger(code ?? 1000)
            let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: reply)
            context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in context.close(promise: nil) }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .text:
            // The relay never sends text: a protocol violation.
            finish(nil)
            context.close(promise: nil)
        default:
            break
        }
    }

    private func finish(_ code: UInt16?) {
        guard !closed else { return }
        closed = true
        continuation.yield(.closed(code))
        continuation.finish()
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
