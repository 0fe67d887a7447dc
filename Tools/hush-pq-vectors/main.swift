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

    func bundle(oneTime: Bool = true, kyber: KyberPreKey?, signedPreKeyID: UInt32? = nil) -> PostQuantumPreKeyBundle {
        let spk = signedPreKey.publicSignedPreKey
        return PostQuantumPreKeyBundle(bundle: PreKeyBundle(
            registrationID: registrationID, deviceID: 1, identityKey: identity.identityKey,
            signedPreKey: .init(id: signedPreKeyID ?? spk.id, publicKey: spk.publicKey, signature: spk.signature),
            oneTimePreKey: oneTime ? self.oneTime.publicPreKey : nil),
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
    _ label: String, bob: Bob, suite: CipherSuite, plaintext: [UInt8], oneTime: Bool, kyber: KyberPreKey?,
    signedPreKeyID: UInt32? = nil
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
    try! PQXDH.process(bob.bundle(oneTime: oneTime, kyber: kyber, signedPreKeyID: signedPreKeyID), for: bob.address, store: store, suite: suite,
                       encapsulator: encapsulator, random: ReplayRandom(base + ratchet))
    let message = try! SessionCipher.encrypt(plaintext, for: bob.address, store: store)
    let clamp = { (k: [UInt8]) in hex(try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: k).rawRepresentation) }
    return (["identity_private": hex(identity.privateKey.rawRepresentation), "registration_id": 1717,
             "base_private": clamp(base), "ratchet_private": clamp(ratchet)], kemJSON, message)
}

/// The fields of a protobuf message as (number, wire type, raw value bytes), in order: just
/// enough to rewrite the outer PreKeySignalMessage (wire types 0 and 2 only).
func protobufFields(_ bytes: ArraySlice<UInt8>) -> [(field: Int, wire: Int, value: [UInt8])] {
    var out: [(Int, Int, [UInt8])] = []
    var i = bytes.startIndex
    func varint() -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true { let b = bytes[i]; i += 1; v |= UInt64(b & 0x7F) << shift; shift += 7; if b < 0x80 { return v } }
    }
    while i < bytes.endIndex {
        let key = varint()
        let wire = Int(key & 7)
        if wire == 0 { let start = i; _ = varint(); out.append((Int(key >> 3), 0, Array(bytes[start..<i]))) }
        else { let n = Int(varint()); out.append((Int(key >> 3), 2, Array(bytes[i..<i + n]))); i += n }
    }
    return out
}

func varintBytes(_ value: UInt64) -> [UInt8] {
    var v = value, out: [UInt8] = []
    while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
    return out + [UInt8(v)]
}

func protobufMessage(_ fields: [(field: Int, wire: Int, value: [UInt8])]) -> [UInt8] {
    fields.flatMap { f in varintBytes(UInt64(f.field << 3 | f.wire)) + (f.wire == 2 ? varintBytes(UInt64(f.value.count)) : []) + f.value }
}

/// A version-4 PreKeySignalMessage with its outer fields rewritten by `edit`.
func rewriteV4(_ message: [UInt8], version: UInt8 = 0x44, _ edit: (inout [(field: Int, wire: Int, value: [UInt8])]) -> Void) -> [UInt8] {
    var fields = protobufFields(message.dropFirst())
    edit(&fields)
    return [version] + protobufMessage(fields)
}

/// `message` with the bytes of `key` (Alice's base key, raw 32 bytes) replaced by `with`.
func replacing(_ key: [UInt8], in message: [UInt8], with replacement: [UInt8]) -> [UInt8] {
    var out = message
    let range = out.firstRange(of: key)!
    out.replaceSubrange(range, with: replacement)
    return out
}

/// The u = 0 point: of small order, refused by every prime-order check.
let lowOrderKey = [UInt8](repeating: 0, count: 32)

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
    // 5. The policy before the signed prekey lookup (§5.3 step 4 before step 5): an X3DH
    // message naming a signed prekey Bob does not have.
    let strippedUnknown = aliceMessage("stripped-unknown-spk/\(suite)", bob: bob, suite: suite, plaintext: plaintext, oneTime: false,
                                       kyber: nil, signedPreKeyID: 8)
    rejections.append(["name": "x3dh_unknown_signed_prekey_refused_by_policy", "message": hex(strippedUnknown.message.serialized),
                       "error": "invalid_version", "after_main": false, "policy": "require-pqxdh"])
    // 6. The Kyber prekey lookup before the DHs (§5.3 step 7 before step 9): the unknown-id
    // message with a low-order base key.
    let unknownBase = try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: fixed("unknown/\(suite)/base")).publicKey.rawRepresentation
    rejections.append(["name": "low_order_base_key_unknown_kyber_prekey", "error": "unknown_prekey", "after_main": false,
                       "message": hex(replacing(unknownBase, in: unknown.message.serialized, with: lowOrderKey))])
    // 7. The parsing rules of §5.1 / §5.2, on the main message.
    let m = main.message.serialized
    func malformed(_ name: String, _ bytes: [UInt8], _ error: String = "malformed") {
        rejections.append(["name": name, "message": hex(bytes), "error": error, "after_main": false])
    }
    switch suite {
    case .signalV3:
        malformed("v4_missing_kyber_prekey_id", rewriteV4(m) { $0.removeAll { $0.field == 7 } })
        malformed("v4_missing_kyber_ciphertext", rewriteV4(m) { $0.removeAll { $0.field == 8 } })
        malformed("v4_kyber_ciphertext_type_byte", rewriteV4(m) { f in
            let i = f.firstIndex { $0.field == 8 }!; f[i].value[0] = 0x09 })
        malformed("v4_kyber_ciphertext_one_byte_short", rewriteV4(m) { f in
            let i = f.firstIndex { $0.field == 8 }!; f[i].value.removeLast() })
        malformed("v4_kyber_prekey_id_length_delimited", rewriteV4(m) { f in
            let i = f.firstIndex { $0.field == 7 }!; f[i].wire = 2 })
        malformed("v4_kyber_ciphertext_as_varint", rewriteV4(m) { f in
            let i = f.firstIndex { $0.field == 8 }!; f[i] = (8, 0, [0x01]) })
        // A version-3 outer byte: fields 7 and 8 are skipped, the inner version 4 differs.
        malformed("v3_outer_version_with_kyber_fields", [0x33] + m.dropFirst(), "invalid_version")
        malformed("v5_outer_version", [0x54] + m.dropFirst(), "invalid_version")
    case .hush1:
        var flags = m
        flags[1] |= 0x04
        malformed("flag_bit_2_set", flags)
        let ctStart = m.firstRange(of: try! Hex.decode(main.kem!["ciphertext"] as! String))!.lowerBound
        malformed("kem_ciphertext_truncated", Array(m[..<(ctStart + 1000)]))
        malformed("no_inner_message", Array(m[..<(ctStart + MLKEM1024.ciphertextByteCount)]))
    }
    // Accepted, for contrast: the last-resort Kyber prekey, twice.
    let lastResort1 = aliceMessage("last-resort-1/\(suite)", bob: bob, suite: suite, plaintext: plaintext, oneTime: false, kyber: bob.lastResort.publicKyberPreKey)
    let lastResort2 = aliceMessage("last-resort-2/\(suite)", bob: bob, suite: suite, plaintext: plaintext, oneTime: false, kyber: bob.lastResort.publicKyberPreKey)
    // Bundle rejection: a Kyber prekey signed over another key.
    let forgedKyber: [String: Any] = ["id": 200, "public": hex(bob.lastResort.keyPair.publicKey.rawRepresentation), "signature": hex(bob.kyber.signature)]
    let badSignature: [String: Any] = ["name": "bad_kyber_prekey_signature", "error": "bad_signature", "kyber_prekey": forgedKyber]
    // §4 step 1: Alice's own policy refuses a bundle without a Kyber prekey.
    let strippedBundle: [String: Any] = ["name": "stripped_bundle_refused_by_policy", "error": "malformed", "policy": "require-pqxdh"]
    // §4: an `ek` failing the modulus check (its first coefficient 0xFFF ≥ q), correctly signed.
    var outOfRange = bob.kyber.keyPair.publicKey.rawRepresentation
    outOfRange[0] = 0xFF
    outOfRange[1] |= 0x0F
    let outOfRangeSignature = try! bob.identity.signature(for: [0x08] + outOfRange, using: ReplayRandom(fixed("bob/kyber-out-of-range/sig", 64)))
    let badModulus: [String: Any] = ["name": "kyber_public_key_out_of_range", "error": "bad_signature",
        "kyber_prekey": ["id": 200, "public": hex(outOfRange), "signature": hex(outOfRangeSignature)]]
    // §4 steps 2 and 4: trust before the Kyber signature (Alice already trusts another key for Bob).
    let otherIdentity = IdentityKeyPair(privateKey: x25519("mallory/identity")).identityKey
    let untrusted: [String: Any] = ["name": "untrusted_identity_before_kyber_signature", "error": "untrusted_identity",
        "kyber_prekey": forgedKyber, "alice_trusted_identity": hex(otherIdentity.serialized)]
    // §4 steps 4 and 5: the Kyber signature before the prime-order checks.
    let lowOrderOneTime: [String: Any] = ["name": "kyber_signature_before_low_order_one_time_prekey", "error": "bad_signature",
        "kyber_prekey": forgedKyber, "one_time_prekey_public": hex(lowOrderKey)]
    let lowOrderOnly: [String: Any] = ["name": "low_order_one_time_prekey", "error": "malformed",
        "kyber_prekey": ["id": 200, "public": hex(bob.kyber.keyPair.publicKey.rawRepresentation), "signature": hex(bob.kyber.signature)],
        "one_time_prekey_public": hex(lowOrderKey)]
    return [
        "format": "hush-pqxdh-vectors/1", "suite": suite.description,
        "description": "PQXDH (Docs/spec/pqxdh.md) in the \(suite) suite: Alice's first message to Bob with a one-time X25519 prekey and a one-time Kyber prekey, and the rejection cases of §7.",
        "alice": main.json, "bob": bob.json, "kem": main.kem!, "plaintext": hex(plaintext),
        "message_kind": main.message.kind.rawValue, "message": hex(main.message.serialized),
        "rejections": rejections,
        "accepted": [["name": "last_resort_kyber_prekey_first", "message": hex(lastResort1.message.serialized)],
                     ["name": "last_resort_kyber_prekey_again", "message": hex(lastResort2.message.serialized)]],
        "bundle_rejections": [badSignature, strippedBundle, badModulus, untrusted, lowOrderOneTime, lowOrderOnly],
    ]
}

let directory = URL(fileURLWithPath: "TestVectors/pqxdh")
try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
for suite in CipherSuite.allCases {
    let data = try! JSONSerialization.data(withJSONObject: scenario(suite: suite), options: [.prettyPrinted, .sortedKeys])
    try! data.write(to: directory.appendingPathComponent("\(suite).json"))
    print("wrote TestVectors/pqxdh/\(suite).json")
}
