import Foundation
import Hush
import HushTransport

/// The relay's key files in its data directory (`Docs/spec/relay.md` §3.3). Each file holds
/// one line of lowercase hex.
///
/// | file | content |
/// |---|---|
/// | `trust-root.key` | trust root private key (32 bytes); keep it offline in production |
/// | `trust-root.pub` | trust root public key (32 bytes): what clients pin |
/// | `relay.key` | relay Noise static private key (32 bytes), mode 0600 |
/// | `relay.cert` | the relay certificate (117 bytes) |
/// | `server-certificate.key`, `.cert` | the sender-certificate key and its `ServerCertificate` (ServerCertificateFiles.swift) |
public enum RelayKeyFiles {
    /// Errors reading or writing key files.
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        /// A file is missing.
        case missing(String)
        /// A file does not hold what it should.
        case malformed(String)
        /// The certificate does not certify the key under the trust root.
        case invalidCertificate(String)
        /// The file system refused.
        case io(String)

        /// Human-readable.
        public var description: String {
            switch self {
            case .missing(let f): "missing key file \(f)"
            case .malformed(let f): "malformed key file \(f)"
            case .invalidCertificate(let why): "relay certificate rejected: \(why)"
            case .io(let why): "cannot write key files: \(why)"
            }
        }
    }

    static func url(_ dir: String, _ name: String) -> URL { URL(fileURLWithPath: dir).appendingPathComponent(name) }

    static func readHex(_ dir: String, _ name: String) throws(Error) -> [UInt8] {
        guard let text = try? String(contentsOf: url(dir, name), encoding: .utf8) else { throw .missing(name) }
        guard let bytes = try? Hex.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw .malformed(name) }
        return bytes
    }

    static func writeHex(_ bytes: some ContiguousByteBuffer, _ dir: String, _ name: String, secret: Bool) throws(Error) {
        let path = url(dir, name).path
        let text = Hex.encode(bytes) + "\n"
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8),
                                             attributes: [.posixPermissions: secret ? 0o600 : 0o644]) else { throw .io(path) }
    }

    /// `true` when the directory has a relay key and certificate.
    public static func exist(in dir: String) -> Bool {
        FileManager.default.fileExists(atPath: url(dir, "relay.key").path) && FileManager.default.fileExists(atPath: url(dir, "relay.cert").path)
    }

    /// Loads the relay identity from `dir`.
    public static func load(from dir: String, now: UInt64 = unixSeconds()) throws(Error) -> RelayIdentity {
        let key: Curve25519.KeyAgreement.PrivateKey
        do { key = try .init(rawRepresentation: try readHex(dir, "relay.key")) } catch let e as Error { throw e } catch { throw .malformed("relay.key") }
        let cert: RelayCertificate
        do { cert = try RelayCertificate(serialized: try readHex(dir, "relay.cert")) } catch let e as Error { throw e } catch { throw .malformed("relay.cert") }
        let root: Curve25519.KeyAgreement.PublicKey
        do { root = try .init(rawRepresentation: try readHex(dir, "trust-root.pub")) } catch let e as Error { throw e } catch { throw .malformed("trust-root.pub") }
        var identity: RelayIdentity
        do { identity = try RelayIdentity(staticKey: key, certificate: cert, trustRoot: root, now: now) } catch {
            throw .invalidCertificate("\(error)")
        }
        identity.senderCertificates = try senderCertificates(in: dir, trustRoot: root, now: now)
        return identity
    }

    /// Creates the trust root in `dir` unless one exists, then a new relay key and a
    /// certificate for it (key id one above the previous certificate's), valid from now for
    /// `validityDays`. Returns the new identity.
    @discardableResult
    public static func generate(in dir: String, validityDays: UInt64 = 365, now: UInt64 = unixSeconds()) throws(Error) -> RelayIdentity {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch { throw .io(dir) }
        let root: Curve25519.KeyAgreement.PrivateKey
        do {
            if FileManager.default.fileExists(atPath: url(dir, "trust-root.key").path) {
                root = try .init(rawRepresentation: try readHex(dir, "trust-root.key"))
            } else {
                root = try .init()
                try writeHex(root.rawRepresentation, dir, "trust-root.key", secret: true)
                try writeHex(root.publicKey.rawRepresentation, dir, "trust-root.pub", secret: false)
            }
        } catch let e as Error { throw e } catch { throw .malformed("trust-root.key") }
        var keyID: UInt32 = 1
        if let old = try? RelayCertificate(serialized: readHex(dir, "relay.cert")) { keyID = old.keyID &+ 1 }
        do {
            let key = try Curve25519.KeyAgreement.PrivateKey()
            // Valid from an hour ago, so that clients with slightly slow clocks accept it.
            let cert = try RelayCertificate.issue(keyID: keyID, relayKey: key.publicKey, notBefore: now - 3_600,
                                                  notAfter: now + validityDays * 86_400, trustRoot: root)
            try writeHex(key.rawRepresentation, dir, "relay.key", secret: true)
            try writeHex(cert.serialized, dir, "relay.cert", secret: false)
            var identity = try RelayIdentity(staticKey: key, certificate: cert, trustRoot: root.publicKey, now: now)
            identity.senderCertificates = try senderCertificates(in: dir, trustRoot: root.publicKey, now: now,
                                                                 validityDays: validityDays, renew: true)
            return identity
        } catch let e as Error { throw e } catch { throw .invalidCertificate("\(error)") }
    }

    /// The media capability key (`Docs/spec/relay.md` §19.1): `media.key` in `dir` (32 bytes
    /// as hex, mode 0600), created on first use. Relay nodes that serve one media store share it
    /// by sharing the file; a restart keeps outstanding upload grants valid.
    public static func mediaKey(in dir: String) throws(Error) -> SecureBytes {
        if FileManager.default.fileExists(atPath: url(dir, "media.key").path) {
            var bytes = try readHex(dir, "media.key")
            defer { SecureBytes.wipe(&bytes) }
            guard bytes.count == 32 else { throw .malformed("media.key") }
            return SecureBytes(copying: bytes)
        }
        let key: SecureBytes
        do { key = try SecureBytes(randomCount: 32) } catch { throw .io("no randomness for media.key") }
        try writeHex(key, dir, "media.key", secret: true)
        return key
    }
}
