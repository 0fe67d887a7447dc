import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// What a test WebSocket receives.
enum WSEvent: Sendable, Equatable {
    case binary([UInt8])
    case closed(UInt16?)
}

/// A minimal WebSocket client over NIOWebSocket for tests (no TLS, no fragmentation).
final class TestWebSocket: @unchecked Sendable {
    let channel: Channel
    let events: AsyncStream<WSEvent>
    private var iterator: AsyncStream<WSEvent>.AsyncIterator

    static let group = MultiThreadedEventLoopGroup.singleton

    private init(channel: Channel, events: AsyncStream<WSEvent>) {
        self.channel = channel
        self.events = events
        iterator = events.makeAsyncIterator()
    }

    /// Connects and upgrades. `autoRead: false` makes a client that never reads after the upgrade.
    static func connect(port: Int, path: String = "/v1/ws") async throws -> TestWebSocket {
        let (stream, continuation) = AsyncStream<WSEvent>.makeStream(bufferingPolicy: .unbounded)
        let upgraded = group.next().makePromise(of: Void.self)
        let bootstrap = ClientBootstrap(group: group).channelInitializer { channel in
            let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 17, automaticErrorHandling: false) { channel, _ in
                channel.pipeline.addHandler(FrameHandler(continuation: continuation))
            }
            // Succeed only once the upgrade handler has removed the HTTP handlers.
            let config: NIOHTTPClientUpgradeSendableConfiguration = (upgraders: [upgrader], completionHandler: { _ in upgraded.succeed() })
            return channel.pipeline.addHandler(RawLogger()).flatMap { channel.pipeline.addHTTPClientHandlers(withClientUpgrade: config) }.flatMap {
                channel.pipeline.addHandler(RequestSender(path: path, port: port, failed: upgraded))
            }
        }
        let channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
        try await upgraded.futureResult.get()
        return TestWebSocket(channel: channel, events: stream)
    }

    func send(_ bytes: [UInt8]) async throws {
        let frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: ByteBuffer(bytes: bytes))
        try await channel.writeAndFlush(frame).get()
    }

    func sendText(_ text: String) async throws {
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text))
        try await channel.writeAndFlush(frame).get()
    }

    /// The next event (binary message or close).
    func next() async -> WSEvent {
        await iterator.next() ?? .closed(nil)
    }

    /// Stops reading from the socket (the relay sees a client that never reads).
    func stopReading() async throws {
        try await channel.setOption(ChannelOptions.autoRead, value: false).get()
    }

    func close() async {
        try? await channel.close().get()
    }

    /// Drops the TCP connection without a close frame.
    func abort() async { await close() }
}

private final class RequestSender: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny
    typealias OutboundOut = HTTPClientRequestPart
    let path: String
    let port: Int
    let failed: EventLoopPromise<Void>

    init(path: String, port: Int, failed: EventLoopPromise<Void>) {
        self.path = path
        self.port = port
        self.failed = failed
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "127.0.0.1:\(port)")
        headers.add(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // The upgrade handler reports a refused upgrade as an error.
        failed.fail(error)
        context.close(promise: nil)
    }
}

private final class FrameHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame
    let continuation: AsyncStream<WSEvent>.Continuation
    private var closed = false

    init(continuation: AsyncStream<WSEvent>.Continuation) { self.continuation = continuation }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if ProcessInfo.processInfo.environment["RELAY_TEST_DEBUG"] != nil { print("client frame \(frame.opcode) \(frame.length)") }
        switch frame.opcode {
        case .binary:
            var d = frame.unmaskedData
            continuation.yield(.binary(d.readBytes(length: d.readableBytes) ?? []))
        case .connectionClose:
            var d = frame.unmaskedData
            let code = d.readInteger(as: UInt16.self)
            if !closed {
                closed = true
                continuation.yield(.closed(code))
                continuation.finish()
            }
            var reply = context.channel.allocator.buffer(capacity: 2)
            reply.writeInteger(code ?? 1000)
            let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: reply)
            context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in context.close(promise: nil) }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if ProcessInfo.processInfo.environment["RELAY_TEST_DEBUG"] != nil { print("client inactive") }
        if !closed {
            closed = true
            continuation.yield(.closed(nil))
            continuation.finish()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if ProcessInfo.processInfo.environment["RELAY_TEST_DEBUG"] != nil { print("test websocket error: \(error)") }
        context.close(promise: nil)
    }
}

final class RawLogger: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if ProcessInfo.processInfo.environment["RELAY_TEST_DEBUG"] != nil {
            let b = unwrapInboundIn(data)
            print("client raw read \(b.readableBytes): \(b.getBytes(at: b.readerIndex, length: min(8, b.readableBytes)) ?? [])")
        }
        context.fireChannelRead(data)
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if ProcessInfo.processInfo.environment["RELAY_TEST_DEBUG"] != nil { print("client event \(event)") }
        context.fireUserInboundEventTriggered(event)
    }
}
