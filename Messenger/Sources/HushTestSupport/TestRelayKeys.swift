import Foundation
import Hush
import HushRelay
import HushTransport
import Synchronization

// Support shared by the Messenger test targets (HushRelayTests, HushClientTests): a settable
// clock and a relay identity made for it. Not a product; only the tests depend on it.

/// A settable clock (Unix milliseconds) shared by a test's relay and clients.
public final class TestClock: Sendable {
    private let value: Atomic<UInt64>
    /// Starts at `ms` (default: 2027-01-15).
    public init(_ ms: UInt64 = 1_800_000_000_000) { value = Atomic(ms) }
    /// The time now, Unix ms.
    public var now: UInt64 { value.load(ordering: .relaxed) }
    /// Moves the clock forward.
    public func advance(by ms: UInt64) { value.add(ms, ordering: .relaxed) }
}

/// Fresh relay keys for a test relay: a trust root, a relay key certified from a day before
/// `clock.now` for 400 days, and a sender-certificate authority whose server certificate lasts
/// `serverCertificateDays`.
public enum TestRelayKeys {
    /// A new identity (all keys random).
    public static func identity(clock: TestClock, serverCertificateDays: UInt64 = 400) throws -> RelayIdentity {
        let root = try Curve25519.KeyAgreement.PrivateKey()
        let key = try Curve25519.KeyAgreement.PrivateKey()
        let seconds = clock.now / 1_000
        let cert = try RelayCertificate.issue(keyID: 1, relayKey: key.publicKey, notBefore: seconds - 86_400,
                                              notAfter: seconds + 400 * 86_400, trustRoot: root)
        var identity = try RelayIdentity(staticKey: key, certificate: cert, trustRoot: root.publicKey, now: seconds)
        let serverKey = try Curve25519.KeyAgreement.PrivateKey()
        let serverCert = try ServerCertificate.issue(keyID: 1, key: serverKey.publicKey,
                                                     expiration: clock.now + serverCertificateDays * 86_400_000, signedBy: root)
        identity.senderCertificates = try SenderCertificateAuthority(serverKey: serverKey, certificate: serverCert,
                                                                     trustRoot: root.publicKey)
        return identity
    }
}
