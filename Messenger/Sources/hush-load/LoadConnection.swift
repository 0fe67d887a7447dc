import Foundation
import Hush
import HushTransport
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// One simulated device: its keys, its account, the relay it uses, and whether it stays
/// offline during the send phase.
struct LoadDevice: Sendable {
    let index: Int
    let account: String
    let deviceID: UInt32 = 1
    let identity: Curve25519.KeyAgreement.PrivateKey
    let key: Curve25519.KeyAgreement.PrivateKey
    let relay: Int
    let offline: Bool

    init(index: Int, account: String, relay: Int, offline: Bool) throws {
        self.index = index
        self.account = account
        self.relay = relay
        self.offline = offline
        identity = try Curve25519.KeyAgreement.PrivateKey()
        key = try Curve25519.KeyAgreement.PrivateKey()
    }

    func registerHello() throws -> RelayClientHello {
        var r = RelayRegister()
        r.account = account
        r.identityKey = Data(identity.publicKey.rawRepresentation)
        r.deviceID = deviceID
        r.deviceSignature = Data(try DeviceBinding.sign(account: account, deviceID: deviceID, deviceKey: key.publicKey, identity: identity))
        var h = RelayClientHello()
        h.register = r
        return h
    }

    var loginHello: RelayClientHello {
        var h = RelayClientHello()
        h.login.account = account
        h.login.deviceID = deviceID
        return h
    }
}

/// A relay endpoint and what the load generator knows about its keys.
struct RelayTarget: Sendable {
    let host: String
    let port: Int
    /// The pinned trust root (`--trust-root`), or `nil` for trust on first use.
    let trustRoot: Curve25519.KeyAgreement.PublicKey?
    /// The relay's certificate, once seen on first contact.
    var certificate: RelayCertificate?
}

/// Either handshake flavour behind one interface.
enum LoadHandshake {
    case verified(ClientHandshake)
    case firstUse(TrustOnFirstUseHandshake)

    init(pattern: RelayProtocol.Pattern, device: LoadDevice, target: RelayTarget, hello: RelayClientHello) throws {
        if let root = target.trustRoot {
            self = .verified(try ClientHandshake(pattern: pattern, deviceKey: device.key,
                                                 relayKey: pattern == .xx ? nil : target.certificate?.relayKey,
                                                 trustRoot: root, hello: hello))
        } else {
            self = .firstUse(try TrustOnFirstUseHandshake(pattern: pattern, deviceKey: device.key,
                                                          pinned: target.certificate, hello: hello))
        }
    }

    mutating func start() throws -> [UInt8] {
        switch self {
        case .verified(var h): defer { self = .verified(h) }; return try h.start()
        case .firstUse(var h): defer { self = .firstUse(h) }; return try h.start()
        }
    }

    mutating func receive(_ m: [UInt8]) throws -> [UInt8]? {
        switch self {
        case .verified(var h): defer { self = .verified(h) }; return try h.receive(m)
        case .firstUse(var h): defer { self = .firstUse(h) }; return try h.receive(m)
        }
    }

    var isFinished: Bool {
        switch self {
        case .verified(let h): h.isFinished
        case .firstUse(let h): h.isFinished
        }
    }

    var certificate: RelayCertificate? {
        switch self {
        case .verified(let h): h.certificate
        case .firstUse(let h): h.certificate
        }
    }

    func channel() throws -> StanzaChannel {
        switch self {
        case .verified(let h): try h.channel()
        case .firstUse(let h): try h.channel()
        }
    }
}

enum LoadError: Error, CustomStringConvertible {
    case closed(code: UInt16?, during: String)
    case rejected(RelayErrorCode)
    case timeout(String)
    case refused(String)

    var description: String {
        switch self {
        case .closed(let code, let during): "connection closed (code \(code.map(String.init) ?? "none")) during \(during)"
        case .rejected(let code): "relay rejected the login: \(code)"
        case .timeout(let what): "timed out: \(what)"
        case .refused(let why): why
        }
    }
}

/// What a connection waits for before it counts as ready.
enum ReadyWhen { case welcome, queueEmpty }

/// Payload layout (100 bytes): sender index u32 | sequence u32 | send time (ns, monotonic) u64 |
/// offline flag u8 | zeros. Key of a message: sender index << 32 | sequence.
enum LoadPayload {
    static let size = 100
    static func make(sender: Int, seq: UInt32, offline: Bool, now: UInt64) -> Data {
        var b = [UInt8](repeating: 0, count: size)
        var v = UInt64(UInt32(truncatingIfNeeded: sender)) << 32 | UInt64(seq)
        for i in 0..<8 { b[i] = UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64(i))) }
        v = now
        for i in 0..<8 { b[8 + i] = UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64(i))) }
        b[16] = offline ? 1 : 0
        return Data(b)
    }

    static func parse(_ d: Data) -> (key: UInt64, sent: UInt64, offline: Bool)? {
        guard d.count >= 17 else { return nil }
        let p = [UInt8](d.prefix(17))
        var key: UInt64 = 0, t: UInt64 = 0
        for i in 0..<8 { key = key << 8 | UInt64(p[i]) }
        for i in 8..<16 { t = t << 8 | UInt64(p[i]) }
        return (key, t, p[16] != 0)
    }
}

@inline(__always) func monotonicNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// One authenticated connection, driven entirely on its channel's event loop.
final class LoadConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let device: LoadDevice
    let stats: LoopStats
    let readyWhen: ReadyWhen
    let ready: EventLoopPromise<LoadConnection>
    private var handshake: LoadHandshake?
    private var sender: StanzaChannel.Sender?
    private var receiver: StanzaChannel.Receiver?
    private var context: ChannelHandlerContext?
    private var fragments: ByteBuffer?
    private var isReady = false
    private var closed = false
    private var rng = SystemRandomNumberGenerator()
    private var pendingAcks: [UInt64] = []
    private var needsFlush = false

    // Sending state (send phase).
    var driver: SendDriver?
    var partner: LoadDevice?
    var offlineTargets: [LoadDevice] = []
    var offlineShare = 0.0
    private var nextSeq: UInt32 = 0
    /// client message id -> (message key, to an offline device)
    private var pending: [UInt64: (UInt64, Bool)] = [:]
    var outstanding: Int { pending.count }

    /// The certificate seen in the handshake.
    private(set) var certificate: RelayCertificate?
    private(set) var welcome: RelayWelcome?
    /// The event loop this connection lives on (every method but `open` runs there).
    let loop: EventLoop
    /// Deliveries received before QueueEmpty on this connection.
    private(set) var drained = 0
    private(set) var queueEmptyAt: UInt64?

    init(device: LoadDevice, handshake: LoadHandshake, stats: LoopStats, readyWhen: ReadyWhen, ready: EventLoopPromise<LoadConnection>,
         loop: EventLoop) {
        self.device = device
        self.loop = loop
        self.handshake = handshake
        self.stats = stats
        self.readyWhen = readyWhen
        self.ready = ready
    }

    // MARK: opening

    /// Connects from `source` to `target`, upgrades to WebSocket, runs the handshake with
    /// `hello`, and succeeds once the connection is ready (`readyWhen`).
    static func open(device: LoadDevice, target: RelayTarget, source: String, loop: EventLoop, stats: LoopStats,
                     pattern: RelayProtocol.Pattern, hello: RelayClientHello, readyWhen: ReadyWhen,
                     timeout: TimeAmount = .seconds(30)) -> EventLoopFuture<LoadConnection> {
        let ready = loop.makePromise(of: LoadConnection.self)
        let handshake: LoadHandshake
        do { handshake = try LoadHandshake(pattern: pattern, device: device, target: target, hello: hello) } catch {
            ready.fail(error)
            return ready.futureResult
        }
        let handler = LoadConnection(device: device, handshake: handshake, stats: stats, readyWhen: readyWhen, ready: ready, loop: loop)
        let bind: SocketAddress
        do { bind = try SocketAddress(ipAddress: source, port: 0) } catch {
            ready.fail(error)
            return ready.futureResult
        }
        let host = target.host, port = target.port
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .bind(to: bind)
            .channelInitializer { channel in
                let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: RelayProtocol.Limits.maxWebSocketMessage,
                                                          automaticErrorHandling: false) { channel, _ in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
                }
                let config: NIOHTTPClientUpgradeSendableConfiguration = (upgraders: [upgrader], completionHandler: { _ in })
                return channel.pipeline.addHTTPClientHandlers(withClientUpgrade: config).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(UpgradeRequest(host: host, port: port, failed: ready))
                }
            }
        let timer = loop.scheduleTask(in: timeout) {
            ready.fail(LoadError.timeout("connect and handshake of \(device.account)"))
            handler.closeNow()
        }
        ready.futureResult.whenComplete { _ in timer.cancel() }
        bootstrap.connect(host: host, port: port).whenComplete { result in
            switch result {
            case .success(let channel):
                channel.closeFuture.whenComplete { _ in ready.fail(LoadError.closed(code: nil, during: "connect")) }
            case .failure(let error):
                ready.fail(error)
            }
        }
        return ready.futureResult
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guard var hs = handshake else { return }
        do {
            let first = try hs.start()
            handshake = hs
            write(first, flush: true)
        } catch {
            fail(error)
        }
    }

    // MARK: I/O

    private func write(_ bytes: [UInt8], flush: Bool) {
        guard let context, !closed else { return }
        let frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(using: &rng),
                                   data: context.channel.allocator.buffer(bytes: bytes))
        if flush { context.writeAndFlush(wrapOutboundOut(frame), promise: nil) } else {
            context.write(wrapOutboundOut(frame), promise: nil)
            needsFlush = true
        }
    }

    func flushIfNeeded() {
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }

    private func send(_ stanza: RelayStanza, flush: Bool = false) {
        guard var s = sender else { return }
        do {
            let bytes = try s.seal(stanza)
            sender = s
            write(bytes, flush: flush)
        } catch {
            stats.errors["seal", default: 0] += 1
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary, .continuation:
            var data = frame.unmaskedData
            if !frame.fin || fragments != nil {
                if fragments == nil { fragments = data } else { fragments!.writeBuffer(&data) }
                guard frame.fin else { return }
                data = fragments!
                fragments = nil
            }
            received(data.readBytes(length: data.readableBytes) ?? [])
        case .connectionClose:
            var d = frame.unmaskedData
            let code = d.readInteger(as: UInt16.self)
            if !isReady { fail(LoadError.closed(code: code, during: handshake == nil ? "login" : "handshake")) }
            else if !closed { stats.totals.unexpectedCloses.add(1, ordering: .relaxed); stats.closeCodes[code ?? 0, default: 0] += 1 }
            closeNow()
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(using: &rng), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushAcks()
        if driver?.active == true, driver?.closedLoop == true { driver?.refill(self) }
        flushIfNeeded()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !isReady { fail(LoadError.closed(code: nil, during: "handshake")) }
        else if !closed { stats.totals.unexpectedCloses.add(1, ordering: .relaxed) }
        closed = true
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !isReady { fail(error) }
        closeNow()
    }

    private func fail(_ error: Error) {
        ready.fail(error)
        closeNow()
    }

    /// Closes the TCP connection (the relay sees the peer go away).
    func closeNow() {
        guard !closed else { return }
        closed = true
        context?.close(promise: nil)
    }

    /// Sends a WebSocket close frame (1000) and closes.
    func closeGracefully() {
        guard !closed, let context else { return }
        var b = context.channel.allocator.buffer(capacity: 2)
        b.writeInteger(UInt16(1000))
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(using: &rng), data: b)
        closed = true
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: protocol

    private func received(_ bytes: [UInt8]) {
        if var hs = handshake {
            do {
                if let reply = try hs.receive(bytes) { write(reply, flush: true) }
                guard hs.isFinished else { handshake = hs; return }
                let channel = try hs.channel()
                certificate = hs.certificate
                sender = channel.sender
                receiver = channel.receiver
                handshake = nil
            } catch {
                fail(error)
            }
            return
        }
        guard var r = receiver else { return }
        let stanza: RelayStanza
        do {
            stanza = try r.open(bytes)
            receiver = r
        } catch {
            stats.errors["decrypt", default: 0] += 1
            fail(error)
            return
        }
        switch stanza.body {
        case .welcome(let w)?:
            welcome = w
            if readyWhen == .welcome { becomeReady() }
        case .queueEmpty?:
            if queueEmptyAt == nil { queueEmptyAt = monotonicNanos() }
            if readyWhen == .queueEmpty { becomeReady() }
            stats.queueEmpty(self)
        case .deliver(let d)?:
            pendingAcks.append(d.serverID)
            if queueEmptyAt == nil { drained += 1 }
            stats.delivered(d.payload, now: monotonicNanos())
            if pendingAcks.count >= RelayProtocol.Limits.maxAckIDs { flushAcks() }
        case .serverAck(let a)?:
            if let (key, offline) = pending.removeValue(forKey: a.clientMessageID) {
                stats.acked(key, offline: offline)
            }
        case .error(let e)?:
            if !isReady {
                fail(LoadError.rejected(e.code))
                return
            }
            stats.errors["\(e.code)", default: 0] += 1
            if e.clientMessageID != 0, pending.removeValue(forKey: e.clientMessageID) != nil {
                stats.totals.outstanding.subtract(1, ordering: .relaxed)
                stats.totals.sendErrors.add(1, ordering: .relaxed)
            }
        default:
            break
        }
    }

    private func becomeReady() {
        guard !isReady else { return }
        isReady = true
        ready.succeed(self)
    }

    private func flushAcks() {
        guard !pendingAcks.isEmpty else { return }
        var s = RelayStanza()
        s.ack.serverIds = pendingAcks
        pendingAcks.removeAll(keepingCapacity: true)
        send(s)
    }

    /// Writes one Send (100-byte payload) to the partner or, with probability `offlineShare`,
    /// to one of the offline devices. Does not flush.
    func sendOne() {
        guard !closed, let partner else { return }
        let toOffline = !offlineTargets.isEmpty && Double.random(in: 0..<1, using: &rng) < offlineShare
        let target = toOffline ? offlineTargets[Int.random(in: 0..<offlineTargets.count, using: &rng)] : partner
        nextSeq &+= 1
        let key = UInt64(UInt32(truncatingIfNeeded: device.index)) << 32 | UInt64(nextSeq)
        var m = RelaySend()
        m.clientMessageID = UInt64(nextSeq)
        m.account = target.account
        m.devices = [target.deviceID]
        m.payload = LoadPayload.make(sender: device.index, seq: nextSeq, offline: toOffline, now: monotonicNanos())
        var s = RelayStanza()
        s.send = m
        pending[UInt64(nextSeq)] = (key, toOffline)
        stats.totals.attempted.add(1, ordering: .relaxed)
        stats.totals.outstanding.add(1, ordering: .relaxed)
        send(s)
    }
}

/// Sends the HTTP upgrade request once the TCP connection is up.
private final class UpgradeRequest: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny
    typealias OutboundOut = HTTPClientRequestPart
    let host: String
    let port: Int
    let failed: EventLoopPromise<LoadConnection>

    init(host: String, port: Int, failed: EventLoopPromise<LoadConnection>) {
        self.host = host
        self.port = port
        self.failed = failed
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(host):\(port)")
        headers.add(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: RelayProtocol.webSocketPath, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failed.fail(error)
        context.close(promise: nil)
    }
}
