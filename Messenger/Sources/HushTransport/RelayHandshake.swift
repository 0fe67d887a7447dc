import Foundation
import Hush
import SwiftProtobuf
import HushNoise

/// The client side of the relay handshake (`Docs/spec/relay.md` §4), free of I/O: it
/// produces the WebSocket messages to send and consumes the ones received.
///
/// ```swift
/// var hs = try ClientHandshake(pattern: .ik, deviceKey: key, relayKey: pinned, trustRoot: root, hello: hello)
/// send(try hs.start())
/// if let next = try hs.receive(reply) { send(next) }   // XX sends a third message
/// var channel = try hs.channel()
/// ```
public struct ClientHandshake {
    /// The pattern in use.
    public let pattern: RelayProtocol.Pattern
    private var noise: NoiseHandshake
    private var hello: RelayClientHello
    /// How the relay's certificate is accepted.
    enum CertificatePolicy {
        /// Signed by this pinned trust root (every real client).
        case trustRoot(Curve25519.KeyAgreement.PublicKey)
        /// Accepted on first contact (`nil`), then held to that exact certificate
        /// (``TrustOnFirstUseHandshake``, for loopback tools).
        case firstUse(pinned: RelayCertificate?)
    }
    private let policy: CertificatePolicy
    private let now: @Sendable () -> UInt64
    /// The relay's certificate, once received and validated.
    public private(set) var certificate: RelayCertificate?
    /// The relay's `ServerHello`, once received.
    public private(set) var serverHello: RelayServerHello?

    /// Prepares a handshake.
    /// - Parameters:
    ///   - deviceKey: the device's Noise static key (XX, IK); `nil` for NK.
    ///   - relayKey: the relay's pinned static key (IK, NK); `nil` for XX.
    ///   - trustRoot: the pinned relay trust root that must have signed the relay's certificate.
    ///   - hello: the login or registration to carry; its version and timestamp are filled in.
    ///   - now: the clock, Unix seconds (certificate validity, `ClientHello.timestamp`).
    public init(pattern: RelayProtocol.Pattern, deviceKey: Curve25519.KeyAgreement.PrivateKey?,
                relayKey: Curve25519.KeyAgreement.PublicKey?, trustRoot: Curve25519.KeyAgreement.PublicKey,
                hello: RelayClientHello, now: @escaping @Sendable () -> UInt64 = unixSeconds,
                random: some RandomSource = SystemRandom()) throws(TransportError) {
        try self.init(pattern: pattern, deviceKey: deviceKey, relayKey: relayKey, policy: .trustRoot(trustRoot),
                      hello: hello, now: now, random: random)
    }

    init(pattern: RelayProtocol.Pattern, deviceKey: Curve25519.KeyAgreement.PrivateKey?,
         relayKey: Curve25519.KeyAgreement.PublicKey?, policy: CertificatePolicy,
         hello: RelayClientHello, now: @escaping @Sendable () -> UInt64,
         random: some RandomSource) throws(TransportError) {
        self.pattern = pattern
        self.policy = policy
        self.now = now
        var hello = hello
        hello.version = RelayProtocol.version
        hello.timestamp = now()
        self.hello = hello
        do {
            noise = try NoiseHandshake(pattern: pattern.noise, role: .initiator, prologue: pattern.prologue,
                                       localStatic: pattern == .nk ? nil : deviceKey,
                                       remoteStatic: pattern == .xx ? nil : relayKey, random: random)
        } catch { throw TransportError(error) }
    }

    /// The first WebSocket message: the pattern byte, then Noise message 1.
    public mutating func start() throws(TransportError) -> [UInt8] {
        let payload: [UInt8]
        if pattern == .xx { payload = [] } else { payload = try Self.encode(hello) }
        do { return [pattern.rawValue] + (try noise.writeMessage(payload: payload)) } catch { throw TransportError(error) }
    }

    /// Consumes the relay's handshake message. Returns the client's last message (XX message
    /// 3) when one is due, else `nil`. Afterwards ``isFinished`` is true.
    public mutating func receive(_ message: some ContiguousByteBuffer) throws(TransportError) -> [UInt8]? {
        let payload: [UInt8]
        do { payload = try noise.readMessage(message) } catch { throw TransportError(error) }
        let server: RelayServerHello
        do { server = try RelayServerHello(serializedBytes: payload) } catch { throw .malformedHello(reason: "ServerHello: \(error)") }
        guard server.version == RelayProtocol.version else { throw .malformedHello(reason: "ServerHello version \(server.version)") }
        let cert: RelayCertificate
        do throws(RelayCertificate.Error) {
            cert = try RelayCertificate(serialized: server.certificate)
            switch policy {
            case .trustRoot(let root):
                try cert.validate(trustRoot: root, now: now(), handshakeKey: noise.remoteStaticKey)
            case .firstUse(let pinned):
                // The handshake key must be present: XX and IK both transmit or pre-share it.
                guard let key = noise.remoteStaticKey else { throw .keyMismatch }
                try cert.validateIgnoringSignature(now: now(), handshakeKey: key)
                if let pinned, pinned.serialized != cert.serialized { throw .keyMismatch }
            }
        } catch { throw .certificate(error) }
        certificate = cert
        serverHello = server
        guard pattern == .xx else { return nil }
        let bytes = try Self.encode(hello)
        do { return try noise.writeMessage(payload: bytes) } catch { throw TransportError(error) }
    }

    /// `true` once the handshake has completed.
    public var isFinished: Bool { noise.isFinished }

    /// The established channel.
    public func channel() throws(TransportError) -> StanzaChannel {
        guard noise.isFinished else { throw .outOfOrder }
        do { return StanzaChannel(try noise.split()) } catch { throw TransportError(error) }
    }

    static func encode(_ message: some SwiftProtobuf.Message) throws(TransportError) -> [UInt8] {
        do { return try message.serializedBytes() as [UInt8] } catch { throw .malformedHello(reason: "encode: \(error)") }
    }
}

/// The relay side of the handshake (`Docs/spec/relay.md` §4), free of I/O.
public struct ServerHandshake {
    /// What the relay does after consuming a handshake message.
    public enum Step {
        /// Send this message and wait for the next one (XX after message 1).
        case reply([UInt8])
        /// Send this message (if any); the handshake is complete.
        case finished(reply: [UInt8]?, hello: RelayClientHello, channel: StanzaChannel)
    }

    private let relayKey: Curve25519.KeyAgreement.PrivateKey
    private let serverHello: [UInt8]
    private let random: AnyRandomSource
    private var noise: NoiseHandshake?
    /// The pattern, once the first message named it.
    public private(set) var pattern: RelayProtocol.Pattern?
    /// The client's ephemeral key from message 1 (the replay cache key, §4.4).
    public private(set) var clientEphemeral: [UInt8]?

    /// Prepares the relay's side with its static key and certificate.
    public init(relayKey: Curve25519.KeyAgreement.PrivateKey, certificate: RelayCertificate, serverTime: UInt64,
                random: some RandomSource = SystemRandom()) {
        self.relayKey = relayKey
        self.random = AnyRandomSource(random)
        var hello = RelayServerHello()
        hello.version = RelayProtocol.version
        hello.certificate = Data(certificate.serialized)
        hello.serverTime = serverTime
        serverHello = (try? hello.serializedBytes() as [UInt8]) ?? []
    }

    /// Consumes the next WebSocket message of the handshake.
    public mutating func receive(_ message: [UInt8]) throws(TransportError) -> Step {
        if noise == nil {
            guard let first = message.first else { throw .unknownPattern(nil) }
            guard let p = RelayProtocol.Pattern(rawValue: first) else { throw .unknownPattern(first) }
            pattern = p
            do {
                noise = try NoiseHandshake(pattern: p.noise, role: .responder, prologue: p.prologue,
                                           localStatic: relayKey, random: random)
            } catch { throw TransportError(error) }
            if message.count >= 33 { clientEphemeral = Array(message[1..<33]) }
            return try step(Array(message.dropFirst()))
        }
        return try step(message)
    }

    private mutating func step(_ message: [UInt8]) throws(TransportError) -> Step {
        guard var hs = noise, let pattern else { throw .outOfOrder }
        defer { noise = hs }
        let payload: [UInt8]
        do { payload = try hs.readMessage(message) } catch { throw TransportError(error) }
        switch (pattern, hs.isFinished) {
        case (.xx, false):
            guard payload.isEmpty else { throw .malformedHello(reason: "XX message 1 carries a payload") }
            do { return .reply(try hs.writeMessage(payload: serverHello)) } catch { throw TransportError(error) }
        case (.xx, true):
            let hello = try Self.decodeHello(payload)
            do { return .finished(reply: nil, hello: hello, channel: StanzaChannel(try hs.split())) } catch { throw TransportError(error) }
        case (.ik, _), (.nk, _):
            let hello = try Self.decodeHello(payload)
            do {
                let reply = try hs.writeMessage(payload: serverHello)
                return .finished(reply: reply, hello: hello, channel: StanzaChannel(try hs.split()))
            } catch { throw TransportError(error) }
        }
    }

    static func decodeHello(_ payload: [UInt8]) throws(TransportError) -> RelayClientHello {
        let hello: RelayClientHello
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 4
            hello = try RelayClientHello(serializedBytes: payload, options: options)
        } catch { throw .malformedHello(reason: "ClientHello: \(error)") }
        return hello
    }
}

/// The system clock in Unix seconds.
public let unixSeconds: @Sendable () -> UInt64 = { UInt64(max(0, Int64(Date.now.timeIntervalSince1970))) }
