@_spi(HushPQ) import HushPQ
import Testing

/// Alice's checks run in libsignal's order (`Docs/spec/pqxdh.md` §4): trust, signed prekey
/// signature, Kyber prekey signature, prime-order keys — and only then the encapsulation and
/// the device's random draws. A refused bundle stores nothing and encapsulates nothing.
@Suite struct PQXDHCheckOrderTests {
    /// One recorded encapsulation; `remaining` tells whether a refusal used it.
    static func recorded() throws -> RecordedEncapsulator {
        let pair = try SystemEncapsulator().encapsulate(to: MLKEM1024.PrivateKey(seed: [UInt8](repeating: 9, count: 64)).publicKey)
        return RecordedEncapsulator(pair)
    }

    static func unused(_ encapsulator: RecordedEncapsulator, key: MLKEM1024.PublicKey) -> Bool {
        (try? encapsulator.encapsulate(to: key)) != nil
    }

    static func forgedKyber(_ bob: PQDevice) -> PostQuantumPreKeyBundle {
        let good = bob.bundle()
        return PostQuantumPreKeyBundle(bundle: good.bundle, kyberPreKey: KyberPreKey(
            id: 200, publicKey: bob.kyberPreKeys[1].keyPair.publicKey, signature: good.kyberPreKey!.signature))
    }

    @Test(arguments: CipherSuite.allCases) func untrustedIdentityComesBeforeTheKyberSignature(suite: CipherSuite) throws {
        let bob = PQDevice("bob", seed: 2), impostor = PQDevice("bob", seed: 5)
        let alice = PQDevice("alice", seed: 1)
        _ = try alice.store.saveIdentity(impostor.identity.identityKey, for: bob.address)
        let encapsulator = try Self.recorded()
        #expect(throws: SignalProtocolError.untrustedIdentity(bob.address, identity: bob.identity.identityKey)) {
            try PQXDH.process(Self.forgedKyber(bob), for: bob.address, store: alice.store, suite: suite,
                              encapsulator: encapsulator, random: alice.random)
        }
        #expect(alice.store.loadSession(for: bob.address) == nil)
        #expect(Self.unused(encapsulator, key: bob.kyberPreKeys[0].keyPair.publicKey))
    }

    @Test func badSignedPreKeySignatureComesBeforeTheKyberSignature() throws {
        let bob = PQDevice("bob", seed: 2), alice = PQDevice("alice", seed: 1)
        let forged = Self.forgedKyber(bob)
        let good = forged.bundle.signedPreKey!
        var signature = good.signature
        signature[0] ^= 1
        let spk = PreKeyBundle.SignedPreKey(id: good.id, publicKey: good.publicKey, signature: signature)
        let bundle = PostQuantumPreKeyBundle(bundle: PreKeyBundle(
            registrationID: forged.bundle.registrationID, deviceID: 1, identityKey: forged.bundle.identityKey,
            signedPreKey: spk, oneTimePreKey: forged.bundle.oneTimePreKey), kyberPreKey: forged.kyberPreKey)
        #expect(throws: SignalProtocolError.invalidBundle(.badSignedPreKeySignature)) {
            try PQXDH.process(bundle, for: bob.address, store: alice.store, encapsulator: try Self.recorded(), random: alice.random)
        }
    }

    @Test func kyberSignatureComesBeforePrimeOrderChecksAndEncapsulation() throws {
        let bob = PQDevice("bob", seed: 2), alice = PQDevice("alice", seed: 1)
        let lowOrder = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: [UInt8](repeating: 0, count: 32))
        let forged = Self.forgedKyber(bob)
        func withLowOrderOneTime(_ b: PostQuantumPreKeyBundle) -> PostQuantumPreKeyBundle {
            PostQuantumPreKeyBundle(bundle: PreKeyBundle(
                registrationID: b.bundle.registrationID, deviceID: 1, identityKey: b.bundle.identityKey,
                signedPreKey: b.bundle.signedPreKey, oneTimePreKey: .init(id: 100, publicKey: lowOrder)), kyberPreKey: b.kyberPreKey)
        }
        let encapsulator = try Self.recorded()
        #expect(throws: SignalProtocolError.invalidBundle(.badKyberPreKeySignature)) {
            try PQXDH.process(withLowOrderOneTime(forged), for: bob.address, store: alice.store, encapsulator: encapsulator, random: alice.random)
        }
        // A well-signed Kyber prekey beside a low-order one-time prekey: refused before the
        // encapsulation (the recorded pair is still there) and before any random draw.
        let draws = CountingRandom()
        #expect(throws: SignalProtocolError.invalidRatchetKey) {
            try PQXDH.process(withLowOrderOneTime(bob.bundle()), for: bob.address, store: alice.store, encapsulator: encapsulator, random: draws)
        }
        #expect(draws.count == 0)
        #expect(alice.store.loadSession(for: bob.address) == nil)
        #expect(alice.store.identity(for: bob.address) == nil)
        #expect(Self.unused(encapsulator, key: bob.kyberPreKeys[0].keyPair.publicKey))
    }

    @Test func encapsulatorFailuresAreTyped() throws {
        let bob = PQDevice("bob", seed: 2), alice = PQDevice("alice", seed: 1)
        #expect(throws: SignalProtocolError.crypto(.randomSourceExhausted(requested: 32, remaining: 0))) {
            try PQXDH.process(bob.bundle(), for: bob.address, store: alice.store, encapsulator: RecordedEncapsulator([]), random: alice.random)
        }
        let elsewhere = try MLKEM1024.PrivateKey(seed: [UInt8](repeating: 3, count: 64)).publicKey
        let mismatched = RecordedEncapsulator([(elsewhere.rawRepresentation, try SystemEncapsulator().encapsulate(to: elsewhere))])
        #expect(throws: SignalProtocolError.crypto(.libraryFailure(function: "ML-KEM-1024 Encaps"))) {
            try PQXDH.process(bob.bundle(), for: bob.address, store: alice.store, encapsulator: mismatched, random: alice.random)
        }
        #expect(alice.store.loadSession(for: bob.address) == nil)
    }
}

/// Counts the bytes drawn (a fixed pattern: the tests using it must refuse before any draw).
final class CountingRandom: RandomSource, @unchecked Sendable {
    private(set) var count = 0
    func fill(_ buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) {
        count += buffer.count
        for i in buffer.indices { buffer[i] = 0x5A }
    }
}
