// hush-vectors: writes Hush's own deterministic vectors (TestVectors/hush-1/):
//   session-*.json  — hush-1 session transcripts ("hush-session-vectors/1", the transcript
//                     format of the Signal v3 vectors with "suite": "hush-1"), every random
//                     draw listed, so another implementation can replay them byte for byte;
//   envelope.json   — sealed envelopes, multi-recipient envelopes and certificates
//                     ("hush-envelope-vectors/1"), with rejection cases.
// Usage: swift run hush-vectors [--out TestVectors/hush-1]
// Everything derives from fixed seeds: re-running reproduces the files byte for byte.
import Foundation
import Hush
import Synchronization

let arguments = CommandLine.arguments
let outDirectory = arguments.firstIndex(of: "--out").map { arguments[$0 + 1] } ?? "TestVectors/hush-1"

// MARK: - Recording randomness

/// A seeded source that records every draw, so the transcript can list exactly what was used.
final class RecordingRandom: RandomSource {
    private let inner: SeededRandom
    private let draws = Mutex<[[UInt8]]>([])

    init(seed: UInt64) { inner = SeededRandom(seed: seed) }

    func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        inner.fill(buffer)
        let bytes = Array(UnsafeRawBufferPointer(buffer))
        draws.withLock { $0.append(bytes) }
    }

    /// Returns and forgets the draws since the last call.
    func take() -> [[UInt8]] { draws.withLock { d in defer { d = [] }; return d } }
}

func hex(_ bytes: some ContiguousByteBuffer) -> String { Hex.encode(bytes.bytes) }
func keyPair(_ key: Curve25519.KeyAgreement.PrivateKey) -> [String: Any] {
    ["private": hex(key.rawRepresentation), "public": hex(key.publicKey.signalRepresentation)]
}
func keyPairFromDraw(_ draw: [UInt8]) -> [String: Any] { keyPair(try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: draw)) }

// MARK: - Session transcripts

final class Party {
    let name: String
    let address: ProtocolAddress
    let random: RecordingRandom
    let identity: IdentityKeyPair
    let store: InMemorySignalProtocolStore
    var json: [String: Any]
    var signedPreKeys: [SignedPreKeyRecord] = []
    var preKeys: [PreKeyRecord] = []

    init(_ name: String, address: String? = nil, seed: UInt64, preKeyIDs: [UInt32]) {
        self.name = name
        self.address = ProtocolAddress(name: address ?? name, deviceID: 1)
        random = RecordingRandom(seed: seed)
        identity = try! IdentityKeyPair.generate(using: random)
        let registrationID = try! RegistrationID.generate(using: random)
        store = InMemorySignalProtocolStore(identity: identity, registrationID: registrationID)
        _ = random.take()
        let spk = try! SignedPreKeyRecord.generate(id: 1, signedBy: identity, using: random)
        let spkDraws = random.take()
        signedPreKeys = [spk]
        store.storeSignedPreKey(spk)
        preKeys = try! PreKeyRecord.generate(ids: preKeyIDs, using: random)
        _ = random.take()
        for key in preKeys { store.storePreKey(key) }
        json = [
            "name": name, "address": ["name": self.address.name, "device_id": 1], "registration_id": registrationID,
            "identity_key": keyPair(identity.privateKey),
            "signed_prekeys": [["id": 1, "timestamp": 0, "private": hex(spk.keyPair.rawRepresentation),
                                "public": hex(spk.keyPair.publicKey.signalRepresentation), "signature": hex(spk.signature),
                                "signature_random": hex(spkDraws[1])]],
            "one_time_prekeys": preKeys.map { ["id": $0.id, "private": hex($0.keyPair.rawRepresentation), "public": hex($0.keyPair.publicKey.signalRepresentation)] },
        ]
    }

    func bundle(oneTimePreKeyID: UInt32?) -> PreKeyBundle {
        PreKeyBundle(registrationID: store.localRegistrationID(), deviceID: 1, identityKey: identity.identityKey,
                     signedPreKey: signedPreKeys[0].publicSignedPreKey,
                     oneTimePreKey: oneTimePreKeyID.flatMap { id in preKeys.first { $0.id == id }?.publicPreKey })
    }
}

final class Transcript {
    let scenario: String
    let description: String
    var parties: [Party] = []
    var steps: [[String: Any]] = []
    var ciphertexts: [Int: [UInt8]] = [:]

    init(_ scenario: String, _ description: String) {
        self.scenario = scenario
        self.description = description
    }

    func add(_ step: [String: Any]) -> Int {
        var step = step
        step["step"] = steps.count
        steps.append(step)
        return steps.count - 1
    }

    @discardableResult
    func processBundle(_ who: Party, _ peer: Party, oneTimePreKeyID: UInt32?, bundleOf owner: Party? = nil, corruptSignature: Bool = false) -> Int {
        let source = owner ?? peer
        var bundle = source.bundle(oneTimePreKeyID: oneTimePreKeyID)
        if corruptSignature {
            var signature = bundle.signedPreKey!.signature
            signature[10] ^= 0x01
            bundle = PreKeyBundle(registrationID: bundle.registrationID, deviceID: 1, identityKey: bundle.identityKey,
                                  signedPreKey: .init(id: 1, publicKey: bundle.signedPreKey!.publicKey, signature: signature),
                                  oneTimePreKey: bundle.oneTimePreKey)
        }
        var step: [String: Any] = [
            "op": "process_bundle", "who": who.name, "peer": peer.name,
            "bundle": ["registration_id": bundle.registrationID, "device_id": 1, "identity_key": hex(bundle.identityKey.serialized),
                       "signed_prekey_id": 1, "signed_prekey": hex(bundle.signedPreKey!.publicKey.signalRepresentation),
                       "signed_prekey_signature": hex(bundle.signedPreKey!.signature),
                       "one_time_prekey_id": bundle.oneTimePreKey.map { Int($0.id) } as Any? ?? NSNull(),
                       "one_time_prekey": bundle.oneTimePreKey.map { hex($0.publicKey.signalRepresentation) } as Any? ?? NSNull()] as [String: Any],
        ]
        _ = who.random.take()
        do {
            try SessionBuilder.process(bundle, for: peer.address, store: who.store, suite: .hush1, random: who.random)
            let draws = who.random.take()
            step["base_key"] = keyPairFromDraw(draws[0])
            step["ratchet_key"] = keyPairFromDraw(draws[1])
            step["expect"] = "ok"
        } catch {
            step["expect"] = "error"
            step["error"] = error.transcriptName
        }
        return add(step)
    }

    @discardableResult
    func encrypt(_ who: Party, _ peer: Party, _ text: String) -> Int {
        let message = try! SessionCipher.encrypt(Array(text.utf8), for: peer.address, store: who.store)
        let (ratchet, counter, previous): (Curve25519.KeyAgreement.PublicKey, UInt32, UInt32)
        switch message {
        case .hush(let m): (ratchet, counter, previous) = (m.ratchetKey, m.counter, m.previousCounter)
        case .hushPreKey(let m): (ratchet, counter, previous) = (m.message.ratchetKey, m.message.counter, m.message.previousCounter)
        default: fatalError("not a hush-1 message")
        }
        let index = add(["op": "encrypt", "who": who.name, "peer": peer.name, "plaintext": hex(Array(text.utf8)),
                         "type": message.kind == .hush ? "hush" : "hush-prekey", "ciphertext": hex(message.serialized),
                         "ratchet_key": hex(ratchet.signalRepresentation), "counter": counter, "previous_counter": previous])
        ciphertexts[index] = message.serialized
        return index
    }

    @discardableResult
    func decrypt(_ who: Party, _ peer: Party, ofStep: Int, mutate: (description: String, transform: ([UInt8]) -> [UInt8])? = nil,
                 asType: String? = nil) -> Int {
        let original = ciphertexts[ofStep]!
        let bytes = mutate.map { $0.transform(original) } ?? original
        let type = asType ?? (steps[ofStep]["type"] as! String)
        var step: [String: Any] = ["op": "decrypt", "who": who.name, "peer": peer.name, "type": type, "of_step": ofStep]
        if let mutate {
            step["ciphertext"] = hex(bytes)
            step["mutation"] = mutate.description
        }
        _ = who.random.take()
        do {
            let message = try CiphertextMessage(kind: type == "hush" ? .hush : .hushPreKey, serialized: bytes)
            let plaintext = try SessionCipher.decrypt(message, from: peer.address, store: who.store, random: who.random)
            step["expect"] = "ok"
            step["plaintext"] = hex(plaintext)
            if let draw = who.random.take().first,
               who.store.loadSession(for: peer.address)!.currentSendingRatchetKey == (try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: draw)).publicKey {
                step["new_ratchet_key"] = keyPairFromDraw(draw)
            }
        } catch {
            step["expect"] = "error"
            step["error"] = error.transcriptName
        }
        return add(step)
    }

    func write(seed: Int) {
        let object: [String: Any] = [
            "format": "hush-session-vectors/1", "suite": "hush-1", "generator": "hush-vectors (Hush \(HushLibrary.version))",
            "scenario": scenario, "description": description, "seed": seed,
            "rng": "every random draw is listed (keys in the steps, signature randomness in the parties)",
            "parties": parties.map(\.json), "steps": steps,
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        let path = "\(outDirectory)/session-\(scenario).json"
        try! data.write(to: URL(fileURLWithPath: path))
        print("wrote \(path) (\(steps.count) steps)")
    }
}

func flip(_ index: Int, _ mask: UInt8 = 0x01) -> ([UInt8]) -> [UInt8] { { var b = $0; let i = index < 0 ? b.count + index : index; b[i] ^= mask; return b } }

try? FileManager.default.createDirectory(atPath: outDirectory, withIntermediateDirectories: true)

do {
    let t = Transcript("basic", "hush-1: X3DH with a one-time prekey, prekey messages until the first reply, then alternating messages (every reply a DH ratchet step), and a replay")
    let alice = Party("alice", seed: 1001, preKeyIDs: []), bob = Party("bob", seed: 1002, preKeyIDs: [101, 102])
    t.parties = [alice, bob]
    t.processBundle(alice, bob, oneTimePreKeyID: 101)
    let a1 = t.encrypt(alice, bob, "alice to bob, 1")
    let a2 = t.encrypt(alice, bob, "alice to bob, 2")
    t.decrypt(bob, alice, ofStep: a1)
    t.decrypt(bob, alice, ofStep: a2)
    for i in 0..<3 {
        let b = t.encrypt(bob, alice, "bob to alice, \(i)")
        t.decrypt(alice, bob, ofStep: b)
        let a = t.encrypt(alice, bob, "alice to bob, \(i + 3)")
        t.decrypt(bob, alice, ofStep: a)
    }
    t.decrypt(bob, alice, ofStep: a1)
    t.write(seed: 1)
}

do {
    let t = Transcript("no-otk-out-of-order", "hush-1: X3DH without a one-time prekey; messages delivered out of order across chains, duplicates")
    let alice = Party("alice", seed: 1011, preKeyIDs: []), bob = Party("bob", seed: 1012, preKeyIDs: [])
    t.parties = [alice, bob]
    t.processBundle(alice, bob, oneTimePreKeyID: nil)
    let first = t.encrypt(alice, bob, "first")
    t.decrypt(bob, alice, ofStep: first)
    let r = t.encrypt(bob, alice, "reply")
    t.decrypt(alice, bob, ofStep: r)
    let batch = (0..<6).map { t.encrypt(alice, bob, "batch \($0)") }
    for i in [3, 0, 5] { t.decrypt(bob, alice, ofStep: batch[i]) }
    let r2 = t.encrypt(bob, alice, "reply 2")
    t.decrypt(alice, bob, ofStep: r2)
    let late = t.encrypt(alice, bob, "new chain")
    t.decrypt(bob, alice, ofStep: late)
    for i in [4, 1, 2] { t.decrypt(bob, alice, ofStep: batch[i]) }
    t.decrypt(bob, alice, ofStep: batch[0])
    t.write(seed: 2)
}

do {
    let t = Transcript("archived", "hush-1 states: simultaneous initiation (each side archives its own state and promotes the one that decrypts), a late prekey message that matches an archived base key, a re-key with messages of the old session in flight, and a message held back for more than five ratchet steps (its chain evicted)")
    let alice = Party("alice", seed: 1031, preKeyIDs: [201, 202]), bob = Party("bob", seed: 1032, preKeyIDs: [101, 102])
    t.parties = [alice, bob]
    t.processBundle(alice, bob, oneTimePreKeyID: 101)
    t.processBundle(bob, alice, oneTimePreKeyID: 201)
    let a1 = t.encrypt(alice, bob, "a1")
    let b1 = t.encrypt(bob, alice, "b1")
    let a2 = t.encrypt(alice, bob, "a2")
    t.decrypt(alice, bob, ofStep: b1)
    t.decrypt(bob, alice, ofStep: a1)
    for i in 0..<2 {
        let x = t.encrypt(alice, bob, "x\(i)"); t.decrypt(bob, alice, ofStep: x)
        let y = t.encrypt(bob, alice, "y\(i)"); t.decrypt(alice, bob, ofStep: y)
    }
    t.decrypt(bob, alice, ofStep: a2)
    // Bob's messages on the current session are in flight when Alice re-keys.
    let old1 = t.encrypt(bob, alice, "old session 1")
    let old2 = t.encrypt(bob, alice, "old session 2")
    t.processBundle(alice, bob, oneTimePreKeyID: 102)
    let n1 = t.encrypt(alice, bob, "new session")
    t.decrypt(alice, bob, ofStep: old2)
    t.decrypt(bob, alice, ofStep: n1)
    let n2 = t.encrypt(bob, alice, "new session reply")
    t.decrypt(alice, bob, ofStep: n2)
    t.decrypt(alice, bob, ofStep: old1)
    t.decrypt(alice, bob, ofStep: old2)
    // A message held back while six ratchet steps happen: its chain is evicted.
    let held = t.encrypt(alice, bob, "held")
    let first = t.encrypt(alice, bob, "not held")
    t.decrypt(bob, alice, ofStep: first)
    for i in 0..<6 {
        let y = t.encrypt(bob, alice, "round \(i)"); t.decrypt(alice, bob, ofStep: y)
        let x = t.encrypt(alice, bob, "round \(i) reply"); t.decrypt(bob, alice, ofStep: x)
    }
    t.decrypt(bob, alice, ofStep: held)
    t.write(seed: 4)
}

do {
    let t = Transcript("errors", "hush-1 rejections: every mutation class of a message and a prekey message, wrong message type and format, truncation, no session, untrusted identity, unknown prekey, a counter too far ahead; each failure changes nothing and the genuine message still decrypts")
    let alice = Party("alice", seed: 1021, preKeyIDs: []), bob = Party("bob", seed: 1022, preKeyIDs: [101])
    let mallory = Party("mallory", address: "alice", seed: 1023, preKeyIDs: [])
    let carol = Party("carol", seed: 1024, preKeyIDs: [])
    let impostor = Party("impostor", address: "bob", seed: 1025, preKeyIDs: [])
    t.parties = [alice, bob, mallory, carol, impostor]
    t.processBundle(alice, bob, oneTimePreKeyID: nil, corruptSignature: true)
    t.processBundle(alice, bob, oneTimePreKeyID: 101)
    t.processBundle(alice, bob, oneTimePreKeyID: nil, bundleOf: impostor)
    let p = t.encrypt(alice, bob, "prekey message")
    t.decrypt(bob, alice, ofStep: p, mutate: ("registration id byte (header) xor 0x01", flip(4)))
    t.decrypt(bob, alice, ofStep: p, mutate: ("base key byte xor 0x01", flip(10)))
    t.decrypt(bob, alice, ofStep: p, mutate: ("last byte (tag) xor 0x01", flip(-1)))
    t.decrypt(bob, alice, ofStep: p, mutate: ("one-time prekey id 101 -> 102", flip(2, 0x03)))
    t.decrypt(bob, alice, ofStep: p)
    let w = t.encrypt(bob, alice, "reply")
    t.decrypt(alice, bob, ofStep: w)
    let m = t.encrypt(alice, bob, "message")
    t.decrypt(bob, alice, ofStep: m, mutate: ("counter byte xor 0x01", flip(33)))
    t.decrypt(bob, alice, ofStep: m, mutate: ("ciphertext byte xor 0x80", flip(36, 0x80)))
    t.decrypt(bob, alice, ofStep: m, mutate: ("ratchet key top bit (non-canonical)", flip(32, 0x80)))
    t.decrypt(bob, alice, ofStep: m, mutate: ("type byte 0x11 -> 0x21 (unknown format)", flip(0, 0x30)))
    t.decrypt(bob, alice, ofStep: m, mutate: ("type byte 0x11 -> 0x31 (Signal v3 range)", flip(0, 0x20)))
    t.decrypt(bob, alice, ofStep: m, mutate: ("truncated by 1 byte", { Array($0.dropLast()) }))
    t.decrypt(bob, alice, ofStep: m, mutate: ("truncated to 50 bytes", { Array($0.prefix(50)) }))
    t.decrypt(bob, alice, ofStep: m, asType: "hush-prekey")
    t.decrypt(bob, alice, ofStep: m)
    t.decrypt(bob, alice, ofStep: m)
    t.decrypt(carol, alice, ofStep: m)
    t.processBundle(mallory, bob, oneTimePreKeyID: nil)
    let forged = t.encrypt(mallory, bob, "mallory claims to be alice")
    t.decrypt(bob, mallory, ofStep: forged)
    t.processBundle(carol, bob, oneTimePreKeyID: 101)
    let stale = t.encrypt(carol, bob, "used one-time prekey")
    t.decrypt(bob, carol, ofStep: stale)
    var many: [Int] = []
    for i in 0..<2002 { many.append(t.encrypt(alice, bob, "m\(i)")) }
    t.decrypt(bob, alice, ofStep: many[2001])
    t.decrypt(bob, alice, ofStep: many[2000])
    t.decrypt(bob, alice, ofStep: many[2001])
    t.write(seed: 3)
}

// MARK: - Envelope vectors

let envelopeRandom = RecordingRandom(seed: 2001)
let root = try! Curve25519.KeyAgreement.PrivateKey(using: envelopeRandom)
let rogueRoot = try! Curve25519.KeyAgreement.PrivateKey(using: envelopeRandom)
let serverKey = try! Curve25519.KeyAgreement.PrivateKey(using: envelopeRandom)
_ = envelopeRandom.take()
let server = try! ServerCertificate.issue(keyID: 7, key: serverKey.publicKey, signedBy: root, random: envelopeRandom)
let serverSignatureRandom = envelopeRandom.take()[0]
let rogueServer = try! ServerCertificate.issue(keyID: 8, key: serverKey.publicKey, signedBy: rogueRoot, random: envelopeRandom)
let rogueSignatureRandom = envelopeRandom.take()[0]
// A second server key whose Edwards public key has sign bit 1 (XEdDSA negates its scalar).
var secondServerKey = try! Curve25519.KeyAgreement.PrivateKey(using: envelopeRandom)
while true {
    // The sign bit of E = k·B is what the libsignal form carries in bit 7 of byte 63: probe it
    // with a throwaway signature.
    let signature = try! XEdDSA.signature(for: [0], using: secondServerKey, variant: .libsignal, randomness: [UInt8](repeating: 0, count: 64))
    if signature[63] & 0x80 != 0 { break }
    secondServerKey = try! Curve25519.KeyAgreement.PrivateKey(using: envelopeRandom)
}
_ = envelopeRandom.take()
let secondServer = try! ServerCertificate.issue(keyID: 9, key: secondServerKey.publicKey, signedBy: root, random: envelopeRandom)
let secondSignatureRandom = envelopeRandom.take()[0]
var identities: [String: IdentityKeyPair] = [:]
for name in ["alice", "bob", "carol", "dave", "mallory"] { identities[name] = try! IdentityKeyPair.generate(using: envelopeRandom) }
_ = envelopeRandom.take()
let now: UInt64 = 1_800_000_000_000

var certificates: [[String: Any]] = []
@MainActor func certificate(_ name: String, expiration: UInt64, server: ServerCertificate, label: String,
                 signer: Curve25519.KeyAgreement.PrivateKey? = nil, signerName: String = "server") -> SenderCertificate {
    let c = try! SenderCertificate.issue(senderID: name, deviceID: 1, identityKey: identities[name]!.identityKey, expiration: expiration,
                                         server: server, signedBy: signer ?? (server.keyID == 9 ? secondServerKey : serverKey), random: envelopeRandom)
    certificates.append(["id": label, "sender_id": name, "device_id": 1, "identity_key": hex(identities[name]!.identityKey.publicKey.rawRepresentation),
                         "expiration": expiration, "server_key_id": server.keyID, "signature_random": hex(envelopeRandom.take()[0]),
                         "signed_by": signerName, "certificate": hex(c.serialized)])
    return c
}
let aliceCertificate = certificate("alice", expiration: 2_000_000_000_000, server: server, label: "alice")
let expiredCertificate = certificate("alice", expiration: now, server: server, label: "alice-expired")
let rogueCertificate = certificate("alice", expiration: 2_000_000_000_000, server: rogueServer, label: "alice-rogue-server")
let secondCertificate = certificate("alice", expiration: 2_000_000_000_000, server: secondServer, label: "alice-second-server", signerName: "second_server")
let malloryCertificate = certificate("alice", expiration: 2_000_000_000_000, server: server, label: "alice-signed-by-mallory",
                                     signer: identities["mallory"]!.privateKey, signerName: "mallory")

var cases: [[String: Any]] = []
func typeName(_ t: EnvelopeContentType) -> Int { Int(t.rawValue) }
let validator = CertificateValidator(trustRoot: root.publicKey)
@MainActor func openCase(_ id: String, _ envelope: [UInt8], recipient: String, multi: Bool = false, revoked: [UInt32] = [], mutation: String? = nil) {
    var c: [String: Any] = ["id": id, "op": multi ? "open_delivered" : "open", "recipient": recipient, "envelope": hex(envelope), "now": now,
                            "revoked_server_key_ids": revoked]
    if let mutation { c["mutation"] = mutation }
    var v = validator
    v.revokedServerKeyIDs = Set(revoked)
    do {
        let opened = multi
            ? try MultiRecipientEnvelope.open(envelope, recipientIdentity: identities[recipient]!, validator: v, now: now)
            : try SealedEnvelope.open(envelope, recipientIdentity: identities[recipient]!, validator: v, now: now)
        c["expect"] = "ok"
        c["opened"] = ["sender_id": opened.sender.senderID, "device_id": Int(opened.sender.deviceID),
                       "content_type": typeName(opened.contentType), "message": hex(opened.message)]
    } catch {
        c["expect"] = "error"
        c["error"] = error.transcriptName
    }
    cases.append(c)
}
@MainActor func sealCase(_ id: String, sender: String, recipient: String, type: EnvelopeContentType, message: [UInt8], certificate: SenderCertificate, certificateID: String, unchecked: Bool = false) -> [UInt8] {
    _ = envelopeRandom.take()
    let envelope = unchecked
        ? try! SealedEnvelope.sealUnchecked(message, contentType: type, certificate: certificate, senderIdentity: identities[sender]!,
                                            to: identities[recipient]!.identityKey, random: envelopeRandom)
        : try! SealedEnvelope.seal(message, contentType: type, certificate: certificate, senderIdentity: identities[sender]!,
                                   to: identities[recipient]!.identityKey, random: envelopeRandom)
    cases.append(["id": id, "op": "seal", "sender": sender, "recipient": recipient, "content_type": typeName(type), "message": hex(message),
                  "certificate": certificateID, "ephemeral_private": hex(envelopeRandom.take()[0]), "envelope": hex(envelope)])
    return envelope
}

let text = Array("hello".utf8)
let kib = (0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 31) }
let e1 = sealCase("seal-5-bytes", sender: "alice", recipient: "bob", type: .message, message: text, certificate: aliceCertificate, certificateID: "alice")
openCase("open-5-bytes", e1, recipient: "bob")
let e2 = sealCase("seal-1-kib", sender: "alice", recipient: "bob", type: .preKeyMessage, message: kib, certificate: aliceCertificate, certificateID: "alice")
openCase("open-1-kib", e2, recipient: "bob")
let e3 = sealCase("seal-unknown-type", sender: "alice", recipient: "bob", type: .other(42), message: [], certificate: aliceCertificate, certificateID: "alice")
openCase("open-unknown-type", e3, recipient: "bob")
openCase("wrong-recipient", e1, recipient: "carol")
let ex = sealCase("seal-expired", sender: "alice", recipient: "bob", type: .message, message: text, certificate: expiredCertificate, certificateID: "alice-expired")
openCase("expired-certificate", ex, recipient: "bob")
let rg = sealCase("seal-untrusted-server", sender: "alice", recipient: "bob", type: .message, message: text, certificate: rogueCertificate, certificateID: "alice-rogue-server")
openCase("untrusted-server-key", rg, recipient: "bob")
openCase("revoked-server-key", e1, recipient: "bob", revoked: [7])
let e4 = sealCase("seal-second-server", sender: "alice", recipient: "bob", type: .typing, message: [], certificate: secondCertificate, certificateID: "alice-second-server")
openCase("open-second-server", e4, recipient: "bob")
let e5 = sealCase("seal-bad-sender-signature", sender: "alice", recipient: "bob", type: .message, message: text, certificate: malloryCertificate, certificateID: "alice-signed-by-mallory")
openCase("bad-sender-signature", e5, recipient: "bob")
var lowOrder = e1
for i in 3..<35 { lowOrder[i] = 0 }
openCase("low-order-ephemeral-key", lowOrder, recipient: "bob", mutation: "ephemeral key replaced by u = 0 (a low-order point)")
let forged = sealCase("seal-forged-sender", sender: "mallory", recipient: "bob", type: .message, message: text, certificate: aliceCertificate, certificateID: "alice", unchecked: true)
openCase("forged-sender-identity", forged, recipient: "bob")
for (index, mask) in [(0, UInt8(0x02)), (2, 0x01), (10, 0x01), (40, 0x01), (70, 0x01), (100, 0x01), (e1.count - 1, 0x01)] {
    var t = e1
    t[index] ^= mask
    openCase("tampered-byte-\(index)", t, recipient: "bob", mutation: "byte \(index) xor 0x\(String(mask, radix: 16))")
}
openCase("truncated", Array(e1.dropLast()), recipient: "bob", mutation: "last byte removed")
openCase("trailing-byte", e1 + [0], recipient: "bob", mutation: "one byte appended")
var wrongVersion = e1
wrongVersion[0] = 0xE9
openCase("wrong-version", wrongVersion, recipient: "bob", mutation: "type byte 0xE1 -> 0xE9")

_ = envelopeRandom.take()
let multi = try! MultiRecipientEnvelope.seal(text, contentType: .groupMessage, certificate: aliceCertificate, senderIdentity: identities["alice"]!,
                                             to: ["bob", "carol", "dave"].map { identities[$0]!.identityKey }, random: envelopeRandom)
let multiDraws = envelopeRandom.take()
cases.append(["id": "seal-multi", "op": "seal_multi", "sender": "alice", "recipients": ["bob", "carol", "dave"], "content_type": 7,
              "message": hex(text), "certificate": "alice", "ephemeral_private": hex(multiDraws[0]), "payload_key": hex(multiDraws[1]),
              "envelope": hex(multi.serialized),
              "delivered": [hex(try multi.delivered(to: 0)), hex(try multi.delivered(to: 1)), hex(try multi.delivered(to: 2))]])
for (i, name) in ["bob", "carol", "dave"].enumerated() { openCase("open-multi-\(name)", try multi.delivered(to: i), recipient: name, multi: true) }
openCase("multi-wrong-recipient", try multi.delivered(to: 0), recipient: "carol", multi: true)
var tamperedMulti = try multi.delivered(to: 1)
tamperedMulti[tamperedMulti.count - 20] ^= 0x01
openCase("multi-tampered-payload", tamperedMulti, recipient: "carol", multi: true, mutation: "payload byte xor 0x01")

let envelopeFile: [String: Any] = [
    "format": "hush-envelope-vectors/1", "generator": "hush-vectors (Hush \(HushLibrary.version))",
    "description": "sealed envelopes, multi-recipient envelopes and certificates (Docs/spec/envelope.md); every random draw listed",
    "trust_root": keyPair(root), "rogue_trust_root": keyPair(rogueRoot),
    "server": ["key_id": 7, "private": hex(serverKey.rawRepresentation), "public": hex(serverKey.publicKey.rawRepresentation),
               "signature_random": hex(serverSignatureRandom), "certificate": hex(server.serialized)],
    "rogue_server": ["key_id": 8, "signature_random": hex(rogueSignatureRandom), "certificate": hex(rogueServer.serialized)],
    "second_server": ["key_id": 9, "private": hex(secondServerKey.rawRepresentation), "public": hex(secondServerKey.publicKey.rawRepresentation),
                      "signature_random": hex(secondSignatureRandom), "certificate": hex(secondServer.serialized)],
    "parties": identities.keys.sorted().map { ["name": $0, "identity_key": ["private": hex(identities[$0]!.privateKey.rawRepresentation),
                                                                           "public": hex(identities[$0]!.identityKey.publicKey.rawRepresentation)]] },
    "certificates": certificates, "now": now, "cases": cases,
]
let data = try! JSONSerialization.data(withJSONObject: envelopeFile, options: [.prettyPrinted, .sortedKeys])
try! data.write(to: URL(fileURLWithPath: "\(outDirectory)/envelope.json"))
print("wrote \(outDirectory)/envelope.json (\(cases.count) cases)")
