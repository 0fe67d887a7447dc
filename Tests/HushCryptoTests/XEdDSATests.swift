import Foundation
import HushCrypto
import Testing

@Suite struct XEdDSATests {
    static let signalCases = signalSignatureCases()

    @Test(.enabled(if: !signalCases.isEmpty || runningInCI, "needs ../shared/vectors/signal-v3 (always runs with CI=true)"))
    func libsignalSignaturesVerifyAndReproduce() throws {
        var signBitSet = 0
        for c in Self.signalCases {
            let key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: c.identityPrivate)
            #expect(key.publicKey.signalRepresentation == c.identityPublic, "\(c)")
            #expect(key.rawRepresentation.bytes == c.identityPrivate, "stored key is already clamped")
            #expect(XEdDSA.isValidSignature(c.signature, for: c.message, publicKey: key.publicKey), "\(c)")
            let again = try XEdDSA.signature(for: c.message, using: key, variant: .libsignal, randomness: c.randomness)
            #expect(again == c.signature, "\(c)")
            if c.signature[63] & 0x80 != 0 { signBitSet += 1 }
        }
        #expect(Self.signalCases.count >= 9)
        #expect(signBitSet > 0, "the vectors include signatures with the sign bit set")
    }

    @Test(.enabled(if: !signalCases.isEmpty || runningInCI, "needs ../shared/vectors/signal-v3 (always runs with CI=true)"))
    func alteredLibsignalSignaturesAreRejected() throws {
        #expect(!Self.signalCases.isEmpty, "../shared/vectors/signal-v3 is missing")
        for c in Self.signalCases {
            let key = try Curve25519.KeyAgreement.PublicKey(signalRepresentation: c.identityPublic)
            for bit in stride(from: 0, to: 512, by: 7) {
                var sig = c.signature
                sig[bit / 8] ^= UInt8(1 << (bit % 8))
                #expect(!XEdDSA.isValidSignature(sig, for: c.message, publicKey: key), "\(c) bit \(bit)")
            }
            var message = c.message
            message[5] ^= 1
            #expect(!XEdDSA.isValidSignature(c.signature, for: message, publicKey: key))
            let other = try Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 7)).publicKey
            #expect(!XEdDSA.isValidSignature(c.signature, for: c.message, publicKey: other))
            #expect(!XEdDSA.isValidSignature(c.signature.dropLast(), for: c.message, publicKey: key))
            #expect(!XEdDSA.isValidSignature(c.signature + [0], for: c.message, publicKey: key))
        }
    }

    @Test func specificationSignaturesRoundTripAndAreAcceptedByBothPolicies() throws {
        let random = SeededRandom(seed: 1)
        var sawNegatedKey = false
        for i in 0..<64 {
            let key = try Curve25519.KeyAgreement.PrivateKey(using: random)
            let message = Array("message \(i)".utf8)
            let sig = try XEdDSA.signature(for: message, using: key, variant: .specification, random: random)
            #expect(sig[63] & 0xE0 == 0, "s < 2^253 and sign bit 0")
            #expect(key.publicKey.isValidSignature(sig, for: message, policy: .specificationOnly))
            #expect(key.publicKey.isValidSignature(sig, for: message, policy: .libsignalCompatible))
            // libsignal signatures: accepted by the compatible policy, and by the strict one
            // exactly when the Edwards sign bit is 0 (then the two forms coincide).
            let legacy = try XEdDSA.signature(for: message, using: key, variant: .libsignal, random: random)
            #expect(key.publicKey.isValidSignature(legacy, for: message))
            let edwardsNegative = legacy[63] & 0x80 != 0
            if edwardsNegative { sawNegatedKey = true }
            #expect(key.publicKey.isValidSignature(legacy, for: message, policy: .specificationOnly) == !edwardsNegative)
        }
        #expect(sawNegatedKey)
    }

    @Test func signingIsDeterministicInItsRandomness() throws {
        let key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: [UInt8](repeating: 3, count: 32))
        let z = [UInt8](repeating: 9, count: 64)
        let a = try XEdDSA.signature(for: [1, 2, 3], using: key, randomness: z)
        let b = try XEdDSA.signature(for: [1, 2, 3], using: key, randomness: z)
        #expect(a == b)
        let c = try XEdDSA.signature(for: [1, 2, 3], using: key, randomness: [UInt8](repeating: 8, count: 64))
        #expect(a != c)
        #expect(throws: CryptoError.parameterOutOfRange(name: "randomness.count", value: 63, allowed: 64...64)) {
            try XEdDSA.signature(for: [1], using: key, randomness: [UInt8](repeating: 0, count: 63))
        }
    }

    @Test func strictPolicyRejectsNonCanonicalU() throws {
        let key = try Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 2))
        let sig = try key.signature(for: [0xAA])
        var u = key.publicKey.rawRepresentation
        u[31] |= 0x80  // u + 2^255: same point for libsignal, out of range for the spec
        let high = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: u)
        #expect(!high.isValidSignature(sig, for: [0xAA], policy: .specificationOnly))
        #expect(high.isValidSignature(sig, for: [0xAA], policy: .libsignalCompatible))
    }
}
