import Foundation
import Hush
import HushNoise

/// The client side of the relay handshake (`Docs/spec/relay.md` §4) for a tool that has no
/// pinned trust root, such as a load generator pointed at a relay it just started: it accepts
/// the relay's certificate on first contact and pins it for every later handshake.
///
/// What it still checks: the certificate parses, is valid at `now`, and certifies the static
/// key the relay used in this very handshake; once pinned, later handshakes must present
/// byte-identical certificates. What it cannot check: the trust root's signature. A real
/// client uses ``ClientHandshake`` with a pinned trust root; this type exists for loopback
/// tools and says so in its name.
public struct TrustOnFirstUseHandshake {
    /// The pattern in use.
    public let pattern: RelayProtocol.Pattern
    private var noise: NoiseHandshake
    private let hello: RelayClientHello
    private let pinned: RelayCertificate?
    private let now: @Sendable () -> UInt64
    /// The relay's certificate, once received (pin it for later handshakes).
    public private(set) var certificate: RelayCertificate?

    /// Prepares a handshake.
    /// - Parameters:
    ///   - deviceKey: the device's Noise static key.
    ///   - pinned: the certificate accepted on first contact; `nil` on first contact (then
    ///     `pattern` must be `.xx`, since the relay key is not known yet).
    ///   - hello: the login or registration to carry; its version and timestamp are filled in.
    ///   - now: the clock, Unix seconds.
    public init(pattern: RelayProtocol.Pattern, deviceKey: Curve25519.KeyAgreement.PrivateKey,
                pinned: RelayCertificate?, hello: RelayClientHello,
                now: @escaping @Sendable () -> UInt64 = unixSeconds,
                random: some RandomSource = SystemRandom()) throws(TransportError) {
        guard pattern != .nk else { throw .outOfOrder }
        guard pattern == .xx || pinned != nil else { throw .outOfOrder }
        self.pattern = pattern
        self.pinned = pinned
        self.now = now
        var hello = hello
        hello.version = RelayProtocol.version
        hello.timestamp = now()
        self.hello = hello
        do {
            noise = try NoiseHandshake(pattern: pattern.noise, role: .initiator, prologue: pattern.prologue,
                                       localStatic: deviceKey,
                                       remoteStatic: pattern == .xx ? nil : pinned?.relayKey, random: random)
        } catch { throw TransportError(error) }
    }

    /// The first WebSocket message: the pattern byte, then Noise message 1.
    public mutating func start() throws(TransportError) -> [UInt8] {
        let payload: [UInt8] = pattern == .xx ? [] : try ClientHandshake.encode(hello)
        do { return [pattern.rawValue] + (try noise.writeMessage(payload: payload)) } catch { throw TransportError(error) }
    }

    /// Consumes the relay's handshake message; returns XX message 3 when one is due.
    public mutating func receive(_ message: some ContiguousByteBuffer) throws(TransportError) -> [UInt8]? {
        let payload: [UInt8]
        do { payload = try noise.readMessage(message) } catch { throw TransportError(error) }
        let server: RelayServerHello
        do { server = try RelayServerHello(serializedBytes: payload) } catch { throw .malformedHello(reason: "ServerHello: \(error)") }
        guard server.version == RelayProtocol.version else { throw .malformedHello(reason: "ServerHello version \(server.version)") }
        let cert: RelayCertificate
        do throws(RelayCertificate.Error) {
            cert = try RelayCertificate(serialized: server.certificate)
            let t = now()
            guard t >= cert.notBefore, t <= cert.notAfter else {
                throw .expired(now: t, notBefore: cert.notBefore, notAfter: cert.notAfter)
            }
            guard let key = noise.remoteStaticKey,
                  ConstantTime.equals(key.rawRepresentation, cert.relayKey.rawRepresentation) else { throw .keyMismatch }
            if let pinned, pinned.serialized != cert.serialized { throw .keyMismatch }
        } catch { throw .certificate(error) }
        certificate = cert
        guard pattern == .xx else { return nil }
        let bytes = try ClientHandshake.encode(hello)
        do { return try noise.writeMessage(payload: bytes) } catch { throw TransportError(error) }
    }

    /// `true` once the handshake has completed.
    public var isFinished: Bool { noise.isFinished }

    /// The established channel.
    public func channel() throws(TransportError) -> StanzaChannel {
        guard noise.isFinished else { throw .outOfOrder }
        do { return StanzaChannel(try noise.split()) } catch { throw TransportError(error) }
    }
}
