import Foundation
@testable import Hush
import Testing

/// Counters at the end of their range, extreme sizes, the per-thread AES context, and the
/// work one forged message can cost (issue 14, defects 7, 8, 9, 10).
@Suite struct LimitsTests {
    /// Defect 7: a session chain never wraps at UInt32.max.
    @Test func sessionChainsStopBeforeUInt32Max() throws {
        let (alice, bob) = try establishedPair(seed: 1450)
        #expect(try bob.decrypt(try alice.encrypt("ping", to: bob), from: alice) == "ping")  // Bob has Alice's current chain
        var record = try #require(alice.store.loadSession(for: bob.address))
        record.current.sendingChainKey = ChainKey(key: record.current.sendingChainKey.key, index: .max - 1)
        alice.store.storeSession(record, for: bob.address)
        let last = try alice.encrypt("last", to: bob)
        guard case .signal(let lastMessage) = last else { Issue.record("expected a SignalMessage"); return }
        #expect(lastMessage.counter == UInt32.max - 1)
        let before = alice.store.snapshot()
        #expect(throws: SignalProtocolError.chainExhausted(counter: .max)) { try alice.encrypt("wrapped", to: bob) }
        #expect(alice.store.snapshot() == before)

        // A receiving chain at UInt32.max − 1 takes the last message, and nothing after it.
        var bobRecord = try #require(bob.store.loadSession(for: alice.address))
        let chain = try #require(bobRecord.current.receiverChainIndex(for: lastMessage))
        bobRecord.current.receiverChains[chain].chainKey = ChainKey(key: record.current.sendingChainKey.key, index: .max - 1)
        bob.store.storeSession(bobRecord, for: alice.address)
        #expect(try bob.decrypt(last, from: alice) == "last")
        var forged = try #require(alice.store.loadSession(for: bob.address))
        forged.current.sendingChainKey = ChainKey(key: forged.current.sendingChainKey.key, index: .max)
        let beyond = try forged.current.encryptIgnoringExhaustion("beyond")
        let bobBefore = bob.store.snapshot()
        #expect(throws: SignalProtocolError.chainExhausted(counter: .max)) { try bob.decrypt(.signal(beyond), from: alice) }
        #expect(bob.store.snapshot() == bobBefore)
    }

    /// Defect 8: the per-thread AES-256-CBC context keeps neither the key nor the IV of the
    /// last message.
    @Test func theAESContextForgetsTheLastIV() throws {
        let key = [UInt8](repeating: 0x42, count: 32)
        let iv = [UInt8](0..<16).map { $0 &* 17 &+ 1 }
        let plaintext = [UInt8](repeating: 0x61, count: 40)
        var out = [UInt8](repeating: 0, count: 48)
        _ = try key.withUnsafeBytes { k in try iv.withUnsafeBytes { v in try plaintext.withUnsafeBytes { p in
            try out.withUnsafeMutableBytes { o in try AES.CBC.encrypt256(p, key: k, iv: v, into: o) }
        } } }
        let ivs = try AES.CBC.threadContextIVs()
        #expect(ivs.original == [UInt8](repeating: 0, count: 16), "the message IV stayed in the context")
        #expect(ivs.updated == [UInt8](repeating: 0, count: 16), "the chained IV stayed in the context")
        #expect(try AES.CBC.decrypt(out, key: key, iv: iv) == plaintext)
    }

    /// Defect 9: size checks are typed errors, checked with length values (no 4 GiB buffers).
    @Test func extremeSizesAreTypedErrors() throws {
        #expect(try EnvelopeError.lengthField(Int(UInt32.max)) == UInt32.max)
        #expect(throws: EnvelopeError.tooLarge(byteCount: Int(UInt32.max) + 1, limit: Int(UInt32.max))) {
            try EnvelopeError.lengthField(Int(UInt32.max) + 1)
        }
        // What a 32-bit platform's Int sees: a length of 2^31 or more does not fit.
        #expect(try EnvelopeError.length(UInt32(Int32.max), as: Int32.self) == Int32.max)
        #expect(throws: EnvelopeError.malformed("length 2147483648 too large")) { try EnvelopeError.length(UInt32(1) << 31, as: Int32.self) }
        #expect(try EnvelopeError.length(UInt32.max) == Int(UInt32.max))
        try AES.checkInputLength(AES.maximumInputByteCount)
        #expect(throws: CryptoError.parameterOutOfRange(name: "input.count", value: Int(Int32.max), allowed: 0...AES.maximumInputByteCount)) {
            try AES.checkInputLength(Int(Int32.max))
        }
        // delivered(to:) with a bad index throws instead of trapping.
        let pki = try TestPKI()
        let multi = try MultiRecipientEnvelope.seal(Array("hi".utf8), contentType: .groupMessage, certificate: pki.certificate,
                                                    senderIdentity: pki.sender, to: [pki.recipient.identityKey, pki.recipient.identityKey],
                                                    random: SeededRandom(seed: 1))
        #expect(throws: EnvelopeError.recipientIndexOutOfRange(index: 2, count: 2)) { try multi.delivered(to: 2) }
        #expect(throws: EnvelopeError.recipientIndexOutOfRange(index: -1, count: 2)) { try multi.delivered(to: -1) }
        #expect(try MultiRecipientEnvelope.open(try multi.delivered(to: 1), recipientIdentity: pki.recipient, validator: pki.validator, now: 0)
            .message == Array("hi".utf8))
    }

    /// Defect 10: a message that authenticates with no state costs at most the bound in
    /// SignalConstants, counted per operation, with the full 41 states and a 2,000-key jump.
    @Test func aForgedMessageCostsAtMostTheBound() throws {
        let bob = Device("bob", seed: 1460)
        let alice = Device("alice", seed: 1461)
        for _ in 0..<SignalConstants.maximumStatesTriedPerMessage {
            try alice.startSession(with: bob, oneTimePreKeyID: nil)
        }
        var record = try #require(alice.store.loadSession(for: bob.address))
        #expect(record.archivedStateCount == SignalConstants.maximumArchivedStates)
        // A well-formed message under a fresh (valid) ratchet key, as far ahead as allowed, with a bad MAC.
        let ratchet = try Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 7))
        let forged = try SignalMessage(ratchetKey: ratchet.publicKey, counter: SignalConstants.maximumSkippedMessages, previousCounter: 0,
                                       plaintext: Array("forged".utf8), identities: (bob.identity.identityKey, alice.identity.identityKey))
        let work = DecryptionWork()
        let before = record.serialized()
        #expect(throws: SignalProtocolError.badMAC) { try record.decrypt(forged, random: SeededRandom(seed: 8), work: work) }
        #expect(record.serialized() == before, "a failed decryption changed the record")
        let states = SignalConstants.maximumStatesTriedPerMessage
        #expect(work.statesTried == states)
        #expect(work.agreements <= states * SignalConstants.maximumAgreementsPerAttempt)
        #expect(work.chainSteps <= SignalConstants.maximumChainStepsPerForgedMessage)
        #expect(work.messageKeyDerivations <= states * SignalConstants.maximumMessageKeyDerivationsPerAttempt)
        #expect(work.subgroupChecks == 0, "a forged message pays no subgroup check")
        // The bound is reached (every state walks the whole jump), not just respected.
        #expect(work.agreements == states && work.chainSteps == states * Int(SignalConstants.maximumSkippedMessages))
    }
}

extension SessionState {
    /// Encrypts without the exhaustion check (to build a message numbered UInt32.max).
    mutating func encryptIgnoringExhaustion(_ text: String) throws -> SignalMessage {
        let counter = sendingChainKey.index
        return try sendingChainKey.withMessageKeys(suite: suite) { (m) throws(SignalProtocolError) -> SignalMessage in
            try Array(text.utf8).withUnsafeBytes { (p: UnsafeRawBufferPointer) throws(SignalProtocolError) -> SignalMessage in
                try SignalMessage(
                    ratchetKey: sendingRatchetKey.publicKey, counter: counter, previousCounter: previousCounter, plaintext: p,
                    cipherKey: UnsafeRawBufferPointer(rebasing: m[0..<32]), macKey: UnsafeRawBufferPointer(rebasing: m[32..<64]),
                    iv: UnsafeRawBufferPointer(rebasing: m[64..<80]), sender: localIdentity, receiver: remoteIdentity)
            }
        }
    }
}

extension SignalMessage {
    /// A message under random keys (its MAC matches nothing).
    init(ratchetKey: Curve25519.KeyAgreement.PublicKey, counter: UInt32, previousCounter: UInt32, plaintext: [UInt8],
         identities: (sender: IdentityKey, receiver: IdentityKey)) throws {
        let keys = [UInt8](repeating: 0x33, count: 80)
        self = try keys.withUnsafeBytes { m in
            try plaintext.withUnsafeBytes { p in
                try SignalMessage(ratchetKey: ratchetKey, counter: counter, previousCounter: previousCounter, plaintext: p,
                                  cipherKey: UnsafeRawBufferPointer(rebasing: m[0..<32]), macKey: UnsafeRawBufferPointer(rebasing: m[32..<64]),
                                  iv: UnsafeRawBufferPointer(rebasing: m[64..<80]), sender: identities.sender, receiver: identities.receiver)
            }
        }
    }
}

/// A trust root, a server, one sender and one recipient for envelope tests.
struct TestPKI {
    let validator: CertificateValidator
    let certificate: SenderCertificate
    let sender: IdentityKeyPair
    let recipient: IdentityKeyPair

    init() throws {
        let random = SeededRandom(seed: 1470)
        let root = try Curve25519.KeyAgreement.PrivateKey(using: random)
        let serverKey = try Curve25519.KeyAgreement.PrivateKey(using: random)
        sender = try IdentityKeyPair.generate(using: random)
        recipient = try IdentityKeyPair.generate(using: random)
        let server = try ServerCertificate.issue(keyID: 1, key: serverKey.publicKey, expiration: UInt64.max, signedBy: root, random: random)
        certificate = try SenderCertificate.issue(senderID: "alice", deviceID: 1, identityKey: sender.identityKey, expiration: .max,
                                                  server: server, signedBy: serverKey, random: random)
        validator = CertificateValidator(trustRoot: root.publicKey)
    }
}
