@testable import Hush
import Testing

/// Keys outside the prime-order subgroup are refused wherever a peer's key arrives (issue 14,
/// defect 1): a torsioned copy of a key has the same X25519 results under every clamped
/// scalar, so without the check a PreKeySignalMessage could be replayed under up to seven
/// other base-key encodings.
@Suite struct TorsionTests {
    @Test func subgroupCheckAcceptsHonestKeysAndRejectsEveryOtherPoint() throws {
        let random = SeededRandom(seed: 14)
        for _ in 0..<32 {
            let key = try Curve25519.KeyAgreement.PrivateKey(using: random)
            #expect(key.publicKey.isInPrimeOrderSubgroup)
            let variants = Torsion.variants(of: key.publicKey)
            #expect(variants[0] == key.publicKey, "adding the identity changes nothing")
            #expect(Set(variants).count == 8, "eight distinct encodings")
            let peer = try Curve25519.KeyAgreement.PrivateKey(using: random)
            let honest = try peer.sharedSecretFromKeyAgreement(with: key.publicKey)
            for variant in variants.dropFirst() {
                #expect(variant.isCanonical)
                // The premise of the attack: the same shared secret under a clamped scalar…
                #expect(try peer.sharedSecretFromKeyAgreement(with: variant) == honest)
                // …and the check that stops it.
                #expect(!variant.isInPrimeOrderSubgroup)
                #expect(throws: CryptoError.invalidKeyEncoding) {
                    try Curve25519.KeyAgreement.PublicKey(validatingRawRepresentation: variant.rawRepresentation)
                }
            }
            #expect(try Curve25519.KeyAgreement.PublicKey(validatingRawRepresentation: key.publicKey.rawRepresentation) == key.publicKey)
        }
        // The small-order points themselves, u = p − 1 (y = 0 in libsignal's map), a twist
        // point (u = 2), and non-canonical encodings.
        for key in Torsion.smallOrderKeys { #expect(!key.isInPrimeOrderSubgroup, "\(key)") }
        let minusOne = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: [0xEC] + [UInt8](repeating: 0xFF, count: 30) + [0x7F])
        let two = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: [2] + [UInt8](repeating: 0, count: 31))
        let highBit = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: [9] + [UInt8](repeating: 0, count: 30) + [0x80])
        for key in [minusOne, two, highBit] { #expect(!key.isInPrimeOrderSubgroup, "\(key)") }
        // The base point (u = 9) is in the subgroup.
        #expect(try Curve25519.KeyAgreement.PublicKey(rawRepresentation: [9] + [UInt8](repeating: 0, count: 31)).isInPrimeOrderSubgroup)
    }

    /// Bob's device and Alice's first PreKeySignalMessage to it (`oneTimePreKeyID` nil: a
    /// session without a one-time prekey, where nothing else stops a replay).
    static func firstMessage(oneTimePreKeyID: UInt32?) throws -> (Device, Device, PreKeySignalMessage) {
        let alice = Device("alice", seed: 1401)
        let bob = Device("bob", seed: 1402)
        try alice.startSession(with: bob, oneTimePreKeyID: oneTimePreKeyID)
        guard case .preKeySignal(let message) = try alice.encrypt("first flight", to: bob) else {
            throw SignalProtocolError.malformed(.invalidEncoding)
        }
        return (alice, bob, message)
    }

    static func replacingBaseKey(_ message: PreKeySignalMessage, with key: Curve25519.KeyAgreement.PublicKey) -> PreKeySignalMessage {
        PreKeySignalMessage(registrationID: message.registrationID, preKeyID: message.preKeyID, signedPreKeyID: message.signedPreKeyID,
                            baseKey: key, identityKey: message.identityKey, message: message.message)
    }

    @Test func torsionedBaseKeysCannotReplayAFirstMessage() throws {
        let (alice, bob, genuine) = try Self.firstMessage(oneTimePreKeyID: nil)
        #expect(try bob.decrypt(.preKeySignal(genuine), from: alice) == "first flight")
        let after = bob.store.snapshot()
        for variant in Torsion.variants(of: genuine.baseKey).dropFirst() {
            let replay = Self.replacingBaseKey(genuine, with: variant)
            // The replay parses (its key is canonical) and would decrypt: the X3DH secrets are equal.
            let parsed = try PreKeySignalMessage(serialized: replay.serialized)
            #expect(throws: SignalProtocolError.malformed(.invalidKey(field: 2))) {
                try bob.decrypt(.preKeySignal(parsed), from: alice)
            }
            #expect(bob.store.snapshot() == after, "a rejected replay changed the stores")
        }
        // The genuine message itself is a duplicate now; the session goes on.
        #expect(throws: SignalProtocolError.duplicateMessage(counter: 0)) { try bob.decrypt(.preKeySignal(genuine), from: alice) }
        #expect(try alice.decrypt(try bob.encrypt("reply", to: alice), from: bob) == "reply")
    }

    @Test func aTorsionedFirstDeliveryDoesNotUseUpTheOneTimePreKey() throws {
        let (alice, bob, genuine) = try Self.firstMessage(oneTimePreKeyID: 100)
        let before = bob.store.snapshot()
        for variant in Torsion.variants(of: genuine.baseKey).dropFirst() {
            #expect(throws: SignalProtocolError.malformed(.invalidKey(field: 2))) {
                try bob.decrypt(.preKeySignal(Self.replacingBaseKey(genuine, with: variant)), from: alice)
            }
            #expect(bob.store.snapshot() == before)
        }
        #expect(bob.store.preKeyIDs.contains(100))
        #expect(try bob.decrypt(.preKeySignal(genuine), from: alice) == "first flight")
        #expect(!bob.store.preKeyIDs.contains(100))
    }

    @Test func bundlesWithTorsionedPrekeysAreRejected() throws {
        let bob = Device("bob", seed: 1403)
        let good = bob.bundle()
        let torsionedOneTime = PreKeyBundle(
            registrationID: good.registrationID, deviceID: good.deviceID, identityKey: good.identityKey, signedPreKey: good.signedPreKey,
            oneTimePreKey: .init(id: 100, publicKey: Torsion.variants(of: good.oneTimePreKey!.publicKey)[3]))
        // A torsioned signed prekey, correctly signed (by a careless or malicious owner).
        let spk = Torsion.variants(of: good.signedPreKey!.publicKey)[5]
        let signature = try bob.identity.signature(for: spk.signalRepresentation, using: bob.random)
        let torsionedSigned = PreKeyBundle(
            registrationID: good.registrationID, deviceID: good.deviceID, identityKey: good.identityKey,
            signedPreKey: .init(id: 1, publicKey: spk, signature: signature), oneTimePreKey: good.oneTimePreKey)
        #expect(try torsionedSigned.verifiedSignedPreKey().publicKey == spk, "the signature itself is valid")
        for bundle in [torsionedOneTime, torsionedSigned] {
            let alice = Device("alice", seed: 1404)
            let before = alice.store.snapshot()
            #expect(throws: SignalProtocolError.invalidRatchetKey) {
                try SessionBuilder.process(bundle, for: bob.address, store: alice.store, random: alice.random)
            }
            #expect(alice.store.snapshot() == before)
        }
    }

    /// A ratchet key that authenticated (its sender made it torsioned) is refused as
    /// `invalidRatchetKey`, and nothing changes.
    @Test func torsionedRatchetKeysAreRejected() throws {
        let alice = Device("alice", seed: 1405)
        let bob = Device("bob", seed: 1406)
        try alice.startSession(with: bob)
        var record = try #require(alice.store.loadSession(for: bob.address))
        let ratchet = record.current.sendingRatchetKey
        let torsioned = Torsion.variants(of: ratchet.publicKey)[6]
        record.current.sendingRatchetKey = try #require(Curve25519.KeyAgreement.PrivateKey(storedScalar: ratchet.rawRepresentation, publicKey: torsioned))
        alice.store.storeSession(record, for: bob.address)
        let message = try alice.encrypt("torsioned ratchet", to: bob)
        let before = bob.store.snapshot()
        #expect(throws: SignalProtocolError.invalidRatchetKey) { try bob.decrypt(message, from: alice) }
        #expect(bob.store.snapshot() == before)
    }
}
