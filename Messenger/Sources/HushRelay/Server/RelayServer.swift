import Foundation
import Hummingbird
import HummingbirdWebSocket
import Hush
import HushTransport
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import UnixSignals

/// The network front of a ``Relay``: one HTTP/1.1 port with the WebSocket channel at
/// `/v1/ws`, `GET /health`, `GET /metrics` and `GET /v1/trust-root` (`Docs/spec/relay.md` §2, §10).
public enum RelayServer {
    /// Builds the Hummingbird application.
    /// - Parameters:
    ///   - registry: the Prometheus registry `MetricsSystem` was bootstrapped with (`/metrics` emits it).
    ///   - onRunning: called with the bound port once the server listens.
    public static func application(
        relay: Relay, host: String = "127.0.0.1", port: Int, registry: PrometheusCollectorRegistry? = nil,
        logger: Logger = Logger(label: "hush-relay"), onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Hummingbird.Router(context: BasicWebSocketRequestContext.self)
        router.get("/health") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain"
            return Response(status: relay.isShuttingDown ? .serviceUnavailable : .ok, headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: relay.isShuttingDown ? "shutting down\n" : "ok\n")))
        }
        // The trust root's public key as 64 hex digits and a line end: what a client with no
        // pinned key may pin on first contact (spec §12; `hush init` without --trust-root).
        let trustRoot = Hex.encode(relay.identity.trustRoot.rawRepresentation) + "\n"
        router.get("/v1/trust-root") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: trustRoot)))
        }
        router.get("/metrics") { _, _ -> Response in
            var text = registry?.emitToString() ?? ""
            let depth = (try? await relay.store.totalQueueDepth()) ?? -1
            text += "# TYPE hush_relay_queue_depth gauge\nhush_relay_queue_depth \(depth)\n"
            text += "# TYPE hush_relay_devices_connected gauge\nhush_relay_devices_connected \(relay.onlineDevices)\n"
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.ws(RouterPath(RelayProtocol.webSocketPath)) { inbound, outbound, _ in
            let transport = WebSocketTransport(outbound: outbound)
            if relay.isShuttingDown {
                await transport.close(.goingAway)
                return
            }
            await relay.serve(inbound: WebSocketFrames(base: inbound.messages(maxSize: RelayProtocol.Limits.maxWebSocketMessage)),
                              transport: transport)
        }
        let ws = WebSocketServerConfiguration(maxFrameSize: RelayProtocol.Limits.maxWebSocketMessage,
                                              autoPing: relay.configuration.pingInterval == .zero ? .disabled : .enabled(timePeriod: relay.configuration.pingInterval),
                                              closeTimeout: .seconds(2))
        return Application(
            router: router,
            server: .http1WebSocketUpgrade(webSocketRouter: router, configuration: .init(ws: ws)),
            configuration: .init(address: .hostname(host, port: port), backlog: 4_096),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }
}

extension RelayServer {
    /// The application and the relay's service in one group, shut down gracefully on
    /// `gracefulShutdownSignals` within 8 seconds.
    public static func serviceGroup(application: some ApplicationProtocol, relay: Relay,
                                    gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint],
                                    logger: Logger) -> ServiceGroup {
        var config = ServiceGroupConfiguration(services: [application, RelayService(relay: relay)],
                                               gracefulShutdownSignals: gracefulShutdownSignals, logger: logger)
        config.maximumGracefulShutdownDuration = .seconds(8)
        return ServiceGroup(configuration: config)
    }
}

/// Background work of a relay (TTL purge) and its part of graceful shutdown: on shutdown it
/// stops new logins and closes every connection with 1001 (going away). Put it after the
/// application in a `ServiceGroup` (services shut down in reverse order, so the connections
/// are closed before the server stops): see ``RelayServer/serviceGroup(application:relay:gracefulShutdownSignals:logger:)``.
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

/// Adapts Hummingbird's outbound writer.
struct WebSocketTransport: RelayConnectionTransport {
    let outbound: WebSocketOutboundWriter

    func send(_ message: [UInt8]) async throws {
        try await outbound.write(.binary(ByteBuffer(bytes: message)))
    }

    func close(_ code: RelayProtocol.CloseCode) async {
        try? await outbound.close(.init(codeNumber: Int(code.rawValue)), reason: nil)
    }
}

/// Hummingbird's inbound messages as ``InboundFrame``s.
struct WebSocketFrames: AsyncSequence, Sendable {
    typealias Element = InboundFrame
    let base: WebSocketInboundMessageStream

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: WebSocketInboundMessageStream.AsyncIterator
        mutating func next() async throws -> InboundFrame? {
            guard let message = try await base.next() else { return nil }
            switch message {
            case .binary(var buffer): return .binary(buffer.readBytes(length: buffer.readableBytes) ?? [])
            case .text: return .text
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator()) }
}
