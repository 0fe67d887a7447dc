import Foundation
import Hush
import HushTransport

/// The relay's sender-certificate issuer (`Docs/spec/relay.md` §16): a server key certified by
/// the relay's trust root (Hush ``ServerCertificate``), which signs a ``SenderCertificate`` for
/// each logged-in device that asks, certifying its account's identity key.
public struct SenderCertificateAuthority: Sendable {
    /// The key that signs sender certificates.
    public let serverKey: Curve25519.KeyAgreement.PrivateKey
    /// The trust root's certificate for it.
    public let certificate: ServerCertificate
    /// How long an issued certificate is valid, milliseconds (at most 7 days).
    public let validity: UInt64

    /// Errors building an authority.
    public enum Error: Swift.Error, Equatable, Sendable {
        /// The certificate is not for `serverKey`, or not signed by the trust root.
        case invalidCertificate
    }

    /// An authority; throws unless `certificate` certifies `serverKey` under `trustRoot`.
    public init(serverKey: Curve25519.KeyAgreement.PrivateKey, certificate: ServerCertificate,
                trustRoot: Curve25519.KeyAgreement.PublicKey,
                validity: UInt64 = RelayProtocol.ServiceLimits.maxSenderCertificateValidity) throws(Error) {
        guard certificate.key == serverKey.publicKey else { throw .invalidCertificate }
        // A probe certificate checks the trust root's signature with Hush's own validator.
        guard let probe = try? SenderCertificate.issue(
            senderID: "probe", deviceID: 1, identityKey: IdentityKey(publicKey: serverKey.publicKey),
            expiration: certificate.expiration, server: certificate, signedBy: serverKey) else { throw .invalidCertificate }
        do { try CertificateValidator(trustRoot: trustRoot).validate(probe, now: 0) } catch { throw .invalidCertificate }
        self.serverKey = serverKey
        self.certificate = certificate
        self.validity = min(validity, RelayProtocol.ServiceLimits.maxSenderCertificateValidity)
    }

    /// Issues a certificate for `account`'s device `deviceID` with identity key `identityKey`
    /// (raw X25519), valid from `now` (Unix ms) for ``validity``, never past the server
    /// certificate's own expiration.
    public func issue(account: String, deviceID: UInt32, identityKey: Curve25519.KeyAgreement.PublicKey,
                      now: UInt64) throws(CertificateError) -> SenderCertificate {
        guard now < certificate.expiration else { throw .serverCertificateExpired(expiration: certificate.expiration, now: now) }
        let expiration = min(now + validity, certificate.expiration)
        return try SenderCertificate.issue(senderID: account, deviceID: deviceID, identityKey: IdentityKey(publicKey: identityKey),
                                           expiration: expiration, server: certificate, signedBy: serverKey)
    }
}
