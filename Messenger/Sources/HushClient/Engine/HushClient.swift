import Foundation
import Hush
import HushPQ
import HushTransport

/// A messaging client: one device of one account (`Docs/client.md`).
///
/// It owns the device's keys and sessions (in its ``ClientStore``), its connection to the relay
/// and its local history. Everything is serialized by the actor; the store's `atomically` is
/// the unit of durability, so a kill -9 at any point neither loses an acknowledged message nor
/// shows one twice.
///
/// ```swift
/// let store = InMemoryClientStore(identity: keys.identity, registrationID: keys.registrationID)
/// let alice = try await HushClient.create(account: "alice", store: store, configuration: config)
/// await alice.start()
/// for await event in alice.events { … }          // messages, ticks, presence, typing, …
/// let id = try await alice.send("Hi", to: "bob")   // ✓ then ✓✓ then read arrive as .tick events
/// ```
public actor HushClient {
    /// The account.
    public nonisolated let account: String
    /// This device's id.
    public nonisolated let deviceID: UInt32
    /// Everything the client reports, in order (one consumer). Holds at most
    /// ``ClientConfiguration/eventBufferLimit`` unread events, dropping the oldest beyond that
    /// (the store keeps every message and tick regardless).
    public nonisolated let events: AsyncStream<ClientEvent>
    private let sink: AsyncStream<ClientEvent>.Continuation
    /// The local store.
    public nonisolated let store: any ClientStore
    /// How it runs.
    public nonisolated let configuration: ClientConfiguration
    private let noiseKey: Curve25519.KeyAgreement.PrivateKey
    let identity: IdentityKeyPair

    // Connection
    var link: RelayLink?
    private var runTask: Task<Void, Never>?
    var stopping = false
    var drained = false
    /// The login's key upkeep (prekey upload, certificate, presence) finished.
    private var setupDone = false
    /// The current connection state.
    public private(set) var connectionState: ConnectionState = .offline
    /// Why the last connection that failed after login ended, when the client knows
    /// (``LinkError/inboundOverflow``); for diagnostics.
    public private(set) var lastLinkError: LinkError?
    /// Connections closed because this client fell ``ClientConfiguration/inboundBufferLimit``
    /// messages behind the relay (each resumed from the relay's queue, nothing lost).
    public private(set) var inboundOverflows = 0
    private var pending: [UInt32: CheckedContinuation<RelayStanza, any Error>] = [:]
    private var nextRequestID: UInt32 = 0
    /// Outbox items written on the current connection and not yet acked (client message id → item).
    var inFlight: [UInt64: OutboxItem] = [:]
    private var pumping = false
    /// The outbox as last read from the store, nil when it must be read again. This actor is the
    /// outbox's only writer: every step that enqueues, replaces or removes items drops the copy
    /// (an ack removes its item from it), so the pump and the ack do not unseal the whole outbox
    /// once per acked item.
    var outboxCache: [OutboxItem]?
    private var pumpAgain = false
    private var flushScheduled = false
    private var sessionTasks: [String: Task<Void, any Error>] = [:]
    private var typingUntil: [String: UInt64] = [:]
    private var replenishing = false
    private var replenishingKyber = false
    // Sealed sender (SealedSender.swift)
    /// The anonymous (NK) connection sealed sends go on, opened when one is due.
    var anonymousLink: RelayLink?
    var anonymousOpening = false
    /// Sealed sends written on the anonymous connection and not yet acked: wire id → outbox id.
    var sealedInFlight: [UInt64: UInt64] = [:]
    /// Contacts' access keys as read from the store (nil inside: the contact shared none).
    var accessKeys: [String: [UInt8]?] = [:]
    /// K of the sealed sends' client message ids, derived on first use.
    var sendIDKey: SecureBytes?
    // Several devices (FanOut.swift)
    /// Fan-out items being repaired after `MISMATCHED_DEVICES` (not sent meanwhile).
    var repairing = Set<UInt64>()
    /// `MISMATCHED_DEVICES` answers per outbox item (client message id), until its ack.
    var mismatchRetries: [UInt64: Int] = [:]
    // Linked devices (Devices.swift)
    /// The relay closed the connection with 4008: this device was removed from its account.
    var removedByRelay = false
    // Own-device sync (OwnSync.swift)
    /// A check of this account's devices (for contents kept aside) is running.
    var checkingOwnDevices = false
    /// Contents went aside during the running check: check again after it.
    var checkOwnDevicesAgain = false
    /// `MISMATCHED_DEVICES` answers per group item (client message id) and account, until its ack.
    var groupMismatches: [UInt64: [String: Int]] = [:]
    /// Accounts a group item goes to without `all_devices` (their devices kept mismatching).
    var groupLoose: [UInt64: Set<String>] = [:]
    /// The static agreements of this device's group envelopes (`DH(IK, IK_member)`, envelope
    /// spec §6): the next message to the same members computes one X25519 per header, not two.
    let staticAgreements = StaticAgreementCache()

    // MARK: setup

    /// Fresh device keys: an identity key pair and a registration id (make the store with them).
    public static func generateIdentity(random: some RandomSource = SystemRandom()) throws -> (identity: IdentityKeyPair, registrationID: UInt32) {
        (try IdentityKeyPair.generate(using: random), try RegistrationID.generate(using: random))
    }

    /// Creates the first (or another) device of `account` in `store` (whose identity and
    /// registration id it uses): a Noise device key, a signed prekey,
    /// ``ClientConfiguration/preKeyBatch`` one-time prekeys, a signed last-resort Kyber prekey and
    /// ``ClientConfiguration/kyberPreKeyBatch`` signed one-time Kyber prekeys. Registration with
    /// the relay (and the upload of every prekey) happens on the first connection (``start()``).
    public static func create(account: String, deviceID: UInt32 = 1, store: any ClientStore,
                              configuration: ClientConfiguration) throws(ClientError) -> HushClient {
        guard DeviceBinding.isValidAccountName(account) else { throw .invalidArgument("account name") }
        guard RelayProtocol.Limits.deviceIDs.contains(deviceID) else { throw .invalidArgument("device id") }
        let random = configuration.random
        let now = configuration.clock()
        try storeStep {
            try store.atomically {
                guard try store.setting(SettingKey.account) == nil else { throw ClientError.invalidArgument("store already has a device") }
                let identity = try store.identityKeyPair()
                let noise = try Curve25519.KeyAgreement.PrivateKey(using: random)
                try store.setSetting(SettingKey.account, Array(account.utf8))
                try store.setU64(SettingKey.deviceID, UInt64(deviceID))
                try store.setSetting(SettingKey.noiseKey, noise.rawRepresentation.withUnsafeBytes { Array($0) })
                try store.setFlag(SettingKey.registered, false)
                let spk = try SignedPreKeyRecord.generate(id: 1, timestamp: now, signedBy: identity, using: random)
                try store.storeSignedPreKey(spk)
                try store.setU64(SettingKey.signedPreKeyID, 1)
                let count = UInt32(configuration.preKeyBatch)
                for p in try PreKeyRecord.generate(ids: 1...count, using: random) { try store.storePreKey(p) }
                try store.setU64(SettingKey.nextPreKeyID, UInt64(count) + 1)
                try generateKyberPreKeys(store: store, identity: identity, now: now, random: random,
                                         count: configuration.kyberPreKeyBatch)
                try store.setFlag(SettingKey.readReceipts, true)
            }
        }
        return try HushClient(store: store, configuration: configuration)
    }

    /// Opens the device kept in `store` (after ``create(account:deviceID:store:configuration:)``,
    /// possibly in an earlier process).
    public init(store: any ClientStore, configuration: ClientConfiguration) throws(ClientError) {
        let profile: (String, UInt32, Curve25519.KeyAgreement.PrivateKey, IdentityKeyPair)? = try Self.storeStep {
            guard let a = try store.setting(SettingKey.account), let d = try store.u64(SettingKey.deviceID),
                  let k = try store.setting(SettingKey.noiseKey) else { return nil }
            return (String(decoding: a, as: UTF8.self), UInt32(d), try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: k),
                    try store.identityKeyPair())
        }
        guard let profile else { throw .notProvisioned }
        account = profile.0
        deviceID = profile.1
        noiseKey = profile.2
        identity = profile.3
        self.store = store
        self.configuration = configuration
        (events, sink) = AsyncStream<ClientEvent>.makeStream(bufferingPolicy: .bufferingNewest(max(1, configuration.eventBufferLimit)))
    }

    /// Generates, in the store, a signed last-resort Kyber prekey and `count` signed one-time
    /// Kyber prekeys with the next ids (PQXDH §2.3; the caller runs it inside `atomically`).
    static func generateKyberPreKeys(store: any ClientStore, identity: IdentityKeyPair, now: UInt64,
                                     random: some RandomSource, count: Int) throws {
        var next = UInt32(truncatingIfNeeded: try store.u64(SettingKey.nextKyberPreKeyID) ?? 1)
        let last = try KyberPreKeyRecord.generate(id: next, kind: .lastResort, timestamp: now, signedBy: identity, using: random)
        try store.storeKyberPreKey(last)
        try store.setU64(SettingKey.kyberLastResortID, UInt64(last.id))
        next &+= 1
        for _ in 0..<count {
            try store.storeKyberPreKey(try KyberPreKeyRecord.generate(id: next, kind: .oneTime, timestamp: now, signedBy: identity, using: random))
            next &+= 1
        }
        try store.setU64(SettingKey.nextKyberPreKeyID, UInt64(next))
    }

    /// Maps store and protocol failures to ``ClientError``.
    static func storeStep<R>(_ body: () throws -> R) throws(ClientError) -> R {
        do { return try body() } catch let e as ClientError { throw e } catch let e as SignalProtocolError {
            throw .crypto("\(e)")
        } catch {
            throw .store("\(error)")
        }
    }

    func step<R>(_ body: () throws -> R) throws(ClientError) -> R { try Self.storeStep(body) }

    func emit(_ event: ClientEvent) { sink.yield(event) }

    func setState(_ s: ConnectionState) {
        guard s != connectionState else { return }
        connectionState = s
        emit(.connection(s))
    }

    // MARK: lifecycle

    /// Starts the connection manager (connect, log in or register, drain, stay connected,
    /// reconnect with backoff). Returns at once.
    public func start() {
        guard runTask == nil else { return }
        stopping = false
        runTask = Task { await self.connectionLoop() }
    }

    /// Closes the connection cleanly (WebSocket close 1000) and stops reconnecting. Whatever is in
    /// the outbox stays there for the next ``start()``.
    public func stop() async {
        stopping = true
        let task = runTask
        runTask = nil
        task?.cancel()
        await closeAnonymousLink()
        if let link { await link.close() }
        await task?.value
        setState(isRemoved ? .removed : .offline)
    }

    private func connectionLoop() async {
        var attempt = 0
        if isRemoved { setState(.removed); return }
        while !stopping && !Task.isCancelled {
            attempt += 1
            setState(.connecting(attempt: attempt))
            do {
                let link = try await openLink()
                attempt = 0
                await session(on: link)
                if removedByRelay {
                    endLink()
                    markRemoved()
                    return
                }
            } catch LinkError.rejected(.unknownDevice) where deviceID != 1 {
                // A linked device the relay no longer knows was removed (Devices.swift).
                markRemoved()
                return
            } catch LinkError.rejected(let code) where Self.permanent(code) {
                setState(.failed(code))
                return
            } catch {
                // Retried below.
            }
            endLink()
            if stopping || Task.isCancelled { break }
            var unit = [UInt8](repeating: 0, count: 2)
            unit.withUnsafeMutableBytes { _ = try? configuration.random.fill($0) }
            let delay = configuration.backoff.delay(attempt: max(attempt, 1), unit: Double(Int(unit[0]) << 8 | Int(unit[1])) / 65_536)
            setState(.waiting(attempt: max(attempt, 1), delay: delay))
            do { try await configuration.sleep(delay) } catch { break }
        }
        setState(.offline)
    }

    private static func permanent(_ code: RelayErrorCode) -> Bool {
        [.accountTaken, .deviceKeyMismatch, .tooManyDevices, .invalidAccountName, .invalidSignature, .invalidLinkToken].contains(code)
    }

    private func openLink() async throws(LinkError) -> RelayLink {
        let registered = (try? store.flag(SettingKey.registered)) ?? false
        let pinned = ((try? store.setting(SettingKey.relayKey)) ?? nil).flatMap { try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: $0) }
        var hello = RelayClientHello()
        if registered {
            var login = RelayLogin()
            login.account = account
            login.deviceID = deviceID
            hello.login = login
        } else {
            var reg = RelayRegister()
            reg.account = account
            reg.deviceID = deviceID
            reg.identityKey = Data(identity.identityKey.publicKey.rawRepresentation)
            guard let sig = try? DeviceBinding.sign(account: account, deviceID: deviceID, deviceKey: noiseKey.publicKey,
                                                    identity: identity.privateKey, random: configuration.random) else {
                throw .handshake("cannot sign the device binding")
            }
            reg.deviceSignature = Data(sig)
            // A linked device's one-time link token (spec relay §5.1, §22.4), kept until it registers.
            if var token = try? store.setting(DeviceSettingKey.linkToken) {
                reg.linkToken = Data(token)
                SecureBytes.wipe(&token)
            }
            hello.register = reg
        }
        let pattern: RelayProtocol.Pattern = pinned == nil ? .xx : .ik
        let clock = configuration.clock
        do {
            let link = try await RelayLink.open(endpoint: configuration.endpoint, pattern: pattern, deviceKey: noiseKey,
                                                relayKey: pinned, trustRoot: configuration.trustRoot, hello: hello,
                                                nowSeconds: { clock() / 1_000 }, random: configuration.random,
                                                timeout: configuration.requestTimeout,
                                                inboundBufferLimit: configuration.inboundBufferLimit)
            _ = try? step {
                try store.atomically {
                    if link.welcome.registered || !registered {
                        try store.setFlag(SettingKey.registered, true)
                        // Used: the relay deleted it with the insert (a repeat is idempotent without it).
                        try store.setSetting(DeviceSettingKey.linkToken, nil)
                    }
                    try store.setSetting(SettingKey.relayKey, link.certificate.relayKey.rawRepresentation)
                }
            }
            if link.welcome.registered {
                _ = try? step {
                    try store.setFlag(SettingKey.preKeysUploaded, false)
                    try store.setFlag(SettingKey.sealedUploaded, false)
                }
            }
            return link
        } catch {
            switch error {
            case .rejected(.unknownDevice) where deviceID != 1:
                break  // removed from the account (connectionLoop): never register again
            case .rejected(.unknownAccount), .rejected(.unknownDevice):
                // The relay lost this device (a reset relay): register again, prekeys too.
                _ = try? step {
                    try store.setFlag(SettingKey.registered, false)
                    try store.setFlag(SettingKey.preKeysUploaded, false)
                    try store.setFlag(SettingKey.sealedUploaded, false)
                }
            case .rejected(.deviceTaken) where !registered:
                // Registered before a crash kept us from noting it: log in.
                _ = try? step { try store.setFlag(SettingKey.registered, true) }
            case .handshake where pattern == .ik:
                // The relay's key changed: the next attempt learns it with XX (still certified
                // by the pinned trust root).
                _ = try? step { try store.setSetting(SettingKey.relayKey, nil) }
            default: break
            }
            throw error
        }
    }

    private func session(on link: RelayLink) async {
        self.link = link
        drained = false
        setupDone = false
        inFlight = [:]
        sealedInFlight = [:]
        setState(.syncing)
        let setup = Task { await self.maintain(welcome: link.welcome) }
        let pinger = Task { await self.pingLoop(link) }
        for await event in link.events {
            guard case .binary(let bytes) = event else {
                if case .closed(Self.removedCloseCode?) = event { removedByRelay = true }
                break
            }
            guard let stanza = try? link.open(bytes) else { link.abort(); break }
            handle(stanza)
            if stopping { break }
        }
        setup.cancel()
        pinger.cancel()
        if link.overflowed {
            inboundOverflows += 1
            lastLinkError = .inboundOverflow
        }
    }

    private func endLink() {
        link?.abort()
        link = nil
        drained = false
        inFlight = [:]
        paused = []
        let waiting = pending
        pending = [:]
        for (_, c) in waiting { c.resume(throwing: ClientError.offline) }
    }

    private func pingLoop(_ link: RelayLink) async {
        while !Task.isCancelled {
            do { try await configuration.sleep(configuration.pingInterval) } catch { return }
            guard self.link === link else { return }
            do {
                _ = try await request { var s = RelayStanza(); s.ping.requestID = $0; return s }
            } catch .timeout {
                link.abort()
                return
            } catch { return }
            await maintain(welcome: nil)
        }
    }

    // MARK: requests

    func request(_ build: (UInt32) -> RelayStanza) async throws(ClientError) -> RelayStanza {
        guard let link else { throw .offline }
        nextRequestID &+= 1
        if nextRequestID == 0 { nextRequestID = 1 }
        let rid = nextRequestID
        let stanza = build(rid)
        let timeout = configuration.requestTimeout
        let timer = Task {
            try await Task.sleep(for: timeout)
            self.fail(rid, .timeout)
        }
        defer { timer.cancel() }
        let reply: RelayStanza
        do {
            reply = try await withCheckedThrowingContinuation { (c: CheckedContinuation<RelayStanza, any Error>) in
                pending[rid] = c
                if !link.send(stanza) {
                    pending[rid] = nil
                    c.resume(throwing: ClientError.offline)
                }
            }
        } catch let e as ClientError { throw e } catch { throw .offline }
        if case .error(let e)? = reply.body { throw .relay(e.code) }
        return reply
    }

    private func fail(_ rid: UInt32, _ error: ClientError) {
        pending.removeValue(forKey: rid)?.resume(throwing: error)
    }

    private func resolve(_ rid: UInt32, _ stanza: RelayStanza) {
        pending.removeValue(forKey: rid)?.resume(returning: stanza)
    }

    // MARK: inbound

    private func handle(_ stanza: RelayStanza) {
        switch stanza.body {
        case .deliver(let d)?: handleDeliver(d)
        case .queueEmpty?:
            drained = true
            goOnlineIfReady()
            flushReceipts()
            pump()
        case .serverAck(let a)?: handleServerAck(a)
        case .error(let e)?:
            if e.requestID != 0 { resolve(e.requestID, stanza) } else if e.clientMessageID != 0 { handleSendError(e) }
        case .ok(let o)?: resolve(o.requestID, stanza)
        case .pong(let p)?: resolve(p.requestID, stanza)
        case .prekeyBundles(let b)?: resolve(b.requestID, stanza)
        case .senderCertificate(let c)?: resolve(c.requestID, stanza)
        case .mediaUploadGranted(let g)?: resolve(g.requestID, stanza)
        case .deviceList(let l)?: resolve(l.requestID, stanza)
        case .linkToken(let t)?: resolve(t.requestID, stanza)
        case .prekeysLow(let low)?: Task { await self.prekeysLow(low) }
        case .presence(let p)?:
            emit(.presence(PresenceInfo(account: p.account, online: p.online && !p.hidden,
                                        lastSeen: p.hidden || p.lastSeen == 0 ? nil : p.lastSeen, hidden: p.hidden)))
        case .deliverEphemeral(let e)?: handleEphemeral(e)
        default: break
        }
    }

    /// Online once the offline queue is drained and the login's setup is done (so that, e.g.,
    /// this device's prekeys are on the relay).
    private func goOnlineIfReady() {
        if drained, setupDone, link != nil { setState(.online) }
    }

    var validator: CertificateValidator { CertificateValidator(trustRoot: configuration.trustRoot) }

    func ack(_ serverID: UInt64) {
        var s = RelayStanza()
        s.ack.serverIds = [serverID]
        link?.send(s)
    }

    /// Receive: decrypt + store + mark processed in one atomic step, then ack (Docs/client.md §Receiving).
    private func handleDeliver(_ d: RelayDeliver) {
        let sid = d.serverID
        let now = configuration.clock()
        if (try? store.isProcessed(serverID: sid)) == true { ack(sid); return }
        // A multi-recipient envelope's copy: a group message (Groups.swift).
        if d.payload.first == EnvelopeConstants.deliveredType {
            _ = handleGroupDeliver(d)
            return
        }
        var effects: [ClientEvent] = []
        var storedKey: (String, [UInt8])?
        var owed = false
        var greeted = false
        do {
            let opened = try SealedEnvelope.open(Array(d.payload), recipientIdentity: identity, validator: validator,
                                                 now: d.serverTime)
            let sender = opened.sender
            // The relay names the authenticated sending device, and the certificate must agree; or
            // it names none (a sealed send, spec §20): then the certificate, checked against the
            // trust root, and the session with that sender's identity are all there is.
            let sealedDelivery = d.senderAccount.isEmpty && d.senderDevice == 0
            guard sealedDelivery || (sender.senderID == d.senderAccount && sender.deviceID == d.senderDevice),
                  opened.contentType == .message || opened.contentType == .preKeyMessage else {
                throw DropReason.mismatch
            }
            let address = ProtocolAddress(name: sender.senderID, deviceID: sender.deviceID)
            let first = opened.message.first ?? 0
            let kind: CiphertextMessage.Kind
            if opened.contentType == .preKeyMessage { kind = first == 0x12 ? .hushPreKey : .preKeySignal } else { kind = first == 0x11 ? .hush : .signal }
            // PQXDH's parser: version-4 and flag-bit-1 prekey messages too (Docs/spec/pqxdh.md §5).
            let message = try PQXDH.message(kind: kind, serialized: opened.message)
            let store = self.store, random = configuration.random, readOn = readReceiptsEnabled
            let policy = configuration.postQuantumPolicy
            try store.atomically {
                let plain: [UInt8]
                do {
                    plain = try PQXDH.decrypt(message, from: address, store: store, kyberStore: store, policy: policy, random: random)
                } catch SignalProtocolError.untrustedIdentity(let a, let newKey) {
                    // A contact's new identity: accept what it sends, hold our sends until approved.
                    try store.saveIdentity(newKey, for: a)
                    try store.setSetting(SettingKey.pendingIdentity(a.name), newKey.serialized)
                    effects.append(.identityChanged(account: a.name))
                    plain = try PQXDH.decrypt(message, from: address, store: store, kyberStore: store, policy: policy, random: random)
                }
                // The session advanced: whatever the content, this message is processed.
                if let content = try? MessageContent(decoding: plain) {
                    switch content {
                    case .text(let id, let sentAt, let body):
                        let mid = MessageID(account: address.name, device: address.deviceID, clientMessageID: id)
                        let state: TickState = try readElsewhere(mid, in: address.name) ? .read : .delivered
                        let m = StoredMessage(id: mid, conversation: address.name, direction: .incoming, body: body,
                                              sentAt: sentAt, serverTime: d.serverTime, state: state)
                        if let stored = try store.insertMessage(m) { effects.append(.message(stored)) }
                        // Owed even for a copy: the sender may have missed the first receipt.
                        try Self.owe(id, to: address, store: store)
                        owed = true
                    case .delivered(let ids), .read(let ids):
                        let state: TickState = content.kind == .read ? .read : .delivered
                        if state == .read && !readOn { break }
                        try applyReceipt(ids, state, from: address, effects: &effects)
                    case .groupState, .senderKey, .groupLeave:
                        try applyGroupContent(content, from: address, effects: &effects)
                    case .syncTranscript(let destination, let message):
                        // A message this account's other device sent (FanOut.swift); no receipt.
                        try applyTranscript(destination, message, from: address, serverTime: d.serverTime, effects: &effects)
                    case .readSync(let conversation, let messages):
                        // This account's user read these on another device (OwnSync.swift).
                        try applyReadSync(conversation, messages, from: address, effects: &effects)
                    case .deviceHello:
                        // A device linked to this account: it gets this device's groups (§6.7).
                        greeted = address.name == account && address.deviceID != deviceID
                    case .typing:
                        break  // typing travels as ephemeral envelopes only
                    case .sessionReset:
                        // Decrypting its prekey message already made the new session current. The
                        // restored device lost the sender keys it held: ours go to it again (§6.5).
                        try forgetSenderKeyHolder(address)
                        effects.append(.sessionReset(account: address.name, device: address.deviceID))
                    case .accessKey(let key):
                        // With it, our messages to this contact can go sealed (spec §20).
                        try store.setSetting(SettingKey.sealedKey(address.name), key)
                        storedKey = (address.name, key)
                    case .media(let id, let sentAt, let pointer):
                        let mid = MessageID(account: address.name, device: address.deviceID, clientMessageID: id)
                        try store.setSetting(SettingKey.mediaPointer(mid), pointer.encoded)
                        let state: TickState = try readElsewhere(mid, in: address.name) ? .read : .delivered
                        let m = StoredMessage(id: mid, conversation: address.name, direction: .incoming, body: pointer.summary,
                                              sentAt: sentAt, serverTime: d.serverTime, state: state)
                        if let stored = try store.insertMessage(m) { effects.append(.message(stored)) }
                        try Self.owe(id, to: address, store: store)
                        owed = true
                    }
                }
                try store.markProcessed(serverID: sid, at: now)
            }
        } catch {
            storedKey = nil  // rolled back
            greeted = false
            if Self.isTransient(error) { return }  // not acked: redelivered on the next connection
            _ = try? store.markProcessed(serverID: sid, at: now)
        }
        // Committed: the memory copy of a contact's access key follows the store.
        if let (who, key) = storedKey { rememberAccessKey(key, of: who) }
        for e in effects {
            if case .message(let m) = e, typingUntil.removeValue(forKey: m.conversation) != nil {
                emit(.typing(account: m.conversation, isTyping: false, expiresAt: now))
            }
            emit(e)
        }
        ack(sid)
        if owed { scheduleReceiptFlush() }
        if greeted { queueGroupsForOwnDevices() }
    }

    enum DropReason: Error { case mismatch }

    /// Store failures are transient (retry on redelivery); everything else is a bad message.
    static func isTransient(_ error: any Error) -> Bool {
        if let e = error as? SignalProtocolError, case .storeFailure = e { return true }
        if error is SignalProtocolError || error is EnvelopeError || error is CertificateError || error is DropReason { return false }
        return true
    }

    static func owe(_ id: UInt64, to address: ProtocolAddress, store: any ClientStore) throws {
        let key = SettingKey.owedDelivered(address.name, address.deviceID)
        var ids = try store.ids(key)
        ids.append(id)
        try store.setIDs(key, ids)
        var index = try store.strings(SettingKey.owedIndex)
        let entry = "\(address.deviceID) \(address.name)"
        if !index.contains(entry) {
            index.append(entry)
            try store.setStrings(SettingKey.owedIndex, index)
        }
    }

    func scheduleReceiptFlush() {
        guard drained, !flushScheduled else { return }
        flushScheduled = true
        Task {
            await Task.yield()
            self.flushReceipts()
        }
    }

    /// Turns owed delivery receipts into outbox items (one receipt per sender device, up to
    /// 256 ids each), atomically with forgetting them.
    private func flushReceipts() {
        flushScheduled = false
        guard let cert = usableCertificate() else { return }
        let now = configuration.clock()
        _ = try? step {
            try store.atomically {
                for entry in try store.strings(SettingKey.owedIndex) {
                    guard let space = entry.firstIndex(of: " "), let device = UInt32(entry[..<space]) else { continue }
                    let address = ProtocolAddress(name: String(entry[entry.index(after: space)...]), deviceID: device)
                    let key = SettingKey.owedDelivered(address.name, device)
                    let ids = try store.ids(key)
                    for chunk in stride(from: 0, to: ids.count, by: MessageContent.maxReceiptIDs) {
                        let part = Array(ids[chunk..<min(ids.count, chunk + MessageContent.maxReceiptIDs)])
                        let sealed = try seal(.delivered(part), to: address, certificate: cert)
                        try store.enqueue(OutboxItem(clientMessageID: try store.takeID(), account: address.name, devices: [device],
                                                     payload: sealed.payload, message: nil, createdAt: now, inner: sealed.inner))
                    }
                    try store.setIDs(key, [])
                }
                try store.setStrings(SettingKey.owedIndex, [])
            }
        }
        outboxCache = nil
        pump()
    }

    private func handleEphemeral(_ e: RelayDeliverEphemeral) {
        let now = configuration.clock()
        guard let opened = try? SealedEnvelope.open(Array(e.payload), recipientIdentity: identity, validator: validator, now: now),
              opened.sender.senderID == e.senderAccount, opened.sender.deviceID == e.senderDevice, opened.contentType == .typing,
              case .typing(let on, let sentAt)? = try? MessageContent(decoding: opened.message) else { return }
        let who = e.senderAccount
        // The expiry is the receiver's rule: an indicator older than the TTL (or from the future
        // beyond it) is ignored, a live one lasts until sentAt + TTL.
        let expires = min(sentAt, now) + configuration.typingTTL
        guard on, expires > now, sentAt <= now + configuration.typingTTL else {
            if typingUntil.removeValue(forKey: who) != nil { emit(.typing(account: who, isTyping: false, expiresAt: now)) }
            return
        }
        typingUntil[who] = expires
        emit(.typing(account: who, isTyping: true, expiresAt: expires))
        let wait = Duration.milliseconds(Int64(expires - now))
        let sleep = configuration.sleep
        Task {
            try? await sleep(wait)
            self.expireTyping(who, expires)
        }
    }

    private func expireTyping(_ who: String, _ expires: UInt64) {
        guard typingUntil[who] == expires else { return }
        typingUntil[who] = nil
        emit(.typing(account: who, isTyping: false, expiresAt: expires))
    }

    // MARK: outbound

    /// Sends `text` to `account`: encrypted, sealed and queued in the outbox atomically with the
    /// stored message (tick `.pending`), then sent when connected. Throws
    /// ``ClientError/identityNotApproved(_:)`` while the contact's changed identity awaits approval.
    @discardableResult
    public func send(_ text: String, to recipient: String) async throws(ClientError) -> MessageID {
        guard !text.isEmpty, text.utf8.count <= MessageContent.maxTextBytes else { throw .invalidArgument("text length") }
        return try await sendContent(to: recipient, body: text, pointer: nil) { counter, now in .text(id: counter, sentAt: now, body: text) }
    }

    /// Sends the content `make` builds from the new message's counter and time; `body` is what
    /// the sender's store shows, `pointer` (media) is kept with it.
    func sendContent(to recipient: String, body text: String, pointer: MediaPointer?,
                     _ make: (UInt64, UInt64) -> MessageContent) async throws(ClientError) -> MessageID {
        guard DeviceBinding.isValidAccountName(recipient) else { throw .invalidArgument("account name") }
        guard try step({ try store.setting(SettingKey.pendingIdentity(recipient)) }) == nil else { throw .identityNotApproved(recipient) }
        if try step({ try store.sessionDevices(for: recipient) }).isEmpty, link != nil {
            // Unreachable relay or no prekeys yet: the message waits in the outbox (deferred).
            do { try await establishSessions(with: recipient) } catch .offline {} catch .timeout {} catch .noDevices {}
        }
        let now = configuration.clock()
        let cert = usableCertificate()
        let online = drained && link != nil
        var changed: String?
        var checkOwn = false
        let id: MessageID
        do { id = try step {
            try store.atomically {
                let counter = try store.takeID()
                let mid = MessageID(account: account, device: deviceID, clientMessageID: counter)
                let content = make(counter, now)
                if let pointer { try store.setSetting(SettingKey.mediaPointer(mid), pointer.encoded) }
                let devices = try fanOutDevices(recipient)
                // Encrypted now only when it can go now: written offline, it is encrypted (and
                // sealed with a then-fresh sender certificate) when the connection returns. Behind
                // a deferred item to the same account it is deferred too (encrypting a deferred
                // item appends its replacements, which must not pass this one).
                let behindDeferred = try currentOutbox().contains { $0.account == recipient && $0.devices.isEmpty }
                let encryptNow = cert != nil && !devices.isEmpty && online && !behindDeferred
                // The first message to a contact is preceded by our access key (sealed sender), so
                // that the contact's receipt for it can already go sealed.
                try shareAccessKeyIfNeeded(with: recipient, devices: devices, certificate: cert, encryptNow: encryptNow, now: now)
                if let cert, encryptNow {
                    // One item, a copy per device of the recipient (FanOut.swift).
                    do { try enqueueFanOut(content.encoded, to: recipient, id: counter, message: mid, certificate: cert, now: now) } catch SignalProtocolError.untrustedIdentity(let a, _) {
                        changed = a.name
                        throw ClientError.identityNotApproved(a.name)
                    }
                } else {
                    // No session or certificate yet (offline): encrypted when the connection returns.
                    try store.enqueue(OutboxItem(clientMessageID: counter, account: recipient, devices: [], payload: content.encoded,
                                                 message: mid, createdAt: now))
                }
                // This account's other devices get a sync transcript (a device that knows none
                // checks first: OwnSync.swift).
                if recipient != account, let transcript = Self.transcript(of: content, to: recipient) {
                    if try queueForOwnDevices(transcript, certificate: cert, online: online, now: now) { checkOwn = true }
                }
                _ = try store.insertMessage(StoredMessage(id: mid, conversation: recipient, direction: .outgoing, body: text,
                                                          sentAt: now, state: .pending))
                return mid
            }
        } } catch {
            outboxCache = nil
            // The store trusts another identity than the session's: the change must be approved.
            if let changed { markIdentityChanged(changed, nil) }
            throw error
        }
        outboxCache = nil
        pump()
        if checkOwn { checkOwnDevicesSoon() }
        return id
    }

    func markIdentityChanged(_ who: String, _ key: IdentityKey?) {
        _ = try? step {
            let current = try store.setting(SettingKey.pendingIdentity(who))
            if current == nil { try store.setSetting(SettingKey.pendingIdentity(who), key?.serialized ?? [0]) }
        }
        emit(.identityChanged(account: who))
    }

    /// Encrypts `content` in the session with `address` and seals it (throws the protocol's
    /// errors). The session message is kept beside the envelope for re-sealing.
    func seal(_ content: MessageContent, to address: ProtocolAddress, certificate: SenderCertificate) throws -> (payload: [UInt8], inner: SessionCiphertext) {
        try seal(encoded: content.encoded, to: address, certificate: certificate)
    }

    /// ``seal(_:to:certificate:)`` of already encoded content (which the caller may wipe).
    func seal(encoded plaintext: [UInt8], to address: ProtocolAddress, certificate: SenderCertificate) throws -> (payload: [UInt8], inner: SessionCiphertext) {
        let message = try SessionCipher.encrypt(plaintext, for: address, store: store)
        let type: EnvelopeContentType = message.kind == .preKeySignal || message.kind == .hushPreKey ? .preKeyMessage : .message
        let inner = SessionCiphertext(contentType: type, message: message.serialized, certificateExpiration: certificate.expiration)
        return (try wrap(inner, to: address, certificate: certificate), inner)
    }

    /// Seals a session message in an envelope carrying `certificate`, to `address`'s identity.
    func wrap(_ inner: SessionCiphertext, to address: ProtocolAddress, certificate: SenderCertificate) throws -> [UInt8] {
        guard let remote = try store.identity(for: address) else { throw SignalProtocolError.noSession(address) }
        return try SealedEnvelope.seal(inner.message, contentType: inner.contentType, certificate: certificate, senderIdentity: identity,
                                       to: remote, random: configuration.random)
    }

    /// Fetches `account`'s bundles and builds a session with each device (once at a time per account).
    func establishSessions(with recipient: String) async throws(ClientError) {
        if let running = sessionTasks[recipient] {
            do { try await running.value } catch let e as ClientError { throw e } catch { throw .crypto("\(error)") }
            return
        }
        let task = Task { () async throws -> Void in _ = try await self.fetchAndBuild(recipient) }
        sessionTasks[recipient] = task
        defer { sessionTasks[recipient] = nil }
        do { try await task.value } catch let e as ClientError { throw e } catch { throw .crypto("\(error)") }
    }

    /// Fetches the bundles of `recipient`'s `devices` (empty: all) and builds a session with each
    /// (for this account: each but this device). Returns the devices listed (this one excluded).
    @discardableResult
    func fetchAndBuild(_ recipient: String, devices: [UInt32] = []) async throws(ClientError) -> [UInt32] {
        let reply = try await request { rid in
            var s = RelayStanza()
            s.fetchPrekeys.requestID = rid
            s.fetchPrekeys.account = recipient
            s.fetchPrekeys.devices = devices
            return s
        }
        guard case .prekeyBundles(let b)? = reply.body else { throw .relay(.unexpectedStanza) }
        guard let key = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: b.identityKey) else { throw .crypto("bundle identity key") }
        let identityKey = IdentityKey(publicKey: key)
        guard !b.bundles.isEmpty else { throw .noDevices(recipient) }
        var built = 0, refused = 0
        let own = recipient == account
        let listed = b.bundles.map(\.deviceID).filter { !(own && $0 == deviceID) }
        for pb in b.bundles {
            if own && pb.deviceID == deviceID { continue }  // not a session with oneself
            guard pb.hasSignedPrekey, let spk = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: pb.signedPrekey.publicKey) else { continue }
            var oneTime: PreKeyBundle.OneTimePreKey?
            if pb.hasOneTime, let k = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: pb.oneTime.publicKey) {
                oneTime = .init(id: pb.oneTime.id, publicKey: k)
            }
            let bundle = PreKeyBundle(registrationID: pb.registrationID, deviceID: pb.deviceID, identityKey: identityKey,
                                      signedPreKey: .init(id: pb.signedPrekey.id, publicKey: spk, signature: Array(pb.signedPrekey.signature)),
                                      oneTimePreKey: oneTime)
            // The Kyber prekey, one-time or last-resort alike (its signature is checked by PQXDH).
            var kyber: KyberPreKey?
            if pb.hasKyber {
                // An encapsulation key of the wrong length or failing the modulus check: a bad bundle.
                guard let key = try? MLKEM1024.PublicKey(rawRepresentation: Array(pb.kyber.publicKey)) else { continue }
                kyber = KyberPreKey(id: pb.kyber.id, publicKey: key, signature: Array(pb.kyber.signature))
            }
            let address = ProtocolAddress(name: recipient, deviceID: pb.deviceID)
            do {
                try PQXDH.process(PostQuantumPreKeyBundle(bundle: bundle, kyberPreKey: kyber), for: address, store: store,
                                  suite: configuration.suite, policy: configuration.postQuantumPolicy, random: configuration.random)
                built += 1
            } catch .untrustedIdentity(let a, let newKey) {
                markIdentityChanged(a.name, newKey)
                throw .identityNotApproved(a.name)
            } catch .invalidBundle(.missingKyberPreKey) {
                refused += 1  // requirePQXDH: no session without a Kyber prekey
            } catch {
                continue  // a bad bundle for one device: skip that device
            }
        }
        if built == 0 && refused > 0 { throw .postQuantumRequired(recipient) }
        guard built > 0 else { throw .noDevices(recipient) }
        return listed
    }

    /// Sends the outbox in order (items not already in flight on this connection).
    func pump() {
        guard drained, link != nil else { return }
        if pumping { pumpAgain = true; return }
        pumping = true
        Task { await self.pumpLoop() }
    }

    /// Sends the outbox in order, at most one item in flight per recipient account: a later
    /// item to an account goes only once the earlier one is acked, so a retryable error (rate
    /// limited, queue full) can never let it overtake (Docs/client.md §Sending, "Order"). Items
    /// to different accounts are pipelined. An account whose item failed retryably waits out
    /// the pause (``paused``) before anything of it is sent again.
    private func pumpLoop() async {
        defer { pumping = false }
        repeat {
            pumpAgain = false
            guard drained, let link, let items = try? currentOutbox() else { return }
            var blocked = paused
            for case var item in items {
                // Whatever happens to this item, later ones to its accounts wait behind it (a group
                // item goes to many: it waits for each of them, and they for it).
                let accounts = outboxAccounts(item)
                let isBlocked = accounts.contains(where: blocked.contains)
                blocked.formUnion(accounts)
                if isBlocked || inFlight[item.clientMessageID] != nil || repairing.contains(item.clientMessageID) { continue }
                if GroupID(conversation: item.account) != nil {
                    if item.devices.isEmpty {
                        if await prepareGroup(item) { pumpAgain = true }
                        continue
                    }
                    if let inner = item.inner, inner.certificateExpiration <= configuration.clock() + configuration.resealMargin {
                        guard let cert = try? await ensureCertificate(), cert.expiration > configuration.clock() + configuration.resealMargin,
                              let resealed = resealGroup(item, keeping: { _, _ in true }, certificate: cert) else {
                            retryPumpLater()
                            continue
                        }
                        item = resealed
                    }
                    guard self.link === link, let s = multiSendStanza(item), link.send(s) else { return }
                    inFlight[item.clientMessageID] = item
                    continue
                }
                if item.devices.isEmpty {
                    // Encrypt it now; later items to the same account wait for it (order).
                    if await prepareDeferred(item) { pumpAgain = true }
                    continue
                }
                if var payload = fanOut(item) {
                    // Every device of the account in one stanza (FanOut.swift).
                    if payload.earliestExpiration <= configuration.clock() + configuration.resealMargin {
                        guard let resealed = await resealFanOut(item, payload), let fresh = fanOut(resealed) else { continue }
                        item = resealed
                        payload = fresh
                    }
                    guard self.link === link else { return }
                    if sendSealedIfPossible(item) { continue }
                    guard link.send(Self.fanOutStanza(item, payload)) else { return }
                    inFlight[item.clientMessageID] = item
                    continue
                }
                if let inner = item.inner, inner.certificateExpiration <= configuration.clock() + configuration.resealMargin {
                    guard let resealed = await reseal(item, inner) else { continue }
                    item = resealed
                }
                guard self.link === link else { return }
                // To a contact whose access key we hold: sealed, on the anonymous connection.
                if sendSealedIfPossible(item) { continue }
                var s = RelayStanza()
                s.send.clientMessageID = item.clientMessageID
                s.send.account = item.account
                s.send.devices = item.devices
                s.send.payload = Data(item.payload)
                guard self.link === link, link.send(s) else { return }
                inFlight[item.clientMessageID] = item
            }
        } while pumpAgain
    }

    /// Encrypts a deferred item for the recipient's devices, replacing it in the outbox. Returns
    /// true when it was replaced (or given up).
    private func prepareDeferred(_ item: OutboxItem) async -> Bool {
        if (try? store.setting(SettingKey.pendingIdentity(item.account))) ?? nil != nil { return false }
        do {
            let own = item.account == account
            if !own, try step({ try fanOutDevices(item.account) }).isEmpty { try await establishSessions(with: item.account) }
            let cert = try await ensureCertificate()
            let content = try MessageContent(decoding: item.payload)
            var done: MessageID?
            defer { if let done { emit(.tick(done, .sent)) } }
            try step {
                try store.atomically {
                    let devices = try fanOutDevices(item.account)
                    // For this account with no other device: a transcript is dropped; a message to
                    // oneself has nobody else to reach, so it is done (✓).
                    guard !devices.isEmpty else {
                        try store.removeFromOutbox(clientMessageID: item.clientMessageID)
                        if let m = item.message, try store.advance(m, to: .sent, serverTime: configuration.clock()) { done = m }
                        return
                    }
                    let encoded = content.encoded
                    let copies = try fanOutCopies(encoded, to: item.account, devices: devices, certificate: cert)
                    let rows = try fanOutRows(id: item.clientMessageID, recipient: item.account, content: encoded, copies: copies,
                                              message: item.message, createdAt: item.createdAt)
                    // In place (its position in the send order kept); the rest of a split after it.
                    try store.replaceOutboxPayload(clientMessageID: item.clientMessageID, payload: rows[0].payload, inner: rows[0].inner,
                                                   devices: rows[0].devices)
                    for r in rows.dropFirst() { try store.enqueue(r) }
                }
            }
            outboxCache = nil
            return true
        } catch ClientError.relay(.unknownAccount) {
            giveUp(item, .unknownAccount)
            return true
        } catch ClientError.identityNotApproved {
            return false  // approveIdentity(of:) pumps again
        } catch ClientError.postQuantumRequired(let who) {
            // Retrying would only drain the recipient's one-time prekeys: give it up, and every
            // other deferred item to that account with it (each would be refused the same way;
            // an access key share is queued again with the next message).
            let refused = ((try? currentOutbox()) ?? [item]).filter { $0.account == item.account && $0.devices.isEmpty }
            _ = try? step {
                try store.atomically {
                    for r in refused { try store.removeFromOutbox(clientMessageID: r.clientMessageID) }
                    try store.setFlag(SettingKey.sealedShared(item.account), false)
                }
            }
            outboxCache = nil
            for r in refused { if let m = r.message { emit(.sendRefused(m, .postQuantumRequired(who))) } }
            return true
        } catch {
            retryPumpLater()
            return false
        }
    }

    /// Seals `item`'s session message again with a fresh sender certificate (the one in its
    /// envelope expires within ``ClientConfiguration/resealMargin``), in place in the outbox:
    /// same client message id, same ratchet ciphertext, same position. Nil (and a retry later)
    /// when no fresh certificate can be had now.
    private func reseal(_ item: OutboxItem, _ inner: SessionCiphertext) async -> OutboxItem? {
        do {
            let cert = try await ensureCertificate()
            guard cert.expiration > configuration.clock() + configuration.resealMargin, let device = item.devices.first else {
                retryPumpLater()
                return nil
            }
            var fresh = inner
            fresh.certificateExpiration = cert.expiration
            let payload = try step { try wrap(fresh, to: ProtocolAddress(name: item.account, deviceID: device), certificate: cert) }
            outboxCache = nil
            guard try step({ try store.replaceOutboxPayload(clientMessageID: item.clientMessageID, payload: payload, inner: fresh) }) else {
                return nil  // acked or given up meanwhile
            }
            var updated = item
            updated.payload = payload
            updated.inner = fresh
            return updated
        } catch {
            retryPumpLater()
            return nil
        }
    }

    func giveUp(_ item: OutboxItem, _ code: RelayErrorCode) {
        mismatchRetries[item.clientMessageID] = nil
        groupMismatches[item.clientMessageID] = nil
        groupLoose[item.clientMessageID] = nil
        _ = try? store.removeFromOutbox(clientMessageID: item.clientMessageID)
        outboxCache = nil
        if let m = item.message { emit(.sendFailed(m, code)) }
    }

    func handleServerAck(_ a: RelayServerAck) {
        let cmid = a.clientMessageID
        guard let item = inFlight.removeValue(forKey: cmid) else { return }
        mismatchRetries[cmid] = nil
        groupMismatches[cmid] = nil
        groupLoose[cmid] = nil
        var ticked: MessageID?
        let removed: Bool = (try? step {
            try store.atomically {
                let rest = try currentOutbox().filter { $0.clientMessageID != cmid }
                try store.removeFromOutbox(clientMessageID: cmid)
                if let m = item.message, !rest.contains(where: { $0.message == m }),
                   try store.advance(m, to: .sent, serverTime: a.serverTime) {
                    ticked = m
                }
                return true
            }
        }) ?? false
        if removed { outboxCache?.removeAll { $0.clientMessageID == cmid } } else { outboxCache = nil }
        if let ticked { emit(.tick(ticked, .sent)) }
        // The next item to that account may go now (one in flight per account).
        pump()
    }

    func handleSendError(_ e: RelayError) {
        guard let item = inFlight.removeValue(forKey: e.clientMessageID) else { return }
        if GroupID(conversation: item.account) != nil { return handleGroupSendError(e, item) }
        if fanOut(item) != nil, handleFanOutError(e, item) { return }
        switch e.code {
        case .unknownDevice:
            // That device is gone: forget its session; the message goes to the others.
            _ = try? store.deleteSession(for: ProtocolAddress(name: item.account, deviceID: e.deviceID))
            _ = try? store.removeFromOutbox(clientMessageID: item.clientMessageID)
            outboxCache = nil
            if let m = item.message, ((try? currentOutbox().contains(where: { $0.message == m })) ?? false) == false {
                emit(.sendFailed(m, .unknownDevice))
            }
        case .unknownAccount, .payloadTooLarge, .malformedStanza, .invalidAccountName:
            giveUp(item, e.code)
        default:
            // Rate limited, queue full, relay trouble: this item and everything after it to the
            // same account wait for a pause, then go again in order.
            paused.insert(item.account)
            retryPumpLater()
        }
        if e.code == .unknownDevice || e.code == .unknownAccount || e.code == .payloadTooLarge || e.code == .malformedStanza
            || e.code == .invalidAccountName { pump() }
    }

    private var retryScheduled = false
    /// Accounts whose next item failed retryably: nothing of theirs is sent until the pause ends.
    var paused = Set<String>()

    func retryPumpLater() {
        guard !retryScheduled else { return }
        retryScheduled = true
        let sleep = configuration.sleep, pause = configuration.retryPause
        Task {
            try? await sleep(pause)
            self.retryScheduled = false
            self.paused = []
            self.pump()
        }
    }

    // MARK: receipts and reading

    /// Whether read receipts are sent (and others' shown). Off: none are sent, and read receipts
    /// from contacts are ignored (WhatsApp's rule). Delivery receipts are always sent.
    public var readReceiptsEnabled: Bool { (try? store.flag(SettingKey.readReceipts)) ?? true }

    /// Turns read receipts on or off.
    public func setReadReceipts(_ on: Bool) throws(ClientError) {
        try step { try store.setFlag(SettingKey.readReceipts, on) }
    }

    /// Marks every incoming message of `conversation` read and, if enabled, queues one read
    /// receipt per sender device covering them all; this account's other devices are told in
    /// any case (a read sync, Docs/spec/client.md §3b), so they show them read too. Returns how
    /// many were marked.
    @discardableResult
    public func markRead(_ conversation: String) throws(ClientError) -> Int {
        let now = configuration.clock()
        let send = readReceiptsEnabled
        let cert = usableCertificate()
        let online = drained && link != nil
        var checkOwn = false
        let count: Int = try step {
            try store.atomically {
                let unread = try store.unreadIncoming(in: conversation)
                // Per sending device (in a group, of several accounts).
                var bySender: [ProtocolAddress: [UInt64]] = [:]
                for m in unread {
                    try store.advance(m.id, to: .read, serverTime: nil)
                    bySender[ProtocolAddress(name: m.id.account, deviceID: m.id.device), default: []].append(m.id.clientMessageID)
                }
                if send, let cert {
                    let senders = bySender.sorted { ($0.key.name, $0.key.deviceID) < ($1.key.name, $1.key.deviceID) }
                    for (address, ids) in senders where try store.loadSession(for: address) != nil {
                        for chunk in stride(from: 0, to: ids.count, by: MessageContent.maxReceiptIDs) {
                            let part = Array(ids[chunk..<min(ids.count, chunk + MessageContent.maxReceiptIDs)])
                            let sealed = try seal(.read(part), to: address, certificate: cert)
                            try store.enqueue(OutboxItem(clientMessageID: try store.takeID(), account: address.name, devices: [address.deviceID],
                                                         payload: sealed.payload, message: nil, createdAt: now, inner: sealed.inner))
                        }
                    }
                }
                if !unread.isEmpty, try queueReadSync(conversation, unread.map(\.id), certificate: cert, online: online, now: now) {
                    checkOwn = true
                }
                return unread.count
            }
        }
        outboxCache = nil
        pump()
        if checkOwn { checkOwnDevicesSoon() }
        return count
    }

    /// The outbox, from ``outboxCache`` when it is current.
    func currentOutbox() throws -> [OutboxItem] {
        if let outboxCache { return outboxCache }
        let items = try store.outbox()
        outboxCache = items
        return items
    }

    // MARK: history

    /// Up to `limit` messages of `conversation`, newest last (before the sequence `before`).
    public func messages(in conversation: String, before: Int64? = nil, limit: Int = 50) throws(ClientError) -> [StoredMessage] {
        try step { try store.messages(in: conversation, before: before, limit: limit) }
    }

    /// The conversation list, most recent first.
    public func conversations() throws(ClientError) -> [ConversationSummary] {
        try step { try store.conversations() }
    }

    /// Outbox items waiting for the relay's ack.
    public func outboxCount() throws(ClientError) -> Int { try step { try currentOutbox().count } }

    // MARK: presence and typing

    /// Sets who may see this account's presence (kept locally and sent on every connection).
    public func setPresence(_ setting: PresenceSetting) async throws(ClientError) {
        let encoded: [String]
        switch setting {
        case .everyone: encoded = ["everyone"]
        case .nobody: encoded = ["nobody"]
        case .contacts(let names): encoded = ["contacts"] + names
        }
        try step { try store.setStrings(SettingKey.presence, encoded) }
        if link != nil { try await sendPresenceSetting() }
    }

    private func sendPresenceSetting() async throws(ClientError) {
        let saved = try step { try store.strings(SettingKey.presence) }
        guard let first = saved.first else { return }
        _ = try await request { rid in
            var s = RelayStanza()
            s.setPresencePrivacy.requestID = rid
            switch first {
            case "nobody": s.setPresencePrivacy.visibility = .presenceNobody
            case "contacts":
                s.setPresencePrivacy.visibility = .presenceContacts
                s.setPresencePrivacy.allowed = Array(saved.dropFirst())
            default: s.setPresencePrivacy.visibility = .presenceEveryone
            }
            return s
        }
    }

    /// Watches the presence of `accounts` (replaces the previous list; kept locally and sent on
    /// every connection). Their presence arrives as ``ClientEvent/presence(_:)``.
    public func subscribePresence(_ accounts: [String]) async throws(ClientError) {
        guard accounts.count <= RelayProtocol.ServiceLimits.maxPresenceSubscriptions,
              accounts.allSatisfy(DeviceBinding.isValidAccountName) else { throw .invalidArgument("accounts") }
        var unique: [String] = []
        for a in accounts where !unique.contains(a) { unique.append(a) }
        try step { try store.setStrings(SettingKey.subscriptions, unique) }
        if link != nil { try await sendSubscriptions() }
    }

    private func sendSubscriptions() async throws(ClientError) {
        let accounts = try step { try store.strings(SettingKey.subscriptions) }
        _ = try await request { rid in
            var s = RelayStanza()
            s.subscribePresence.requestID = rid
            s.subscribePresence.accounts = accounts
            return s
        }
    }

    /// Tells `recipient`'s online devices that this user started (true) or stopped typing.
    /// Never queued: returns false (and sends nothing) when offline or without a session.
    @discardableResult
    public func setTyping(_ typing: Bool, to recipient: String) -> Bool {
        guard drained, let link, let cert = usableCertificate(),
              let devices = try? store.sessionDevices(for: recipient), let first = devices.first,
              let remote = (try? store.identity(for: ProtocolAddress(name: recipient, deviceID: first))) ?? nil else { return false }
        let content = MessageContent.typing(typing, sentAt: configuration.clock())
        guard let payload = try? SealedEnvelope.seal(content.encoded, contentType: .typing, certificate: cert, senderIdentity: identity,
                                                     to: remote, random: configuration.random) else { return false }
        var s = RelayStanza()
        s.sendEphemeral.account = recipient
        s.sendEphemeral.payload = Data(payload)
        return link.send(s)
    }

    // MARK: identity

    /// The safety number with `contact` (nil before any session with it).
    public func safetyNumber(with contact: String) throws(ClientError) -> SafetyNumber? {
        try step {
            guard let device = try store.sessionDevices(for: contact).first,
                  let theirs = try store.identity(for: ProtocolAddress(name: contact, deviceID: device)) else { return nil }
            if let pending = try store.setting(SettingKey.pendingIdentity(contact)), let key = try? IdentityKey(serialized: pending) {
                return SafetyNumber(local: (account, identity.identityKey), remote: (contact, key))
            }
            return SafetyNumber(local: (account, identity.identityKey), remote: (contact, theirs))
        }
    }

    /// How the session with `contact` (its first device with one) was set up: `.pqxdh` or
    /// `.x3dh` (`Docs/client.md` §Prekeys); nil before any session with it.
    public func sessionEstablishment(with contact: String) throws(ClientError) -> SessionEstablishment? {
        try step {
            guard let device = try store.sessionDevices(for: contact).first else { return nil }
            return try store.loadSession(for: ProtocolAddress(name: contact, deviceID: device))?.establishment
        }
    }

    /// Whether `contact`'s identity changed and waits for approval.
    public func identityNeedsApproval(_ contact: String) throws(ClientError) -> Bool {
        try step { try store.setting(SettingKey.pendingIdentity(contact)) != nil }
    }

    /// Accepts `contact`'s new identity: sending to it works again.
    public func approveIdentity(of contact: String) throws(ClientError) {
        try step {
            try store.atomically {
                // The new key: the one seen (a bundle), or the one the store already trusts (a
                // PreKey message, or a change the store recorded).
                let seen = (try store.setting(SettingKey.pendingIdentity(contact))).flatMap { try? IdentityKey(serialized: $0) }
                for device in try store.sessionDevices(for: contact) {
                    let address = ProtocolAddress(name: contact, deviceID: device)
                    guard let key = try seen ?? store.identity(for: address) else { continue }
                    try store.saveIdentity(key, for: address)
                    // Sessions built with the old key are useless now.
                    if let record = try store.loadSession(for: address), record.remoteIdentity != key {
                        try store.deleteSession(for: address)
                    }
                }
                try store.setSetting(SettingKey.pendingIdentity(contact), nil)
            }
        }
        pump()
    }

    // MARK: maintenance: prekeys, signed prekey rotation, sender certificate, presence

    private func maintain(welcome: RelayWelcome?) async {
        do {
            if try !step({ try store.flag(SettingKey.preKeysUploaded) && store.flag(SettingKey.kyberPreKeysUploaded) }) {
                try await uploadAllPreKeys()
            } else if let welcome {
                let low = UInt32(RelayProtocol.Limits.prekeysLowThreshold)
                if welcome.prekeysRemaining < low { try await replenishPreKeys() }
                if welcome.kyberPrekeysRemaining < low { try await replenishKyberPreKeys() }
            }
            try await rotateSignedPreKeyIfDue()
            try await rotateKyberLastResortIfDue()
            _ = try await ensureCertificate()
            try await uploadSealedAccessIfNeeded()
            if welcome != nil {
                // This account's other devices, brought up to date (Docs/client.md §Several devices).
                await syncOwnDevicesAtLogin()
                if try !step({ try store.strings(SettingKey.presence) }).isEmpty { try await sendPresenceSetting() }
                if try !step({ try store.strings(SettingKey.subscriptions) }).isEmpty { try await sendSubscriptions() }
            }
        } catch {
            // Retried on the next ping tick or connection.
        }
        if welcome != nil {
            setupDone = true
            goOnlineIfReady()
        }
        // Receipts owed while the certificate was missing can go now.
        if drained { flushReceipts() }
    }

    /// `PrekeysLow` (spec relay §8.2): replenishes the kind (or kinds) below the threshold.
    private func prekeysLow(_ low: RelayPrekeysLow) async {
        let threshold = UInt32(RelayProtocol.Limits.prekeysLowThreshold)
        if low.remaining < threshold { try? await replenishPreKeys() }
        if low.kyberRemaining < threshold { try? await replenishKyberPreKeys() }
    }

    private func signedPreKeyStanza(_ spk: SignedPreKeyRecord) -> RelaySignedPrekey {
        var s = RelaySignedPrekey()
        s.id = spk.id
        s.publicKey = Data(spk.keyPair.publicKey.rawRepresentation)
        s.signature = Data(spk.signature)
        return s
    }

    private func kyberPreKeyStanza(_ k: KyberPreKeyRecord) -> RelayKyberPrekey {
        var s = RelayKyberPrekey()
        s.id = k.id
        s.publicKey = Data(k.keyPair.publicKey.rawRepresentation)
        s.signature = Data(k.signature)
        return s
    }

    /// Uploads prekeys: the first stanza carries `signed`, `oneTime`, `kyberLastResort` and up to
    /// ``RelayProtocol/Limits/kyberPrekeysPerStanza`` one-time Kyber prekeys, further stanzas the
    /// rest of `kyberOneTime` (a stanza holds at most 36 Kyber prekeys, spec relay §8.3).
    private func upload(signed: SignedPreKeyRecord?, oneTime: [PreKeyRecord], kyberLastResort: KyberPreKeyRecord? = nil,
                        kyberOneTime: [KyberPreKeyRecord] = [], replace: Bool = false) async throws(ClientError) {
        let registrationID = try step { try store.localRegistrationID() }
        let per = RelayProtocol.Limits.kyberPrekeysPerStanza
        var offset = 0
        repeat {
            let chunk = Array(kyberOneTime[offset..<min(kyberOneTime.count, offset + per)])
            let first = offset == 0
            _ = try await request { rid in
                var s = RelayStanza()
                s.uploadPrekeys.requestID = rid
                s.uploadPrekeys.registrationID = registrationID
                if first {
                    // After a restore: the relay's one-time keys are the lost device's (backup §6).
                    s.uploadPrekeys.replaceOneTime = replace
                    if let signed { s.uploadPrekeys.signedPrekey = signedPreKeyStanza(signed) }
                    s.uploadPrekeys.oneTime = oneTime.map { p in
                        var k = RelayPrekey()
                        k.id = p.id
                        k.publicKey = Data(p.keyPair.publicKey.rawRepresentation)
                        return k
                    }
                    if let kyberLastResort { s.uploadPrekeys.kyberLastResort = kyberPreKeyStanza(kyberLastResort) }
                }
                s.uploadPrekeys.kyberOneTime = chunk.map(kyberPreKeyStanza)
                return s
            }
            offset += per
        } while offset < kyberOneTime.count
    }

    private func uploadAllPreKeys() async throws(ClientError) {
        let now = configuration.clock(), random = configuration.random, batch = configuration.kyberPreKeyBatch
        let identity = self.identity
        let (signed, oneTime, last, kyber): (SignedPreKeyRecord?, [PreKeyRecord], KyberPreKeyRecord?, [KyberPreKeyRecord]) = try step {
            try store.atomically {
                // A store made before Kyber prekeys existed gets its set now.
                if try store.u64(SettingKey.kyberLastResortID) == nil {
                    try Self.generateKyberPreKeys(store: store, identity: identity, now: now, random: random, count: batch)
                }
                let id = UInt32(truncatingIfNeeded: try store.u64(SettingKey.signedPreKeyID) ?? 1)
                let ids = try store.preKeyIDs().suffix(RelayProtocol.Limits.maxPrekeysPerUpload)
                let lastID = try store.u64(SettingKey.kyberLastResortID).map { UInt32(truncatingIfNeeded: $0) }
                let kyber = try store.kyberPreKeys().filter { $0.kind == .oneTime }.suffix(RelayProtocol.Limits.maxStoredKyberPrekeys)
                return (try store.loadSignedPreKey(id: id), try ids.compactMap { try store.loadPreKey(id: $0) },
                        try lastID.flatMap { try store.loadKyberPreKey(id: $0) }, Array(kyber))
            }
        }
        let replace = try step { try store.flag(HushBackup.restoreReplacePreKeys) }
        try await upload(signed: signed, oneTime: oneTime, kyberLastResort: last, kyberOneTime: kyber, replace: replace)
        try step {
            try store.atomically {
                try store.setFlag(SettingKey.preKeysUploaded, true)
                try store.setFlag(SettingKey.kyberPreKeysUploaded, true)
                if replace { try store.setSetting(HushBackup.restoreReplacePreKeys, nil) }
            }
        }
    }

    /// Generates and uploads a batch of one-time prekeys.
    private func replenishPreKeys() async throws(ClientError) {
        guard !replenishing else { return }
        replenishing = true
        defer { replenishing = false }
        let batch = min(configuration.preKeyBatch, RelayProtocol.Limits.maxPrekeysPerUpload)
        let random = configuration.random
        let keys: [PreKeyRecord] = try step {
            try store.atomically {
                let first = UInt32(truncatingIfNeeded: try store.u64(SettingKey.nextPreKeyID) ?? 1)
                let keys = try PreKeyRecord.generate(ids: first..<(first + UInt32(batch)), using: random)
                for k in keys { try store.storePreKey(k) }
                try store.setU64(SettingKey.nextPreKeyID, UInt64(first) + UInt64(batch))
                return keys
            }
        }
        try await upload(signed: nil, oneTime: keys)
    }

    /// Rotates the signed prekey when it is older than the rotation period, and forgets those
    /// replaced more than the retention period ago.
    private func rotateSignedPreKeyIfDue() async throws(ClientError) {
        let now = configuration.clock()
        let rotation = configuration.signedPreKeyRotation, retention = configuration.signedPreKeyRetention
        let random = configuration.random
        let fresh: SignedPreKeyRecord? = try step {
            try store.atomically {
                let currentID = UInt32(truncatingIfNeeded: try store.u64(SettingKey.signedPreKeyID) ?? 1)
                guard let current = try store.loadSignedPreKey(id: currentID), now >= current.timestamp + rotation else { return nil }
                let next = try SignedPreKeyRecord.generate(id: currentID &+ 1, timestamp: now, signedBy: identity, using: random)
                try store.storeSignedPreKey(next)
                return next
            }
        }
        if let fresh {
            try await upload(signed: fresh, oneTime: [])
            try step { try store.setU64(SettingKey.signedPreKeyID, UInt64(fresh.id)) }
        }
        try step {
            let currentID = UInt32(truncatingIfNeeded: try store.u64(SettingKey.signedPreKeyID) ?? 1)
            let all = try store.signedPreKeys().sorted { $0.id < $1.id }
            for (i, spk) in all.enumerated() where spk.id != currentID && i + 1 < all.count {
                // Replaced when its successor was made: kept for `retention` after that.
                if now >= all[i + 1].timestamp + retention { try store.removeSignedPreKey(id: spk.id) }
            }
        }
    }


    /// Generates and uploads a batch of one-time Kyber prekeys.
    private func replenishKyberPreKeys() async throws(ClientError) {
        guard !replenishingKyber else { return }
        replenishingKyber = true
        defer { replenishingKyber = false }
        let batch = min(configuration.kyberPreKeyBatch, RelayProtocol.Limits.maxKyberPrekeysPerUpload)
        let random = configuration.random, now = configuration.clock(), identity = self.identity
        let keys: [KyberPreKeyRecord] = try step {
            try store.atomically {
                var next = UInt32(truncatingIfNeeded: try store.u64(SettingKey.nextKyberPreKeyID) ?? 1)
                var keys: [KyberPreKeyRecord] = []
                for _ in 0..<batch {
                    let k = try KyberPreKeyRecord.generate(id: next, kind: .oneTime, timestamp: now, signedBy: identity, using: random)
                    try store.storeKyberPreKey(k)
                    keys.append(k)
                    next &+= 1
                }
                try store.setU64(SettingKey.nextKyberPreKeyID, UInt64(next))
                return keys
            }
        }
        try await upload(signed: nil, oneTime: [], kyberOneTime: keys)
    }

    /// Rotates the last-resort Kyber prekey on the signed prekey's schedule
    /// (``ClientConfiguration/signedPreKeyRotation``) and forgets those replaced more than
    /// ``ClientConfiguration/signedPreKeyRetention`` ago (a late PQXDH message may still name one).
    private func rotateKyberLastResortIfDue() async throws(ClientError) {
        let now = configuration.clock()
        let rotation = configuration.signedPreKeyRotation, retention = configuration.signedPreKeyRetention
        let random = configuration.random, identity = self.identity
        let fresh: KyberPreKeyRecord? = try step {
            try store.atomically {
                guard let currentID = try store.u64(SettingKey.kyberLastResortID),
                      let current = try store.loadKyberPreKey(id: UInt32(truncatingIfNeeded: currentID)),
                      now >= current.timestamp + rotation else { return nil }
                let id = UInt32(truncatingIfNeeded: try store.u64(SettingKey.nextKyberPreKeyID) ?? 1)
                let next = try KyberPreKeyRecord.generate(id: id, kind: .lastResort, timestamp: now, signedBy: identity, using: random)
                try store.storeKyberPreKey(next)
                try store.setU64(SettingKey.nextKyberPreKeyID, UInt64(id &+ 1))
                return next
            }
        }
        if let fresh {
            try await upload(signed: nil, oneTime: [], kyberLastResort: fresh)
            try step { try store.setU64(SettingKey.kyberLastResortID, UInt64(fresh.id)) }
        }
        try step {
            guard let currentID = try store.u64(SettingKey.kyberLastResortID) else { return }
            let all = try store.kyberPreKeys().filter { $0.kind == .lastResort }.sorted { $0.id < $1.id }
            for (i, key) in all.enumerated() where UInt64(key.id) != currentID && i + 1 < all.count {
                // Replaced when its successor was made: kept for `retention` after that.
                if now >= all[i + 1].timestamp + retention { try store.removeKyberPreKey(id: key.id) }
            }
        }
    }

    /// The stored sender certificate if it is still valid now.
    func usableCertificate() -> SenderCertificate? {
        guard let bytes = (try? store.setting(SettingKey.senderCertificate)) ?? nil,
              let cert = try? SenderCertificate(serialized: bytes) else { return nil }
        return configuration.clock() < cert.expiration ? cert : nil
    }

    /// A valid sender certificate, renewed from the relay when it has less than the renewal
    /// margin left (or none); the stored one while offline if still valid.
    @discardableResult
    func ensureCertificate() async throws(ClientError) -> SenderCertificate {
        let now = configuration.clock()
        if let cert = usableCertificate(), cert.expiration > now + configuration.certificateRenewal { return cert }
        do {
            let reply = try await request { rid in var s = RelayStanza(); s.getSenderCertificate.requestID = rid; return s }
            guard case .senderCertificate(let issued)? = reply.body else { throw ClientError.relay(.unexpectedStanza) }
            let cert: SenderCertificate
            do { cert = try SenderCertificate(serialized: Array(issued.certificate)) } catch { throw ClientError.badSenderCertificate("\(error)") }
            do { try validator.validate(cert, now: now) } catch { throw ClientError.badSenderCertificate("\(error)") }
            guard cert.senderID == account, cert.deviceID == deviceID, cert.identityKey == identity.identityKey,
                  cert.expiration <= now + RelayProtocol.ServiceLimits.maxSenderCertificateValidity + 60_000 else {
                throw ClientError.badSenderCertificate("not this device's")
            }
            try step { try store.setSetting(SettingKey.senderCertificate, cert.serialized) }
            return cert
        } catch {
            if let cert = usableCertificate() { return cert }
            throw (error as? ClientError) ?? .crypto("\(error)")
        }
    }

    /// The sender certificate in use (nil before the first connection), for diagnostics.
    public var senderCertificate: SenderCertificate? { usableCertificate() }
}
