import Foundation
import Hush
import HushTransport

/// The sender-certificate key files beside the relay's keys (`Docs/spec/relay.md` §3.3, §16):
///
/// | file | content |
/// |---|---|
/// | `server-certificate.key` | the server-certificate private key (32 bytes), mode 0600 |
/// | `server-certificate.cert` | its Hush `ServerCertificate` signed by the trust root |
extension RelayKeyFiles {
    static let serverKeyFile = "server-certificate.key"
    static let serverCertificateFile = "server-certificate.cert"

    /// Loads the sender-certificate authority from `dir`; creates it (key id one above the
    /// previous one, valid `validityDays`) when its files are missing, or `renew` is set, and
    /// the trust root's private key is present. Nil when neither is possible.
    static func senderCertificates(in dir: String, trustRoot: Curve25519.KeyAgreement.PublicKey, now: UInt64,
                                   validityDays: UInt64 = 365, renew: Bool = false) throws(Error) -> SenderCertificateAuthority? {
        let fm = FileManager.default
        let have = fm.fileExists(atPath: url(dir, serverKeyFile).path) && fm.fileExists(atPath: url(dir, serverCertificateFile).path)
        var previousID: UInt32 = 0
        if have {
            let key: Curve25519.KeyAgreement.PrivateKey
            let cert: ServerCertificate
            do { key = try .init(rawRepresentation: try readHex(dir, serverKeyFile)) } catch let e as Error { throw e } catch { throw .malformed(serverKeyFile) }
            do { cert = try ServerCertificate(serialized: try readHex(dir, serverCertificateFile)) } catch let e as Error { throw e } catch { throw .malformed(serverCertificateFile) }
            previousID = cert.keyID
            if !renew && now * 1_000 < cert.expiration {
                do { return try SenderCertificateAuthority(serverKey: key, certificate: cert, trustRoot: trustRoot) } catch {
                    throw .invalidCertificate("server certificate: \(error)")
                }
            }
        }
        guard fm.fileExists(atPath: url(dir, "trust-root.key").path) else { return nil }
        do {
            let root = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: try readHex(dir, "trust-root.key"))
            let key = try Curve25519.KeyAgreement.PrivateKey()
            let cert = try ServerCertificate.issue(keyID: previousID &+ 1, key: key.publicKey,
                                                   expiration: (now + validityDays * 86_400) * 1_000, signedBy: root)
            try writeHex(key.rawRepresentation, dir, serverKeyFile, secret: true)
            try writeHex(cert.serialized, dir, serverCertificateFile, secret: false)
            return try SenderCertificateAuthority(serverKey: key, certificate: cert, trustRoot: trustRoot)
        } catch let e as Error { throw e } catch { throw .invalidCertificate("server certificate: \(error)") }
    }
}
