import Foundation
import Hush
import HushTransport

/// Tunables of a relay; defaults are the values `Docs/spec/relay.md` §9 documents.
public struct RelayConfiguration: Sendable {
    /// A Noise handshake must complete within this time (§9).
    public var handshakeTimeout: Duration = .seconds(10)
    /// A connection must send a complete HTTP request (the WebSocket upgrade, or a request for
    /// `/health`, `/metrics`, `/v1/trust-root`) within this time of opening or of its last
    /// response; otherwise it is closed (§9).
    public var httpTimeout: Duration = .seconds(10)
    /// WebSocket ping interval; a connection that misses a pong is closed (§9).
    public var pingInterval: Duration = .seconds(30)
    /// Unacknowledged deliveries per connection (flow control, §7.3).
    public var deliveryWindow = 64
    /// Messages queued per device before sends to it fail with QUEUE_FULL (§7.2).
    public var queueCap = 10_000
    /// Queued messages expire after this long (§7.2).
    public var messageTTL: Duration = .seconds(30 * 86_400)
    /// Stanzas per second a connection may send, sustained (token bucket, §9).
    public var stanzaRate: Double = 1_000
    /// Burst of stanzas above the sustained rate.
    public var stanzaBurst: Double = 2_000
    /// Prekey fetches per second a requesting device may make, sustained (§7.5).
    public var fetchRate: Double = 1
    /// Burst of prekey fetches.
    public var fetchBurst: Double = 20
    /// How long a provisioning address stays open (§22.3; 10 minutes, shorter in tests).
    public var provisioningLifetime: Duration = .milliseconds(Int64(RelayProtocol.Limits.provisioningLifetimeMilliseconds))
    /// How often expired messages are purged.
    public var purgeInterval: Duration = .seconds(3_600)
    /// The clock, Unix milliseconds (injectable for tests).
    public var clock: @Sendable () -> UInt64 = { UInt64(max(0, Date.now.timeIntervalSince1970 * 1_000)) }
    /// Randomness for handshakes.
    public var random: any RandomSource = SystemRandom()
    /// How this node shares its store with other relay nodes (``SingleNodeCluster``: it does not).
    public var cluster: any RelayCluster = SingleNodeCluster()
    /// The media store and its capability key (§17); nil: no media (UNAVAILABLE, 404).
    public var media: MediaService?
    /// Test hook: called with every stanza a logged-in connection receives, before it is
    /// handled; a throw is treated as a crash of that connection's handler.
    public var stanzaHook: (@Sendable (RelayStanza) throws -> Void)?

    /// The defaults.
    public init() {}

    var ttlMilliseconds: UInt64 { UInt64(messageTTL.components.seconds) * 1_000 }
    var provisioningLifetimeMilliseconds: UInt64 {
        let c = provisioningLifetime.components
        return UInt64(max(0, c.seconds)) * 1_000 + UInt64(max(0, c.attoseconds)) / 1_000_000_000_000_000
    }
}

/// The relay's keys: its Noise static key and the certificate the trust root issued for it.
public struct RelayIdentity: Sendable {
    /// The relay's Noise static key.
    public let staticKey: Curve25519.KeyAgreement.PrivateKey
    /// The certificate for it.
    public let certificate: RelayCertificate
    /// The trust root's public key (what clients pin).
    public let trustRoot: Curve25519.KeyAgreement.PublicKey
    /// The sender-certificate issuer (`Docs/spec/relay.md` §16); nil: the relay answers
    /// `GetSenderCertificate` with UNAVAILABLE.
    public var senderCertificates: SenderCertificateAuthority?

    /// An identity; throws unless the certificate certifies `staticKey` under `trustRoot`.
    public init(staticKey: Curve25519.KeyAgreement.PrivateKey, certificate: RelayCertificate,
                trustRoot: Curve25519.KeyAgreement.PublicKey, now: UInt64 = unixSeconds()) throws(RelayCertificate.Error) {
        try certificate.validate(trustRoot: trustRoot, now: now, handshakeKey: staticKey.publicKey)
        self.staticKey = staticKey
        self.certificate = certificate
        self.trustRoot = trustRoot
    }
}
