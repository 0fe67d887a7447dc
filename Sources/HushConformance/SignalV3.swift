import Hush

/// Signal v3 session transcripts made by libsignal-protocol-c (`signal-v3-session-vectors/1`,
/// described in the shared vectors' FORMAT.md).
///
/// Each party's listed keys are checked (key pairs match, signed prekey signatures are
/// reproduced byte for byte from their listed randomness). Then every step is replayed with
/// Hush's protocol layer, each party with its own in-memory stores and the listed keys fed in
/// as its randomness:
/// - `process_bundle` must succeed or fail as listed, and draw exactly the listed base and
///   ratchet keys;
/// - `encrypt` must produce the listed ciphertext byte for byte, of the listed type;
/// - `decrypt` must give the listed plaintext (and ratchet to the listed key, or not at all)
///   or fail with the listed error, and a failing step must leave the party's stores
///   exactly as they were.
/// - `group_create` must draw the listed key id, chain key and signing key and produce the
///   listed distribution message; `group_encrypt` must produce the listed SenderKeyMessage
///   from the listed signature randomness; `group_process`/`group_decrypt` as above.
enum SignalV3 {
    static let format = "signal-v3-session-vectors/1"
    /// The same transcript format for Hush's own hush-1 suite (`TestVectors/hush-1/`): a
    /// `suite` field names the suite, message types are `hush` and `hush-prekey`.
    static let hushFormat = "hush-session-vectors/1"

    static func run(_ root: Fields, report: inout FileReport) throws(VectorError) {
        let suite: CipherSuite
        switch (try root.string("format"), try? root.string("suite")) {
        case (format, _): suite = .signalV3
        case (hushFormat, "hush-1"): suite = .hush1
        default: throw .badValue(field: "suite", reason: "unknown suite")
        }
        report.format = "\(try root.string("format")) \((try? root.string("scenario")) ?? "?")"
        var parties: [String: Party] = [:]
        for party in try root.objects("parties") {
            let name = (try? party.string("name")) ?? "?"
            checkKeys(of: party, name: name, report: &report)
            parties[name] = try Party(party)
        }
        let steps = try root.array("steps")
        var ciphertexts: [Int: [UInt8]] = [:]
        for (index, any) in steps.enumerated() {
            let step = try Fields(any, name: "steps[\(index)]")
            let op = (try? step.string("op")) ?? "?"
            report.run("step.\(index).\(op)") { () throws(VectorError) -> CaseOutcome in
                try replay(step, op: op, index: index, parties: parties, ciphertexts: &ciphertexts, suite: suite)
            }
        }
    }

    // MARK: Parties

    /// One party: its address and stores.
    final class Party {
        let address: ProtocolAddress
        let store: InMemorySignalProtocolStore

        init(_ fields: Fields) throws(VectorError) {
            let address = try Fields(fields.object["address"], name: "address")
            let deviceID = try address.int("device_id")
            guard let device = UInt32(exactly: deviceID) else { throw .badValue(field: "device_id", reason: "out of range") }
            self.address = ProtocolAddress(name: try address.string("name"), deviceID: device)
            let identity = try Fields(fields.object["identity_key"], name: "identity_key")
            let identityKey = try SignalV3.privateKey(try identity.hex("private"), field: "identity_key.private")
            store = InMemorySignalProtocolStore(
                identity: IdentityKeyPair(privateKey: identityKey),
                registrationID: try SignalV3.uint32(fields, "registration_id"))
            for spk in try fields.objects("signed_prekeys") {
                store.storeSignedPreKey(SignedPreKeyRecord(
                    id: try SignalV3.uint32(spk, "id"), timestamp: 0,
                    keyPair: try SignalV3.privateKey(try spk.hex("private"), field: "signed_prekeys.private"),
                    signature: try spk.hex("signature")))
            }
            for otk in try fields.objects("one_time_prekeys") {
                store.storePreKey(PreKeyRecord(
                    id: try SignalV3.uint32(otk, "id"),
                    keyPair: try SignalV3.privateKey(try otk.hex("private"), field: "one_time_prekeys.private")))
            }
        }
    }

    static func checkKeys(of party: Fields, name: String, report: inout FileReport) {
        guard let identity = try? Fields(party.object["identity_key"], name: "identity_key") else {
            report.record("\(name).identity", .failed("missing identity_key"))
            return
        }
        report.run("\(name).identity") { () throws(VectorError) -> CaseOutcome in
            keyPairOutcome(try identity.hex("private"), try identity.hex("public"))
        }
        for spk in (try? party.objects("signed_prekeys")) ?? [] {
            let id = (try? spk.int("id")).map(String.init) ?? "?"
            report.run("\(name).signed_prekey.\(id)") { () throws(VectorError) -> CaseOutcome in
                let pair = keyPairOutcome(try spk.hex("private"), try spk.hex("public"))
                guard pair == .passed else { return pair }
                let check = PrimitiveChecks.xeddsa(
                    privateKey: try identity.hex("private"), publicKey: try identity.hex("public"),
                    message: try spk.hex("public"), signature: try spk.hex("signature"),
                    randomness: try spk.hex("signature_random"), variant: .libsignal, policy: .libsignalCompatible)
                return judge(result: "valid", accepted: check.accepted, detail: check.detail)
            }
        }
        for otk in (try? party.objects("one_time_prekeys")) ?? [] {
            let id = (try? otk.int("id")).map(String.init) ?? "?"
            report.run("\(name).one_time_prekey.\(id)") { () throws(VectorError) -> CaseOutcome in
                keyPairOutcome(try otk.hex("private"), try otk.hex("public"))
            }
        }
    }

    // MARK: Steps

    static func replay(
        _ step: Fields, op: String, index: Int, parties: [String: Party], ciphertexts: inout [Int: [UInt8]], suite: CipherSuite
    ) throws(VectorError) -> CaseOutcome {
        if op.hasPrefix("group_") { return try group(step, op: op, index: index, parties: parties, messages: &ciphertexts) }
        guard let who = parties[try step.string("who")] else { throw .badValue(field: "who", reason: "unknown party") }
        guard let peer = parties[try step.string("peer")] else { throw .badValue(field: "peer", reason: "unknown party") }
        switch op {
        case "process_bundle": return try processBundle(step, who: who, peer: peer, suite: suite)
        case "encrypt":
            let outcome = try encrypt(step, who: who, peer: peer)
            ciphertexts[index] = try step.hex("ciphertext")
            return outcome
        case "decrypt": return try decrypt(step, who: who, peer: peer, ciphertexts: ciphertexts)
        default: throw .badValue(field: "op", reason: "unknown operation '\(op)'")
        }
    }

    static func processBundle(_ step: Fields, who: Party, peer: Party, suite: CipherSuite) throws(VectorError) -> CaseOutcome {
        let b = try Fields(step.object["bundle"], name: "bundle")
        let identity: IdentityKey
        do { identity = try IdentityKey(serialized: try b.hex("identity_key")) } catch { throw .badValue(field: "bundle.identity_key", reason: "\(error)") }
        var signed: PreKeyBundle.SignedPreKey?
        if b.has("signed_prekey") {
            signed = .init(id: try uint32(b, "signed_prekey_id"), publicKey: try signalKey(b, "signed_prekey"),
                           signature: try b.hex("signed_prekey_signature"))
        }
        var oneTime: PreKeyBundle.OneTimePreKey?
        if b.has("one_time_prekey") {
            oneTime = .init(id: try uint32(b, "one_time_prekey_id"), publicKey: try signalKey(b, "one_time_prekey"))
        }
        let bundle = PreKeyBundle(
            registrationID: try uint32(b, "registration_id"), deviceID: try uint32(b, "device_id"),
            identityKey: identity, signedPreKey: signed, oneTimePreKey: oneTime)
        var randomness: [UInt8] = []
        if step.has("base_key") {
            randomness += try Fields(step.object["base_key"], name: "base_key").hex("private")
            randomness += try Fields(step.object["ratchet_key"], name: "ratchet_key").hex("private")
        }
        let random = ReplayRandom(randomness)
        let ratchet = step.has("ratchet_key") ? try Fields(step.object["ratchet_key"], name: "ratchet_key").hex("public") : nil
        return try expectOutcome(step, store: who.store) { () throws(SignalProtocolError) -> CaseOutcome in
            try SessionBuilder.process(bundle, for: peer.address, store: who.store, suite: suite, random: random)
            if random.remaining != 0 { return .failed("drew fewer random bytes than libsignal") }
            guard let record = who.store.loadSession(for: peer.address) else { return .failed("no session stored") }
            guard record.currentSendingRatchetKey.signalRepresentation == ratchet else { return .failed("ratchet key differs") }
            return .passed
        }
    }

    static func encrypt(_ step: Fields, who: Party, peer: Party) throws(VectorError) -> CaseOutcome {
        let plaintext = try step.hex("plaintext")
        let expected = try step.hex("ciphertext")
        let type = try step.string("type")
        do {
            let message = try SessionCipher.encrypt(plaintext, for: peer.address, store: who.store)
            let kind = typeName(message.kind)
            guard kind == type else { return .failed("produced a \(kind) message, expected \(type)") }
            guard message.serialized == expected else {
                return .failed("ciphertext differs:\n      got      \(Hex.encode(message.serialized))\n      expected \(Hex.encode(expected))")
            }
            return .passed
        } catch {
            return .failed("encrypt failed: \(error)")
        }
    }

    static func decrypt(_ step: Fields, who: Party, peer: Party, ciphertexts: [Int: [UInt8]]) throws(VectorError) -> CaseOutcome {
        let bytes: [UInt8]
        if step.has("ciphertext") {
            bytes = try step.hex("ciphertext")
        } else {
            guard let delivered = ciphertexts[try step.int("of_step")] else { throw .badValue(field: "of_step", reason: "not an earlier encrypt step") }
            bytes = delivered
        }
        let kind: CiphertextMessage.Kind
        switch try step.string("type") {
        case "prekey": kind = .preKeySignal
        case "whisper": kind = .signal
        case "hush": kind = .hush
        case "hush-prekey": kind = .hushPreKey
        default: throw .badValue(field: "type", reason: "expected prekey, whisper, hush or hush-prekey")
        }
        // The listed new ratchet key is handed to every state tried; without one, an arbitrary
        // key is, and the committed state must then not be using it.
        let listedRatchet = step.has("new_ratchet_key") ? try Fields(step.object["new_ratchet_key"], name: "new_ratchet_key") : nil
        let unlisted = SeededRandom(seed: 0x5EED)
        let unlistedKey = (try? Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 0x5EED)))?.publicKey
        let random: any RandomSource = listedRatchet != nil ? ReplayRandom(try listedRatchet!.hex("private")) : unlisted
        return try expectOutcome(step, store: who.store) { () throws(SignalProtocolError) -> CaseOutcome in
            let message = try CiphertextMessage(kind: kind, serialized: bytes)
            let plaintext = try SessionCipher.decrypt(message, from: peer.address, store: who.store, random: random)
            guard plaintext == (try? step.hex("plaintext")) else { return .failed("plaintext differs: \(Hex.encode(plaintext))") }
            guard let record = who.store.loadSession(for: peer.address) else { return .failed("no session stored") }
            if let listedRatchet {
                guard record.currentSendingRatchetKey.signalRepresentation == (try? listedRatchet.hex("public")) else {
                    return .failed("did not ratchet to the listed key")
                }
            } else if record.currentSendingRatchetKey == unlistedKey {
                return .failed("performed a DH ratchet step libsignal did not")
            }
            return .passed
        }
    }

    // MARK: Group steps (sender keys, FORMAT §8)

    static func group(
        _ step: Fields, op: String, index: Int, parties: [String: Party], messages: inout [Int: [UInt8]]
    ) throws(VectorError) -> CaseOutcome {
        guard let who = parties[try step.string("who")] else { throw .badValue(field: "who", reason: "unknown party") }
        let groupID = try step.string("group_id")
        switch op {
        case "group_create":
            var randomness: [UInt8] = []
            if step.has("sender_key_id_random") {
                randomness = try step.hex("sender_key_id_random") + step.hex("chain_key")
                    + Fields(step.object["signing_key"], name: "signing_key").hex("private")
            }
            let expected = try step.hex("distribution_message")
            messages[index] = expected
            let random = ReplayRandom(randomness)
            let name = SenderKeyName(groupID: groupID, sender: who.address)
            let keyID = try uint32(step, "sender_key_id")
            let iteration = try uint32(step, "iteration")
            return try expectOutcome(step, store: who.store) { () throws(SignalProtocolError) -> CaseOutcome in
                let message = try GroupSessionBuilder.distributionMessage(for: name, store: who.store, random: random)
                guard random.remaining == 0 else { return .failed("drew fewer random bytes than libsignal") }
                guard message.keyID == keyID, message.iteration == iteration else { return .failed("key id or iteration differs") }
                guard message.serialized.bytes == expected else {
                    return .failed("distribution message differs: \(Hex.encode(message.serialized.bytes))")
                }
                return .passed
            }
        case "group_process":
            guard let peer = parties[try step.string("peer")] else { throw .badValue(field: "peer", reason: "unknown party") }
            guard let bytes = messages[try step.int("of_step")] else { throw .badValue(field: "of_step", reason: "not an earlier group_create step") }
            return try expectOutcome(step, store: who.store) { () throws(SignalProtocolError) -> CaseOutcome in
                let message = try SenderKeyDistributionMessage(serialized: bytes)
                try GroupSessionBuilder.process(message, from: SenderKeyName(groupID: groupID, sender: peer.address), store: who.store)
                return .passed
            }
        case "group_encrypt":
            let plaintext = try step.hex("plaintext")
            let expected = try step.hex("ciphertext")
            messages[index] = expected
            let random = ReplayRandom(try step.hex("signature_random"))
            do {
                let message = try GroupCipher.encrypt(plaintext, for: SenderKeyName(groupID: groupID, sender: who.address),
                                                      store: who.store, random: random)
                guard message.serialized == expected else {
                    return .failed("ciphertext differs:\n      got      \(Hex.encode(message.serialized))\n      expected \(Hex.encode(expected))")
                }
                return .passed
            } catch {
                return .failed("group encrypt failed: \(error)")
            }
        case "group_decrypt":
            guard let peer = parties[try step.string("peer")] else { throw .badValue(field: "peer", reason: "unknown party") }
            let bytes: [UInt8]
            if step.has("ciphertext") {
                bytes = try step.hex("ciphertext")
            } else {
                guard let delivered = messages[try step.int("of_step")] else { throw .badValue(field: "of_step", reason: "not an earlier group_encrypt step") }
                bytes = delivered
            }
            let expected = step.has("plaintext") ? try step.hex("plaintext") : nil
            return try expectOutcome(step, store: who.store) { () throws(SignalProtocolError) -> CaseOutcome in
                let plaintext = try GroupCipher.decrypt(bytes, from: SenderKeyName(groupID: groupID, sender: peer.address), store: who.store)
                return plaintext == expected ? .passed : .failed("plaintext differs: \(Hex.encode(plaintext))")
            }
        default:
            throw .badValue(field: "op", reason: "unknown operation '\(op)'")
        }
    }

    /// Runs `body` and judges it against the step's `expect`/`error`. A step expected to fail
    /// must fail with the listed error name and leave the party's stores unchanged.
    static func expectOutcome(
        _ step: Fields, store: InMemorySignalProtocolStore, _ body: () throws(SignalProtocolError) -> CaseOutcome
    ) throws(VectorError) -> CaseOutcome {
        let expect = try step.string("expect")
        let before = store.snapshot()
        do {
            let outcome = try body()
            return expect == "ok" ? outcome : .failed("succeeded, expected error \((try? step.string("error")) ?? "?")")
        } catch {
            guard expect == "error" else { return .failed("failed with \(error) (\(error.transcriptName))") }
            let name = try step.string("error")
            guard error.transcriptName == name else { return .failed("failed with \(error.transcriptName) (\(error)), expected \(name)") }
            guard store.snapshot() == before else { return .failed("failed as expected but changed the stores") }
            return .passed
        }
    }

    // MARK: Values

    /// A message kind's name in transcripts.
    static func typeName(_ kind: CiphertextMessage.Kind) -> String {
        switch kind {
        case .signal: "whisper"
        case .preKeySignal: "prekey"
        case .hush: "hush"
        case .hushPreKey: "hush-prekey"
        }
    }

    /// A listed private key must produce the listed 33-byte public key.
    static func keyPairOutcome(_ privateKey: [UInt8], _ publicKey: [UInt8]) -> CaseOutcome {
        guard let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateKey) else {
            return .failed("private key rejected")
        }
        return key.publicKey.signalRepresentation == publicKey ? .passed : .failed("public key does not match private key")
    }

    static func privateKey(_ bytes: [UInt8], field: String) throws(VectorError) -> Curve25519.KeyAgreement.PrivateKey {
        do { return try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: bytes) } catch {
            throw .badValue(field: field, reason: "not a 32-byte private key")
        }
    }

    static func signalKey(_ fields: Fields, _ key: String) throws(VectorError) -> Curve25519.KeyAgreement.PublicKey {
        do { return try Curve25519.KeyAgreement.PublicKey(signalRepresentation: try fields.hex(key)) } catch {
            throw .badValue(field: key, reason: "not a 33-byte public key")
        }
    }

    static func uint32(_ fields: Fields, _ key: String) throws(VectorError) -> UInt32 {
        guard let value = UInt32(exactly: try fields.int(key)) else { throw .badValue(field: key, reason: "not a 32-bit unsigned integer") }
        return value
    }
}
