import Foundation
import Hush
import HushTransport
import Testing
@testable import HushRelay

/// A device's keys and names for tests.
struct TestDevice: Sendable {
    let account: String
    let deviceID: UInt32
    let identity: Curve25519.KeyAgreement.PrivateKey
    let key = try! Curve25519.KeyAgreement.PrivateKey()

    init(_ account: String, _ deviceID: UInt32 = 1, identity: Curve25519.KeyAgreement.PrivateKey = try! .init()) {
        self.account = account
        self.deviceID = deviceID
        self.identity = identity
    }

    func sibling(_ deviceID: UInt32) -> TestDevice { TestDevice(account, deviceID, identity: identity) }

    var registerHello: RelayClientHello {
        var r = RelayRegister()
        r.account = account
        r.identityKey = Data(identity.publicKey.rawRepresentation)
        r.deviceID = deviceID
        r.deviceSignature = Data(try! DeviceBinding.sign(account: account, deviceID: deviceID, deviceKey: key.publicKey, identity: identity))
        var h = RelayClientHello()
        h.register = r
        return h
    }

    /// ``registerHello`` with `Register.link_token` (spec §5.1, §22.4).
    func registerHello(linkToken: Data) -> RelayClientHello {
        var h = registerHello
        h.register.linkToken = linkToken
        return h
    }

    var loginHello: RelayClientHello {
        var l = RelayLogin()
        l.account = account
        l.deviceID = deviceID
        var h = RelayClientHello()
        h.login = l
        return h
    }
}

enum ClientError: Error, Equatable {
    case closed(UInt16?)
    case unexpected(String)
    /// Nothing arrived within the wait's timeout.
    case timedOut
}

/// A thin relay client: handshake, then stanzas (the relay's test peer). Every wait ends:
/// after `timeout` (``TestWebSocket/defaultTimeout`` unless set) without a message it throws
/// ``ClientError/timedOut``.
final class RelayTestClient: @unchecked Sendable {
    let socket: TestWebSocket
    var timeout: Duration = TestWebSocket.defaultTimeout
    var channel: StanzaChannel
    var welcome: RelayWelcome?
    /// Messages received before a specific wait found what it wanted.
    var backlog: [RelayStanza] = []
    private(set) var firstMessage: [UInt8] = []

    private init(socket: TestWebSocket, channel: StanzaChannel) {
        self.socket = socket
        self.channel = channel
    }

    /// Connects and runs the handshake; throws `ClientError.closed(code)` when the relay rejects.
    static func connect(_ relay: TestRelay, _ device: TestDevice?, pattern: RelayProtocol.Pattern, hello: RelayClientHello,
                        relayKey: Curve25519.KeyAgreement.PublicKey? = nil, now: (@Sendable () -> UInt64)? = nil,
                        expectWelcome: Bool = true, timeout: Duration = TestWebSocket.defaultTimeout) async throws -> RelayTestClient {
        try await connect(port: relay.port, trustRoot: relay.identity.trustRoot, device, pattern: pattern, hello: hello,
                          relayKey: relayKey ?? relay.identity.staticKey.publicKey, now: now ?? relay.clockSeconds,
                          expectWelcome: expectWelcome, timeout: timeout)
    }

    static func connect(port: Int, trustRoot: Curve25519.KeyAgreement.PublicKey, _ device: TestDevice?, pattern: RelayProtocol.Pattern,
                        hello: RelayClientHello, relayKey: Curve25519.KeyAgreement.PublicKey?, now: @escaping @Sendable () -> UInt64,
                        expectWelcome: Bool = true, timeout: Duration = TestWebSocket.defaultTimeout) async throws -> RelayTestClient {
        let socket = try await TestWebSocket.connect(port: port, timeout: timeout)
        var hs = try ClientHandshake(pattern: pattern, deviceKey: device?.key, relayKey: pattern == .xx ? nil : relayKey,
                                     trustRoot: trustRoot, hello: hello, now: now)
        let first = try hs.start()
        try await socket.send(first)
        while !hs.isFinished {
            switch await socket.next(timeout: timeout) {
            case .binary(let m):
                if let reply = try hs.receive(m) { try await socket.send(reply) }
            case .closed(let code): throw ClientError.closed(code)
            case .timedOut:
                await socket.close()
                throw ClientError.timedOut
            }
        }
        let client = RelayTestClient(socket: socket, channel: try hs.channel())
        client.timeout = timeout
        client.firstMessage = first
        if expectWelcome {
            let s = try await client.next()
            guard case .welcome(let w)? = s.body else { throw ClientError.unexpected("\(s)") }
            client.welcome = w
        }
        return client
    }

    static func register(_ relay: TestRelay, _ device: TestDevice, pattern: RelayProtocol.Pattern = .xx) async throws -> RelayTestClient {
        try await connect(relay, device, pattern: pattern, hello: device.registerHello)
    }

    /// Registers `device`, a further device of an account that has devices, as a linked device
    /// does (spec §22.4): `primary` (device 1's connection) asks for link tokens until one
    /// reserves `device.deviceID` (tokens for lower free ids are kept for later calls), and the
    /// device registers with it.
    static func registerLinked(_ relay: TestRelay, _ device: TestDevice, via primary: RelayTestClient,
                               pattern: RelayProtocol.Pattern = .xx) async throws -> RelayTestClient {
        let token = try await relay.linkToken(for: device) { try await primary.requestLinkToken() }
        return try await connect(relay, device, pattern: pattern, hello: device.registerHello(linkToken: token))
    }

    /// ``registerLinked(_:_:via:pattern:)`` when device 1 is not connected: the tokens are issued
    /// through the relay's store directly (the relay's clock, a random token).
    static func registerLinked(_ relay: TestRelay, _ device: TestDevice, pattern: RelayProtocol.Pattern = .xx) async throws -> RelayTestClient {
        let token = try await relay.linkToken(for: device) { try await relay.issueLinkTokenInStore(account: device.account) }
        return try await connect(relay, device, pattern: pattern, hello: device.registerHello(linkToken: token))
    }

    /// ``register(_:_:pattern:)`` for device 1, ``registerLinked(_:_:pattern:)`` for any other.
    static func registerAny(_ relay: TestRelay, _ device: TestDevice) async throws -> RelayTestClient {
        device.deviceID == 1 ? try await register(relay, device) : try await registerLinked(relay, device)
    }

    /// Sends `RequestLinkToken` and returns the `LinkToken`; an `Error` answer throws
    /// ``ClientError/unexpected(_:)`` with its code.
    func requestLinkToken(_ requestID: UInt32 = 0x4C54) async throws -> RelayLinkToken {
        var s = RelayStanza()
        s.requestLinkToken.requestID = requestID
        try await send(s)
        let reply = try await wait { st -> RelayStanza? in
            switch st.body {
            case .linkToken(let t) where t.requestID == requestID: st
            case .error(let e) where e.requestID == requestID: st
            default: nil
            }
        }
        guard case .linkToken(let t)? = reply.body else { throw ClientError.unexpected("\(reply)") }
        return t
    }

    static func login(_ relay: TestRelay, _ device: TestDevice, pattern: RelayProtocol.Pattern = .ik) async throws -> RelayTestClient {
        try await connect(relay, device, pattern: pattern, hello: device.loginHello)
    }

    func send(_ stanza: RelayStanza) async throws {
        try await socket.send(try channel.sender.seal(stanza))
    }

    /// The next stanza (from the backlog first).
    func next() async throws -> RelayStanza {
        if !backlog.isEmpty { return backlog.removeFirst() }
        return try await receive()
    }

    /// The next stanza from the socket.
    private func receive() async throws -> RelayStanza {
        switch await socket.next(timeout: timeout) {
        case .binary(let m): return try channel.receiver.open(m)
        case .closed(let code): throw ClientError.closed(code)
        case .timedOut: throw ClientError.timedOut
        }
    }

    /// Reads until the socket closes; returns the close code and the stanzas before it (a
    /// timeout is recorded as an issue and returns nil).
    func closeCode(sourceLocation: SourceLocation = #_sourceLocation) async -> (UInt16?, [RelayStanza]) {
        var seen: [RelayStanza] = backlog
        backlog = []
        while true {
            switch await socket.next(timeout: timeout) {
            case .binary(let m):
                if let s = try? channel.receiver.open(m) { seen.append(s) }
            case .closed(let code): return (code, seen)
            case .timedOut:
                Issue.record("no close within \(timeout)", sourceLocation: sourceLocation)
                return (nil, seen)
            }
        }
    }

    /// Reads until a stanza matches; others are kept in order in the backlog.
    func wait<T>(_ match: (RelayStanza) -> T?) async throws -> T {
        var skipped: [RelayStanza] = []
        defer { backlog = skipped + backlog }
        while true {
            let s: RelayStanza
            if !backlog.isEmpty { s = backlog.removeFirst() } else { s = try await receive() }
            if let t = match(s) { return t }
            skipped.append(s)
        }
    }

    // MARK: conveniences

    func sendMessage(_ id: UInt64, to account: String, _ text: String) async throws {
        try await sendMessage(id, to: account, [1], text)
    }

    func sendAndWait(_ id: UInt64, to account: String, _ text: String) async throws -> RelayStanza {
        try await sendAndWait(id, to: account, [1], text)
    }

    func sendMessage(_ id: UInt64, to account: String, _ devices: [UInt32], _ text: String) async throws {
        var m = RelaySend()
        m.clientMessageID = id
        m.account = account
        m.devices = devices
        m.payload = Data(text.utf8)
        var s = RelayStanza()
        s.send = m
        try await send(s)
    }

    /// Sends and waits for the server ack (or an error for this message).
    func sendAndWait(_ id: UInt64, to account: String, _ devices: [UInt32], _ text: String) async throws -> RelayStanza {
        try await sendMessage(id, to: account, devices, text)
        return try await wait { s in
            switch s.body {
            case .serverAck(let a) where a.clientMessageID == id: s
            case .error(let e) where e.clientMessageID == id: s
            default: nil
            }
        }
    }

    func nextDeliver() async throws -> RelayDeliver {
        try await wait { if case .deliver(let d)? = $0.body { d } else { nil } }
    }

    func ack(_ ids: [UInt64]) async throws {
        var s = RelayStanza()
        s.ack.serverIds = ids
        try await send(s)
    }

    /// Receives `count` deliveries, acking each, then expects nothing else but QueueEmpty if asked.
    func receiveAndAck(_ count: Int) async throws -> [RelayDeliver] {
        var out: [RelayDeliver] = []
        for _ in 0..<count {
            let d = try await nextDeliver()
            out.append(d)
            try await ack([d.serverID])
        }
        return out
    }

    func waitQueueEmpty() async throws {
        try await wait { if case .queueEmpty? = $0.body { () } else { nil } }
    }

    func ping(_ id: UInt32) async throws -> RelayStanza {
        var s = RelayStanza()
        s.ping.requestID = id
        try await send(s)
        return try await wait { s in
            switch s.body {
            case .pong(let p) where p.requestID == id: s
            case .error(let e) where e.requestID == id: s
            default: nil
            }
        }
    }

    func close() async { await socket.close() }
}

extension TestRelay {
    /// A link token for `device`'s id: one kept from an earlier call, else new ones from `issue`
    /// until one reserves that id (ids are reserved lowest first; the others are kept).
    func linkToken(for device: TestDevice, _ issue: () async throws -> RelayLinkToken) async throws -> Data {
        let key = { (id: UInt32) in "\(device.account)/\(id)" }
        if let kept = linkTokens.withLock({ $0.removeValue(forKey: key(device.deviceID)) }) { return kept }
        for _ in 0..<RelayProtocol.Limits.maxOpenLinkTokens {
            let t = try await issue()
            if t.deviceID == device.deviceID { return t.token }
            guard t.deviceID < device.deviceID else { break }
            linkTokens.withLock { $0[key(t.deviceID)] = t.token }
        }
        throw ClientError.unexpected("no link token for \(device.account).\(device.deviceID)")
    }

    /// A link token issued through the store (as `RequestLinkToken` would, without a connection).
    func issueLinkTokenInStore(account: String) async throws -> RelayLinkToken {
        let token = Data((0..<16).map { _ in UInt8.random(in: 0...255) })
        let now = clock.now
        let id = try await relay.store.issueLinkToken(LinkTokenIssue(
            account: account, tokenHash: Data(SHA256.hash(token)), now: now, expiresAt: now + RelayProtocol.Limits.linkTokenLifetimeMilliseconds,
            maxDevices: RelayProtocol.Limits.maxDevicesPerAccount, maxOpenTokens: RelayProtocol.Limits.maxOpenLinkTokens))
        var t = RelayLinkToken()
        t.token = token
        t.deviceID = id
        t.expiresAt = now + RelayProtocol.Limits.linkTokenLifetimeMilliseconds
        return t
    }
}
