import Hush
@_spi(HushPQ) import HushPQ

/// `hush-pqxdh-vectors/1` (`Docs/spec/pqxdh.md` §7): one PQXDH scenario per file, replayed
/// through HushPQ in both roles. Cases: `alice` (the first message byte for byte from the
/// listed keys and the recorded encapsulation), `bob` (it decrypts, consuming the one-time
/// prekeys), each rejection (from a fresh Bob: the error, and Bob's stores unchanged), each
/// accepted message, and each bundle rejection (Alice refuses the bundle).
enum PQXDHVectors {
    static let format = "hush-pqxdh-vectors/1"

    struct Scenario {
        let suite: CipherSuite
        let alice: Fields, bob: Fields, kem: Fields
        let plaintext: [UInt8], message: [UInt8], kind: CiphertextMessage.Kind
    }

    static func run(_ root: Fields, report: inout FileReport) throws(VectorError) {
        let suiteName = try root.string("suite")
        guard let suite = CipherSuite.allCases.first(where: { $0.description == suiteName }) else {
            throw .badValue(field: "suite", reason: "unknown suite \(suiteName)")
        }
        report.format = "\(format) \(suiteName)"
        guard let kind = CiphertextMessage.Kind(rawValue: try root.int("message_kind")) else {
            throw .badValue(field: "message_kind", reason: "unknown kind")
        }
        let s = Scenario(
            suite: suite, alice: try Fields(root.object["alice"], name: "alice"), bob: try Fields(root.object["bob"], name: "bob"),
            kem: try Fields(root.object["kem"], name: "kem"), plaintext: try root.hex("plaintext"), message: try root.hex("message"),
            kind: kind)
        report.run("alice") { () throws(VectorError) -> CaseOutcome in
            let (store, bundle, address) = try aliceSide(s)
            let kem = try encapsulation(s.kem)
            do {
                try PQXDH.process(bundle, for: address, store: store, suite: suite, encapsulator: RecordedEncapsulator(kem),
                                  random: ReplayRandom(try s.alice.hex("base_private") + s.alice.hex("ratchet_private")))
                let sent = try SessionCipher.encrypt(s.plaintext, for: address, store: store)
                guard sent.kind == s.kind, sent.serialized == s.message else { return .failed("first message differs") }
                guard store.loadSession(for: address)?.establishment == .pqxdh else { return .failed("session not recorded as PQXDH") }
                return .passed
            } catch { return .failed("\(error)") }
        }
        report.run("bob") { () throws(VectorError) -> CaseOutcome in
            let bob = try bobSide(s)
            do {
                let plaintext = try bob.receive(s.message, kind: s.kind, policy: .requirePQXDH)
                guard plaintext == s.plaintext else { return .failed("plaintext differs") }
                guard try bob.kyber.loadKyberPreKey(id: UInt32(try bob.kyberID)) == nil else { return .failed("one-time Kyber prekey kept") }
                guard bob.store.loadSession(for: bob.alice)?.establishment == .pqxdh else { return .failed("session not recorded as PQXDH") }
                return .passed
            } catch let error as SignalProtocolError { return .failed("\(error)") } catch { return .failed("\(error)") }
        }
        for rejection in try root.objects("rejections") {
            let name = try rejection.string("name")
            report.run(name) { () throws(VectorError) -> CaseOutcome in
                let bob = try bobSide(s)
                let policy: PostQuantumPolicy = (try? rejection.string("policy")) == "require-pqxdh" ? .requirePQXDH : .acceptEither
                if rejection.bool("after_main", default: false) {
                    do { _ = try bob.receive(s.message, kind: s.kind, policy: policy) } catch { return .failed("main message: \(error)") }
                }
                let before = bob.fingerprint()
                let expected = try rejection.string("error")
                do {
                    _ = try bob.receive(try rejection.hex("message"), kind: s.kind, policy: policy)
                    return .failed("accepted; expected \(expected)")
                } catch let error as SignalProtocolError {
                    guard error.transcriptName == expected else { return .failed("\(error) (\(error.transcriptName)); expected \(expected)") }
                } catch { return .failed("\(error)") }
                guard bob.fingerprint() == before else { return .failed("a failed message changed Bob's stores") }
                return .passed
            }
        }
        for accepted in (try? root.objects("accepted")) ?? [] {
            let name = try accepted.string("name")
            report.run(name) { () throws(VectorError) -> CaseOutcome in
                // Every accepted message goes to one Bob in order: a last-resort key serves again.
                let bob = try bobSide(s)
                do {
                    for other in try root.objects("accepted") {
                        let plaintext = try bob.receive(try other.hex("message"), kind: s.kind, policy: .requirePQXDH)
                        guard plaintext == s.plaintext else { return .failed("plaintext differs") }
                        if try other.string("name") == name { return .passed }
                    }
                    return .failed("not found")
                } catch let error as VectorError { throw error } catch { return .failed("\(error)") }
            }
        }
        for rejection in (try? root.objects("bundle_rejections")) ?? [] {
            report.run(try rejection.string("name")) { () throws(VectorError) -> CaseOutcome in
                try bundleRejection(rejection, s)
            }
        }
    }

    /// A bundle rejection (§7 step 5): Bob's bundle with the case's Kyber prekey (none when
    /// absent), optionally another one-time prekey public key, refused by an Alice who may
    /// already trust another identity for Bob, under the case's policy.
    static func bundleRejection(_ rejection: Fields, _ s: Scenario) throws(VectorError) -> CaseOutcome {
        let (store, bundle, address) = try aliceSide(s)
        let expected = try rejection.string("error")
        let policy: PostQuantumPolicy = (try? rejection.string("policy")) == "require-pqxdh" ? .requirePQXDH : .acceptEither
        var kyber: KyberPreKey?
        if rejection.object["kyber_prekey"] != nil {
            let k = try Fields(rejection.object["kyber_prekey"], name: "kyber_prekey")
            // An `ek` failing §2's checks cannot be in a bundle: refused as `bad_signature` (§4).
            guard let key = try? MLKEM1024.PublicKey(rawRepresentation: try k.hex("public")) else {
                return expected == "bad_signature" ? .passed : .failed("undecodable ek; expected \(expected)")
            }
            kyber = KyberPreKey(id: UInt32(try k.int("id")), publicKey: key, signature: try k.hex("signature"))
        }
        var x3dh = bundle.bundle
        if let u = try? rejection.hex("one_time_prekey_public") {
            let key: Curve25519.KeyAgreement.PublicKey
            do { key = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: u) } catch { throw .badValue(field: "one_time_prekey_public", reason: "\(error)") }
            x3dh = PreKeyBundle(registrationID: x3dh.registrationID, deviceID: x3dh.deviceID, identityKey: x3dh.identityKey,
                                signedPreKey: x3dh.signedPreKey, oneTimePreKey: .init(id: x3dh.oneTimePreKey!.id, publicKey: key))
        }
        if let trusted = try? rejection.hex("alice_trusted_identity") {
            let identity: IdentityKey
            do { identity = try IdentityKey(serialized: trusted) } catch { throw .badValue(field: "alice_trusted_identity", reason: "\(error)") }
            _ = store.saveIdentity(identity, for: address)
        }
        let kem = try encapsulation(s.kem)
        let encapsulator = RecordedEncapsulator(kem)
        do throws(SignalProtocolError) {
            try PQXDH.process(PostQuantumPreKeyBundle(bundle: x3dh, kyberPreKey: kyber), for: address, store: store, suite: s.suite,
                              policy: policy, encapsulator: encapsulator, random: ReplayRandom([UInt8](repeating: 1, count: 64)))
            return .failed("bundle accepted")
        } catch {
            guard error.transcriptName == expected else { return .failed("\(error); expected \(expected)") }
            guard store.loadSession(for: address) == nil else { return .failed("a session was stored") }
            // Nothing was encapsulated: the recorded pair is still there.
            if let kyber, (try? encapsulator.encapsulate(to: kyber.publicKey)) == nil { return .failed("encapsulated before refusing") }
            return .passed
        }
    }

    // MARK: - Building the parties

    static func x25519(_ f: Fields, _ key: String) throws(VectorError) -> Curve25519.KeyAgreement.PrivateKey {
        let bytes = try f.hex(key)
        do { return try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: bytes) } catch { throw .badValue(field: key, reason: "\(error)") }
    }

    static func kemPublic(_ bytes: [UInt8]) throws(VectorError) -> MLKEM1024.PublicKey {
        do { return try MLKEM1024.PublicKey(rawRepresentation: bytes) } catch { throw .badValue(field: "public", reason: "\(error)") }
    }

    static func encapsulation(_ kem: Fields) throws(VectorError) -> MLKEM1024.Encapsulation {
        let secret: MLKEM1024.SharedSecret
        do { secret = try MLKEM1024.SharedSecret(copying: try kem.hex("shared_secret")) } catch { throw .badValue(field: "shared_secret", reason: "\(error)") }
        return MLKEM1024.Encapsulation(ciphertext: try kem.hex("ciphertext"), sharedSecret: secret)
    }

    static func kyberRecord(_ f: Fields) throws(VectorError) -> KyberPreKeyRecord {
        let key: MLKEM1024.PrivateKey
        do { key = try MLKEM1024.PrivateKey(seed: try f.hex("seed")) } catch { throw .badValue(field: "seed", reason: "\(error)") }
        guard key.publicKey.rawRepresentation == (try f.hex("public")) else { throw .badValue(field: "public", reason: "not the seed's key") }
        return KyberPreKeyRecord(id: UInt32(try f.int("id")), kind: try f.string("kind") == "last-resort" ? .lastResort : .oneTime,
                                 timestamp: 0, keyPair: key, signature: try f.hex("signature"))
    }

    /// Bob's public bundle as Alice sees it, and Alice's store.
    static func aliceSide(_ s: Scenario) throws(VectorError) -> (InMemorySignalProtocolStore, PostQuantumPreKeyBundle, ProtocolAddress) {
        let identity = IdentityKeyPair(privateKey: try x25519(s.alice, "identity_private"))
        let store = InMemorySignalProtocolStore(identity: identity, registrationID: UInt32(try s.alice.int("registration_id")))
        let bobIdentity = IdentityKeyPair(privateKey: try x25519(s.bob, "identity_private"))
        let spk = try Fields(s.bob.object["signed_prekey"], name: "signed_prekey")
        let otk = try Fields(s.bob.object["one_time_prekey"], name: "one_time_prekey")
        let kyber = try kyberRecord(try Fields(s.bob.object["kyber_prekey"], name: "kyber_prekey"))
        let bundle = PreKeyBundle(
            registrationID: UInt32(try s.bob.int("registration_id")), deviceID: 1, identityKey: bobIdentity.identityKey,
            signedPreKey: .init(id: UInt32(try spk.int("id")), publicKey: try x25519(spk, "private").publicKey, signature: try spk.hex("signature")),
            oneTimePreKey: .init(id: UInt32(try otk.int("id")), publicKey: try x25519(otk, "private").publicKey))
        return (store, PostQuantumPreKeyBundle(bundle: bundle, kyberPreKey: kyber.publicKyberPreKey), ProtocolAddress(name: "bob", deviceID: 1))
    }

    final class Bob {
        let store: InMemorySignalProtocolStore
        let kyber = InMemoryKyberPreKeyStore()
        let alice = ProtocolAddress(name: "alice", deviceID: 1)
        let kyberFields: Fields
        var kyberID: Int { get throws(VectorError) { try kyberFields.int("id") } }

        init(_ s: Scenario) throws(VectorError) {
            let identity = IdentityKeyPair(privateKey: try x25519(s.bob, "identity_private"))
            store = InMemorySignalProtocolStore(identity: identity, registrationID: UInt32(try s.bob.int("registration_id")))
            let spk = try Fields(s.bob.object["signed_prekey"], name: "signed_prekey")
            store.storeSignedPreKey(SignedPreKeyRecord(id: UInt32(try spk.int("id")), timestamp: 0, keyPair: try x25519(spk, "private"),
                                                       signature: try spk.hex("signature")))
            let otk = try Fields(s.bob.object["one_time_prekey"], name: "one_time_prekey")
            store.storePreKey(PreKeyRecord(id: UInt32(try otk.int("id")), keyPair: try x25519(otk, "private")))
            kyberFields = try Fields(s.bob.object["kyber_prekey"], name: "kyber_prekey")
            try? kyber.storeKyberPreKey(try PQXDHVectors.kyberRecord(kyberFields))
            if s.bob.has("last_resort_kyber_prekey") {
                try? kyber.storeKyberPreKey(try PQXDHVectors.kyberRecord(try Fields(s.bob.object["last_resort_kyber_prekey"], name: "last_resort_kyber_prekey")))
            }
        }

        func receive(_ bytes: [UInt8], kind: CiphertextMessage.Kind, policy: PostQuantumPolicy) throws -> [UInt8] {
            // An X3DH message is of the suite's plain prekey kind; the kind is the same.
            let message = try PQXDH.message(kind: kind, serialized: bytes)
            return try PQXDH.decrypt(message, from: alice, store: store, kyberStore: kyber, policy: policy,
                                     random: ReplayRandom([UInt8](repeating: 7, count: 32)))
        }

        /// What a failed message must leave unchanged: prekeys, Kyber prekeys, the session.
        func fingerprint() -> String {
            let session = store.loadSession(for: alice).map { $0.serialized().withUnsafeBytes { Hex.encode(Array($0)) } } ?? "none"
            return "\(store.loadPreKey(id: 100) != nil) \(kyber.ids) \(session)"
        }
    }

    static func bobSide(_ s: Scenario) throws(VectorError) -> Bob { try Bob(s) }
}
