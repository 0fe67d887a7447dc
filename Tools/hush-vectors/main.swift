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
    func processBundle(_ who: Party, _ peer: Party, oneTimePreKeyID: UInt32?, bundleOf owner: Party? = nil, corruptSignature: Bool = false,
                       mutate: (description: String, transform: (PreKeyBundle) -> PreKeyBundle)? = nil) -> Int {
        let source = owner ?? peer
        var bundle = source.bundle(oneTimePreKeyID: oneTimePreKeyID)
        if corruptSignature {
            var signature = bundle.signedPreKey!.signature
            signature[10] ^= 0x01
            bundle = PreKeyBundle(registrationID: bundle.registrationID, deviceID: 1, identityKey: bundle.identityKey,
                                  signedPreKey: .init(id: 1, publicKey: bundle.signedPreKey!.publicKey, signature: signature),
                                  oneTimePreKey: bundle.oneTimePreKey)
        }
        if let mutate { bundle = mutate.transform(bundle) }
        var step: [String: Any] = [
            "op": "process_bundle", "who": who.name, "peer": peer.name,
            "bundle": ["registration_id": bundle.registrationID, "device_id": 1, "identity_key": hex(bundle.identityKey.serialized),
                       "signed_prekey_id": 1, "signed_prekey": hex(bundle.signedPreKey!.publicKey.signalRepresentation),
                       "signed_prekey_signature": hex(bundle.signedPreKey!.signature),
                       "one_time_prekey_id": bundle.oneTimePreKey.map { Int($0.id) } as Any? ?? NSNull(),
                       "one_time_prekey": bundle.oneTimePreKey.map { hex($0.publicKey.signalRepresentation) } as Any? ?? NSNull()] as [String: Any],
        ]
        if let mutate { step["mutation"] = mutate.description }
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
            // Rejected after the draws (an all-zero DH): list them, so a replay can make the same draws.
            let draws = who.random.take()
            if draws.count == 2 {
                step["base_key"] = keyPairFromDraw(draws[0])
                step["ratchet_key"] = keyPairFromDraw(draws[1])
            }
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
/// Replaces `count` bytes at `index` with `bytes` (a splice: the length may change).
func splice(_ index: Int, _ count: Int, _ bytes: [UInt8]) -> ([UInt8]) -> [UInt8] { { Array($0[..<index]) + bytes + Array($0[(index + count)...]) } }
func fromHex(_ text: String) -> [UInt8] { try! Hex.decode(text) }

/// Public keys that are not keys of the prime-order group, little-endian u.
enum OddKey {
    /// p = 2^255 - 19: u = p, non-canonical (≡ 0).
    static let p = [0xED] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]
    /// p + 9: non-canonical, ≡ 9 (the base point), so a parser that reduced it would get a usable key.
    static let pPlus9 = [0xF6] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]
    /// u = 0 (order 2... the point (0, 0)), u = 1 (order 4), u = p − 1 (order 4, on the twist: v² = A − 2 is a non-square), and a point of order 8.
    static let zero = [UInt8](repeating: 0, count: 32)
    static let one = [1] + [UInt8](repeating: 0, count: 31)
    static let minusOne = [0xEC] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]
    static let order8 = fromHex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
    static let lowOrder: [(String, [UInt8])] = [("u = 0", zero), ("u = 1 (order 4)", one), ("u = p - 1 (order 4, on the twist)", minusOne),
                                                ("a point of order 8", order8)]
}

/// The group order L = 2^252 + 27742317777372353535851937790883648493, little-endian.
let groupOrder = fromHex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
/// `s + L` for the s half of a 64-byte signature (a malleated signature: the same point sB).
func malleate(_ signature: [UInt8]) -> [UInt8] {
    var out = signature
    var carry = 0
    for i in 0..<32 {
        let sum = Int(signature[32 + i]) + Int(groupOrder[i]) + carry
        out[32 + i] = UInt8(sum & 0xFF)
        carry = sum >> 8
    }
    precondition(carry == 0)
    return out
}
func varintBytes(_ value: UInt32) -> [UInt8] {
    var v = value, b: [UInt8] = []
    while v >= 0x80 { b.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
    return b + [UInt8(v)]
}

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
    // Signature strictness (README.md "Signatures"): s + L is refused although libsignal-c accepts it.
    func withSignedPreKey(_ b: PreKeyBundle, key: Curve25519.KeyAgreement.PublicKey? = nil, signature: [UInt8]) -> PreKeyBundle {
        PreKeyBundle(registrationID: b.registrationID, deviceID: 1, identityKey: b.identityKey,
                     signedPreKey: .init(id: 1, publicKey: key ?? b.signedPreKey!.publicKey, signature: signature), oneTimePreKey: b.oneTimePreKey)
    }
    t.processBundle(alice, bob, oneTimePreKeyID: nil, mutate: ("signed prekey signature with s replaced by s + L (malleated)",
                                                                { withSignedPreKey($0, signature: malleate($0.signedPreKey!.signature)) }))
    // A low-order identity key: its signature cannot verify (the Edwards key has small order).
    t.processBundle(alice, bob, oneTimePreKeyID: nil, mutate: ("identity key replaced by u = 0 (low order)", { b in
        PreKeyBundle(registrationID: b.registrationID, deviceID: 1, identityKey: IdentityKey(publicKey: try! .init(rawRepresentation: OddKey.zero)),
                     signedPreKey: b.signedPreKey, oneTimePreKey: nil)
    }))
    // Low-order signed prekeys and one-time prekeys, validly signed by Bob: the DH result is all zero.
    for (name, key) in OddKey.lowOrder.prefix(2) {
        let lowKey = try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: key)
        let signature = try! XEdDSA.signature(for: lowKey.signalRepresentation, using: bob.identity.privateKey, variant: .libsignal,
                                              randomness: [UInt8](repeating: 7, count: 64))
        t.processBundle(alice, bob, oneTimePreKeyID: nil, mutate: ("signed prekey replaced by \(name), signed by Bob", {
            withSignedPreKey($0, key: lowKey, signature: signature)
        }))
        t.processBundle(alice, bob, oneTimePreKeyID: 101, mutate: ("one-time prekey replaced by \(name)", { b in
            PreKeyBundle(registrationID: b.registrationID, deviceID: 1, identityKey: b.identityKey, signedPreKey: b.signedPreKey,
                         oneTimePreKey: .init(id: 101, publicKey: lowKey))
        }))
    }
    t.processBundle(alice, bob, oneTimePreKeyID: 101)
    t.processBundle(alice, bob, oneTimePreKeyID: nil, bundleOf: impostor)
    let p = t.encrypt(alice, bob, "prekey message")
    // Offsets in p: 12 | flags | otk id (1 byte) | spk id (1 byte) | registration id | base key | identity key | message.
    let baseKeyAt = 4 + varintBytes(alice.store.localRegistrationID()).count, identityAt = baseKeyAt + 32, innerAt = identityAt + 32
    t.decrypt(bob, alice, ofStep: p, mutate: ("flags 0x01 -> 0x03 (an unknown flag bit)", flip(1, 0x02)))
    t.decrypt(bob, alice, ofStep: p, mutate: ("flags 0x01 -> 0x81 (an unknown flag bit)", flip(1, 0x80)))
    t.decrypt(bob, alice, ofStep: p, mutate: ("signed prekey id 1 written non-canonically as 81 00", splice(3, 1, [0x81, 0x00])))
    t.decrypt(bob, alice, ofStep: p, mutate: ("one-time prekey id written as 6 varint bytes", splice(2, 1, [0xE5, 0x80, 0x80, 0x80, 0x80, 0x00])))
    t.decrypt(bob, alice, ofStep: p, mutate: ("base key replaced by p + 9 (non-canonical, u >= p)", splice(baseKeyAt, 32, OddKey.pPlus9)))
    t.decrypt(bob, alice, ofStep: p, mutate: ("identity key replaced by p + 9 (non-canonical, u >= p)", splice(identityAt, 32, OddKey.pPlus9)))
    t.decrypt(bob, alice, ofStep: p, mutate: ("base key replaced by u = 0 (low order): X3DH fails, nothing else is tried", splice(baseKeyAt, 32, OddKey.zero)))
    t.decrypt(bob, alice, ofStep: p, mutate: ("identity key replaced by u = 1 (low order, trusted on first use): X3DH fails", splice(identityAt, 32, OddKey.one)))
    t.decrypt(bob, alice, ofStep: p, mutate: ("inner message type byte 0x11 -> 0x12", flip(innerAt, 0x03)))
    t.decrypt(bob, alice, ofStep: p, mutate: ("truncated after the identity key (no inner message)", { Array($0.prefix(innerAt)) }))
    t.decrypt(bob, alice, ofStep: p, mutate: ("registration id byte (header) xor 0x01", flip(4)))
    t.decrypt(bob, alice, ofStep: p, mutate: ("base key byte xor 0x01", flip(10)))
    t.decrypt(bob, alice, ofStep: p, mutate: ("last byte (tag) xor 0x01", flip(-1)))
    t.decrypt(bob, alice, ofStep: p, mutate: ("one-time prekey id 101 -> 102", flip(2, 0x03)))
    t.decrypt(bob, alice, ofStep: p)
    let w = t.encrypt(bob, alice, "reply")
    t.decrypt(alice, bob, ofStep: w)
    let m = t.encrypt(alice, bob, "message")
    t.decrypt(bob, alice, ofStep: m, mutate: ("counter byte xor 0x01", flip(33)))
    t.decrypt(bob, alice, ofStep: m, mutate: ("counter written non-canonically (an extra 80 00 group)", { b in splice(33, 1, [b[33] | 0x80, 0x00])(b) }))
    t.decrypt(bob, alice, ofStep: m, mutate: ("counter written as ff ff ff ff 1f (a value >= 2^32)", splice(33, 1, [0xFF, 0xFF, 0xFF, 0xFF, 0x1F])))
    t.decrypt(bob, alice, ofStep: m, mutate: ("counter written as 6 varint bytes", { b in splice(33, 1, [b[33] | 0x80, 0x80, 0x80, 0x80, 0x80, 0x00])(b) }))
    t.decrypt(bob, alice, ofStep: m, mutate: ("previous counter written non-canonically", { b in splice(34, 1, [b[34] | 0x80, 0x00])(b) }))
    t.decrypt(bob, alice, ofStep: m, mutate: ("ratchet key replaced by p (non-canonical, u >= p)", splice(1, 32, OddKey.p)))
    t.decrypt(bob, alice, ofStep: m, mutate: ("ratchet key replaced by p + 9 (non-canonical, u >= p)", splice(1, 32, OddKey.pPlus9)))
    for (name, key) in OddKey.lowOrder {
        t.decrypt(bob, alice, ofStep: m, mutate: ("ratchet key replaced by \(name) (low order)", splice(1, 32, key)))
    }
    t.decrypt(bob, alice, ofStep: m, mutate: ("counter 200 (2 bytes) and a 15-byte body: 51 bytes in all, but a body under 16",
                                              { b in Array(b.prefix(33)) + [0xC8, 0x01, b[34]] + Array(b[35..<50]) }))
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
    t.decrypt(carol, alice, ofStep: m, mutate: ("truncated to 50 bytes, to a party without a session: parsing comes first", { Array($0.prefix(50)) }))
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
    // 2000 skipped keys are stored (0…1999); one more evicts the oldest.
    let extra = (2002...2005).map { t.encrypt(alice, bob, "m\($0)") }
    t.decrypt(bob, alice, ofStep: extra[1])        // stores 2002: key 0 is evicted
    t.decrypt(bob, alice, ofStep: many[0])         // duplicate_message: evicted
    t.decrypt(bob, alice, ofStep: many[1])         // the oldest key kept
    // A second state: Alice re-keys; Bob's new state is current, the old one archived.
    t.processBundle(alice, bob, oneTimePreKeyID: nil)
    let p2 = t.encrypt(alice, bob, "second session")
    t.decrypt(bob, alice, ofStep: p2)
    // Current state: too_far_in_future (a new chain at index 0); the archived state decrypts.
    t.decrypt(bob, alice, ofStep: extra[0])
    // The old state is current again: a duplicate there stops the search (the archived state
    // would report too_far_in_future, which would otherwise win).
    t.decrypt(bob, alice, ofStep: many[2001])
    // Current state bad_mac, archived state too_far_in_future: too_far_in_future is reported.
    t.decrypt(bob, alice, ofStep: extra[2], mutate: ("last byte (tag) xor 0x01", flip(-1)))
    // The new state is current again; then current too_far_in_future, archived bad_mac.
    let p3 = t.encrypt(alice, bob, "second session, 2")
    t.decrypt(bob, alice, ofStep: p3)
    t.decrypt(bob, alice, ofStep: extra[3], mutate: ("last byte (tag) xor 0x01", flip(-1)))
    t.decrypt(bob, alice, ofStep: extra[3])
    // A bundle whose signed prekey signature is in the XEdDSA specification form is accepted.
    t.processBundle(carol, bob, oneTimePreKeyID: nil, mutate: ("signed prekey re-signed in the XEdDSA specification form", { b in
        let signature = try! XEdDSA.signature(for: b.signedPreKey!.publicKey.signalRepresentation, using: bob.identity.privateKey,
                                              variant: .specification, randomness: [UInt8](repeating: 9, count: 64))
        return withSignedPreKey(b, signature: signature)
    }))
    t.write(seed: 3)
}

do {
    let t = Transcript("limits", "hush-1 limits, each pinned from both sides: a message on the oldest of 5 receiving chains decrypts and one on an evicted sixth-oldest chain does not (its skipped keys go with it); a state in the 40th archive slot decrypts and is promoted (the replaced current state goes to the front), and the state pushed to slot 41 is gone")
    let alice = Party("alice", seed: 1041, preKeyIDs: []), bob = Party("bob", seed: 1042, preKeyIDs: [])
    t.parties = [alice, bob]
    t.processBundle(alice, bob, oneTimePreKeyID: nil)
    let a0 = t.encrypt(alice, bob, "a0")
    let held1 = t.encrypt(alice, bob, "held 1")
    let held2 = t.encrypt(alice, bob, "held 2")
    let a3 = t.encrypt(alice, bob, "a3")
    t.decrypt(bob, alice, ofStep: a3)          // skipped keys 0, 1, 2 on Alice's first chain
    t.decrypt(bob, alice, ofStep: a0)
    func round(_ i: Int) {
        let y = t.encrypt(bob, alice, "round \(i)"); t.decrypt(alice, bob, ofStep: y)
        let x = t.encrypt(alice, bob, "round \(i) reply"); t.decrypt(bob, alice, ofStep: x)
    }
    for i in 0..<4 { round(i) }                // Bob: 5 receiving chains, the first is the oldest
    t.decrypt(bob, alice, ofStep: held1)       // still there
    round(4)                                   // a sixth chain evicts the first
    t.decrypt(bob, alice, ofStep: held2)       // bad_mac: chain and skipped keys gone
    // Archived states.
    let b1 = t.encrypt(bob, alice, "on the first session")
    t.processBundle(alice, bob, oneTimePreKeyID: nil)
    let s1 = t.encrypt(alice, bob, "second session")
    t.decrypt(bob, alice, ofStep: s1)
    let r1 = t.encrypt(bob, alice, "on the second session")
    for _ in 0..<39 { t.processBundle(alice, bob, oneTimePreKeyID: nil) }
    t.decrypt(alice, bob, ofStep: b1)          // the first session, 40th in the archive: promoted
    t.processBundle(alice, bob, oneTimePreKeyID: nil)
    t.decrypt(alice, bob, ofStep: r1)          // the second session was pushed to slot 41: bad_mac
    t.write(seed: 5)
}

do {
    let t = Transcript("torsion", "hush-1 keys outside the prime-order subgroup: torsioned copies of genuine keys (a point of order 8 added, so every DH result is the same and only the bytes differ) and points of the twist, in bundles, in a prekey message and as a ratchet key; all are refused, and the genuine messages still decrypt")
    let alice = Party("alice", seed: 1051, preKeyIDs: []), bob = Party("bob", seed: 1052, preKeyIDs: [101])
    t.parties = [alice, bob]
    func torsioned(_ k: Curve25519.KeyAgreement.PublicKey) -> Curve25519.KeyAgreement.PublicKey { try! .init(rawRepresentation: OddPoints.torsioned(k.rawRepresentation)) }
    let twist = try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: OddPoints.twist)
    func signedBundle(_ b: PreKeyBundle, _ key: Curve25519.KeyAgreement.PublicKey) -> PreKeyBundle {
        let signature = try! XEdDSA.signature(for: key.signalRepresentation, using: bob.identity.privateKey, variant: .libsignal,
                                              randomness: [UInt8](repeating: 8, count: 64))
        return PreKeyBundle(registrationID: b.registrationID, deviceID: 1, identityKey: b.identityKey,
                            signedPreKey: .init(id: 1, publicKey: key, signature: signature), oneTimePreKey: b.oneTimePreKey)
    }
    t.processBundle(alice, bob, oneTimePreKeyID: nil, mutate: ("signed prekey torsioned, signed by Bob", { signedBundle($0, torsioned($0.signedPreKey!.publicKey)) }))
    t.processBundle(alice, bob, oneTimePreKeyID: nil, mutate: ("signed prekey a point of the twist, signed by Bob", { signedBundle($0, twist) }))
    t.processBundle(alice, bob, oneTimePreKeyID: 101, mutate: ("one-time prekey torsioned", { b in
        PreKeyBundle(registrationID: b.registrationID, deviceID: 1, identityKey: b.identityKey, signedPreKey: b.signedPreKey,
                     oneTimePreKey: .init(id: 101, publicKey: torsioned(b.oneTimePreKey!.publicKey)))
    }))
    t.processBundle(alice, bob, oneTimePreKeyID: nil, mutate: ("identity key torsioned", { b in
        PreKeyBundle(registrationID: b.registrationID, deviceID: 1, identityKey: IdentityKey(publicKey: torsioned(b.identityKey.publicKey)),
                     signedPreKey: b.signedPreKey, oneTimePreKey: nil)
    }))
    let started = t.processBundle(alice, bob, oneTimePreKeyID: 101)
    let p = t.encrypt(alice, bob, "first")
    let baseKeyAt = 4 + varintBytes(alice.store.localRegistrationID()).count, identityAt = baseKeyAt + 32
    // The sender's own keys torsioned before encrypting: these authenticate, and only the
    // subgroup check refuses them.
    func draw(_ field: String) -> Curve25519.KeyAgreement.PrivateKey {
        try! .init(rawRepresentation: fromHex((t.steps[started][field] as! [String: Any])["private"] as! String))
    }
    let handMade = HandMadeFirstMessage(identity: alice.identity, registrationID: alice.store.localRegistrationID(), baseKey: draw("base_key"),
                                        ratchetKey: draw("ratchet_key"), bundle: bob.bundle(oneTimePreKeyID: 101))
    precondition(handMade.message(Array("first".utf8)) == t.ciphertexts[p]!, "the hand-made first message differs from Hush's")
    for (field, description) in [("base", "base key"), ("identity", "identity key"), ("ratchet", "ratchet key")] {
        var m = handMade
        switch field {
        case "base": m.baseKeyBytes = OddPoints.torsioned(m.baseKey.publicKey.rawRepresentation)
        case "identity": m.identityKeyBytes = OddPoints.torsioned(alice.identity.identityKey.publicKey.rawRepresentation)
        default: m.ratchetKeyBytes = OddPoints.torsioned(m.ratchetKey.publicKey.rawRepresentation)
        }
        let bytes = m.message(Array("first".utf8))
        t.decrypt(bob, alice, ofStep: p, mutate: ("re-encrypted by the sender with its \(description) torsioned (it authenticates)", { _ in bytes }))
    }
    t.decrypt(bob, alice, ofStep: p, mutate: ("base key torsioned", { b in splice(baseKeyAt, 32, OddPoints.torsioned(Array(b[baseKeyAt..<(baseKeyAt + 32)])))(b) }))
    t.decrypt(bob, alice, ofStep: p, mutate: ("identity key torsioned", { b in splice(identityAt, 32, OddPoints.torsioned(Array(b[identityAt..<(identityAt + 32)])))(b) }))
    t.decrypt(bob, alice, ofStep: p, mutate: ("base key a point of the twist", splice(baseKeyAt, 32, OddPoints.twist)))
    t.decrypt(bob, alice, ofStep: p, mutate: ("inner ratchet key torsioned", { b in
        splice(identityAt + 33, 32, OddPoints.torsioned(Array(b[(identityAt + 33)..<(identityAt + 65)])))(b) }))
    t.decrypt(bob, alice, ofStep: p)
    let r = t.encrypt(bob, alice, "reply")
    t.decrypt(alice, bob, ofStep: r, mutate: ("ratchet key torsioned", { b in splice(1, 32, OddPoints.torsioned(Array(b[1..<33])))(b) }))
    t.decrypt(alice, bob, ofStep: r, mutate: ("ratchet key a point of the twist", splice(1, 32, OddPoints.twist)))
    t.decrypt(alice, bob, ofStep: r)
    t.decrypt(bob, alice, ofStep: p, mutate: ("base key torsioned, after the genuine message", { b in
        splice(baseKeyAt, 32, OddPoints.torsioned(Array(b[baseKeyAt..<(baseKeyAt + 32)])))(b) }))
    t.write(seed: 6)
}

// MARK: - Envelope vectors

let envelopeRandom = RecordingRandom(seed: 2001)
let root = try! Curve25519.KeyAgreement.PrivateKey(using: envelopeRandom)
let rogueRoot = try! Curve25519.KeyAgreement.PrivateKey(using: envelopeRandom)
let serverKey = try! Curve25519.KeyAgreement.PrivateKey(using: envelopeRandom)
_ = envelopeRandom.take()
let now: UInt64 = 1_800_000_000_000
/// Every server certificate here is valid until this time; per-case clocks test it.
let serverExpiration: UInt64 = 2_100_000_000_000
let server = try! ServerCertificate.issue(keyID: 7, key: serverKey.publicKey, expiration: serverExpiration, signedBy: root, random: envelopeRandom)
let serverSignatureRandom = envelopeRandom.take()[0]
let rogueServer = try! ServerCertificate.issue(keyID: 8, key: serverKey.publicKey, expiration: serverExpiration, signedBy: rogueRoot, random: envelopeRandom)
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
let secondServer = try! ServerCertificate.issue(keyID: 9, key: secondServerKey.publicKey, expiration: serverExpiration, signedBy: root, random: envelopeRandom)
let secondSignatureRandom = envelopeRandom.take()[0]
var identities: [String: IdentityKeyPair] = [:]
for name in ["alice", "bob", "carol", "dave", "mallory"] { identities[name] = try! IdentityKeyPair.generate(using: envelopeRandom) }
_ = envelopeRandom.take()

var certificates: [[String: Any]] = []
@MainActor func certificate(_ name: String, expiration: UInt64, server: ServerCertificate, label: String,
                            signer: Curve25519.KeyAgreement.PrivateKey? = nil, signerName: String = "server", senderID: String? = nil) -> SenderCertificate {
    let id = senderID ?? name
    let c = try! SenderCertificate.issue(senderID: id, deviceID: 1, identityKey: identities[name]!.identityKey, expiration: expiration,
                                         server: server, signedBy: signer ?? (server.keyID == 9 ? secondServerKey : serverKey), random: envelopeRandom)
    certificates.append(["id": label, "sender_id": id, "device_id": 1, "identity_key": hex(identities[name]!.identityKey.publicKey.rawRepresentation),
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
let longCertificate = certificate("alice", expiration: 2_200_000_000_000, server: server, label: "alice-outlives-server")
let expiredMalloryCertificate = certificate("alice", expiration: now, server: server, label: "alice-expired-signed-by-mallory",
                                            signer: identities["mallory"]!.privateKey, signerName: "mallory")
let rogueMalloryCertificate = certificate("alice", expiration: 2_000_000_000_000, server: rogueServer, label: "alice-rogue-server-signed-by-mallory",
                                          signer: identities["mallory"]!.privateKey, signerName: "mallory")
let longIDCertificate = certificate("alice", expiration: 2_000_000_000_000, server: server, label: "alice-255-byte-id",
                                    senderID: String(repeating: "é", count: 127) + "a")

var cases: [[String: Any]] = []
func typeName(_ t: EnvelopeContentType) -> Int { Int(t.rawValue) }
let validator = CertificateValidator(trustRoot: root.publicKey)
@MainActor func openCase(_ id: String, _ envelope: [UInt8], recipient: String, multi: Bool = false, revoked: [UInt32] = [], mutation: String? = nil,
                         at clock: UInt64 = now, content: [UInt8]? = nil) {
    var c: [String: Any] = ["id": id, "op": multi ? "open_delivered" : "open", "recipient": recipient, "envelope": hex(envelope), "now": clock,
                            "revoked_server_key_ids": revoked]
    if let mutation { c["mutation"] = mutation }
    if let content { c["content"] = hex(content) }
    var v = validator
    v.revokedServerKeyIDs = Set(revoked)
    do {
        let opened = multi
            ? try MultiRecipientEnvelope.open(envelope, recipientIdentity: identities[recipient]!, validator: v, now: clock)
            : try SealedEnvelope.open(envelope, recipientIdentity: identities[recipient]!, validator: v, now: clock)
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
    var c: [String: Any] = ["id": id, "op": "seal", "sender": sender, "recipient": recipient, "content_type": typeName(type), "message": hex(message),
                            "certificate": certificateID, "ephemeral_private": hex(envelopeRandom.take()[0]), "envelope": hex(envelope)]
    if unchecked {
        c["expect_refused"] = "identity_mismatch"
        var refused = false
        do { _ = try SealedEnvelope.seal(message, contentType: type, certificate: certificate, senderIdentity: identities[sender]!,
                                         to: identities[recipient]!.identityKey, random: SeededRandom(seed: 1)) } catch { refused = error.transcriptName == "identity_mismatch" }
        precondition(refused)
    }
    cases.append(c)
    return envelope
}

// MARK: Envelopes made by hand (Docs/spec/envelope.md §5.1–§5.3), to test the opener on inputs
// an honest sealer never makes. Built from the primitives; checked against SealedEnvelope.seal.

/// `type || varint(len(certificate)) || certificate || varint(len(message)) || message`, then
/// `padding` (nil: the zero bytes up to Padmé).
func content(type: UInt8, certificate: [UInt8], message: [UInt8], padding: [UInt8]? = nil) -> [UInt8] {
    var c = [type] + varintBytes(UInt32(certificate.count)) + certificate + varintBytes(UInt32(message.count)) + message
    c += padding ?? [UInt8](repeating: 0, count: Padme.paddedLength(c.count) - c.count)
    return c
}

/// Seals `padded` from `sender` to `recipient` with ephemeral `e`; `claimedSender` replaces the
/// sender key inside the sender box (the static DH is then computed from the recipient's side).
@MainActor func craftSealed(_ padded: [UInt8], sender: String, recipient: String, ephemeral e: Curve25519.KeyAgreement.PrivateKey,
                 claimedSender: [UInt8]? = nil, lengthField: [UInt8]? = nil, ephemeralBytes: [UInt8]? = nil) -> [UInt8] {
    let recipientKey = identities[recipient]!.identityKey.publicKey
    let ePub = ephemeralBytes ?? e.publicKey.rawRepresentation
    let header = [0xE1] + (lengthField ?? varintBytes(UInt32(32 + 48 + padded.count + 16))) + ePub
    let dhE = try! e.sharedSecretFromKeyAgreement(with: recipientKey)
    let ke = try! HKDF.deriveKey(inputKeyMaterial: dhE, salt: [UInt8](), info: Array("hush-1/envelope/ephemeral".utf8) + ePub + recipientKey.rawRepresentation,
                                 outputByteCount: 64)
    let senderKey = claimedSender ?? identities[sender]!.identityKey.publicKey.rawRepresentation
    let senderBox = try! XChaChaPoly.encrypt(senderKey, key: ke.slice(0..<32), nonce: [UInt8](repeating: 0, count: 24), associatedData: header)
    // A low-order claimed key has no static DH: the opener stops there, any key will do.
    let ks: SecureBytes
    if let dhS = try? identities[recipient]!.privateKey.sharedSecretFromKeyAgreement(with: try! .init(rawRepresentation: senderKey)) {
        ks = try! HKDF.deriveKey(inputKeyMaterial: dhS, salt: ke.slice(32..<64), info: Array("hush-1/envelope/static".utf8) + senderBox,
                                 outputByteCount: 32)
    } else {
        ks = ke.slice(0..<32)
    }
    let contentBox = try! XChaChaPoly.encrypt(padded, key: ks, nonce: [UInt8](repeating: 0, count: 24), associatedData: header + senderBox)
    return header + senderBox + contentBox
}

@MainActor func craftedCase(_ id: String, _ description: String, content padded: [UInt8], sender: String = "alice", recipient: String = "bob",
                            claimedSender: [UInt8]? = nil, lengthField: [UInt8]? = nil, ephemeralBytes: [UInt8]? = nil,
                            revoked: [UInt32] = [], at clock: UInt64 = now) {
    let e = try! Curve25519.KeyAgreement.PrivateKey(using: envelopeRandom)
    _ = envelopeRandom.take()
    let envelope = craftSealed(padded, sender: sender, recipient: recipient, ephemeral: e, claimedSender: claimedSender,
                               lengthField: lengthField, ephemeralBytes: ephemeralBytes)
    openCase(id, envelope, recipient: recipient, revoked: revoked, mutation: description, at: clock, content: padded)
}

let text = Array("hello".utf8)
let kib = (0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 31) }
let e1 = sealCase("seal-5-bytes", sender: "alice", recipient: "bob", type: .message, message: text, certificate: aliceCertificate, certificateID: "alice")
// The hand-made sealer reproduces Hush's envelope from the same ephemeral key.
precondition(craftSealed(content(type: 1, certificate: aliceCertificate.serialized, message: text), sender: "alice", recipient: "bob",
                         ephemeral: try! .init(rawRepresentation: fromHex(cases.last!["ephemeral_private"] as! String))) == e1)
openCase("open-5-bytes", e1, recipient: "bob")
let e2 = sealCase("seal-1-kib", sender: "alice", recipient: "bob", type: .preKeyMessage, message: kib, certificate: aliceCertificate, certificateID: "alice")
openCase("open-1-kib", e2, recipient: "bob")
let e3 = sealCase("seal-unknown-type", sender: "alice", recipient: "bob", type: .other(42), message: [], certificate: aliceCertificate, certificateID: "alice")
openCase("open-unknown-type", e3, recipient: "bob")
openCase("wrong-recipient", e1, recipient: "carol")
let ex = sealCase("seal-expired", sender: "alice", recipient: "bob", type: .message, message: text, certificate: expiredCertificate, certificateID: "alice-expired")
openCase("expired-certificate", ex, recipient: "bob")
openCase("expired-certificate-one-ms-before", ex, recipient: "bob", mutation: "clock one millisecond before the expiration", at: now - 1)
let rg = sealCase("seal-untrusted-server", sender: "alice", recipient: "bob", type: .message, message: text, certificate: rogueCertificate, certificateID: "alice-rogue-server")
openCase("untrusted-server-key", rg, recipient: "bob")
openCase("revoked-server-key", e1, recipient: "bob", revoked: [7])
openCase("revoked-other-server-key", e1, recipient: "bob", revoked: [8, 9])
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
openCase("empty", [], recipient: "bob", mutation: "no bytes")
openCase("only-type-byte", [0xE1], recipient: "bob", mutation: "the type byte alone")
var wrongVersion = e1
wrongVersion[0] = 0xE9
openCase("wrong-version", wrongVersion, recipient: "bob", mutation: "type byte 0xE1 -> 0xE9")
var e3Form = e1
e3Form[0] = 0xE3
openCase("delivered-form-to-single-opener", e3Form, recipient: "bob", mutation: "type byte 0xE1 -> 0xE3 (the parser is chosen by the kind, not the byte)")
openCase("e-pub-top-bit", flip(34, 0x80)(e1), recipient: "bob", mutation: "top bit of the ephemeral key set (non-canonical)")
openCase("e-pub-above-p", splice(3, 32, OddKey.pPlus9)(e1), recipient: "bob", mutation: "ephemeral key replaced by p + 9 (non-canonical)")
openCase("length-non-canonical", splice(1, 2, [e1[1], e1[2] | 0x80, 0x00])(e1), recipient: "bob",
         mutation: "the length varint written with a redundant 80 00 group (the length itself is right)")
openCase("boxes-too-short", { () -> [UInt8] in let b = Array(e1.prefix(35 + 63)); return [0xE1] + varintBytes(UInt32(b.count - 35 + 32)) + Array(b[3...]) }(),
         recipient: "bob", mutation: "32 + 63 bytes after the length: under 48 + 16 for the boxes")

// Content rules (§5.1, §5.5 step 4), sealed by hand with valid boxes.
let aliceBytes = aliceCertificate.serialized
craftedCase("hand-sealed-valid", "sealed by hand exactly as Hush seals (control)", content: content(type: 1, certificate: aliceBytes, message: text))
craftedCase("content-type-0", "content type 0", content: content(type: 0, certificate: aliceBytes, message: text))
craftedCase("content-type-255", "content type 255 (reserved: passed on as other)", content: content(type: 255, certificate: aliceBytes, message: text))
do {
    let plain = content(type: 1, certificate: aliceBytes, message: text, padding: [])
    let padded = content(type: 1, certificate: aliceBytes, message: text)
    precondition(padded.count > plain.count + 1)
    var nonZero = padded
    nonZero[nonZero.count - 1] = 1
    craftedCase("padding-non-zero", "last padding byte 0x01", content: nonZero)
    craftedCase("padding-missing", "no padding (length below Padmé)", content: plain)
    craftedCase("padding-one-short", "one padding byte fewer than Padmé", content: Array(padded.dropLast()))
    craftedCase("padding-one-extra", "one zero byte more than Padmé", content: padded + [0])
    craftedCase("padding-next-size", "zero padding up to the next Padmé size", content: plain + [UInt8](repeating: 0, count: Padme.paddedLength(padded.count + 1) - plain.count))
    craftedCase("message-length-overruns", "message length 1 more than the bytes left after it", content: { () -> [UInt8] in
        var c = padded
        let at = 1 + varintBytes(UInt32(aliceBytes.count)).count + aliceBytes.count
        precondition(c[at] == UInt8(text.count))
        c[at] = UInt8(padded.count - at - 1 + 1)
        return c
    }())
    craftedCase("certificate-length-non-canonical", "certificate length written with a redundant 80 00 group", content: { () -> [UInt8] in
        let length = varintBytes(UInt32(aliceBytes.count))
        var c = [UInt8(1)] + Array(length.dropLast()) + [length.last! | 0x80, 0x00] + aliceBytes + varintBytes(UInt32(text.count)) + text
        c += [UInt8](repeating: 0, count: Padme.paddedLength(c.count) - c.count)
        return c
    }())
}
// Certificates that do not parse (§4.1): malformed_certificate.
@MainActor func senderCertificateBytes(idBytes: [UInt8], server: ServerCertificate = server, serverBytes: [UInt8]? = nil, identity: String = "alice",
                            expiration: UInt64 = 2_000_000_000_000, version: UInt8 = 0x02, signer: Curve25519.KeyAgreement.PrivateKey = serverKey,
                            idLength: [UInt8]? = nil) -> [UInt8] {
    var c = [version] + (idLength ?? varintBytes(UInt32(idBytes.count))) + idBytes + [1] + identities[identity]!.identityKey.publicKey.rawRepresentation
    for shift in stride(from: 56, through: 0, by: -8) { c.append(UInt8(truncatingIfNeeded: expiration >> UInt64(shift))) }
    c += serverBytes ?? server.serialized
    let signature = try! XEdDSA.signature(for: Array("hush-1/sender-certificate".utf8) + c, using: signer, variant: .specification,
                                          randomness: [UInt8](repeating: 3, count: 64))
    return c + signature
}
@MainActor func certificateCase(_ id: String, _ description: String, _ certificate: [UInt8], revoked: [UInt32] = [], at clock: UInt64 = now) {
    craftedCase(id, description, content: content(type: 1, certificate: certificate, message: text), revoked: revoked, at: clock)
}
certificateCase("certificate-hand-made-valid", "a sender certificate made by hand (control)", senderCertificateBytes(idBytes: Array("alice".utf8)))
certificateCase("certificate-trailing-byte", "one byte after the certificate, inside its length-prefixed field", aliceBytes + [0])
certificateCase("certificate-truncated", "the certificate's last byte removed (its field one byte shorter)", Array(aliceBytes.dropLast()))
certificateCase("certificate-version-1", "sender certificate version byte 0x01 (format 1, not read)", senderCertificateBytes(idBytes: Array("alice".utf8), version: 0x01))
certificateCase("certificate-sender-id-empty", "sender id of 0 bytes", senderCertificateBytes(idBytes: []))
certificateCase("certificate-sender-id-256", "sender id of 256 bytes", senderCertificateBytes(idBytes: [UInt8](repeating: 0x61, count: 256)))
certificateCase("certificate-sender-id-not-utf8", "sender id 'alic' + 0xFF (not UTF-8)", senderCertificateBytes(idBytes: Array("alic".utf8) + [0xFF]))
certificateCase("certificate-sender-id-overlong-utf8", "sender id with an overlong UTF-8 encoding (c0 af)", senderCertificateBytes(idBytes: [0x61, 0xC0, 0xAF]))
certificateCase("certificate-sender-id-surrogate", "sender id with an encoded surrogate (ed a0 80)", senderCertificateBytes(idBytes: [0x61, 0xED, 0xA0, 0x80]))
certificateCase("certificate-sender-id-length-non-canonical", "sender id length 5 written as 85 00",
                senderCertificateBytes(idBytes: Array("alice".utf8), idLength: [0x85, 0x00]))
certificateCase("certificate-identity-key-top-bit", "identity key with its top bit set (non-canonical)", { () -> [UInt8] in
    var c = aliceBytes; c[1 + 1 + 5 + 1 + 31] |= 0x80; return c }())
certificateCase("server-certificate-version-1", "server certificate version byte 0x01", { () -> [UInt8] in
    var c = aliceBytes; c[1 + 1 + 5 + 1 + 32 + 8] = 0x01; return c }())
certificateCase("server-certificate-key-above-p", "server key replaced by p + 9 (non-canonical)", { () -> [UInt8] in
    let at = 1 + 1 + 5 + 1 + 32 + 8 + 1 + 1
    return splice(at, 32, OddKey.pPlus9)(aliceBytes) }())
// Signatures (README.md "Signatures"): specification form only, s < L, no small-order keys.
certificateCase("certificate-255-byte-id", "a sender id of 255 bytes (the longest)", longIDCertificate.serialized)
certificateCase("sender-signature-malleated", "sender certificate signature with s + L",
                Array(aliceBytes.dropLast(64)) + malleate(Array(aliceBytes.suffix(64))))
certificateCase("server-signature-malleated", "server certificate signature with s + L", { () -> [UInt8] in
    let serverBytes = Array(server.serialized.dropLast(64)) + malleate(Array(server.serialized.suffix(64)))
    return senderCertificateBytes(idBytes: Array("alice".utf8), serverBytes: serverBytes) }())
do {
    // Signed by the second server key (Edwards sign bit 1) in libsignal's form: bit 7 of byte 63 set.
    var c = Array(secondCertificate.serialized.dropLast(64))
    c += try! XEdDSA.signature(for: Array("hush-1/sender-certificate".utf8) + c, using: secondServerKey, variant: .libsignal,
                               randomness: [UInt8](repeating: 5, count: 64))
    precondition(c[c.count - 1] & 0x80 != 0)
    certificateCase("sender-signature-libsignal-form", "sender certificate signed in libsignal's form (sign bit in byte 63): valid for libsignal, refused here", c)
    // A low-order server key, certified by the trust root: nothing verifies under it.
    for (name, key) in OddKey.lowOrder.prefix(2) {
        let lowServer = try! ServerCertificate.issue(keyID: 12, key: try! .init(rawRepresentation: key), expiration: serverExpiration,
                                                     signedBy: root, random: SeededRandom(seed: 12))
        certificateCase("server-key-low-order-\(name == "u = 0" ? "zero" : "one")", "server key \(name), certified by the trust root",
                        senderCertificateBytes(idBytes: Array("alice".utf8), server: lowServer))
    }
}
// Validation order (§4.2): each case has two faults; the earlier check's error is reported.
let longEnvelope = sealCase("seal-outlives-server", sender: "alice", recipient: "bob", type: .message, message: text, certificate: longCertificate,
                            certificateID: "alice-outlives-server")
openCase("server-certificate-expired", longEnvelope, recipient: "bob", mutation: "clock at the server certificate's expiration", at: serverExpiration)
openCase("server-certificate-one-ms-before", longEnvelope, recipient: "bob", mutation: "clock one millisecond before the server certificate's expiration",
         at: serverExpiration - 1)
openCase("order-revoked-before-server-signature", rg, recipient: "bob", revoked: [8], mutation: "rogue server certificate, its key id revoked")
let rm = sealCase("seal-rogue-server-signed-by-mallory", sender: "alice", recipient: "bob", type: .message, message: text,
                  certificate: rogueMalloryCertificate, certificateID: "alice-rogue-server-signed-by-mallory")
openCase("order-server-signature-before-sender-signature", rm, recipient: "bob")
openCase("order-server-expiry-before-sender-signature", e5, recipient: "bob", mutation: "clock at the server certificate's expiration",
         at: serverExpiration)
openCase("order-server-expiry-before-sender-expiry", e1, recipient: "bob", mutation: "clock at the server certificate's expiration (both expired)",
         at: serverExpiration)
let em = sealCase("seal-expired-signed-by-mallory", sender: "alice", recipient: "bob", type: .message, message: text,
                  certificate: expiredMalloryCertificate, certificateID: "alice-expired-signed-by-mallory")
openCase("order-sender-signature-before-expiry", em, recipient: "bob")
openCase("order-certificate-before-identity", forged, recipient: "bob", mutation: "clock at the certificate's expiration", at: 2_000_000_000_000)
craftedCase("order-padding-before-certificate", "bad padding and a certificate that does not parse", content: { () -> [UInt8] in
    var c = content(type: 1, certificate: aliceBytes + [0], message: text); c[c.count - 1] = 1; return c }())
craftedCase("order-content-type-before-certificate", "content type 0 and a revoked server key", content: content(type: 0, certificate: aliceBytes, message: text),
            revoked: [7])
// The sender key inside the sender box (§5.5 step 2).
craftedCase("sender-key-above-p", "sender key in the sender box replaced by p + 9 (non-canonical)", content: content(type: 1, certificate: aliceBytes, message: text),
            claimedSender: OddKey.pPlus9)
craftedCase("sender-key-low-order", "sender key in the sender box replaced by u = 1 (low order)", content: content(type: 1, certificate: aliceBytes, message: text),
            claimedSender: OddKey.one)

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
openCase("multi-sealed-form-to-delivered-opener", e1, recipient: "bob", multi: true, mutation: "a 0xE1 envelope given to the 0xE3 opener")
openCase("multi-truncated", Array((try! multi.delivered(to: 0)).dropLast()), recipient: "bob", multi: true, mutation: "last byte removed")
openCase("multi-payload-too-short", { () -> [UInt8] in
    let d = try! multi.delivered(to: 0); let body = Array(d[3..<(3 + 32 + 96 + 15)])
    return [0xE3] + varintBytes(UInt32(body.count)) + body }(), recipient: "bob", multi: true, mutation: "15 bytes of payload box (under 16)")

// Keys outside the prime-order subgroup (§5.5 steps 1–2).
do {
    openCase("e-pub-torsioned", splice(3, 32, OddPoints.torsioned(Array(e1[3..<35])))(e1), recipient: "bob",
             mutation: "ephemeral key torsioned (a point of order 8 added: same DH result, other bytes)")
    openCase("e-pub-twist", splice(3, 32, OddPoints.twist)(e1), recipient: "bob", mutation: "ephemeral key replaced by a point of the twist")
    craftedCase("sender-key-torsioned", "sender key in the sender box torsioned (same static DH, other bytes)",
                content: content(type: 1, certificate: aliceBytes, message: text),
                claimedSender: OddPoints.torsioned(identities["alice"]!.identityKey.publicKey.rawRepresentation))
    craftedCase("sender-key-twist", "sender key in the sender box a point of the twist", content: content(type: 1, certificate: aliceBytes, message: text),
                claimedSender: OddPoints.twist)
}

// The server's parse of the sender-to-server form (§6): `split`.
@MainActor func splitCase(_ id: String, _ bytes: [UInt8], mutation: String? = nil) {
    var c: [String: Any] = ["id": id, "op": "split", "envelope": hex(bytes)]
    if let mutation { c["mutation"] = mutation }
    do {
        let parsed = try MultiRecipientEnvelope(serialized: bytes)
        c["expect"] = "ok"
        c["delivered"] = (0..<parsed.recipientCount).map { hex(try! parsed.delivered(to: $0)) }
    } catch {
        c["expect"] = "error"
        c["error"] = error.transcriptName
    }
    cases.append(c)
}
let m = multi.serialized   // E2 | 03 | e_pub (32) | 3 × 96 | varint(len) | payload
let payloadAt = 2 + 32 + 3 * 96
splitCase("split-multi", m)
splitCase("split-wrong-type", flip(0, 0x03)(m), mutation: "type byte 0xE2 -> 0xE1")
splitCase("split-empty", [], mutation: "no bytes")
splitCase("split-zero-recipients", [0xE2, 0x00] + Array(m[2..<34]) + Array(m[payloadAt...]), mutation: "N = 0 (headers removed)")
splitCase("split-too-many-recipients", splice(1, 1, [0x04])(m), mutation: "N = 4 with room for 3 headers")
splitCase("split-count-non-canonical", splice(1, 1, [0x83, 0x00])(m), mutation: "N = 3 written as 83 00")
splitCase("split-e-pub-top-bit", flip(33, 0x80)(m), mutation: "top bit of the ephemeral key set")
splitCase("split-e-pub-above-p", splice(2, 32, OddKey.pPlus9)(m), mutation: "ephemeral key replaced by p + 9")
splitCase("split-trailing-byte", m + [0], mutation: "one byte appended")
splitCase("split-truncated", Array(m.dropLast()), mutation: "last byte removed")
splitCase("split-payload-length-non-canonical", { () -> [UInt8] in
    var n = 1
    while varintBytes(UInt32(m.count - payloadAt - n)).count != n { n += 1 }
    let length = varintBytes(UInt32(m.count - payloadAt - n))
    return Array(m[..<payloadAt]) + Array(length.dropLast()) + [length.last! | 0x80, 0x00] + Array(m[(payloadAt + n)...]) }(),
    mutation: "payload length written with a redundant 80 00 group")
splitCase("split-payload-too-short", Array(m[..<payloadAt]) + [15] + [UInt8](repeating: 0, count: 15), mutation: "a 15-byte payload box")
splitCase("split-payload-16", Array(m[..<payloadAt]) + [16] + [UInt8](repeating: 0, count: 16), mutation: "a 16-byte payload box (the shortest; it will not open)")

let envelopeFile: [String: Any] = [
    "format": "hush-envelope-vectors/2", "generator": "hush-vectors (Hush \(HushLibrary.version))",
    "description": "sealed envelopes, multi-recipient envelopes and certificates (Docs/spec/envelope.md, certificate format 2); every random draw of a seal listed",
    "trust_root": keyPair(root), "rogue_trust_root": keyPair(rogueRoot),
    "server": ["key_id": 7, "private": hex(serverKey.rawRepresentation), "public": hex(serverKey.publicKey.rawRepresentation),
               "expiration": serverExpiration, "signature_random": hex(serverSignatureRandom), "certificate": hex(server.serialized)],
    "rogue_server": ["key_id": 8, "expiration": serverExpiration, "signature_random": hex(rogueSignatureRandom), "certificate": hex(rogueServer.serialized)],
    "second_server": ["key_id": 9, "private": hex(secondServerKey.rawRepresentation), "public": hex(secondServerKey.publicKey.rawRepresentation),
                      "expiration": serverExpiration, "signature_random": hex(secondSignatureRandom), "certificate": hex(secondServer.serialized)],
    "parties": identities.keys.sorted().map { ["name": $0, "identity_key": ["private": hex(identities[$0]!.privateKey.rawRepresentation),
                                                                           "public": hex(identities[$0]!.identityKey.publicKey.rawRepresentation)]] },
    "certificates": certificates, "now": now, "cases": cases,
]
let data = try! JSONSerialization.data(withJSONObject: envelopeFile, options: [.prettyPrinted, .sortedKeys])
try! data.write(to: URL(fileURLWithPath: "\(outDirectory)/envelope.json"))
print("wrote \(outDirectory)/envelope.json (\(cases.count) cases)")
