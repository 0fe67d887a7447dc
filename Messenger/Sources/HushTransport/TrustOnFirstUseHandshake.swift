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
    private var handshake: ClientHandshake

    /// The pattern in use.
    public var pattern: RelayProtocol.Pattern { handshake.pattern }
    /// The relay's certificate, once received (pin it for later handshakes).
    public var certificate: RelayCertificate? { handshake.certificate }

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
        handshake = try ClientHandshake(pattern: pattern, deviceKey: deviceKey,
                                        relayKey: pattern == .xx ? nil : pinned?.relayKey,
                                        policy: .firstUse(pinned: pinned), hello: hello, now: now, random: random)
    }

    /// The first WebSocket message: the pattern byte, then Noise message 1.
    public mutating func start() throws(TransportError) -> [UInt8] { try handshake.start() }

    /// Consumes the relay's handshake message; returns XX message 3 when one is due.
    public mutating func receive(_ message: some ContiguousByteBuffer) throws(TransportError) -> [UInt8]? {
        try handshake.receive(message)
    }

    /// `true` once the handshake has completed.
    public var isFinished: Bool { handshake.isFinished }

    /// The established channel.
    public func channel() throws(TransportError) -> StanzaChannel { try handshake.channel() }
}
