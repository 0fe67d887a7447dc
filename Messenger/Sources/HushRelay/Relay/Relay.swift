import Dispatch
import Foundation
import Hush
import HushTransport
import Logging
import NIOCore
import NIOPosix
import NIOWebSocket
import Synchronization

/// The relay: accounts, devices, prekeys, routing and the offline queue over a
/// ``RelayStore``, independent of the listening socket (see ``RelayServer``). Its connections
/// are ``RelayConnection`` channel handlers.
public final class Relay: Sendable {
    /// The durable state.
    public let store: any RelayStore
    /// The relay's keys.
    public let identity: RelayIdentity
    /// Tunables.
    public let configuration: RelayConfiguration
    let router = Router()
    let metrics = RelayMetrics()
    let logger: Logger
    let replay: ReplayCache
    let fetchLimiter: KeyedRateLimiter
    /// Open provisioning addresses (§22.3).
    let provisioning = ProvisioningRegistry()
    /// The store's completion-handler hot path, when it has one (no Swift task per send or ack).
    let callbacks: (any CallbackRelayStore)?
    /// Sender certificates, presence, ephemeral messages (RelayServices.swift).
    let services: RelayServices
    private let nextConnectionID = Atomic<UInt64>(0)
    /// Every open connection, logged in or not (the router holds only logged-in devices), so
    /// that shutdown can close each with 1001. Bounded by the server's open connections.
    private let open = Mutex<[UInt64: RelayConnection]>([:])
    private let shuttingDown = Atomic<Bool>(false)

    /// `true` once shutdown began: new connections are refused with 1001.
    public var isShuttingDown: Bool { shuttingDown.load(ordering: .relaxed) }

    /// Stops accepting logins (shutdown).
    public func beginShutdown() { shuttingDown.store(true, ordering: .relaxed) }

    /// A relay over `store` with `identity`.
    public init(store: any RelayStore, identity: RelayIdentity, configuration: RelayConfiguration = .init(),
                logger: Logger = Logger(label: "hush-relay"), presenceStore: any PresenceStore = InMemoryPresenceStore()) {
        self.store = store
        self.identity = identity
        self.configuration = configuration
        self.logger = logger
        callbacks = store as? any CallbackRelayStore
        replay = ReplayCache(windowMilliseconds: 2 * RelayProtocol.Limits.clockSkewSeconds * 1_000, capacity: 500_000)
        fetchLimiter = KeyedRateLimiter(rate: configuration.fetchRate, burst: configuration.fetchBurst)
        services = RelayServices(presenceStore: presenceStore, certificates: identity.senderCertificates,
                                 clock: configuration.clock, logger: logger)
    }

    /// Devices with a logged-in connection.
    public var onlineDevices: Int { router.count }

    /// Open connections in any state.
    public var openConnections: Int { open.withLock { $0.count } }

    func opened(_ connection: RelayConnection) -> UInt64 {
        let id = nextConnectionID.add(1, ordering: .relaxed).newValue
        open.withLock { $0[id] = connection }
        return id
    }

    func ended(_ id: UInt64) { open.withLock { _ = $0.removeValue(forKey: id) } }

    /// Deletes expired messages (the TTL, §7.2); returns how many.
    @discardableResult
    public func purgeExpired() async -> Int {
        _ = await purgeExpiredMedia()
        do {
            let n = try await store.purgeExpired(now: configuration.clock())
            metrics.purged.increment(by: n)
            if n > 0 { logger.info("purged expired messages", metadata: ["count": "\(n)"]) }
            return n
        } catch {
            logger.error("purge failed", metadata: ["error": "\(error)"])
            return 0
        }
    }

    /// Removes media blobs older than the media TTL (§17.5); the number removed (0 without media).
    @discardableResult
    public func purgeExpiredMedia() async -> Int {
        guard let media = configuration.media else { return 0 }
        let now = configuration.clock()
        // Expired from createdAt + TTL on: remove createdAt ≤ now − TTL.
        guard now >= media.ttlMilliseconds else { return 0 }
        let cutoff = now - media.ttlMilliseconds + 1
        do {
            let n = try await NIOThreadPool.singleton.runIfActive { try media.store.purge(createdBefore: cutoff) }
            if n > 0 { logger.info("purged expired media", metadata: ["count": "\(n)"]) }
            return n
        } catch {
            logger.error("media purge failed", metadata: ["error": "\(error)"])
            return 0
        }
    }

    /// Closes every open connection with 1001 (going away), for shutdown: logged-in devices,
    /// connections still in their handshake, and anonymous ones; returns once they ended
    /// (each waits at most the 2 s close handshake).
    public func closeAll() async {
        let all = open.withLock { Array($0.values) }
        for c in all { c.closeSoon(.goingAway) }
        await waitForConnections(timeout: .milliseconds(2_500))
    }

    /// Waits until no connection is open, at most `timeout`.
    func waitForConnections(timeout: Duration) async {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while openConnections > 0, clock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Drops every connection's TCP at once (the server was cancelled).
    func dropAll() {
        for c in open.withLock({ Array($0.values) }) { c.eventLoop.execute { c.context?.close(promise: nil) } }
    }

    /// The number of messages delivered on this device's connection but not yet acknowledged
    /// (for tests and diagnostics).
    public func inFlight(account: String, deviceID: UInt32) -> Int? {
        router.connection(DeviceAddress(account: account, deviceID: deviceID))?.inFlightCount
    }
}

/// One client connection (`Docs/spec/relay.md` §5–§8) as a NIO channel handler after the
/// WebSocket upgrade: WebSocket control frames, the Noise handshake, transport decryption and
/// encryption, stanza decoding and handling, timeouts and the delivery window all run on the
/// channel's event loop, with no Swift task per connection.
///
/// Threading: every `var` is touched only on `eventLoop` (hence `@unchecked Sendable`); other
/// threads enter through ``closeSoon(_:)``, ``push(_:)`` and ``notifyPrekeysLow(_:)``, which
/// hop onto the loop. Store work runs off the loop (the store's writer queue or reader pool,
/// or a task for stores without a completion-handler API); its result comes back to the loop.
/// While one stanza waits for the store, further inbound messages wait in `inbox` and the
/// handler stops reading from the socket, so stanzas of one connection are handled strictly in
/// order and a client that floods the relay is slowed down by TCP, not buffered.
final class RelayConnection: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    enum Phase: Equatable {
        case handshake
        case anonymous
        case device(DeviceAddress)
        case closed
    }

    let relay: Relay
    let eventLoop: any EventLoop
    private(set) var id: UInt64 = 0
    var context: ChannelHandlerContext?

    var phase = Phase.handshake {
        didSet { if phase == .closed { closedFlag.store(true, ordering: .relaxed) } }
    }
    private let closedFlag = Atomic<Bool>(false)
    /// Whether the connection closed (readable from any thread; `phase` is the loop's).
    var isClosed: Bool { closedFlag.load(ordering: .relaxed) }
    private var handshake: ServerHandshake?
    private var handshakeStarted = DispatchTime.now()
    private var sender: StanzaChannel.Sender?
    private var receiver: StanzaChannel.Receiver?
    var identityKey: Curve25519.KeyAgreement.PublicKey?
    var bucket: TokenBucket

    // Ordering and backpressure.
    /// A stanza's store work is outstanding (``storeWork(_:then:)``).
    private var busy = false
    /// Sends and acks handed to the store's callback API and not yet completed. They are
    /// pipelined: the writer commits them in submission order and their completions come back
    /// to this loop in that order, so their replies keep the order of the stanzas.
    private var pipelined = 0
    /// A stanza that must wait until the pipelined ones completed (its reply would overtake theirs).
    private var deferred: RelayStanza?
    /// Most pipelined store operations per connection.
    static let maxPipelined = 32
    /// A stanza of this connection waits for the store (a send, ack or other store work).
    private var awaitsStore: Bool { busy || pipelined > 0 }
    /// No further inbound message is handled now.
    private var blocked: Bool { busy || deferred != nil || pipelined >= Self.maxPipelined }
    /// Inbound messages that arrived while `blocked` (bounded by one socket read).
    private var inbox: [WebSocketFrame] = []
    /// A read was requested while paused.
    private var readPending = false
    private var needsFlush = false

    // Timers.
    private var handshakeTimer: Scheduled<Void>?
    private var pingTimer: Scheduled<Void>?
    private var awaitingPong = false
    private var closeTimer: Scheduled<Void>?
    private var ended = false

    // Delivery state (§7.3, RelayConnection+Delivery.swift).
    var inflight: Set<UInt64> = []
    let inflightAtomic = Atomic<Int>(0)
    var lastDelivered: UInt64 = 0
    var pushed: [QueuedMessage] = []
    var needsStoreRead = true
    var generation = 0
    var drained = false
    var reading = false
    var prekeysLow: (remaining: UInt32, kyber: UInt32)?

    // Provisioning (§22.3, RelayConnection+Devices.swift): this anonymous connection's address.
    var provisioningAddress: Data?
    var provisioningExpiresAt: UInt64 = 0
    var provisioningTimer: Scheduled<Void>?

    var window: Int { relay.configuration.deliveryWindow }
    var inFlightCount: Int { inflightAtomic.load(ordering: .relaxed) }

    init(relay: Relay, eventLoop: any EventLoop) {
        self.relay = relay
        self.eventLoop = eventLoop
        let c = relay.configuration
        bucket = TokenBucket(rate: c.stanzaRate, burst: c.stanzaBurst, now: c.clock())
    }

    func log(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message, _ metadata: Logger.Metadata = [:]) {
        guard relay.logger.logLevel <= level else { return }
        var m = metadata
        m["conn"] = "\(id)"
        relay.logger.log(level: level, message(), metadata: m)
    }

    // MARK: lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        id = relay.opened(self)
        relay.metrics.connectionsOpened.increment()
        relay.metrics.connectionsOpen.increment()
        // A connection that arrives after shutdown began is closed at once.
        if relay.isShuttingDown {
            close(.goingAway)
            flush()
            return
        }
        let loop = context.eventLoop.assumeIsolated()
        handshakeTimer = loop.scheduleTask(in: TimeAmount(relay.configuration.handshakeTimeout)) { [self] in
            handshakeTimer = nil
            guard phase == .handshake else { return }
            relay.metrics.handshake(handshake?.pattern.map { "\($0)" } ?? "unknown", "timeout")
            close(.handshakeTimeout)
            flush()
        }
        schedulePing()
    }

    func handlerRemoved(context: ChannelHandlerContext) { end() }

    func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }

    /// Cleans up once when the channel goes away.
    private func end() {
        guard !ended else { return }
        ended = true
        if case .device(let address) = phase, relay.router.unregister(address, self) { relay.metrics.devicesOnline.decrement() }
        relay.services.presence.ended(self)
        endProvisioning()
        salvageAcks()
        if phase != .closed {
            // The peer's TCP stream ended without a close handshake.
            relay.metrics.closed(RelayProtocol.CloseCode.normal.rawValue)
            phase = .closed
        }
        handshake = nil
        inbox.removeAll()
        pushed.removeAll()
        handshakeTimer?.cancel()
        pingTimer?.cancel()
        closeTimer?.cancel()
        relay.ended(id)
        relay.metrics.connectionsOpen.decrement()
        log(.debug, "connection ended")
        context = nil
    }

    /// The connection ends with messages still waiting in `inbox`: their acks are applied
    /// anyway (nothing else in them can be answered any more), so that a client that acks and
    /// then closes does not see those messages again.
    private func salvageAcks() {
        guard case .device(let me) = phase, !inbox.isEmpty, var r = receiver else { return }
        let frames = inbox
        inbox.removeAll()
        for frame in frames where frame.opcode == .binary {
            var data = frame.unmaskedData
            let bytes = data.readBytes(length: data.readableBytes) ?? []
            guard let plaintext = try? r.openBytes(bytes) else { break }
            guard case .ack(let a)? = (try? StanzaCodec.decode(plaintext))?.body,
                  (1...RelayProtocol.Limits.maxAckIDs).contains(a.serverIds.count) else { continue }
            let store = relay.store, metrics = relay.metrics, ids = a.serverIds
            Task {
                if let n = try? await store.acknowledge(account: me.account, deviceID: me.deviceID, serverIDs: ids) {
                    metrics.acks.increment(by: n)
                }
            }
        }
        receiver = r
    }

    private func schedulePing() {
        let interval = relay.configuration.pingInterval
        guard interval > .zero, let context else { return }
        pingTimer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(interval)) { [self] in
            pingTimer = nil
            guard phase != .closed, let context = self.context else { return }
            if awaitingPong {
                if awaitsStore {
                    // The pong may be unread in the socket: reading pauses while a stanza's
                    // store work is outstanding (a slow commit). Wait another interval; the
                    // store work itself is bounded by the store's operation timeout.
                    log(.debug, "no pong yet while awaiting the store; waiting another interval")
                    schedulePing()
                    return
                }
                // No pong since the last ping (§2).
                close(.goingAway)
                flush()
                return
            }
            awaitingPong = true
            var data = context.channel.allocator.buffer(capacity: 4)
            data.writeInteger(UInt32(truncatingIfNeeded: id))
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: data)), promise: nil)
            schedulePing()
        }
    }

    /// Closes from any thread.
    func closeSoon(_ code: RelayProtocol.CloseCode) {
        eventLoop.execute { [self] in
            close(code)
            flush()
        }
    }

    /// Sends a close frame with `code`, then waits up to 2 s for the peer's close frame before
    /// dropping TCP (§2); later stanzas are not sent. `immediately`: drop TCP after the frame.
    func close(_ code: RelayProtocol.CloseCode, immediately: Bool = false) {
        guard phase != .closed, let context else { return }
        salvageAcks()
        deferred = nil
        if case .device(let address) = phase, relay.router.unregister(address, self) { relay.metrics.devicesOnline.decrement() }
        phase = .closed
        relay.services.presence.ended(self)
        endProvisioning()
        handshake = nil
        inbox.removeAll()
        pushed.removeAll()
        handshakeTimer?.cancel()
        pingTimer?.cancel()
        relay.metrics.closed(code.rawValue)
        log(.debug, "closing", ["code": "\(code.rawValue)"])
        var data = context.channel.allocator.buffer(capacity: 2)
        data.writeInteger(code.rawValue)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
        if immediately {
            context.writeAndFlush(wrapOutboundOut(frame)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        context.write(wrapOutboundOut(frame), promise: nil)
        needsFlush = true
        closeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) {
            context.close(promise: nil)
        }
        // Resume reading so that the peer's close frame is seen.
        resumeReading()
    }

    // MARK: writing

    /// Writes one binary WebSocket message (buffered until ``flush()``).
    private func writeRaw(_ bytes: [UInt8]) -> Bool {
        guard phase != .closed, let context else { return false }
        let frame = WebSocketFrame(fin: true, opcode: .binary, data: context.channel.allocator.buffer(bytes: bytes))
        context.write(wrapOutboundOut(frame), promise: nil)
        needsFlush = true
        return true
    }

    /// Encrypts and writes one stanza; `false` when the connection is gone.
    @discardableResult
    func send(_ stanza: RelayStanza) -> Bool {
        guard phase != .closed, var s = sender else { return false }
        let bytes: [UInt8]
        do throws(TransportError) {
            bytes = try s.seal(stanza)
        } catch {
            log(.error, "cannot seal stanza", ["error": "\(error)"])
            return false
        }
        sender = s
        guard writeRaw(bytes) else { return false }
        relay.metrics.stanzaOut(stanza.kind)
        return true
    }

    /// Sends `Error{code, …}` (§9.1); `account` is set by `MultiSend`'s errors only (§21.2).
    func sendError(_ code: RelayErrorCode, requestID: UInt32 = 0, clientMessageID: UInt64 = 0, deviceID: UInt32 = 0, account: String = "") {
        relay.metrics.error(RelayErrorCodeName(name: "\(code)"))
        send(.error(code, requestID: requestID, clientMessageID: clientMessageID, deviceID: deviceID, account: account))
    }

    func flush() {
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }

    // MARK: store work

    /// Runs `op` off the event loop and `then` with its result back on the loop; the
    /// connection handles no further stanza until then.
    func storeWork<T: Sendable>(_ op: @escaping @Sendable () async throws(RelayStoreError) -> T,
                                then: @escaping (Result<T, RelayStoreError>) -> Void) {
        busy = true
        let done = NIOLoopBound(then, eventLoop: eventLoop)
        Task { [self] in
            let result: Result<T, RelayStoreError>
            do throws(RelayStoreError) { result = .success(try await op()) } catch { result = .failure(error) }
            eventLoop.execute { self.completed { done.value(result) } }
        }
    }

    /// Runs `op` (a service's async work, e.g. the presence store) off the event loop and `then`
    /// with its result back on the loop; like ``storeWork(_:then:)``, the next stanza waits.
    func offLoop<T: Sendable>(_ op: @escaping @Sendable () async -> T, then: @escaping (T) -> Void) {
        busy = true
        let done = NIOLoopBound(then, eventLoop: eventLoop)
        Task { [self] in
            let result = await op()
            eventLoop.execute { self.completed { done.value(result) } }
        }
    }

    /// From any thread: runs `body` on this connection's loop if it is still open and its
    /// socket accepts more (`false` passed when it is closed or its peer is not reading, so
    /// that droppable stanzas — presence, typing — never pile up for a slow peer), then flushes.
    func onLoopIfWritable(_ body: @escaping @Sendable (RelayConnection, Bool) -> Void) {
        eventLoop.execute { [self] in
            let ok = phase != .closed && (context?.channel.isWritable ?? false)
            body(self, ok)
            flush()
        }
    }

    /// A completion handler for the store's callback API that comes back to the loop; the
    /// operation is pipelined (see `pipelined`).
    func storeCompletion<T: Sendable>(_ then: @escaping (Result<T, RelayStoreError>) -> Void) -> @Sendable (Result<T, RelayStoreError>) -> Void {
        pipelined += 1
        let done = NIOLoopBound(then, eventLoop: eventLoop)
        return { [self] result in
            eventLoop.execute {
                self.pipelined -= 1
                if self.phase != .closed { done.value(result) }
                if self.pipelined == 0, let d = self.deferred, self.phase != .closed {
                    self.deferred = nil
                    self.handle(d)
                }
                self.drainInbox()
                self.flush()
            }
        }
    }

    /// Whether `stanza` may be handled while pipelined operations are outstanding: a send or
    /// ack that will reach the store (its reply, or its error, comes in completion order).
    private func canPipeline(_ stanza: RelayStanza) -> Bool {
        guard relay.callbacks != nil, relay.configuration.stanzaHook == nil, case .device = phase else { return false }
        var b = bucket
        guard b.take(now: relay.configuration.clock()) else { return false }
        switch stanza.body {
        // An all-devices send reads the account's devices first (§7.6): not pipelined.
        case .send(let m)?: return !m.allDevices && sendRejection(m) == nil
        case .ack(let a)?: return (1...RelayProtocol.Limits.maxAckIDs).contains(a.serverIds.count)
        default: return false
        }
    }

    private func completed(_ body: () -> Void) {
        busy = false
        if phase != .closed { body() }
        drainInbox()
        flush()
    }

    // MARK: reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary, .text, .connectionClose:
            if phase == .closed {
                if frame.opcode == .connectionClose {
                    // The peer answered our close frame.
                    closeTimer?.cancel()
                    context.close(promise: nil)
                }
                return
            }
            // In order with the stanzas before it (a close after acks applies the acks first).
            if blocked || !inbox.isEmpty { inbox.append(frame) } else { process(frame) }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.write(wrapOutboundOut(pong), promise: nil)
            needsFlush = true
        case .pong:
            awaitingPong = false
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if phase != .closed, blocked || !inbox.isEmpty || !context.channel.isWritable {
            readPending = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, !blocked, inbox.isEmpty { resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    private func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case NIOWebSocketError.invalidFrameLength, NIOWebSocketFrameAggregator.Error.accumulatedFrameSizeIsTooLarge:
            close(.messageTooBig, immediately: true)
        case is NIOWebSocketError, is NIOWebSocketFrameAggregator.Error:
            close(.unsupportedData, immediately: true)
        default:
            log(.debug, "connection error", ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    /// Handles queued messages until one waits for the store, then reads again.
    private func drainInbox() {
        while !blocked, phase != .closed, !inbox.isEmpty {
            process(inbox.removeFirst())
        }
        if !blocked, inbox.isEmpty, context?.channel.isWritable ?? false { resumeReading() }
    }

    private func process(_ frame: WebSocketFrame) {
        switch frame.opcode {
        case .text: return close(.unsupportedData)
        case .connectionClose: return close(.normal, immediately: true)   // the client closes: answer 1000, drop TCP
        default: break
        }
        var data = frame.unmaskedData
        let bytes = data.readBytes(length: data.readableBytes) ?? []
        if phase == .handshake, receiver == nil {
            handshakeStep(bytes)
            return
        }
        guard var r = receiver else { return }
        let plaintext: [UInt8]
        do { plaintext = try r.openBytes(bytes) } catch {
            close(.decryptFailed)
            return
        }
        receiver = r
        let stanza: RelayStanza
        do { stanza = try StanzaCodec.decode(plaintext) } catch {
            relay.metrics.stanzaIn("malformed")
            sendError(.malformedStanza)
            close(.protocolViolation)
            return
        }
        relay.metrics.stanzaIn(stanza.kind)
        if pipelined > 0, !canPipeline(stanza) {
            deferred = stanza
            return
        }
        handle(stanza)
    }

    // MARK: handshake and login (§4, §5)

    private func handshakeStep(_ bytes: [UInt8]) {
        if handshake == nil {
            // Made at the first message, not at the upgrade: a silent connection holds no Noise state.
            handshakeStarted = DispatchTime.now()
            handshake = ServerHandshake(relayKey: relay.identity.staticKey, certificate: relay.identity.certificate,
                                        serverTime: relay.configuration.clock() / 1_000, random: relay.configuration.random)
        }
        guard var hs = handshake else { return }
        let step: ServerHandshake.Step
        do { step = try hs.receive(bytes) } catch {
            relay.metrics.handshake(hs.pattern.map { "\($0)" } ?? "unknown", "failed")
            log(.debug, "handshake failed", ["error": "\(error)"])
            close(.handshakeFailed)
            return
        }
        switch step {
        case .reply(let reply):
            handshake = hs
            _ = writeRaw(reply)
        case .finished(let reply, let hello, let channel):
            handshake = nil
            relay.metrics.handshakeLatency.recordInterval(since: handshakeStarted)
            sender = channel.sender
            receiver = channel.receiver
            if let reply { guard writeRaw(reply) else { return } }
            login(hello, pattern: hs.pattern ?? .xx, deviceKey: channel.remoteStaticKey, ephemeral: hs.clientEphemeral)
        }
    }

    private func reject(_ code: RelayErrorCode, _ pattern: RelayProtocol.Pattern) {
        relay.metrics.handshake("\(pattern)", "rejected")
        sendError(code)
        close(.loginRejected)
    }

    private func login(_ hello: RelayClientHello, pattern: RelayProtocol.Pattern,
                       deviceKey: Curve25519.KeyAgreement.PublicKey?, ephemeral: [UInt8]?) {
        let now = relay.configuration.clock()
        guard hello.version == RelayProtocol.version else { return reject(.unsupportedVersion, pattern) }
        let skew = RelayProtocol.Limits.clockSkewSeconds
        let seconds = now / 1_000
        guard hello.timestamp + skew >= seconds, hello.timestamp <= seconds + skew else { return reject(.clockSkew, pattern) }
        guard let ephemeral, relay.replay.insert(ephemeral, now: now) else { return reject(.replayedHandshake, pattern) }
        let store = relay.store

        switch (pattern, hello.action) {
        case (.nk, nil):
            phase = .anonymous
            handshakeTimer?.cancel()
            relay.metrics.handshake("nk", "anonymous")
            var w = RelayWelcome()
            w.serverTime = now
            var s = RelayStanza()
            s.welcome = w
            send(s)
        case (.nk, _), (_, nil):
            reject(.unauthenticated, pattern)
        case (_, .login(let login)?):
            guard let deviceKey else { return reject(.unauthenticated, pattern) }
            let account = login.account, deviceID = login.deviceID
            let finish = { [self] (result: Result<LoginRecord?, RelayStoreError>) in
                guard case .success(let found) = result else {
                    if case .failure(.unknownAccount) = result { return reject(.unknownAccount, pattern) }
                    return reject(.internalError, pattern)
                }
                guard let found else { return reject(.unknownDevice, pattern) }
                guard ConstantTime.equals(found.staticKey, deviceKey.rawRepresentation) else {
                    return reject(.deviceKeyMismatch, pattern)
                }
                loggedIn(DeviceAddress(account: account, deviceID: deviceID), identity: found.identityKey, registered: false,
                         pattern: pattern, prekeys: PrekeyCounts(oneTime: found.prekeyCount, kyberOneTime: found.kyberPrekeyCount))
            }
            // A store that answers from memory (SQLite) is asked on the loop: no hop per login.
            if let callbacks = relay.callbacks {
                finish(callbacks.loginRecordNow(account: account, deviceID: deviceID))
            } else {
                storeWork({ () async throws(RelayStoreError) in try await store.loginRecord(account: account, deviceID: deviceID) }, then: finish)
            }
        case (_, .register(let reg)?):
            guard let deviceKey else { return reject(.unauthenticated, pattern) }
            guard DeviceBinding.isValidAccountName(reg.account) else { return reject(.invalidAccountName, pattern) }
            guard RelayProtocol.Limits.deviceIDs.contains(reg.deviceID) else { return reject(.malformedStanza, pattern) }
            guard let identity = try? Curve25519.KeyAgreement.PublicKey(validatingRawRepresentation: reg.identityKey) else {
                return reject(.invalidKey, pattern)
            }
            guard DeviceBinding.verify(Array(reg.deviceSignature), account: reg.account, deviceID: reg.deviceID,
                                       deviceKey: deviceKey, identityKey: identity) else {
                return reject(.invalidSignature, pattern)
            }
            let account = reg.account, deviceID = reg.deviceID, identityKey = reg.identityKey
            let staticKey = Data(deviceKey.rawRepresentation)
            // §5.1, §22.4: the store compares SHA-256 of the token with the stored hash (an absent
            // token is nil; any other length cannot match a 16-byte token's hash).
            let linkToken = reg.linkToken.isEmpty ? nil : LinkTokenProof(tokenHash: Data(SHA256.hash(reg.linkToken)), now: now)
            storeWork({ () async throws(RelayStoreError) -> PrekeyCounts in
                _ = try await store.register(account: account, identityKey: identityKey, deviceID: deviceID, staticKey: staticKey,
                                             maxDevices: RelayProtocol.Limits.maxDevicesPerAccount, linkToken: linkToken)
                return PrekeyCounts(oneTime: (try? await store.prekeyCount(account: account, deviceID: deviceID)) ?? 0,
                                    kyberOneTime: (try? await store.kyberPrekeyCount(account: account, deviceID: deviceID)) ?? 0)
            }) { [self] result in
                switch result {
                case .success(let prekeys):
                    log(.info, "device registered", ["device": "\(account).\(deviceID)"])
                    loggedIn(DeviceAddress(account: account, deviceID: deviceID), identity: identityKey, registered: true,
                             pattern: pattern, prekeys: prekeys)
                case .failure(.accountTaken): reject(.accountTaken, pattern)
                case .failure(.deviceTaken): reject(.deviceTaken, pattern)
                case .failure(.tooManyDevices): reject(.tooManyDevices, pattern)
                case .failure(.invalidLinkToken): reject(.invalidLinkToken, pattern)
                case .failure: reject(.internalError, pattern)
                }
            }
        }
    }

    private func loggedIn(_ address: DeviceAddress, identity: Data, registered: Bool, pattern: RelayProtocol.Pattern, prekeys: PrekeyCounts) {
        guard phase == .handshake else { return }
        identityKey = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: identity)
        // Register before the first queue read, so that nothing committed in between is missed (§7.3).
        if let old = relay.router.register(address, self) {
            old.closeSoon(.replaced)
        } else {
            relay.metrics.devicesOnline.increment()
        }
        // Cluster touch point 1 (RelayCluster.swift): other nodes close their older connection of
        // this device (4007). Not awaited: the login does not wait for the database.
        let cluster = relay.configuration.cluster
        if !(cluster is SingleNodeCluster) { Task { await cluster.announce(address) } }
        var w = RelayWelcome()
        w.account = address.account
        w.deviceID = address.deviceID
        w.prekeysRemaining = UInt32(clamping: prekeys.oneTime)
        w.kyberPrekeysRemaining = UInt32(clamping: prekeys.kyberOneTime)
        w.serverTime = relay.configuration.clock()
        w.registered = registered
        var s = RelayStanza()
        s.welcome = w
        relay.metrics.handshake("\(pattern)", registered ? "registered" : "login")
        send(s)
        phase = .device(address)
        handshakeTimer?.cancel()
        handshakeTimer = nil
        // Presence (§17) is told without holding up the login: it may read the store.
        relay.services.presence.online(address, self)
        pump()
    }

    // MARK: stanzas (§6, §7)

    /// The stanza-rate tokens a stanza costs (§10): one, except a `MultiSend`, which stores a
    /// copy per listed device: one token per 16 of them (rounded up), the most a `Send` stores.
    static func tokens(_ stanza: RelayStanza) -> Double {
        guard case .multiSend(let m)? = stanza.body else { return 1 }
        let devices = m.recipients.reduce(0) { $0 + $1.devices.count }
        return Double(max(1, (devices + RelayProtocol.Limits.maxDevicesPerRequest - 1) / RelayProtocol.Limits.maxDevicesPerRequest))
    }

    /// The one dispatch point for client stanzas. Handlers run on the event loop; they answer
    /// with ``send(_:)``/``sendError(_:requestID:clientMessageID:deviceID:account:)``, reach other
    /// devices' connections through `relay.router`, and run store work with
    /// ``storeWork(_:then:)`` (the next stanza waits until it finished).
    /// Sends and acks are pipelined (several in the store at once, replies in order); any other
    /// stanza waits until they completed.
    private func handle(_ stanza: RelayStanza) {
        let config = relay.configuration
        guard bucket.take(Self.tokens(stanza), now: config.clock()) else {
            var cmid: UInt64 = 0
            if case .send(let m)? = stanza.body { cmid = m.clientMessageID }
            if case .sealedSend(let m)? = stanza.body { cmid = m.clientMessageID }
            if case .multiSend(let m)? = stanza.body { cmid = m.clientMessageID }
            sendError(.rateLimited, requestID: stanza.requestID, clientMessageID: cmid)
            return
        }
        if let hook = config.stanzaHook {
            do { try hook(stanza) } catch {
                log(.error, "stanza handler failed", ["type": "\(stanza.kind)"])
                close(.internalError)
                return
            }
        }
        switch stanza.body {
        case .ping(let p)?:
            var pong = RelayStanza()
            pong.pong.requestID = p.requestID
            send(pong)
        case .send(let m)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated, clientMessageID: m.clientMessageID) }
            handleSend(m, from: me)
        case .ack(let a)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated) }
            handleAck(a, me)
        case .uploadPrekeys(let u)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated, requestID: u.requestID) }
            handleUpload(u, me)
        case .fetchPrekeys(let f)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated, requestID: f.requestID) }
            handleFetch(f, me)
        case .getSenderCertificate(let g)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated, requestID: g.requestID) }
            handleGetSenderCertificate(g, me)
        case .setPresencePrivacy(let p)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated, requestID: p.requestID) }
            handleSetPresencePrivacy(p, me)
        case .subscribePresence(let p)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated, requestID: p.requestID) }
            handleSubscribePresence(p, me)
        case .sendEphemeral(let e)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated) }
            handleSendEphemeral(e, me)
        case .requestMediaUpload(let r)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated, requestID: r.requestID) }
            handleRequestMediaUpload(r, me)
        case .setSealedAccess(let a)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated, requestID: a.requestID) }
            handleSetSealedAccess(a, me)
        case .sealedSend(let m)?:
            // On a logged-in connection it would name its sender: refused, nothing stored.
            guard case .anonymous = phase else { return sendError(.notAnonymous, clientMessageID: m.clientMessageID) }
            handleSealedSend(m)
        case .multiSend(let m)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated, clientMessageID: m.clientMessageID) }
            handleMultiSend(m, from: me)
        case .listDevices(let l)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated, requestID: l.requestID) }
            handleListDevices(l, me)
        case .removeDevice(let r)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated, requestID: r.requestID) }
            handleRemoveDevice(r, me)
        case .openProvisioning(let o)?:
            guard case .anonymous = phase else { return sendError(.notAnonymous, requestID: o.requestID) }
            handleOpenProvisioning(o)
        case .sendProvisioning(let p)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated, requestID: p.requestID) }
            handleSendProvisioning(p, me)
        case .requestLinkToken(let r)?:
            guard case .device(let me) = phase else { return sendError(.unauthenticated, requestID: r.requestID) }
            handleRequestLinkToken(r, me)
        default:
            // Relay-to-client stanzas from a client are out of order.
            sendError(.unexpectedStanza)
            close(.protocolViolation)
        }
    }
}

extension RelayStanza {
    /// The request id of a request stanza, 0 if it has none.
    var requestID: UInt32 {
        switch body {
        case .uploadPrekeys(let u): u.requestID
        case .fetchPrekeys(let f): f.requestID
        case .ping(let p): p.requestID
        case .getSenderCertificate(let g): g.requestID
        case .setPresencePrivacy(let p): p.requestID
        case .subscribePresence(let p): p.requestID
        case .requestMediaUpload(let r): r.requestID
        case .setSealedAccess(let a): a.requestID
        case .listDevices(let l): l.requestID
        case .removeDevice(let r): r.requestID
        case .openProvisioning(let o): o.requestID
        case .sendProvisioning(let p): p.requestID
        case .requestLinkToken(let r): r.requestID
        default: 0
        }
    }
}
