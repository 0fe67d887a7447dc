import Foundation
@testable import HushCrypto
import Testing

/// Secrets never appear in descriptions, debug descriptions or `dump`, and their storage is
/// wiped before it is freed.
@Suite struct SecretHygieneTests {
    static func renderings(_ value: Any) -> [String] {
        var dumped = ""
        dump(value, to: &dumped)
        return [String(describing: value), String(reflecting: value), dumped, "\(value)"]
    }

    @Test func noSecretInAnyRendering() throws {
        let random = SeededRandom(seed: 42)
        let dh = try Curve25519.KeyAgreement.PrivateKey(using: random)
        let peer = try Curve25519.KeyAgreement.PrivateKey(using: random)
        let shared = try dh.sharedSecretFromKeyAgreement(with: peer.publicKey)
        let ed = try Curve25519.Signing.PrivateKey(using: random)
        let symmetric = try SymmetricKey(using: random)
        let hkdf = try HKDF.deriveKey(inputKeyMaterial: [1, 2, 3], salt: [UInt8](), info: [UInt8](), outputByteCount: 64)
        let secrets: [(Any, SecureBytes)] = [
            (dh, dh.rawRepresentation), (shared, shared.secret), (ed, ed.rawRepresentation),
            (symmetric, symmetric.secret), (hkdf, hkdf), ([dh] as [Any], dh.rawRepresentation),
        ]
        for (value, secret) in secrets {
            let hexSecret = Hex.encode(secret)
            let decimalFragment = secret.bytes.prefix(6).map(String.init).joined(separator: ", ")
            for text in Self.renderings(value) {
                #expect(!text.contains(hexSecret), "hex of a secret in: \(text)")
                #expect(!text.contains(hexSecret.prefix(16)), "part of a secret in: \(text)")
                #expect(!text.contains(decimalFragment), "secret bytes in: \(text)")
            }
        }
        // Public keys are shown, so that debugging remains possible.
        #expect(String(describing: dh).contains(Hex.encode(dh.publicKey.rawRepresentation)))
        // Errors carry no secret material either.
        let error = CryptoError.invalidKeySize(actual: 31, allowed: [32])
        #expect(!String(describing: error).contains(Hex.encode(dh.rawRepresentation)))
    }

    /// Each secret's storage is wiped before it is freed, in release builds too: an inspector
    /// attached to the storages under test (no global hook) sees the bytes after the wipe.
    @Test func storageIsWipedBeforeItIsFreed() throws {
        let observed = Observed()
        do {
            let secret = SecureBytes(copying: [UInt8](repeating: 0xA5, count: 48))
            secret.inspectRelease { observed.record($0) }
            let key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: [UInt8](repeating: 0x5A, count: 32))
            key.rawRepresentation.inspectRelease { observed.record($0) }
            let shared = try key.sharedSecretFromKeyAgreement(with: key.publicKey)
            shared.secret.inspectRelease { observed.record($0) }
            #expect(secret.count == 48 && !shared.secret.bytes.allSatisfy { $0 == 0 })
        }
        let releases = observed.releases
        #expect(releases.count == 3, "the copy, the clamped key and the shared secret were released")
        #expect(releases.contains { $0.count == 48 })
        for buffer in releases {
            #expect(buffer.allSatisfy { $0 == 0 }, "a \(buffer.count)-byte secret was freed without being wiped")
        }
    }

    final class Observed: @unchecked Sendable {
        private let lock = NSLock()
        private var buffers: [[UInt8]] = []
        func record(_ buffer: UnsafeRawBufferPointer) { lock.withLock { buffers.append(Array(buffer)) } }
        var releases: [[UInt8]] { lock.withLock { buffers } }
    }
}
