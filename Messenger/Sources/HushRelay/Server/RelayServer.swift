import Foundation
import Hush
import HushTransport
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Prometheus
import ServiceLifecycle
import UnixSignals

/// The network front of a ``Relay``: one HTTP/1.1 port with the WebSocket channel at
/// `/v1/ws`, `GET /health`, `GET /metrics` and `GET /v1/trust-root` (`Docs/spec/relay.md` §2, §12), on SwiftNIO
/// directly. Each connection is a pipeline of NIO channel handlers on one event loop — HTTP/1
/// until the upgrade, then NIOWebSocket's frame codec, a fragment aggregator and a
/// ``RelayConnection`` — with no Swift task per connection (Docs/architecture.md §Messenger).
public enum RelayServer {
    /// The relay's HTTP/WebSocket server as a swift-service-lifecycle `Service`.
    /// - Parameters:
    ///   - registry: the Prometheus registry `MetricsSystem` was bootstrapped with (`/metrics` emits it).
    ///   - onRunning: called with the bound port once the server listens.
    public static func application(
        relay: Relay, host: String = "127.0.0.1", port: Int, registry: PrometheusCollectorRegistry? = nil,
        logger: Logger = Logger(label: "hush-relay"), onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> RelayHTTPServer {
        RelayHTTPServer(relay: relay, host: host, port: port, registry: registry, logger: logger, onRunning: onRunning)
    }

    /// The server and the relay's service in one group, shut down gracefully on
    /// `gracefulShutdownSignals` within 8 seconds.
    public static func serviceGroup(application: RelayHTTPServer, relay: Relay,
                                    gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint],
                                    logger: Logger) -> ServiceGroup {
        var config = ServiceGroupConfiguration(services: [application, RelayService(relay: relay)],
                                               gracefulShutdownSignals: gracefulShutdownSignals, logger: logger)
        config.maximumGracefulShutdownDuration = .seconds(8)
        return ServiceGroup(configuration: config)
    }
}

/// The listening socket and its connections' pipelines. On graceful shutdown it stops
/// accepting and waits (bounded) for the open connections to end; the ``RelayService`` after
/// it in the group closes them with 1001 first (services shut down in reverse order).
public struct RelayHTTPServer: Service {
    let relay: Relay
    let host: String
    let port: Int
    let registry: PrometheusCollectorRegistry?
    let logger: Logger
    let onRunning: @Sendable (Int) async -> Void

    /// Runs the server alone until SIGTERM/SIGINT (for tools; `hush-relay serve` uses
    /// ``RelayServer/serviceGroup(application:relay:gracefulShutdownSignals:logger:)``).
    public func runService(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        try await RelayServer.serviceGroup(application: self, relay: relay, gracefulShutdownSignals: gracefulShutdownSignals,
                                           logger: logger).run()
    }

    /// Binds, serves until graceful shutdown (or cancellation), then stops accepting.
    public func run() async throws {
        let relay = self.relay
        let registry = self.registry
        let logger = self.logger
        let group = MultiThreadedEventLoopGroup.singleton
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4_096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try RelayServer.configure(channel, relay: relay, registry: registry, logger: logger)
                }
            }
        let server = try await bootstrap.bind(host: host, port: port).get()
        await onRunning(server.localAddress?.port ?? port)
        // Until graceful shutdown (or cancellation) begins.
        try? await gracefulShutdown()
        try? await server.close().get()
        if Task.isCancelled {
            // Cancelled (not a graceful shutdown): drop every connection.
            relay.dropAll()
        } else {
            // The RelayService closed every connection with 1001 before this service's
            // shutdown; wait for their close handshakes (≤ 2 s each, concurrently), bounded.
            await relay.waitForConnections(timeout: .seconds(3))
        }
    }
}

extension RelayServer {
    /// The per-connection pipeline before the upgrade: HTTP/1 codec, the upgrader, and the
    /// handler for `/health` and `/metrics`.
    static func configure(_ channel: Channel, relay: Relay, registry: PrometheusCollectorRegistry?, logger: Logger) throws {
        let http = HTTPEndpointHandler(relay: relay, registry: registry)
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: RelayProtocol.Limits.maxWebSocketMessage,
            automaticErrorHandling: false,
            shouldUpgrade: { channel, head in
                let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
                return channel.eventLoop.makeSucceededFuture(path == RelayProtocol.webSocketPath ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1_024,
                                                                    maxAccumulatedFrameSize: RelayProtocol.Limits.maxWebSocketMessage))
                    try sync.addHandler(RelayConnection(relay: relay, eventLoop: channel.eventLoop))
                }
            })
        let sync = channel.pipeline.syncOperations
        let boundHTTP = NIOLoopBound(http, eventLoop: channel.eventLoop)
        try sync.configureHTTPServerPipeline(
            withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
                context.pipeline.syncOperations.removeHandler(boundHTTP.value, promise: nil)
            }))
        try sync.addHandler(http)
    }
}

/// `GET /health` and `GET /metrics` (§12); anything else is 404. Store reads for `/metrics`
/// run off the event loop. Until the upgrade (when the upgrader removes this handler) it also
/// times the connection: one that has not sent a complete request within
/// ``RelayConfiguration/httpTimeout`` of opening, or of its last response, is closed
/// (counted as `hush_relay_handshakes_total{pattern="http",result="timeout"}`).
final class HTTPEndpointHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let relay: Relay
    let registry: PrometheusCollectorRegistry?
    private var head: HTTPRequestHead?
    private var timer: Scheduled<Void>?
    /// A request is being answered (no timeout until its response is written).
    private var answering = false

    init(relay: Relay, registry: PrometheusCollectorRegistry?) {
        self.relay = relay
        self.registry = registry
    }

    func handlerAdded(context: ChannelHandlerContext) {
        startTimer(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Upgraded (or the channel is gone): the WebSocket handshake timeout takes over.
        timer?.cancel()
        timer = nil
    }


    private func startTimer(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let timeout = relay.configuration.httpTimeout
        guard timeout > .zero else { return }
        let relay = self.relay
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) { [self] in
            timer = nil
            // A transfer has its own idle watchdog (60 s without body progress): the HTTP
            // timeout must not cut a long upload or download short. It applies again once the
            // transfer has finished and the kept-alive connection sits idle.
            if let transfer = activeMedia, !transfer.finished {
                startTimer(bound.value)
                return
            }
            guard !answering else { return }
            relay.metrics.handshake("http", "timeout")
            bound.value.close(promise: nil)
        }
    }

    /// A `/v1/media/…` request in progress (§17): it gets the body parts and answers itself.
    private var media: MediaExchange?
    /// The latest media exchange of this connection, until the next request: while it has not
    /// finished (its response still streaming), the HTTP timeout waits.
    private var activeMedia: MediaExchange?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            let path = h.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? h.uri
            if MediaExchange.blobID(fromPath: path), let service = relay.configuration.media {
                let exchange = MediaExchange(service: service, head: h, path: path, now: relay.configuration.clock())
                media = exchange
                activeMedia = exchange
                exchange.begin(context: context, handler: self)
                return
            }
            activeMedia = nil
            head = h
        case .body(let buffer):
            media?.body(context: context, handler: self, buffer)
        case .end:
            if let exchange = media {
                media = nil
                exchange.end(context: context, handler: self)
                return
            }
            guard let h = head else { return }
            head = nil
            answering = true
            respond(context: context, to: h)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        media?.connectionClosed()
        media = nil
        activeMedia = nil
        context.fireChannelInactive()
    }

    private func respond(context: ChannelHandlerContext, to head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard head.method == .GET else { return write(context, head, .methodNotAllowed, "text/plain", "method not allowed\n") }
        switch path {
        case "/health":
            let down = relay.isShuttingDown
            write(context, head, down ? .serviceUnavailable : .ok, "text/plain", down ? "shutting down\n" : "ok\n")
        case "/metrics":
            let relay = self.relay, registry = self.registry
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            Task {
                var text = registry?.emitToString() ?? ""
                let depth = (try? await relay.store.totalQueueDepth()) ?? -1
                text += "# TYPE hush_relay_queue_depth gauge\nhush_relay_queue_depth \(depth)\n"
                text += "# TYPE hush_relay_devices_connected gauge\nhush_relay_devices_connected \(relay.onlineDevices)\n"
                let body = text
                loop.execute {
                    let (handler, context) = bound.value
                    handler.write(context, head, .ok, "text/plain; version=0.0.4", body)
                }
            }
        case "/v1/trust-root":
            // The trust root's public key as 64 hex digits and a line end: what a client with no
            // pinned key may pin on first contact (spec §12; `hush init` without --trust-root).
            write(context, head, .ok, "text/plain", Hex.encode(relay.identity.trustRoot.rawRepresentation) + "\n")
        default:
            write(context, head, .notFound, "text/plain", "not found\n")
        }
    }

    private func write(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus,
                       _ type: String, _ body: String) {
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: String(buffer.readableBytes))
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        answering = false
        startTimer(context)  // a kept-alive connection has the timeout again for its next request
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}

/// Background work of a relay (TTL purge) and its part of graceful shutdown: on shutdown it
/// stops new logins and closes every connection with 1001 (going away). Put it after the
/// server in a `ServiceGroup` (services shut down in reverse order, so the connections are
/// closed before the server stops): see ``RelayServer/serviceGroup(application:relay:gracefulShutdownSignals:logger:)``.
public struct RelayService: Service {
    let relay: Relay

    /// A service for `relay`.
    public init(relay: Relay) { self.relay = relay }

    /// Runs until graceful shutdown.
    public func run() async throws {
        await relay.purgeExpired()
        // The purge loop ends (its sleep is cancelled) when graceful shutdown begins.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: relay.configuration.purgeInterval)
                await relay.purgeExpired()
            }
        }
        relay.beginShutdown()
        await relay.closeAll()
    }
}
