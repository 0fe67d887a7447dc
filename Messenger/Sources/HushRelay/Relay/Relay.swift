import Dispatch
import Foundation
import Hush
import HushTransport
import Logging
import Synchronization

/// One inbound WebSocket message, as the transport hands it to a connection.
public enum InboundFrame: Sendable {
    /// A binary message (handshake message or Noise transport message).
    case binary([UInt8])
    /// A text message (not allowed: closes with 1003).
    case text
}

/// How a connection writes to and closes its transport (a WebSocket in production).
public protocol RelayConnectionTransport: Sendable {
    /// Writes one binary message; returns once the transport accepted it (backpressure).
    func send(_ message: [UInt8]) async throws
    /// Closes with a close code.
    func close(_ code: RelayProtocol.CloseCode) async
}

/// The relay: accounts, devices, prekeys, routing and the offline queue over a
/// ``RelayStore``, independent of the network server (see ``RelayServer``).
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
                logger: Logger = Logger(label: "hush-relay")) {
        self.store = store
        self.identity = identity
        self.configuration = configuration
        self.logger = logger
        replay = ReplayCache(windowMilliseconds: 2 * RelayProtocol.Limits.clockSkewSeconds * 1_000, capacity: 500_000)
        fetchLimiter = KeyedRateLimiter(rate: configuration.fetchRate, burst: configuration.fetchBurst)
    }

    /// Devices with a logged-in connection.
    public var onlineDevices: Int { router.count }

    /// Serves one connection until it ends: handshake, login, stanzas, deliveries.
    public func serve<S: AsyncSequence & Sendable>(inbound: S, transport: some RelayConnectionTransport) async
    where S.Element == InboundFrame {
        let id = nextConnectionID.add(1, ordering: .relaxed).newValue
        let connection = RelayConnection(relay: self, id: id, transport: transport)
        open.withLock { $0[id] = connection }
        defer { open.withLock { _ = $0.removeValue(forKey: id) } }
        // A connection that arrives after shutdown began is closed at once.
        if isShuttingDown { await connection.close(.goingAway) }
        await connection.run(inbound: inbound)
    }

    /// Deletes expired messages (the TTL, §7.2); returns how many.
    @discardableResult
    public func purgeExpired() async -> Int {
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

    /// Closes every open connection with 1001 (going away), for shutdown: logged-in devices,
    /// connections still in their handshake, and anonymous ones.
    public func closeAll() async {
        let all = open.withLock { Array($0.values) }
        await withTaskGroup(of: Void.self) { group in
            for c in all { group.addTask { await c.close(.goingAway) } }
        }
    }

    /// The number of messages queued on this device's connection but not yet acknowledged
    /// (for tests and diagnostics).
    public func inFlight(account: String, deviceID: UInt32) -> Int? {
        router.connection(DeviceAddress(account: account, deviceID: deviceID))?.inFlightCount
    }
}

/// One client connection (`Docs/spec/relay.md` §5–§8).
final class RelayConnection: Sendable {
    enum Phase: Sendable, Equatable {
        case handshake
        case anonymous
        case device(DeviceAddress)
        case closed
    }

    struct State {
        var phase = Phase.handshake
        var identityKey: Curve25519.KeyAgreement.PublicKey?
        var inflight: Set<UInt64> = []
        var lastDelivered: UInt64 = 0
        var pushed: [QueuedMessage] = []
        var needsStoreRead = true
        var generation = 0
        var drained = false
        var prekeysLow: UInt32?
        var sender: StanzaChannel.Sender?
        var bucket: TokenBucket
    }

    let relay: Relay
    let id: UInt64
    let transport: any RelayConnectionTransport
    let state: Mutex<State>
    let gate = SerialGate()
    let wakeup = Wakeup()
    let logger: Logger
    var window: Int { relay.configuration.deliveryWindow }

    init(relay: Relay, id: UInt64, transport: some RelayConnectionTransport) {
        self.relay = relay
        self.id = id
        self.transport = transport
        let c = relay.configuration
        state = Mutex(State(bucket: TokenBucket(rate: c.stanzaRate, burst: c.stanzaBurst, now: c.clock())))
        var logger = relay.logger
        logger[metadataKey: "conn"] = "\(id)"
        self.logger = logger
    }

    var phase: Phase { state.withLock { $0.phase } }
    var inFlightCount: Int { state.withLock { $0.inflight.count } }

    // MARK: lifecycle

    enum Ending: Sendable { case readerDone, timedOut, other }

    func run<S: AsyncSequence & Sendable>(inbound: S) async where S.Element == InboundFrame {
        relay.metrics.connectionsOpened.increment()
        relay.metrics.connectionsOpen.increment()
        defer { relay.metrics.connectionsOpen.decrement() }
        await withTaskGroup(of: Ending.self) { group in
            group.addTask { await self.readLoop(inbound); return .readerDone }
            group.addTask { await self.watchdog() ? .timedOut : .other }
            group.addTask { await self.deliveryLoop(); return .other }
            // The reader ends when the peer's close arrives (or the transport fails); a close
            // from elsewhere (shutdown, replacement, delivery failure) waits for it, bounded by
            // the WebSocket close timeout. Only a handshake timeout cuts the reader short.
            while let ending = await group.next() {
                if ending != .other { break }
            }
            group.cancelAll()
        }
        if case .device(let address) = state.withLock({ s -> Phase in
            defer { s.phase = .closed }
            return s.phase
        }) {
            if relay.router.unregister(address, self) { relay.metrics.devicesOnline.decrement() }
        }
        gate.close()
        logger.debug("connection ended")
    }

    /// `true` when it closed the connection for a handshake timeout.
    private func watchdog() async -> Bool {
        do { try await Task.sleep(for: relay.configuration.handshakeTimeout) } catch { return false }
        if phase == .handshake {
            relay.metrics.handshake("unknown", "timeout")
            await close(.handshakeTimeout)
            return true
        }
        // Logged in: nothing more to watch (WebSocket pings detect dead peers). Returning ends
        // this child task, so a long-lived connection does not keep its frame.
        return false
    }

    /// Closes the connection with `code`; later sends fail at once.
    func close(_ code: RelayProtocol.CloseCode) async {
        let first = state.withLock { s -> Bool in
            if s.phase == .closed { return false }
            if case .device(let address) = s.phase, relay.router.unregister(address, self) { relay.metrics.devicesOnline.decrement() }
            s.phase = .closed
            return true
        }
        guard first else { return }
        gate.close()
        wakeup.signal()
        relay.metrics.closed(code.rawValue)
        logger.debug("closing", metadata: ["code": "\(code.rawValue)"])
        await transport.close(code)
        logger.trace("closed", metadata: ["code": "\(code.rawValue)"])
    }

    // MARK: writing

    /// Writes raw bytes (handshake messages) in order with stanzas.
    private func sendRaw(_ bytes: [UInt8]) async -> Bool {
        guard await gate.acquire() else { return false }
        defer { gate.release() }
        do {
            try await transport.send(bytes)
            return true
        } catch { return false }
    }

    /// Encrypts and writes one stanza; `false` when the connection is gone.
    @discardableResult
    func send(_ stanza: RelayStanza) async -> Bool {
        guard await gate.acquire() else { return false }
        defer { gate.release() }
        let sealed = state.withLock { s -> Result<[UInt8], TransportError>? in
            guard var sender = s.sender else { return nil }
            defer { s.sender = sender }
            do throws(TransportError) { return .success(try sender.seal(stanza)) } catch { return .failure(error) }
        }
        switch sealed {
        case nil: return false
        case .failure(let error):
            logger.error("cannot seal stanza", metadata: ["error": "\(error)"])
            return false
        case .success(let bytes):
            do {
                try await transport.send(bytes)
                relay.metrics.stanzaOut(stanza.kind)
                return true
            } catch { return false }
        }
    }

    private func sendError(_ code: RelayErrorCode, requestID: UInt32 = 0, clientMessageID: UInt64 = 0, deviceID: UInt32 = 0) async {
        relay.metrics.error(RelayErrorCodeName(name: "\(code)"))
        await send(.error(code, requestID: requestID, clientMessageID: clientMessageID, deviceID: deviceID))
    }

    // MARK: reading

    private func readLoop<S: AsyncSequence>(_ inbound: S) async where S.Element == InboundFrame {
        var handshake: ServerHandshake? = ServerHandshake(relayKey: relay.identity.staticKey, certificate: relay.identity.certificate,
                                                          serverTime: relay.configuration.clock() / 1_000, random: relay.configuration.random)
        var receiver: StanzaChannel.Receiver?
        let started = DispatchTime.now()
        do {
            for try await frame in inbound {
                if phase == .closed { return }
                guard case .binary(let bytes) = frame else {
                    await close(.unsupportedData)
                    return
                }
                if var hs = handshake {
                    let step: ServerHandshake.Step
                    do { step = try hs.receive(bytes) } catch {
                        relay.metrics.handshake(hs.pattern.map { "\($0)" } ?? "unknown", "failed")
                        logger.debug("handshake failed", metadata: ["error": "\(error)"])
                        await close(.handshakeFailed)
                        return
                    }
                    switch step {
                    case .reply(let reply):
                        handshake = hs
                        guard await sendRaw(reply) else { return }
                    case .finished(let reply, let hello, let channel):
                        handshake = nil
                        relay.metrics.handshakeLatency.recordInterval(since: started)
                        state.withLock { $0.sender = channel.sender }
                        receiver = channel.receiver
                        if let reply { guard await sendRaw(reply) else { return } }
                        guard await login(hello, pattern: hs.pattern ?? .xx, deviceKey: channel.remoteStaticKey,
                                          ephemeral: hs.clientEphemeral) else { return }
                    }
                    continue
                }
                guard var r = receiver else { return }
                let plaintext: [UInt8]
                do { plaintext = try r.openBytes(bytes) } catch {
                    await close(.decryptFailed)
                    return
                }
                receiver = r
                let stanza: RelayStanza
                do { stanza = try StanzaCodec.decode(plaintext) } catch {
                    relay.metrics.stanzaIn("malformed")
                    await sendError(.malformedStanza)
                    await close(.protocolViolation)
                    return
                }
                relay.metrics.stanzaIn(stanza.kind)
                guard await handle(stanza) else { return }
            }
        } catch {
            logger.debug("inbound ended", metadata: ["error": "\(error)"])
        }
        if phase != .closed { await close(relay.isShuttingDown ? .goingAway : .normal) }
    }

    // MARK: login (§5)

    private func reject(_ code: RelayErrorCode, _ pattern: RelayProtocol.Pattern) async -> Bool {
        relay.metrics.handshake("\(pattern)", "rejected")
        await sendError(code)
        await close(.loginRejected)
        return false
    }

    private func login(_ hello: RelayClientHello, pattern: RelayProtocol.Pattern,
                       deviceKey: Curve25519.KeyAgreement.PublicKey?, ephemeral: [UInt8]?) async -> Bool {
        let now = relay.configuration.clock()
        guard hello.version == RelayProtocol.version else { return await reject(.unsupportedVersion, pattern) }
        let skew = RelayProtocol.Limits.clockSkewSeconds
        let seconds = now / 1_000
        guard hello.timestamp + skew >= seconds, hello.timestamp <= seconds + skew else { return await reject(.clockSkew, pattern) }
        guard let ephemeral, relay.replay.insert(ephemeral, now: now) else { return await reject(.replayedHandshake, pattern) }

        switch (pattern, hello.action) {
        case (.nk, nil):
            state.withLock { $0.phase = .anonymous }
            relay.metrics.handshake("nk", "anonymous")
            var w = RelayWelcome()
            w.serverTime = now
            var s = RelayStanza()
            s.welcome = w
            return await send(s)
        case (.nk, _), (_, nil):
            return await reject(.unauthenticated, pattern)
        case (_, .login(let login)?):
            guard let deviceKey else { return await reject(.unauthenticated, pattern) }
            let device: DeviceRecord?
            let account: AccountRecord?
            do {
                account = try await relay.store.account(named: login.account)
                device = try await relay.store.device(account: login.account, deviceID: login.deviceID)
            } catch { return await reject(.internalError, pattern) }
            guard let account else { return await reject(.unknownAccount, pattern) }
            guard let device else { return await reject(.unknownDevice, pattern) }
            guard ConstantTime.equals(device.staticKey, deviceKey.rawRepresentation) else {
                return await reject(.deviceKeyMismatch, pattern)
            }
            return await loggedIn(DeviceAddress(account: login.account, deviceID: login.deviceID),
                                  identity: account.identityKey, registered: false, pattern: pattern)
        case (_, .register(let reg)?):
            guard let deviceKey else { return await reject(.unauthenticated, pattern) }
            guard DeviceBinding.isValidAccountName(reg.account) else { return await reject(.invalidAccountName, pattern) }
            guard RelayProtocol.Limits.deviceIDs.contains(reg.deviceID) else { return await reject(.malformedStanza, pattern) }
            guard let identity = try? Curve25519.KeyAgreement.PublicKey(validatingRawRepresentation: reg.identityKey) else {
                return await reject(.invalidKey, pattern)
            }
            guard DeviceBinding.verify(Array(reg.deviceSignature), account: reg.account, deviceID: reg.deviceID,
                                       deviceKey: deviceKey, identityKey: identity) else {
                return await reject(.invalidSignature, pattern)
            }
            do {
                _ = try await relay.store.register(account: reg.account, identityKey: reg.identityKey, deviceID: reg.deviceID,
                                                   staticKey: Data(deviceKey.rawRepresentation),
                                                   maxDevices: RelayProtocol.Limits.maxDevicesPerAccount)
            } catch {
                switch error {
                case .accountTaken: return await reject(.accountTaken, pattern)
                case .deviceTaken: return await reject(.deviceTaken, pattern)
                case .tooManyDevices: return await reject(.tooManyDevices, pattern)
                default: return await reject(.internalError, pattern)
                }
            }
            logger.info("device registered", metadata: ["device": "\(reg.account).\(reg.deviceID)"])
            return await loggedIn(DeviceAddress(account: reg.account, deviceID: reg.deviceID),
                                  identity: reg.identityKey, registered: true, pattern: pattern)
        }
    }

    private func loggedIn(_ address: DeviceAddress, identity: Data, registered: Bool, pattern: RelayProtocol.Pattern) async -> Bool {
        let identityKey = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: identity)
        let remaining = (try? await relay.store.prekeyCount(account: address.account, deviceID: address.deviceID)) ?? 0
        // Register before the first queue read, so that nothing committed in between is missed (§7.3).
        if let old = relay.router.register(address, self) {
            Task { await old.close(.replaced) }
        } else {
            relay.metrics.devicesOnline.increment()
        }
        await relay.configuration.cluster.announce(address)  // cluster touch point 1 (RelayCluster.swift)
        var w = RelayWelcome()
        w.account = address.account
        w.deviceID = address.deviceID
        w.prekeysRemaining = UInt32(clamping: remaining)
        w.serverTime = relay.configuration.clock()
        w.registered = registered
        var s = RelayStanza()
        s.welcome = w
        relay.metrics.handshake("\(pattern)", registered ? "registered" : "login")
        guard await send(s) else { return false }
        let ok = state.withLock { st -> Bool in
            guard st.phase == .handshake else { return false }
            st.phase = .device(address)
            st.identityKey = identityKey
            return true
        }
        wakeup.signal()
        return ok
    }

    // MARK: stanzas (§6, §7)

    /// Handles one stanza; `false` when the connection was closed.
    private func handle(_ stanza: RelayStanza) async -> Bool {
        let config = relay.configuration
        let allowed = state.withLock { $0.bucket.take(now: config.clock()) }
        guard allowed else {
            var cmid: UInt64 = 0
            if case .send(let m)? = stanza.body { cmid = m.clientMessageID }
            await sendError(.rateLimited, requestID: stanza.requestID, clientMessageID: cmid)
            return true
        }
        if let hook = config.stanzaHook {
            do { try hook(stanza) } catch {
                logger.error("stanza handler failed", metadata: ["type": "\(stanza.kind)"])
                await close(.internalError)
                return false
            }
        }
        let current = phase
        switch stanza.body {
        case .ping(let p)?:
            var pong = RelayStanza()
            pong.pong.requestID = p.requestID
            return await send(pong) || true
        case .send(let m)?:
            guard case .device(let me) = current else { await sendError(.unauthenticated, clientMessageID: m.clientMessageID); return true }
            await handleSend(m, from: me)
        case .ack(let a)?:
            guard case .device(let me) = current else { await sendError(.unauthenticated); return true }
            await handleAck(a, me)
        case .uploadPrekeys(let u)?:
            guard case .device(let me) = current else { await sendError(.unauthenticated, requestID: u.requestID); return true }
            await handleUpload(u, me)
        case .fetchPrekeys(let f)?:
            guard case .device(let me) = current else { await sendError(.unauthenticated, requestID: f.requestID); return true }
            await handleFetch(f, me)
        default:
            // Relay-to-client stanzas from a client are out of order.
            await sendError(.unexpectedStanza)
            await close(.protocolViolation)
            return false
        }
        return phase != .closed
    }

    private func handleSend(_ m: RelaySend, from me: DeviceAddress) async {
        let limits = RelayProtocol.Limits.self
        let cmid = m.clientMessageID
        guard (1...limits.maxDevicesPerRequest).contains(m.devices.count), Set(m.devices).count == m.devices.count,
              m.devices.allSatisfy({ limits.deviceIDs.contains($0) }) else {
            await sendError(.malformedStanza, clientMessageID: cmid)
            return
        }
        guard m.payload.count <= limits.maxPayload else { await sendError(.payloadTooLarge, clientMessageID: cmid); return }
        guard DeviceBinding.isValidAccountName(m.account) else { await sendError(.unknownAccount, clientMessageID: cmid); return }
        let config = relay.configuration
        let request = EnqueueRequest(senderAccount: me.account, senderDevice: me.deviceID, clientMessageID: cmid, recipient: m.account,
                                     devices: m.devices, payload: m.payload, now: config.clock(),
                                     ttlMilliseconds: config.ttlMilliseconds, queueCap: config.queueCap)
        let router = relay.router
        let started = DispatchTime.now()
        let outcome: EnqueueOutcome
        do {
            outcome = try await relay.store.enqueue(request, committed: { router.push($0) })
        } catch {
            switch error {
            case .unknownAccount: await sendError(.unknownAccount, clientMessageID: cmid)
            case .unknownDevice(let d): await sendError(.unknownDevice, clientMessageID: cmid, deviceID: d)
            case .queueFull(let d, _): await sendError(.queueFull, clientMessageID: cmid, deviceID: d)
            default:
                logger.error("enqueue failed", metadata: ["error": "\(error)"])
                await sendError(.internalError, clientMessageID: cmid)
            }
            return
        }
        relay.metrics.commitLatency.recordInterval(since: started)
        var ack = RelayServerAck()
        ack.clientMessageID = cmid
        switch outcome {
        case .stored(let time, let messages):
            relay.metrics.messagesStored.increment(by: messages.count)
            ack.serverTime = time
        case .duplicate(let time):
            relay.metrics.duplicates.increment()
            ack.serverTime = time
        }
        var s = RelayStanza()
        s.serverAck = ack
        await send(s)
    }

    private func handleAck(_ a: RelayAck, _ me: DeviceAddress) async {
        guard (1...RelayProtocol.Limits.maxAckIDs).contains(a.serverIds.count) else { await sendError(.malformedStanza); return }
        do {
            let n = try await relay.store.acknowledge(account: me.account, deviceID: me.deviceID, serverIDs: a.serverIds)
            relay.metrics.acks.increment(by: n)
        } catch {
            logger.error("ack failed", metadata: ["error": "\(error)"])
            await sendError(.internalError)
            return
        }
        state.withLock { s in for id in a.serverIds { s.inflight.remove(id) } }
        wakeup.signal()
    }

    private func handleUpload(_ u: RelayUploadPrekeys, _ me: DeviceAddress) async {
        let rid = u.requestID
        guard u.oneTime.count <= RelayProtocol.Limits.maxPrekeysPerUpload else { await sendError(.tooManyPrekeys, requestID: rid); return }
        var oneTime: [OneTimePrekeyRecord] = []
        oneTime.reserveCapacity(u.oneTime.count)
        for p in u.oneTime {
            guard (try? Curve25519.KeyAgreement.PublicKey(validatingRawRepresentation: p.publicKey)) != nil else {
                await sendError(.invalidKey, requestID: rid)
                return
            }
            oneTime.append(OneTimePrekeyRecord(id: p.id, publicKey: p.publicKey))
        }
        var signed: SignedPrekeyRecord?
        if u.hasSignedPrekey {
            let sp = u.signedPrekey
            guard let key = try? Curve25519.KeyAgreement.PublicKey(validatingRawRepresentation: sp.publicKey) else {
                await sendError(.invalidKey, requestID: rid)
                return
            }
            guard let identity = state.withLock({ $0.identityKey }),
                  XEdDSA.isValidSignature(sp.signature, for: key.signalRepresentation, publicKey: identity) else {
                await sendError(.invalidSignature, requestID: rid)
                return
            }
            signed = SignedPrekeyRecord(id: sp.id, publicKey: sp.publicKey, signature: sp.signature)
        }
        do {
            _ = try await relay.store.storePrekeys(account: me.account, deviceID: me.deviceID, registrationID: u.registrationID,
                                                   signed: signed, oneTime: oneTime, maxStored: RelayProtocol.Limits.maxStoredPrekeys)
        } catch {
            if case .tooManyPrekeys = error { await sendError(.tooManyPrekeys, requestID: rid) } else { await sendError(.internalError, requestID: rid) }
            return
        }
        var s = RelayStanza()
        s.ok.requestID = rid
        await send(s)
    }

    private func handleFetch(_ f: RelayFetchPrekeys, _ me: DeviceAddress) async {
        let rid = f.requestID
        guard f.devices.count <= RelayProtocol.Limits.maxDevicesPerRequest else { await sendError(.malformedStanza, requestID: rid); return }
        guard relay.fetchLimiter.take(me.description, now: relay.configuration.clock()) else {
            await sendError(.rateLimited, requestID: rid)
            return
        }
        guard DeviceBinding.isValidAccountName(f.account) else { await sendError(.unknownAccount, requestID: rid); return }
        let account: AccountRecord?
        let bundles: [PrekeyBundleRecord]
        do {
            account = try await relay.store.account(named: f.account)
            guard account != nil else { await sendError(.unknownAccount, requestID: rid); return }
            bundles = try await relay.store.claimBundles(account: f.account, devices: f.devices.isEmpty ? nil : f.devices)
        } catch {
            switch error {
            case .unknownAccount: await sendError(.unknownAccount, requestID: rid)
            case .unknownDevice(let d): await sendError(.unknownDevice, requestID: rid, deviceID: d)
            default: await sendError(.internalError, requestID: rid)
            }
            return
        }
        var out = RelayPrekeyBundles()
        out.requestID = rid
        out.identityKey = account!.identityKey
        out.bundles = bundles.map { b in
            var pb = RelayPrekeyBundle()
            pb.deviceID = b.deviceID
            pb.registrationID = b.registrationID
            if let sp = b.signedPrekey {
                pb.signedPrekey.id = sp.id
                pb.signedPrekey.publicKey = sp.publicKey
                pb.signedPrekey.signature = sp.signature
            }
            if let ot = b.oneTime {
                pb.oneTime.id = ot.id
                pb.oneTime.publicKey = ot.publicKey
            }
            return pb
        }
        var s = RelayStanza()
        s.prekeyBundles = out
        await send(s)
        for b in bundles where b.oneTime != nil && b.remaining < RelayProtocol.Limits.prekeysLowThreshold {
            relay.router.connection(DeviceAddress(account: f.account, deviceID: b.deviceID))?.notifyPrekeysLow(b.remaining)
        }
    }

    // MARK: delivery (§7.3)

    /// A committed message for this device (called by the store's commit callback, in commit order).
    func push(_ message: QueuedMessage) {
        if relay.configuration.cluster.deliversByStoreRead { return wakeForStoreRead() }  // cluster touch point 2
        state.withLock { s in
            if s.pushed.count >= window {
                // Overflow: forget the buffer and read from the store instead.
                s.pushed.removeAll(keepingCapacity: true)
                s.needsStoreRead = true
                s.generation += 1
            } else {
                s.pushed.append(message)
            }
        }
        wakeup.signal()
    }

    func notifyPrekeysLow(_ remaining: Int) {
        state.withLock { $0.prekeysLow = UInt32(clamping: remaining) }
        wakeup.signal()
    }

    enum DeliveryAction {
        case wait
        case stop
        case read(DeviceAddress, after: UInt64, limit: Int, generation: Int)
        case deliver(QueuedMessage)
        case queueEmpty
        case prekeysLow(UInt32)
    }

    private func nextAction() -> DeliveryAction {
        state.withLock { s -> DeliveryAction in
            guard case .device(let address) = s.phase else { return s.phase == .closed ? .stop : .wait }
            if let low = s.prekeysLow {
                s.prekeysLow = nil
                return .prekeysLow(low)
            }
            let room = window - s.inflight.count
            guard room > 0 else { return .wait }
            if s.needsStoreRead { return .read(address, after: s.lastDelivered, limit: room, generation: s.generation) }
            while !s.pushed.isEmpty {
                let m = s.pushed.removeFirst()
                if m.serverID > s.lastDelivered {
                    s.lastDelivered = m.serverID
                    s.inflight.insert(m.serverID)
                    return .deliver(m)
                }
            }
            if !s.drained {
                s.drained = true
                return .queueEmpty
            }
            return .wait
        }
    }

    private func deliveryLoop() async {
        while !Task.isCancelled {
            switch nextAction() {
            case .stop: return
            case .wait: await wakeup.wait()
            case .prekeysLow(let n):
                var s = RelayStanza()
                s.prekeysLow.remaining = n
                guard await send(s) else { return }
            case .queueEmpty:
                var s = RelayStanza()
                s.queueEmpty = RelayQueueEmpty()
                guard await send(s) else { return }
            case .deliver(let m):
                guard await deliver(m) else { return }
            case .read(let address, let after, let limit, let generation):
                let batch: [QueuedMessage]
                do { batch = try await relay.store.pending(account: address.account, deviceID: address.deviceID, after: after, limit: limit) } catch is CancellationError {
                    return  // the connection is ending (the client left): not a store failure
                } catch {
                    logger.error("queue read failed", metadata: ["error": "\(error)"])
                    await close(.internalError)
                    return
                }
                let toSend = state.withLock { s -> [QueuedMessage] in
                    var out: [QueuedMessage] = []
                    for m in batch where m.serverID > s.lastDelivered {
                        s.lastDelivered = m.serverID
                        s.inflight.insert(m.serverID)
                        out.append(m)
                    }
                    if batch.count < limit, s.generation == generation { s.needsStoreRead = false }
                    let last = s.lastDelivered
                    s.pushed.removeAll { $0.serverID <= last }
                    return out
                }
                for m in toSend { guard await deliver(m) else { return } }
            }
        }
    }

    private func deliver(_ m: QueuedMessage) async -> Bool {
        var d = RelayDeliver()
        d.serverID = m.serverID
        d.senderAccount = m.senderAccount
        d.senderDevice = m.senderDevice
        d.serverTime = m.serverTime
        d.payload = m.payload
        var s = RelayStanza()
        s.deliver = d
        guard await send(s) else { return false }
        relay.metrics.delivered.increment()
        return true
    }
}

extension RelayStanza {
    /// The request id of a request stanza, 0 if it has none.
    var requestID: UInt32 {
        switch body {
        case .uploadPrekeys(let u): u.requestID
        case .fetchPrekeys(let f): f.requestID
        case .ping(let p): p.requestID
        default: 0
        }
    }
}
