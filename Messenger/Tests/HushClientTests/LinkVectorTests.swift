import Foundation
import Hush
import HushCrypto
import Testing
@testable import HushClient

/// `TestVectors/client/link.json` (Docs/spec/client.md §7, written by
/// `Tools/link-vectors/link_vectors.py` with pynacl): link codes encode and decode exactly,
/// provisioning messages too, every malformed input is the named error, and the sealed bodies
/// (libsodium's crypto_box_seal, as pynacl's SealedBox opens them) open with ``SealedBox``.
@Suite struct LinkVectorTests {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../TestVectors/client/link.json").standardized

    struct Vectors: Decodable {
        struct CodeValid: Decodable { let name: String, address: String, public_key: String, code: String; let canonical: String? }
        struct CodeInvalid: Decodable { let name: String, code: String, error: String }
        struct Codes: Decodable { let valid: [CodeValid]; let invalid: [CodeInvalid] }
        struct MessageValid: Decodable {
            let name: String, hex: String, account: String, device_id: UInt32, link_token: String, identity_private: String, identity_public: String
            let sealed_secret: String?
            let read_receipts: Bool, sealed_from_anyone: Bool
        }
        struct MessageInvalid: Decodable { let name: String, hex: String, error: String }
        struct Messages: Decodable { let valid: [MessageValid]; let invalid: [MessageInvalid] }
        struct Sealed: Decodable { let name: String, provisioning_private: String, sealed: String; let plaintext: String?, error: String? }
        let format: String
        let link_codes: Codes
        let provisioning: Messages
        let sealed: [Sealed]
    }

    static func bytes(_ hex: String) -> [UInt8] { try! Hex.decode(hex) }

    static func load() throws -> Vectors {
        let v = try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: file))
        #expect(v.format == "hush-link-vectors/2")
        return v
    }

    static func name(_ e: LinkCodeError) -> String {
        switch e {
        case .missingPrefix: "missing_prefix"
        case .wrongLength: "wrong_length"
        case .invalidCharacter: "invalid_character"
        case .nonCanonical: "non_canonical"
        case .unsupportedVersion: "unsupported_version"
        case .checksumMismatch: "checksum_mismatch"
        case .invalidKey: "invalid_key"
        }
    }

    static func name(_ e: ProvisioningError) -> String {
        switch e {
        case .tooLarge: "too_large"
        case .cannotOpen: "cannot_open"
        case .empty: "empty"
        case .unsupportedVersion: "unsupported_version"
        case .truncated: "truncated"
        case .badAccount: "bad_account"
        case .badDeviceID: "bad_device_id"
        case .badIdentityKey: "bad_identity_key"
        case .identityKeyMismatch: "identity_key_mismatch"
        case .unknownFlags: "unknown_flags"
        case .trailingBytes: "trailing_bytes"
        case .cannotSeal: "cannot_seal"
        }
    }

    @Test func linkCodesEncodeAndDecodeExactly() throws {
        let v = try Self.load()
        #expect(v.link_codes.valid.count == 4)
        for c in v.link_codes.valid {
            let code = try LinkCode(parsing: c.code)
            #expect(code.address == Self.bytes(c.address), "\(c.name)")
            #expect(code.publicKey.rawRepresentation == Self.bytes(c.public_key), "\(c.name)")
            #expect(code.string == (c.canonical ?? c.code), "\(c.name)")
            let built = try LinkCode(address: Self.bytes(c.address),
                                     publicKey: try Curve25519.KeyAgreement.PublicKey(rawRepresentation: Self.bytes(c.public_key)))
            #expect(built.string == (c.canonical ?? c.code), "\(c.name)")
            #expect(built.string.count == 81)
        }
    }

    @Test func invalidLinkCodesAreTheNamedError() throws {
        let v = try Self.load()
        #expect(v.link_codes.invalid.count == 15)
        for c in v.link_codes.invalid {
            do {
                _ = try LinkCode(parsing: c.code)
                Issue.record("\(c.name): decoded")
            } catch {
                #expect(Self.name(error) == c.error, "\(c.name)")
            }
        }
    }

    @Test func provisioningMessagesDecodeAndEncodeExactly() throws {
        let v = try Self.load()
        #expect(v.provisioning.valid.count == 4)
        for c in v.provisioning.valid {
            let m = try ProvisioningMessage(decoding: Self.bytes(c.hex))
            #expect(m.account == c.account && m.deviceID == c.device_id, "\(c.name)")
            #expect(m.linkToken == SecureBytes(copying: Self.bytes(c.link_token)), "\(c.name)")
            #expect(m.identity.privateKey.rawRepresentation == SecureBytes(copying: Self.bytes(c.identity_private)), "\(c.name)")
            #expect(m.identity.identityKey.publicKey.rawRepresentation == Self.bytes(c.identity_public), "\(c.name)")
            #expect(m.sealedSecret == c.sealed_secret.map { SecureBytes(copying: Self.bytes($0)) }, "\(c.name)")
            #expect(m.readReceipts == c.read_receipts && m.sealedFromAnyone == c.sealed_from_anyone, "\(c.name)")
            #expect(m.encoded == SecureBytes(copying: Self.bytes(c.hex)), "\(c.name)")
            let built = try ProvisioningMessage(
                account: c.account, deviceID: c.device_id, linkToken: SecureBytes(copying: Self.bytes(c.link_token)),
                identity: IdentityKeyPair(privateKey: try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: Self.bytes(c.identity_private))),
                sealedSecret: c.sealed_secret.map { SecureBytes(copying: Self.bytes($0)) },
                readReceipts: c.read_receipts, sealedFromAnyone: c.sealed_from_anyone)
            #expect(built.encoded == SecureBytes(copying: Self.bytes(c.hex)), "\(c.name)")
        }
    }

    @Test func invalidProvisioningMessagesAreTheNamedError() throws {
        let v = try Self.load()
        #expect(v.provisioning.invalid.count == 28)
        for c in v.provisioning.invalid {
            do {
                _ = try ProvisioningMessage(decoding: Self.bytes(c.hex))
                Issue.record("\(c.name): decoded")
            } catch {
                #expect(Self.name(error) == c.error, "\(c.name)")
            }
        }
    }

    @Test func sealedBodiesOpenAsPyNaClSealedThem() throws {
        let v = try Self.load()
        #expect(v.sealed.count == 8)
        for c in v.sealed {
            let key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: Self.bytes(c.provisioning_private))
            if let plain = c.plaintext {
                #expect(try SealedBox.open(Self.bytes(c.sealed), keyPair: key) == SecureBytes(copying: Self.bytes(plain)), "\(c.name)")
                let m = try ProvisioningMessage.open(Self.bytes(c.sealed), keyPair: key)
                #expect(m.encoded == SecureBytes(copying: Self.bytes(plain)), "\(c.name)")
            } else {
                do {
                    _ = try ProvisioningMessage.open(Self.bytes(c.sealed), keyPair: key)
                    Issue.record("\(c.name): opened")
                } catch {
                    #expect(Self.name(error) == c.error, "\(c.name)")
                }
            }
        }
    }
}
