// Tests of the libsignal-protocol-c peer itself (not of Hush): libsignal parties talk to
// each other, errors get their canonical names, and every generated transcript replays
// through fresh libsignal parties built from the keys it lists.
import Foundation
import LibSignalPeer
import Testing

private typealias Party = LibSignalParty
private typealias Address = LibSignalParty.Address

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

private func canonical(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as LibSignalPeerError {
        return error.canonical
    } catch {
        return "\(error)"
    }
}

/// alice, and bob with signed prekey 1 and one-time prekeys 101...
private func aliceAndBob(oneTimePreKeys: UInt32 = 2) throws -> (Party, Party) {
    let alice = try Party(address: Address(name: "alice", deviceID: 1))
    let bob = try Party(address: Address(name: "bob", deviceID: 1))
    try bob.generateSignedPreKey(id: 1)
    if oneTimePreKeys > 0 {
        try bob.generateOneTimePreKeys(start: 101, count: oneTimePreKeys)
    }
    return (alice, bob)
}

@Suite("libsignal-protocol-c peer")
struct SignalPeerTests {
    @Test func twoPartiesTalk() throws {
        let (alice, bob) = try aliceAndBob()
        #expect(alice.registrationID >= 1 && alice.registrationID <= 16380)
        #expect(alice.identityKey.publicKey.count == 33 && alice.identityKey.publicKey[0] == 0x05)
        #expect(try Party.publicKey(privateKey: alice.identityKey.privateKey) == alice.identityKey.publicKey)

        let bundle = try bob.bundle(signedPreKeyID: 1, oneTimePreKeyID: 101)
        try alice.processBundle(bundle, from: bob.address)
        #expect(alice.hasSession(with: bob.address))
        #expect(try alice.trustedIdentity(for: bob.address) == bob.identityKey.publicKey)

        let first = try alice.encrypt(bytes("hello bob"), to: bob.address)
        #expect(first.type == .preKey)
        let second = try alice.encrypt(bytes("still there?"), to: bob.address)
        #expect(second.type == .preKey)
        #expect(try bob.decrypt(second.ciphertext, type: .preKey, from: alice.address) == bytes("still there?"))
        #expect(try bob.decrypt(first.ciphertext, type: .preKey, from: alice.address) == bytes("hello bob"))
        #expect(!bob.hasOneTimePreKey(id: 101), "the used one-time prekey is deleted")
        #expect(bob.hasOneTimePreKey(id: 102))
        #expect(try bob.trustedIdentity(for: alice.address) == alice.identityKey.publicKey)

        for round in 0..<5 {
            let reply = try bob.encrypt(bytes("bob \(round)"), to: alice.address)
            #expect(reply.type == .whisper)
            #expect(try alice.decrypt(reply.ciphertext, type: reply.type, from: bob.address) == bytes("bob \(round)"))
            let answer = try alice.encrypt(bytes("alice \(round)"), to: bob.address)
            #expect(answer.type == .whisper, "acknowledged: no more PreKeySignalMessages")
            #expect(try bob.decrypt(answer.ciphertext, type: answer.type, from: alice.address) == bytes("alice \(round)"))
        }
        let info = try #require(try alice.sessionInfo(with: bob.address))
        #expect(info.counter == 1 && !info.unacknowledgedPreKey && info.archivedStates == 0)
        #expect(try Party.publicKey(privateKey: info.ratchetKey.privateKey) == info.ratchetKey.publicKey)

        #expect(try alice.deleteSession(with: bob.address))
        #expect(!alice.hasSession(with: bob.address))
        #expect(canonical { _ = try alice.encrypt(bytes("x"), to: bob.address) } == "no_session")
    }

    @Test func readyMadeParty() throws {
        let bob = try Party(address: Address(name: "bob", deviceID: 2), signedPreKeyID: 3,
                            firstOneTimePreKeyID: 10, oneTimePreKeyCount: 4)
        #expect(try bob.signedPreKeys().map(\.id) == [3])
        #expect(try bob.oneTimePreKeys().map(\.id) == [10, 11, 12, 13])
        let bundle = try bob.bundle(signedPreKeyID: 3, oneTimePreKeyID: 12)
        #expect(bundle.deviceID == 2 && bundle.registrationID == bob.registrationID)
        #expect(bundle.identityKey == bob.identityKey.publicKey)
    }

    @Test func bundleWithoutOneTimePreKey() throws {
        let (alice, bob) = try aliceAndBob(oneTimePreKeys: 0)
        let bundle = try bob.bundle(signedPreKeyID: 1, oneTimePreKeyID: nil)
        #expect(bundle.oneTimePreKey == nil)
        try alice.processBundle(bundle, from: bob.address)
        let message = try alice.encrypt(bytes("three DH"), to: bob.address)
        #expect(try bob.decrypt(message.ciphertext, type: message.type, from: alice.address) == bytes("three DH"))
        #expect(canonical { _ = try bob.bundle(signedPreKeyID: 2, oneTimePreKeyID: nil) } == "unknown_prekey")
    }

    @Test func errorsHaveCanonicalNames() throws {
        let (alice, bob) = try aliceAndBob()
        try alice.processBundle(try bob.bundle(signedPreKeyID: 1, oneTimePreKeyID: 101), from: bob.address)
        let hello = try alice.encrypt(bytes("hello"), to: bob.address)
        _ = try bob.decrypt(hello.ciphertext, type: .preKey, from: alice.address)
        let reply = try bob.encrypt(bytes("reply"), to: alice.address)

        var tampered = reply.ciphertext
        tampered[tampered.count - 1] ^= 1
        #expect(canonical { _ = try alice.decrypt(tampered, type: .whisper, from: bob.address) } == "bad_mac")
        #expect(alice.lastLog.contains { $0.text == "Bad MAC" })
        tampered = reply.ciphertext
        tampered[0] = 0x43
        #expect(canonical { _ = try alice.decrypt(tampered, type: .whisper, from: bob.address) } == "invalid_version")
        tampered[0] = 0x23
        #expect(canonical { _ = try alice.decrypt(tampered, type: .whisper, from: bob.address) } == "legacy_version")
        #expect(canonical { _ = try alice.decrypt(Array(reply.ciphertext.prefix(9)), type: .whisper, from: bob.address) }
                == "malformed")
        let stranger = Address(name: "carol", deviceID: 1)
        #expect(canonical { _ = try alice.decrypt(reply.ciphertext, type: .whisper, from: stranger) } == "no_session")

        #expect(try alice.decrypt(reply.ciphertext, type: .whisper, from: bob.address) == bytes("reply"))
        #expect(canonical { _ = try alice.decrypt(reply.ciphertext, type: .whisper, from: bob.address) }
                == "duplicate_message")
        // A bundle whose signed prekey signature does not verify.
        var bundle = try bob.bundle(signedPreKeyID: 1, oneTimePreKeyID: 102)
        bundle.signedPreKeySignature[0] ^= 1
        let carol = try Party(address: stranger)
        #expect(canonical { try carol.processBundle(bundle, from: bob.address) } == "bad_signature")
        #expect(!carol.hasSession(with: bob.address))

        // The mapping itself, from code and log lines.
        let invalid: Int32 = -1005 // SG_ERR_INVALID_MESSAGE
        #expect(Party.canonicalError(code: invalid, log: ["Bad MAC", "Message mac not verified", "No valid sessions"])
                == "bad_mac")
        #expect(Party.canonicalError(code: invalid, log: ["Over 2000 messages into the future!", "No valid sessions"])
                == "too_far_in_future")
        #expect(Party.canonicalError(code: invalid, log: ["Invalid signature!"]) == "bad_signature")
        #expect(Party.canonicalError(code: -1003 /* SG_ERR_INVALID_KEY_ID */, log: []) == "unknown_prekey")
        #expect(Party.errorName(invalid) == "SG_ERR_INVALID_MESSAGE")
    }

    @Test func identityChangeIsRejectedUntilTrusted() throws {
        let (alice, bob) = try aliceAndBob()
        try alice.processBundle(try bob.bundle(signedPreKeyID: 1, oneTimePreKeyID: 101), from: bob.address)
        // bob reinstalls: same address, new identity.
        let newBob = try Party(address: bob.address)
        try newBob.generateSignedPreKey(id: 1)
        try newBob.generateOneTimePreKeys(start: 101, count: 1)
        let bundle = try newBob.bundle(signedPreKeyID: 1, oneTimePreKeyID: 101)
        #expect(canonical { try alice.processBundle(bundle, from: bob.address) } == "untrusted_identity")
        try alice.setTrustedIdentity(newBob.identityKey.publicKey, for: bob.address)
        try alice.processBundle(bundle, from: bob.address)
        let message = try alice.encrypt(bytes("welcome back"), to: bob.address)
        #expect(try newBob.decrypt(message.ciphertext, type: message.type, from: alice.address) == bytes("welcome back"))
        #expect(try alice.sessionInfo(with: bob.address)?.archivedStates == 1)
    }

    @Test func partyFromGivenKeys() throws {
        let source = try Party(address: Address(name: "bob", deviceID: 7))
        let spk = try source.generateSignedPreKey(id: 5, timestamp: 1234)
        let otks = try source.generateOneTimePreKeys(start: 900, count: 3)
        let copy = try Party(address: source.address, identityPrivateKey: source.identityKey.privateKey,
                             registrationID: source.registrationID)
        try copy.addSignedPreKey(id: spk.id, timestamp: spk.timestamp, privateKey: spk.keyPair.privateKey,
                                 signature: spk.signature)
        for otk in otks {
            try copy.addOneTimePreKey(id: otk.id, privateKey: otk.keyPair.privateKey)
        }
        #expect(copy.identityKey == source.identityKey)
        #expect(copy.registrationID == source.registrationID)
        #expect(try copy.signedPreKeys() == [spk])
        #expect(try copy.oneTimePreKeys() == otks)
        #expect(try copy.bundle(signedPreKeyID: 5, oneTimePreKeyID: 901) ==
                source.bundle(signedPreKeyID: 5, oneTimePreKeyID: 901))

        // The copy answers messages meant for the original.
        let alice = try Party(address: Address(name: "alice", deviceID: 1))
        try alice.processBundle(try source.bundle(signedPreKeyID: 5, oneTimePreKeyID: 902), from: source.address)
        let message = try alice.encrypt(bytes("to either"), to: source.address)
        #expect(try copy.decrypt(message.ciphertext, type: .preKey, from: alice.address) == bytes("to either"))
    }

    @Test func injectedRandomnessIsUsed() throws {
        var drawn: [Int] = []
        let random: Party.RandomSource = { count in
            drawn.append(count)
            return [UInt8](repeating: 0x11, count: count)
        }
        let party = try Party(address: Address(name: "alice", deviceID: 1), random: random)
        #expect(drawn == [32, 4])
        #expect(party.identityKey.privateKey == Party.clamp([UInt8](repeating: 0x11, count: 32)))
        #expect(party.registrationID == 0x1111_1111 % 16380 + 1)
        try party.generateSignedPreKey(id: 1)
        #expect(drawn == [32, 4, 32, 64])
        // A failing random source fails the operation.
        #expect(throws: LibSignalPeerError.self) {
            _ = try Party(address: Address(name: "carol", deviceID: 1), random: { _ in nil })
        }
    }

    @Test func groupMessages() throws {
        let alice = try Party(address: Address(name: "alice", deviceID: 1))
        let bob = try Party(address: Address(name: "bob", deviceID: 1))
        let distribution = try alice.createDistributionMessage(groupID: "g")
        let fields = try Party.parseDistributionMessage(distribution)
        let own = try #require(try alice.ownSenderKey(groupID: "g"))
        #expect(fields.keyID == own.keyID && fields.iteration == 0 && fields.chainKey == own.chainKey)
        #expect(fields.signingKey == own.signingKey.publicKey)
        try bob.processDistributionMessage(distribution, groupID: "g", from: alice.address)

        let m0 = try alice.groupEncrypt(bytes("zero"), groupID: "g")
        let m1 = try alice.groupEncrypt(bytes("one"), groupID: "g")
        let header = try Party.parseSenderKeyMessage(m1)
        #expect(header.keyID == own.keyID && header.iteration == 1)
        #expect(try bob.groupDecrypt(m1, groupID: "g", from: alice.address) == bytes("one"))
        #expect(try bob.groupDecrypt(m0, groupID: "g", from: alice.address) == bytes("zero"))
        #expect(canonical { _ = try bob.groupDecrypt(m0, groupID: "g", from: alice.address) } == "duplicate_message")
        var forged = try alice.groupEncrypt(bytes("two"), groupID: "g")
        forged[forged.count - 1] ^= 1
        #expect(canonical { _ = try bob.groupDecrypt(forged, groupID: "g", from: alice.address) } == "bad_signature")
        #expect(canonical { _ = try alice.groupDecrypt(m0, groupID: "g", from: bob.address) } == "no_session")
        #expect(try alice.ownSenderKey(groupID: "other") == nil)
    }

    // MARK: - Transcript replay

    /// Generated transcripts in TestVectors/signal-v3 and, when present, the shared ones.
    static func transcriptFiles() -> [String] {
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let directories = [root.appendingPathComponent("TestVectors/signal-v3"),
                           root.deletingLastPathComponent().appendingPathComponent("shared/vectors/signal-v3")]
        return directories.flatMap { directory -> [String] in
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            return names.filter { $0.hasSuffix(".json") }.sorted().map { directory.appendingPathComponent($0).path }
        }
    }

    @Test func generatedTranscriptsExist() {
        #expect(Self.transcriptFiles().contains { $0.hasSuffix("TestVectors/signal-v3/basic-seed7.json") })
    }

    /// Fresh libsignal parties fed with the listed keys and random values reproduce every
    /// ciphertext and every decryption outcome of the file.
    @Test(arguments: SignalPeerTests.transcriptFiles())
    func transcriptReplays(path: String) throws {
        let replay = try TranscriptReplay(path: path)
        try replay.run()
    }
}

/// Random values for a replay: the listed ones in order for the current step; for
/// decryptions, the listed new ratchet key (or a filler) for every attempt.
private final class ReplayRandom {
    var queue: [[UInt8]] = []
    var fallback: [UInt8]?
    var unexpected: [Int] = []

    func draw(_ count: Int) -> [UInt8]? {
        if !queue.isEmpty {
            let next = queue.removeFirst()
            if next.count == count { return next }
            unexpected.append(count)
            return nil
        }
        if let fallback, fallback.count == count { return fallback }
        unexpected.append(count)
        return nil
    }

    func reset(queue: [[UInt8]] = [], fallback: [UInt8]? = nil) {
        self.queue = queue
        self.fallback = fallback
        self.unexpected = []
    }
}

private struct TranscriptReplay {
    let path: String
    let document: [String: Any]

    init(path: String) throws {
        self.path = path
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func run() throws {
        #expect(document["format"] as? String == "signal-v3-session-vectors/1")
        let random = ReplayRandom()
        var parties: [String: Party] = [:]
        for entry in try #require(document["parties"] as? [[String: Any]]) {
            let name = try string(entry, "name")
            let addressObject = try #require(entry["address"] as? [String: Any])
            let address = Address(name: try string(addressObject, "name"), deviceID: Int32(try int(addressObject, "device_id")))
            let identity = try #require(entry["identity_key"] as? [String: String])
            let party = try Party(address: address, identityPrivateKey: hex(identity["private"]),
                                  registrationID: UInt32(try int(entry, "registration_id")),
                                  random: { random.draw($0) })
            #expect(party.identityKey.publicKey == hex(identity["public"]), "\(name) identity")
            for spk in try #require(entry["signed_prekeys"] as? [[String: Any]]) {
                try party.addSignedPreKey(id: UInt32(try int(spk, "id")), timestamp: UInt64(try int(spk, "timestamp")),
                                          privateKey: hex(spk["private"]), signature: hex(spk["signature"]))
            }
            #expect(try party.signedPreKeys().map(\.keyPair.publicKey) ==
                    (entry["signed_prekeys"] as? [[String: Any]] ?? []).map { hex($0["public"]) })
            for otk in try #require(entry["one_time_prekeys"] as? [[String: Any]]) {
                try party.addOneTimePreKey(id: UInt32(try int(otk, "id")), privateKey: hex(otk["private"]))
            }
            #expect(try party.oneTimePreKeys().map(\.keyPair.publicKey) ==
                    (entry["one_time_prekeys"] as? [[String: Any]] ?? []).map { hex($0["public"]) })
            parties[name] = party
        }

        let steps = try #require(document["steps"] as? [[String: Any]])
        var produced: [Int: [UInt8]] = [:]
        let filler = [UInt8](repeating: 0xA5, count: 32)
        for (index, step) in steps.enumerated() {
            let context = "\(URL(fileURLWithPath: path).lastPathComponent) step \(index)"
            #expect(try int(step, "step") == index, "\(context)")
            let op = try string(step, "op")
            let who = try #require(parties[try string(step, "who")], "\(context)")
            let peer = try (step["peer"] as? String).map { try #require(parties[$0], "\(context)") }
            let expectsError = step["expect"] as? String == "error"
            var outcome: Result<[UInt8], LibSignalPeerError> = .success([])
            func attempt(_ body: () throws -> [UInt8]) throws {
                do {
                    outcome = .success(try body())
                } catch let error as LibSignalPeerError {
                    outcome = .failure(error)
                }
            }

            switch op {
            case "process_bundle":
                let b = try #require(step["bundle"] as? [String: Any])
                let bundle = LibSignalParty.PreKeyBundle(
                    registrationID: UInt32(try int(b, "registration_id")), deviceID: Int32(try int(b, "device_id")),
                    identityKey: hex(b["identity_key"]), signedPreKeyID: UInt32(try int(b, "signed_prekey_id")),
                    signedPreKey: hex(b["signed_prekey"]), signedPreKeySignature: hex(b["signed_prekey_signature"]),
                    oneTimePreKeyID: (b["one_time_prekey_id"] as? Int).map { UInt32($0) },
                    oneTimePreKey: (b["one_time_prekey"] as? String).map { hex($0) })
                random.reset(queue: expectsError ? [] : [keyPrivate(step, "base_key"), keyPrivate(step, "ratchet_key")])
                let remote = try #require(peer).address
                try attempt { try who.processBundle(bundle, from: remote); return [] }
                if !expectsError {
                    let info = try #require(try who.sessionInfo(with: remote), "\(context)")
                    #expect(info.ratchetKey.publicKey == keyPublic(step, "ratchet_key"), "\(context)")
                }
            case "encrypt":
                random.reset()
                let remote = try #require(peer).address
                let expectedType = try string(step, "type")
                let info = try #require(try who.sessionInfo(with: remote), "\(context)")
                #expect(info.ratchetKey.publicKey == hex(step["ratchet_key"]), "\(context)")
                #expect(Int(info.counter) == (step["counter"] as? Int), "\(context)")
                #expect(Int(info.previousCounter) == (step["previous_counter"] as? Int), "\(context)")
                try attempt {
                    let (ciphertext, type) = try who.encrypt(hex(step["plaintext"]), to: remote)
                    #expect(type.description == expectedType, "\(context)")
                    return ciphertext
                }
                if case .success(let ciphertext) = outcome {
                    #expect(ciphertext == hex(step["ciphertext"]), "\(context): ciphertext")
                    produced[index] = ciphertext
                }
            case "decrypt":
                let ofStep = try int(step, "of_step")
                let ciphertext = try (step["ciphertext"] as? String).map { hex($0) }
                    ?? #require(produced[ofStep], "\(context): no ciphertext of step \(ofStep)")
                let newRatchet = step["new_ratchet_key"] != nil ? keyPrivate(step, "new_ratchet_key") : nil
                random.reset(fallback: newRatchet ?? filler)
                let type: LibSignalParty.MessageType = try string(step, "type") == "prekey" ? .preKey : .whisper
                let remote = try #require(peer).address
                try attempt { try who.decrypt(ciphertext, type: type, from: remote) }
                if !expectsError, newRatchet != nil {
                    let info = try #require(try who.sessionInfo(with: remote), "\(context)")
                    #expect(info.ratchetKey.publicKey == keyPublic(step, "new_ratchet_key"), "\(context)")
                }
            case "group_create":
                var queue: [[UInt8]] = []
                if step["signing_key"] != nil {
                    queue = [hex(step["sender_key_id_random"]), hex(step["chain_key"]), keyPrivate(step, "signing_key")]
                }
                random.reset(queue: queue)
                try attempt { try who.createDistributionMessage(groupID: try string(step, "group_id")) }
                if case .success(let message) = outcome {
                    #expect(message == hex(step["distribution_message"]), "\(context): distribution message")
                    produced[index] = message
                }
            case "group_process":
                random.reset()
                let message = try #require(produced[try int(step, "of_step")], "\(context)")
                let sender = try #require(peer).address
                try attempt {
                    try who.processDistributionMessage(message, groupID: try string(step, "group_id"), from: sender)
                    return []
                }
            case "group_encrypt":
                random.reset(queue: [hex(step["signature_random"])])
                try attempt { try who.groupEncrypt(hex(step["plaintext"]), groupID: try string(step, "group_id")) }
                if case .success(let ciphertext) = outcome {
                    #expect(ciphertext == hex(step["ciphertext"]), "\(context): ciphertext")
                    produced[index] = ciphertext
                }
            case "group_decrypt":
                let ofStep = try int(step, "of_step")
                let ciphertext = try (step["ciphertext"] as? String).map { hex($0) }
                    ?? #require(produced[ofStep], "\(context): no ciphertext of step \(ofStep)")
                random.reset()
                let sender = try #require(peer).address
                try attempt { try who.groupDecrypt(ciphertext, groupID: try string(step, "group_id"), from: sender) }
            default:
                Issue.record("\(context): unknown op \(op)")
                continue
            }

            #expect(random.unexpected.isEmpty, "\(context): unexpected random draws \(random.unexpected)")
            #expect(random.queue.isEmpty, "\(context): listed random values not consumed")
            switch outcome {
            case .success(let plaintext):
                #expect(!expectsError, "\(context): succeeded, the transcript expects \(step["error"] ?? "")")
                if let listed = step["plaintext"] as? String, op.hasSuffix("decrypt") {
                    #expect(plaintext == hex(listed), "\(context): plaintext")
                }
            case .failure(let error):
                #expect(expectsError, "\(context): \(error)")
                if case .rejected(let canonical, _, let codeName, _) = error, expectsError {
                    #expect(canonical == step["error"] as? String, "\(context): error")
                    #expect(codeName == step["libsignal_error"] as? String, "\(context): libsignal error")
                }
            }
        }
    }

    private func string(_ object: [String: Any], _ key: String) throws -> String {
        try #require(object[key] as? String, "missing \(key)")
    }

    private func int(_ object: [String: Any], _ key: String) throws -> Int {
        try #require(object[key] as? Int, "missing \(key)")
    }

    private func keyPrivate(_ step: [String: Any], _ key: String) -> [UInt8] {
        hex((step[key] as? [String: String])?["private"])
    }

    private func keyPublic(_ step: [String: Any], _ key: String) -> [UInt8] {
        hex((step[key] as? [String: String])?["public"])
    }
}

private func hex(_ value: Any?) -> [UInt8] {
    guard let text = value as? String, text.count % 2 == 0 else { return [] }
    var out: [UInt8] = []
    out.reserveCapacity(text.count / 2)
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        guard let byte = UInt8(text[index..<next], radix: 16) else { return [] }
        out.append(byte)
        index = next
    }
    return out
}
