import Foundation
import Hush
import HushCrypto
import Testing
@testable import HushClient

/// ``SealedBox`` (HushCrypto's wrapper of libsodium's crypto_box_seal), ``LinkCode`` and
/// ``ProvisioningMessage`` beyond the vectors: round trips, exact errors, secrets kept out of
/// descriptions, and arbitrary bytes (a value or a typed error, never a crash).
@Suite struct LinkFormatTests {
    /// A deterministic byte generator (xorshift) for the "any bytes" checks.
    struct Bytes {
        var state: UInt64
        mutating func next() -> UInt8 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
        mutating func take(_ n: Int) -> [UInt8] { (0..<n).map { _ in next() } }
    }

    @Test func sealedBoxRoundTripAndExactErrors() throws {
        let key = try Curve25519.KeyAgreement.PrivateKey()
        let other = try Curve25519.KeyAgreement.PrivateKey()
        for message in [[UInt8](), [0x42], Array(repeating: 0x07, count: 1_000)] {
            let sealed = try SealedBox.seal(message, to: key.publicKey)
            #expect(sealed.count == message.count + 48)
            #expect(SealedBox.overhead == 48)
            #expect(try SealedBox.open(sealed, keyPair: key) == SecureBytes(copying: message))
            #expect(throws: SealedBoxError.authenticationFailure) { try SealedBox.open(sealed, keyPair: other) }
            for i in [0, 31, 32, 47, sealed.count - 1] {
                var t = sealed
                t[i] ^= 0x80
                #expect(throws: SealedBoxError.authenticationFailure) { try SealedBox.open(t, keyPair: key) }
            }
        }
        // Two seals of one message differ (a fresh ephemeral key each time).
        #expect(try SealedBox.seal([1, 2, 3], to: key.publicKey) != SealedBox.seal([1, 2, 3], to: key.publicKey))
        #expect(throws: SealedBoxError.tooShort(actual: 47)) { try SealedBox.open([UInt8](repeating: 0, count: 47), keyPair: key) }
        #expect(throws: SealedBoxError.tooShort(actual: 0)) { try SealedBox.open([UInt8](), keyPair: key) }
        // A low-order recipient (the all-zero point) is refused.
        let zero = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: [UInt8](repeating: 0, count: 32))
        #expect(throws: SealedBoxError.invalidRecipientKey) { try SealedBox.seal([1], to: zero) }
    }

    @Test func linkCodeRoundTripAndErrors() throws {
        let key = try Curve25519.KeyAgreement.PrivateKey()
        let address = [UInt8](repeating: 0xAB, count: 16)
        let code = try LinkCode(address: address, publicKey: key.publicKey)
        #expect(code.string.hasPrefix("hush-link:") && code.string.count == 81)
        #expect(try LinkCode(parsing: code.string) == code)
        #expect(throws: LinkCodeError.wrongLength(15)) { try LinkCode(address: Array(address.prefix(15)), publicKey: key.publicKey) }
        #expect(throws: LinkCodeError.missingPrefix) { try LinkCode(parsing: "hush-lnk:" + code.string.dropFirst(10)) }
        #expect(throws: LinkCodeError.wrongLength(70)) { try LinkCode(parsing: String(code.string.dropLast())) }
        var chars = Array(code.string)
        chars[20] = "*"
        #expect(throws: LinkCodeError.invalidCharacter(offset: 10)) { try LinkCode(parsing: String(chars)) }
        // Every single-character substitution is caught (typed error, never another code).
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for i in 10..<81 {
            var c = Array(code.string)
            c[i] = alphabet[(alphabet.firstIndex(of: c[i])! + 1 + i % 63) % 64]
            #expect(throws: LinkCodeError.self) { try LinkCode(parsing: String(c)) }
        }
    }

    @Test func linkCodeDecoderOnAnyString() {
        var g = Bytes(state: 0x9E37_79B9_7F4A_7C15)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ \n".utf8)
        for round in 0..<3_000 {
            let n = Int(g.next()) % 90
            var text: String
            if round % 2 == 0 {
                text = "hush-link:" + String(decoding: (0..<n).map { _ in alphabet[Int(g.next()) % alphabet.count] }, as: UTF8.self)
            } else {
                text = String(decoding: g.take(n), as: UTF8.self)
            }
            if round % 7 == 0 { text = "hush-link:" + String(repeating: "A", count: 71) }
            do { _ = try LinkCode(parsing: text) } catch {
                // Any outcome but a crash; a decoded code re-encodes to a code that decodes the same.
            }
            if let code = try? LinkCode(parsing: text) { #expect((try? LinkCode(parsing: code.string)) == code) }
        }
    }

    static let token = SecureBytes(copying: [UInt8](repeating: 0x7E, count: 16))

    static func sample(secret: Bool = true) throws -> ProvisioningMessage {
        try ProvisioningMessage(account: "alice", deviceID: 2, linkToken: token, identity: try IdentityKeyPair.generate(),
                                sealedSecret: secret ? SecureBytes(copying: [UInt8](repeating: 0x5C, count: 32)) : nil,
                                readReceipts: true, sealedFromAnyone: false)
    }

    @Test func provisioningRoundTripThroughTheSealedBox() throws {
        let m = try Self.sample()
        let key = try Curve25519.KeyAgreement.PrivateKey()
        let body = try m.sealed(to: key.publicKey)
        #expect(body.count == 119 + 5 + 48)
        let back = try ProvisioningMessage.open(body, keyPair: key)
        #expect(back.linkToken == Self.token && back.deviceID == 2)
        #expect(back.encoded == m.encoded)
        #expect(back.identity.identityKey == m.identity.identityKey)
        #expect(throws: ProvisioningError.cannotOpen) { try ProvisioningMessage.open(body, keyPair: try Curve25519.KeyAgreement.PrivateKey()) }
        #expect(throws: ProvisioningError.tooLarge(4_097)) { try ProvisioningMessage.open([UInt8](repeating: 1, count: 4_097), keyPair: key) }
        #expect(try Self.sample(secret: false).encoded.count == 87 + 5)
        // Invalid fields are refused when building, too.
        #expect(throws: ProvisioningError.badDeviceID(1)) {
            try ProvisioningMessage(account: "alice", deviceID: 1, linkToken: Self.token, identity: m.identity, sealedSecret: nil, readReceipts: true, sealedFromAnyone: false)
        }
        #expect(throws: ProvisioningError.truncated) {
            try ProvisioningMessage(account: "alice", deviceID: 2, linkToken: SecureBytes(copying: [UInt8](repeating: 1, count: 15)), identity: m.identity,
                                    sealedSecret: nil, readReceipts: true, sealedFromAnyone: false)
        }
        // Version 1 (no link token) is no longer read.
        var v1 = m.encoded.withUnsafeBytes { Array($0) }
        v1[0] = 0x01
        #expect(throws: ProvisioningError.unsupportedVersion(1)) { try ProvisioningMessage(decoding: v1)
        }
        #expect(throws: ProvisioningError.badAccount) {
            try ProvisioningMessage(account: "Alice", deviceID: 2, linkToken: Self.token, identity: m.identity, sealedSecret: nil, readReceipts: true, sealedFromAnyone: false)
        }
    }

    @Test func provisioningDescriptionHidesSecrets() throws {
        let m = try Self.sample()
        let text = "\(m)" + String(reflecting: m)
        let secretHex = Hex.encode(m.identity.privateKey.rawRepresentation.withUnsafeBytes { Array($0) })
        #expect(!text.contains(secretHex))
        #expect(!text.contains(Hex.encode([UInt8](repeating: 0x5C, count: 32))))
        #expect(!text.contains(Hex.encode([UInt8](repeating: 0x7E, count: 16))))
        #expect(text.contains("alice") && text.contains("redacted"))
    }

    @Test func provisioningDecoderOnAnyBytes() throws {
        var g = Bytes(state: 0xD1B5_4A32_D192_ED03)
        let valid = try Self.sample().encoded.withUnsafeBytes { Array($0) }
        for round in 0..<5_000 {
            var bytes: [UInt8]
            switch round % 3 {
            case 0: bytes = g.take(Int(g.next()) % 140)
            case 1:
                bytes = valid
                for _ in 0..<(1 + Int(g.next()) % 3) { bytes[Int(g.next()) % bytes.count] = g.next() }
            default: bytes = Array(valid.prefix(Int(g.next()) % (valid.count + 1)))
            }
            do {
                let m = try ProvisioningMessage(decoding: bytes)
                // What decodes is canonical: it encodes back to the same bytes.
                #expect(m.encoded == SecureBytes(copying: bytes))
            } catch {
                _ = error as ProvisioningError
            }
        }
    }
}
