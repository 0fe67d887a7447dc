import Foundation
import Hush
import HushTransport
import Synchronization

/// Where the relay is.
public struct RelayEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// Host name or address.
    public var host: String
    /// TCP port.
    public var port: Int
    /// WebSocket path.
    public var path: String

    /// An endpoint.
    public init(host: String, port: Int, path: String = RelayProtocol.webSocketPath) {
        self.host = host
        self.port = port
        self.path = path
    }

    /// `ws://host:port/path`.
    public var description: String { "ws://\(host):\(port)\(path)" }
}

/// Why a connection attempt or a connection failed.
public enum LinkError: Error, Equatable, Sendable {
    /// TCP or WebSocket upgrade failed.
    case unreachable(String)
    /// The Noise handshake failed (wrong pinned key, bad certificate, tampering).
    case handshake(String)
    /// The relay refused the login or registration with this error code.
    case rejected(RelayErrorCode)
    /// The connection closed (close code if any).
    case closed(UInt16?)
    /// A stanza could not be decrypted or decoded.
    case protocolViolation(String)
    /// No answer in time.
    case timeout
    /// The engine fell ``ClientConfiguration/inboundBufferLimit`` messages behind the socket:
    /// closed rather than drop one (nothing after the last buffered message was processed or
    /// acked, so the relay delivers it again on the next connection).
    case inboundOverflow
}

/// One authenticated connection to the relay: the Noise handshake over a WebSocket, then
/// encrypted stanzas both ways. Sends are synchronous (sealed and written in call order).
final class RelayLink: Sendable {
    private let socket: WebSocketConnection
    private let sender: Mutex<StanzaChannel.Sender?>
    private let receiver: Mutex<StanzaChannel.Receiver>
    /// The relay's certificate (validated against the pinned trust root).
    let certificate: RelayCertificate
    /// The first stanza, Welcome.
    let welcome: RelayWelcome
    /// What arrives after Welcome (iterate from one task only).
    var events: AsyncStream<WebSocketEvent> { socket.events }
    /// The connection was closed because the engine fell behind (``LinkError/inboundOverflow``).
    var overflowed: Bool { socket.overflowed }

    private init(socket: WebSocketConnection, channel: StanzaChannel, certificate: RelayCertificate, welcome: RelayWelcome) {
        self.socket = socket
        sender = Mutex(channel.sender)
        receiver = Mutex(channel.receiver)
        self.certificate = certificate
        self.welcome = welcome
    }

    /// Connects, runs the handshake (`pattern` XX or IK) carrying `hello`, and waits for Welcome.
    static func open(endpoint: RelayEndpoint, pattern: RelayProtocol.Pattern, deviceKey: Curve25519.KeyAgreement.PrivateKey?,
                     relayKey: Curve25519.KeyAgreement.PublicKey?, trustRoot: Curve25519.KeyAgreement.PublicKey,
                     hello: RelayClientHello, nowSeconds: @escaping @Sendable () -> UInt64, random: any RandomSource,
                     timeout: Duration, inboundBufferLimit: Int = 4_096) async throws(LinkError) -> RelayLink {
        let socket: WebSocketConnection
        do {
            socket = try await WebSocketConnection.connect(host: endpoint.host, port: endpoint.port, path: endpoint.path,
                                                           timeout: .nanoseconds(max(1, timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)),
                                                           bufferLimit: inboundBufferLimit)
        } catch { throw .unreachable("\(error)") }
        var events = socket.events.makeAsyncIterator()
        // A silent relay: the watchdog drops the socket, which ends the event stream.
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            socket.abort()
        }
        defer { watchdog.cancel() }
        do {
            var hs = try ClientHandshake(pattern: pattern, deviceKey: deviceKey, relayKey: pattern == .xx ? nil : relayKey,
                                         trustRoot: trustRoot, hello: hello, now: nowSeconds, random: random)
            socket.send(try hs.start())
            guard case .binary(let reply)? = await events.next() else { throw LinkError.handshake("no reply") }
            if let third = try hs.receive(reply) { socket.send(third) }
            guard let certificate = hs.certificate else { throw LinkError.handshake("no certificate") }
            var channel = try hs.channel()
            // Welcome, or the Error that rejects the login.
            guard case .binary(let first)? = await events.next() else { throw LinkError.handshake("no welcome") }
            let stanza = try channel.receiver.open(first)
            switch stanza.body {
            case .welcome(let w)?:
                return RelayLink(socket: socket, channel: channel, certificate: certificate, welcome: w)
            case .error(let e)?:
                throw LinkError.rejected(e.code)
            default:
                throw LinkError.protocolViolation("first stanza \(stanza.kind)")
            }
        } catch let error as LinkError {
            socket.abort()
            throw error
        } catch {
            socket.abort()
            throw .handshake("\(error)")
        }
    }

    /// Seals and writes `stanza`; false when the link is closed.
    @discardableResult
    func send(_ stanza: RelayStanza) -> Bool {
        sender.withLock { s -> Bool in
            guard var sealer = s else { return false }
            do {
                let bytes = try sealer.seal(stanza)
                s = sealer
                socket.send(bytes)
                return true
            } catch {
                return false
            }
        }
    }

    /// Decrypts and decodes one received message.
    func open(_ bytes: [UInt8]) throws(LinkError) -> RelayStanza {
        do throws(TransportError) {
            return try receiver.withLock { (r: inout StanzaChannel.Receiver) throws(TransportError) -> RelayStanza in try r.open(bytes) }
        } catch {
            throw .protocolViolation("\(error)")
        }
    }

    /// Closes with 1000 (no more sends).
    func close() async {
        sender.withLock { $0 = nil }
        await socket.close()
    }

    /// Drops the connection.
    func abort() {
        sender.withLock { $0 = nil }
        socket.abort()
    }
}
