// Writes TestVectors/pqxdh/{signal-v3,hush-1}.json (Docs/spec/pqxdh.md §7) from fixed seeds:
// every key, KEM seed and randomness is listed in the file. Run from the repository root:
//   swift run hush-pq-vectors
@_spi(HushPQ) import HushPQ
import Foundation

func hex(_ b: some ContiguousByteBuffer) -> String { Hex.encode(b) }

/// Fixed, distinct 32-byte values: SHA-256("hush-pq-vectors/" + label).
func fixed(_ label: String, _ count: Int = 32) -> [UInt8] {
    var out: [UInt8] = []
    var i = 0
    while out.count < count {
        out += SHA256.hash(Array("hush-pq-vectors/\(label)/\(i)".utf8))
        i += 1
    }
    return Array(out.prefix(count))
}

func x25519(_ label: String) -> Curve25519.KeyAgreement.PrivateKey {
    try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: fixed(label))
}

struct Bob {
    let identity: IdentityKeyPair
    let registrationID: UInt32 = 4242
    let signedPreKey: SignedPreKeyRecord
    let oneTime: PreKeyRecord
    let kyber: KyberPreKeyRecord
    let lastResort: KyberPreKeyRecord
    let address = ProtocolAddress(name: "bob", deviceID: 1)

    init() {
        identity = IdentityKeyPair(privateKey: x25519("bob/identity"))
        let spk = x25519("bob/signed-prekey")
        signedPreKey = SignedPreKeyRecord(id: 7, timestamp: 0, keyPair: spk,
            signature: try! identity.signature(for: spk.publicKey.signalRepresentation, using: ReplayRandom(fixed("bob/spk-sig", 64))))
        oneTime = PreKeyRecord(id: 100, keyPair: x25519("bob/one-time-prekey"))
        let identity = self.identity
        func kyberRecord(_ id: UInt32, _ kind: KyberPreKeyRecord.Kind, _ label: String) -> KyberPreKeyRecord {
            let key = try! MLKEM1024.PrivateKey(seed: fixed("\(label)/seed", 64))
            let sig = try! identity.signature(for: [0x08] + key.publicKey.rawRepresentation, using: ReplayRandom(fixed("\(label)/sig", 64)))
            return KyberPreKeyRecord(id: id, kind: kind, timestamp: 0, keyPair: key, signature: sig)
        }
        kyber = kyberRecord(200, .oneTime, "bob/kyber-one-time")
        lastResort = kyberRecord(300, .lastResort, "bob/kyber-last-resort")
    }

    func bundle(oneTime: Bool = true, kyber: KyberPreKey?) -> PostQuantumPreKeyBundle {
        PostQuantumPreKeyBundle(bundle: PreKeyBundle(
            registrationID: registrationID, deviceID: 1, identityKey: identity.identityKey,
            signedPreKey: signedPreKey.publicSignedPreKey, oneTimePreKey: oneTime ? self.oneTime.publicPreKey : nil),
            kyberPreKey: kyber)
    }

    func kyberJSON(_ r: KyberPreKeyRecord) -> [String: Any] {
        ["id": r.id, "kind": r.kind == .oneTime ? "one-time" : "last-resort", "seed": r.keyPair.seed.withUnsafeBytes { Hex.encode(Array($0)) },
         "public": hex(r.keyPair.publicKey.rawRepresentation), "signature": hex(r.signature)]
    }

    var json: [String: Any] {
        ["identity_private": hex(identity.privateKey.rawRepresentation), "registration_id": registrationID,
         "signed_prekey": ["id": signedPreKey.id, "private": hex(signedPreKey.keyPair.rawRepresentation), "signature": hex(signedPreKey.signature)],
         "one_time_prekey": ["id": oneTime.id, "private": hex(oneTime.keyPair.rawRepresentation)],
         "kyber_prekey": kyberJSON(kyber), "last_resort_kyber_prekey": kyberJSON(lastResort)]
    }
}

/// One of Alice's sessions: fixed identity and registration id, base and ratchet keys and KEM
/// randomness from `label`. Returns her keys (JSON), the KEM record and the first message.
func aliceMessage(
    _ label: String, bob: Bob, suite: CipherSuite, plaintext: [UInt8], oneTime: Bool, kyber: KyberPreKey?
) -> (json: [String: Any], kem: [String: Any]?, message: CiphertextMessage) {
    let identity = IdentityKeyPair(privateKey: x25519("alice/identity"))
    let store = InMemorySignalProtocolStore(identity: identity, registrationID: 1717)
    let base = fixed("\(label)/base"), ratchet = fixed("\(label)/ratchet")
    var kemJSON: [String: Any]?
    var encapsulator = RecordedEncapsulator([])
    if let kyber {
        let m = fixed("\(label)/kem-m")
        let (ct, ss) = seededEncapsulation(ek: kyber.publicKey.rawRepresentation, m: m)
        encapsulator = RecordedEncapsulator(MLKEM1024.Encapsulation(ciphertext: ct, sharedSecret: try! MLKEM1024.SharedSecret(copying: ss)))
        kemJSON = ["m": hex(m), "ciphertext": hex(ct), "shared_secret": hex(ss)]
    }
    try! PQXDH.process(bob.bundle(oneTime: oneTime, kyber: kyber), for: bob.address, store: store, suite: suite,
                       encapsulator: encapsulator, random: ReplayRandom(base + ratchet))
    let message = try! SessionCipher.encrypt(plaintext, for: bob.address, store: store)
    let clamp = { (k: [UInt8]) in hex(try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: k).rawRepresentation) }
    return (["identity_private": hex(identity.privateKey.rawRepresentation), "registration_id": 1717,
             "base_private": clamp(base), "ratchet_private": clamp(ratchet)], kemJSON, message)
}

func scenario(suite: CipherSuite) -> [String: Any] {
    let bob = Bob()
    let plaintext = Array("PQXDH first message, \(suite)".utf8)
    let main = aliceMessage("main/\(suite)", bob: bob, suite: suite, plaintext: plaintext, oneTime: true, kyber: bob.kyber.publicKyberPreKey)
    var rejections: [[String: Any]] = []
    // 1. One bit of the KEM ciphertext flipped: implicit rejection, then the MAC / AEAD fails.
    var flipped = main.message.serialized
    let ct = try! Hex.decode(main.kem!["ciphertext"] as! String)
    let at = flipped.firstRange(of: ct)!.lowerBound + 100
    flipped[at] ^= 0x01
    rejections.append(["name": "kem_ciphertext_bit_flipped", "message": hex(flipped), "error": "bad_mac", "after_main": false])
    // 2. A Kyber prekey id Bob does not have (the signature covers the key, not its id).
    let renamed = KyberPreKey(id: 999, publicKey: bob.kyber.keyPair.publicKey, signature: bob.kyber.signature)
    let unknown = aliceMessage("unknown/\(suite)", bob: bob, suite: suite, plaintext: plaintext, oneTime: false, kyber: renamed)
    rejections.append(["name": "unknown_kyber_prekey", "message": hex(unknown.message.serialized), "error": "unknown_prekey", "after_main": false])
    // 3. The one-time Kyber prekey again, in another session, after the main message used it.
    let reused = aliceMessage("reused/\(suite)", bob: bob, suite: suite, plaintext: plaintext, oneTime: false, kyber: bob.kyber.publicKyberPreKey)
    rejections.append(["name": "reused_one_time_kyber_prekey", "message": hex(reused.message.serialized), "error": "unknown_prekey", "after_main": true])
    // 4. An X3DH message (the bundle stripped of its Kyber prekey) to a Bob that requires PQXDH.
    let stripped = aliceMessage("stripped/\(suite)", bob: bob, suite: suite, plaintext: plaintext, oneTime: false, kyber: nil)
    rejections.append(["name": "x3dh_refused_by_policy", "message": hex(stripped.message.serialized), "error": "invalid_version",
                       "after_main": false, "policy": "require-pqxdh"])
    // Accepted, for contrast: the last-resort Kyber prekey, twice.
    let lastResort1 = aliceMessage("last-resort-1/\(suite)", bob: bob, suite: suite, plaintext: plaintext, oneTime: false, kyber: bob.lastResort.publicKyberPreKey)
    let lastResort2 = aliceMessage("last-resort-2/\(suite)", bob: bob, suite: suite, plaintext: plaintext, oneTime: false, kyber: bob.lastResort.publicKyberPreKey)
    // Bundle rejection: a Kyber prekey signed over another key.
    let badSignature: [String: Any] = ["name": "bad_kyber_prekey_signature", "error": "bad_signature",
        "kyber_prekey": ["id": 200, "public": hex(bob.lastResort.keyPair.publicKey.rawRepresentation), "signature": hex(bob.kyber.signature)]]
    return [
        "format": "hush-pqxdh-vectors/1", "suite": suite.description,
        "description": "PQXDH (Docs/spec/pqxdh.md) in the \(suite) suite: Alice's first message to Bob with a one-time X25519 prekey and a one-time Kyber prekey, and the rejection cases of §7.",
        "alice": main.json, "bob": bob.json, "kem": main.kem!, "plaintext": hex(plaintext),
        "message_kind": main.message.kind.rawValue, "message": hex(main.message.serialized),
        "rejections": rejections,
        "accepted": [["name": "last_resort_kyber_prekey_first", "message": hex(lastResort1.message.serialized)],
                     ["name": "last_resort_kyber_prekey_again", "message": hex(lastResort2.message.serialized)]],
        "bundle_rejections": [badSignature],
    ]
}

let directory = URL(fileURLWithPath: "TestVectors/pqxdh")
try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
for suite in CipherSuite.allCases {
    let data = try! JSONSerialization.data(withJSONObject: scenario(suite: suite), options: [.prettyPrinted, .sortedKeys])
    try! data.write(to: directory.appendingPathComponent("\(suite).json"))
    print("wrote TestVectors/pqxdh/\(suite).json")
}
