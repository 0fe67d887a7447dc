import Benchmark
import HushCrypto

// The floor: the primitive calls that the protocol's hot paths cannot avoid. Later rows
// (ratchet encrypt/decrypt, X3DH, sender keys, envelopes) are compared against these.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 100,
        maxDuration: .seconds(2),
        maxIterations: 100_000
    )

    let random = SeededRandom(seed: 1)
    let alice = try! Curve25519.KeyAgreement.PrivateKey(using: random)
    let bob = try! Curve25519.KeyAgreement.PrivateKey(using: random)
    let chainKey = try! SymmetricKey(using: random)
    let message100 = [UInt8](repeating: 0x61, count: 100)
    let signedPrekey = bob.publicKey.signalRepresentation
    let signature = try! XEdDSA.signature(for: signedPrekey, using: alice, variant: .libsignal, random: random)
    let edKey = try! Curve25519.Signing.PrivateKey(using: random)
    let edSignature = edKey.signature(for: signedPrekey)
    let aesKey = [UInt8](repeating: 1, count: 32), iv = [UInt8](repeating: 2, count: 16)
    let nonce12 = [UInt8](repeating: 3, count: 12), nonce24 = [UInt8](repeating: 3, count: 24)

    Benchmark("SHA-256 64 B") { benchmark in
        let data = [UInt8](repeating: 1, count: 64)
        for _ in benchmark.scaledIterations { blackHole(SHA256.hash(data)) }
    }
    Benchmark("HMAC-SHA256 chain step (32 B key, 1 B)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(HMACSHA256.secureAuthenticationCode(for: [0x02], using: chainKey)) }
    }
    Benchmark("HKDF-SHA256 80 B (message keys)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! HKDF.deriveKey(inputKeyMaterial: chainKey, salt: [UInt8](), info: Array("WhisperMessageKeys".utf8), outputByteCount: 80))
        }
    }
    Benchmark("X25519 agreement") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! alice.sharedSecretFromKeyAgreement(with: bob.publicKey)) }
    }
    Benchmark("X25519 key generation") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! Curve25519.KeyAgreement.PrivateKey()) }
    }
    Benchmark("XEdDSA sign (libsignal form)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! XEdDSA.signature(for: signedPrekey, using: alice, variant: .libsignal)) }
    }
    Benchmark("XEdDSA verify") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(XEdDSA.isValidSignature(signature, for: signedPrekey, publicKey: alice.publicKey)) }
    }
    Benchmark("Ed25519 sign") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(edKey.signature(for: signedPrekey)) }
    }
    Benchmark("Ed25519 verify") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(edKey.publicKey.isValidSignature(edSignature, for: signedPrekey)) }
    }
    Benchmark("AES-256-CBC encrypt 100 B") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! AES.CBC.encrypt(message100, key: aesKey, iv: iv)) }
    }
    Benchmark("ChaCha20-Poly1305 seal 100 B") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! ChaChaPoly.encrypt(message100, key: chainKey, nonce: nonce12, associatedData: [UInt8]())) }
    }
    Benchmark("XChaCha20-Poly1305 seal 100 B") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! XChaChaPoly.encrypt(message100, key: chainKey, nonce: nonce24, associatedData: [UInt8]())) }
    }
}
