import LibSignalPeer

struct GeneratorError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

typealias Address = LibSignalParty.Address
typealias KeyPair = LibSignalParty.KeyPair

/// The outcome a script expects of a step; the generator stops if libsignal disagrees.
enum Expect: Equatable {
    case ok
    case error(String)
}

/// A change made to a delivered message (the step lists the changed bytes and this text).
struct Mutation: Sendable {
    let description: String
    let apply: @Sendable ([UInt8]) -> [UInt8]

    static let macByte = Mutation(description: "last byte (in the MAC) xor 0x01") { bytes in
        var bytes = bytes
        bytes[bytes.count - 1] ^= 0x01
        return bytes
    }
    static let bodyByte = Mutation(description: "last ciphertext byte (before the MAC) xor 0x01") { bytes in
        var bytes = bytes
        bytes[bytes.count - 9] ^= 0x01
        return bytes
    }
    static func versionByte(_ version: UInt8, note: String = "") -> Mutation {
        Mutation(description: "version byte 0x33 -> 0x\(hexByte(version))\(note)") { bytes in
            precondition(bytes.first == 0x33, "version mutations start from 0x33")
            var bytes = bytes
            bytes[0] = version
            return bytes
        }
    }
    static let truncatedByOne = Mutation(description: "truncated by 1 byte") { Array($0.dropLast(1)) }
    static let macRemoved = Mutation(description: "MAC removed (8 bytes)") { Array($0.dropLast(8)) }
    static let truncatedToNine = Mutation(description: "truncated to 9 bytes") { Array($0.prefix(9)) }
    static let signatureByte = Mutation(description: "last byte (in the signature) xor 0x01") { bytes in
        var bytes = bytes
        bytes[bytes.count - 1] ^= 0x01
        return bytes
    }

    private static func hexByte(_ byte: UInt8) -> String { Hex.encode([byte]) }
}

/// A party of the transcript: its libsignal instance and the keys it was given, as they
/// were when created (a one-time prekey stays listed after libsignal consumed it).
final class PartyRecord {
    let name: String
    let party: LibSignalParty
    let registrationID: UInt32
    let identity: KeyPair
    var signedPreKeys: [(key: LibSignalParty.SignedPreKey, signatureRandom: [UInt8])] = []
    var oneTimePreKeys: [LibSignalParty.OneTimePreKey] = []

    var address: Address { party.address }

    init(name: String, party: LibSignalParty) {
        self.name = name
        self.party = party
        self.registrationID = party.registrationID
        self.identity = party.identityKey
    }
}

/// Runs a scenario on libsignal parties sharing one seeded random stream and records it
/// in the signal-v3-session-vectors/1 format (FORMAT.md).
final class Transcript {
    static let format = "signal-v3-session-vectors/1"
    static let generator = "libsignal-protocol-c 2.3.3 (Debian 2.3.3-3)"
    /// libsignal log lines at this level or more severe (error 0, warning 1, notice 2) go
    /// into `libsignal_log`. "Bad MAC" is a notice; informational lines (level 3, such as
    /// "We've already setup a session for this V3 message, ...") are left out.
    static let logLevel: Int32 = 2

    let scenario: String
    let description: String
    let seed: UInt64
    let rng: TranscriptDRBG
    private(set) var parties: [PartyRecord] = []
    private(set) var steps: [JSON] = []

    private enum Sent {
        case message(ciphertext: [UInt8], type: String, sender: String, plaintext: [UInt8])
        case distribution(message: [UInt8], sender: String, groupID: String)
    }
    private var sent: [Int: Sent] = [:]

    init(scenario: String, description: String, seed: UInt64) {
        self.scenario = scenario
        self.description = description
        self.seed = seed
        self.rng = TranscriptDRBG(scenario: scenario, seed: seed)
    }

    // MARK: - Parties and keys

    /// A party with a fresh identity key and registration id (draws 32 + 4 bytes).
    func party(_ name: String, address: Address? = nil) throws -> PartyRecord {
        let rng = self.rng
        _ = rng.takeDraws()
        let party = try LibSignalParty(address: address ?? Address(name: name, deviceID: 1),
                                       random: { rng.draw($0) })
        let draws = rng.takeDraws()
        try expectDraws(draws, [32, 4], "creating \(name)")
        let record = PartyRecord(name: name, party: party)
        guard record.identity.privateKey == LibSignalParty.clamp(draws[0]) else {
            throw GeneratorError("\(name): identity key is not the first draw")
        }
        parties.append(record)
        return record
    }

    /// A fresh signed prekey (draws 32 + 64 bytes).
    func signedPreKey(_ owner: PartyRecord, id: UInt32) throws {
        _ = rng.takeDraws()
        let key = try owner.party.generateSignedPreKey(id: id, timestamp: 0)
        let draws = rng.takeDraws()
        try expectDraws(draws, [32, 64], "signed prekey \(id) of \(owner.name)")
        guard key.keyPair.privateKey == LibSignalParty.clamp(draws[0]) else {
            throw GeneratorError("\(owner.name): signed prekey \(id) is not the first draw")
        }
        owner.signedPreKeys.append((key, draws[1]))
    }

    /// `count` fresh one-time prekeys with ids from `start` (32 bytes each).
    func oneTimePreKeys(_ owner: PartyRecord, start: UInt32, count: UInt32) throws {
        _ = rng.takeDraws()
        let keys = try owner.party.generateOneTimePreKeys(start: start, count: count)
        let draws = rng.takeDraws()
        try expectDraws(draws, Array(repeating: 32, count: Int(count)), "one-time prekeys of \(owner.name)")
        guard keys.count == Int(count),
              zip(keys, draws).allSatisfy({ $0.keyPair.privateKey == LibSignalParty.clamp($1) }) else {
            throw GeneratorError("\(owner.name): one-time prekeys do not match the draws")
        }
        owner.oneTimePreKeys += keys
    }

    // MARK: - Pairwise steps

    /// `who` processes `peer`'s bundle with the given prekey ids. The bundle is made from
    /// the keys `peer` was created with, so it may name a one-time prekey `peer` already used.
    @discardableResult
    func processBundle(_ who: PartyRecord, _ peer: PartyRecord, signedPreKey spkID: UInt32,
                       oneTimePreKey otkID: UInt32?, expect: Expect = .ok) throws -> Int {
        guard let spk = peer.signedPreKeys.first(where: { $0.key.id == spkID })?.key else {
            throw GeneratorError("\(peer.name) has no signed prekey \(spkID)")
        }
        var otk: LibSignalParty.OneTimePreKey?
        if let otkID {
            guard let key = peer.oneTimePreKeys.first(where: { $0.id == otkID }) else {
                throw GeneratorError("\(peer.name) has no one-time prekey \(otkID)")
            }
            otk = key
        }
        let bundle = LibSignalParty.PreKeyBundle(
            registrationID: peer.registrationID, deviceID: peer.address.deviceID,
            identityKey: peer.identity.publicKey, signedPreKeyID: spk.id,
            signedPreKey: spk.keyPair.publicKey, signedPreKeySignature: spk.signature,
            oneTimePreKeyID: otk?.id, oneTimePreKey: otk?.keyPair.publicKey)
        var fields = header("process_bundle", who: who, peer: peer)
        fields.append(("bundle", .object([
            ("registration_id", .int(bundle.registrationID)),
            ("device_id", .int(bundle.deviceID)),
            ("identity_key", .hex(bundle.identityKey)),
            ("signed_prekey_id", .int(bundle.signedPreKeyID)),
            ("signed_prekey", .hex(bundle.signedPreKey)),
            ("signed_prekey_signature", .hex(bundle.signedPreKeySignature)),
            ("one_time_prekey_id", otk.map { .int($0.id) } ?? .null),
            ("one_time_prekey", otk.map { .hex($0.keyPair.publicKey) } ?? .null),
        ])))
        _ = rng.takeDraws()
        do {
            try who.party.processBundle(bundle, from: peer.address)
        } catch let error as LibSignalPeerError {
            try expectDraws(rng.takeDraws(), [], "rejected bundle")
            return try failed(fields, error, who: who, expect: expect)
        }
        let draws = rng.takeDraws()
        try expectDraws(draws, [32, 32], "process_bundle")
        let baseKey = try KeyPair(privateKey: LibSignalParty.clamp(draws[0]))
        let ratchetKey = try KeyPair(privateKey: LibSignalParty.clamp(draws[1]))
        guard let info = try who.party.sessionInfo(with: peer.address), info.ratchetKey == ratchetKey else {
            throw GeneratorError("process_bundle: the session's ratchet key is not the second draw")
        }
        fields.append(("base_key", keyPairJSON(baseKey)))
        fields.append(("ratchet_key", keyPairJSON(ratchetKey)))
        try check(expect, .ok, step: steps.count)
        fields.append(("expect", .string("ok")))
        return append(fields)
    }

    @discardableResult
    func encrypt(_ who: PartyRecord, _ peer: PartyRecord, _ text: String) throws -> Int {
        let plaintext = Array(text.utf8)
        guard let info = try who.party.sessionInfo(with: peer.address) else {
            throw GeneratorError("encrypt: \(who.name) has no session with \(peer.name)")
        }
        _ = rng.takeDraws()
        let (ciphertext, type) = try who.party.encrypt(plaintext, to: peer.address)
        try expectDraws(rng.takeDraws(), [], "encrypt")
        var fields = header("encrypt", who: who, peer: peer)
        fields += [
            ("plaintext", .hex(plaintext)),
            ("type", .string(type.description)),
            ("ciphertext", .hex(ciphertext)),
            ("ratchet_key", .hex(info.ratchetKey.publicKey)),
            ("counter", .int(info.counter)),
            ("previous_counter", .int(info.previousCounter)),
        ]
        sent[steps.count] = .message(ciphertext: ciphertext, type: type.description, sender: who.name,
                                     plaintext: plaintext)
        return append(fields)
    }

    /// `who` decrypts the message of encrypt step `step` from `peer` (changed by `mutation`).
    @discardableResult
    func decrypt(_ who: PartyRecord, _ peer: PartyRecord, step: Int, mutation: Mutation? = nil,
                 expect: Expect = .ok) throws -> Int {
        guard case .message(let original, let typeName, _, let sentPlaintext)? = sent[step] else {
            throw GeneratorError("step \(step) is not an encrypt step")
        }
        let type: LibSignalParty.MessageType = typeName == "prekey" ? .preKey : .whisper
        var fields = header("decrypt", who: who, peer: peer)
        fields += [("type", .string(typeName)), ("of_step", .int(step))]
        var ciphertext = original
        if let mutation {
            ciphertext = mutation.apply(original)
            fields += [("ciphertext", .hex(ciphertext)), ("mutation", .string(mutation.description))]
        }
        _ = rng.takeDraws()
        let plaintext: [UInt8]
        do {
            plaintext = try who.party.decrypt(ciphertext, type: type, from: peer.address)
        } catch let error as LibSignalPeerError {
            _ = rng.takeDraws() // key pairs of failed attempts, discarded
            return try failed(fields, error, who: who, expect: expect)
        }
        let draws = rng.takeDraws()
        guard plaintext == sentPlaintext || mutation != nil else {
            throw GeneratorError("step \(steps.count): decrypted plaintext differs from step \(step)'s")
        }
        try check(expect, .ok, step: steps.count)
        fields += [("expect", .string("ok")), ("plaintext", .hex(plaintext))]
        // The receiver's new sending ratchet key, if the state that decrypted made a DH
        // ratchet step: the current state's key is then one of this step's draws.
        guard let info = try who.party.sessionInfo(with: peer.address) else {
            throw GeneratorError("decrypt: no session after a successful decryption")
        }
        for draw in draws where draw.count != 32 {
            throw GeneratorError("decrypt: unexpected \(draw.count)-byte draw")
        }
        if draws.contains(where: { LibSignalParty.clamp($0) == info.ratchetKey.privateKey }) {
            fields.append(("new_ratchet_key", keyPairJSON(info.ratchetKey)))
        }
        return append(fields)
    }

    // MARK: - Group steps

    @discardableResult
    func groupCreate(_ who: PartyRecord, group: String) throws -> Int {
        _ = rng.takeDraws()
        let message = try who.party.createDistributionMessage(groupID: group)
        let draws = rng.takeDraws()
        let fields = try groupCreateFields(who, group: group, message: message, draws: draws)
        sent[steps.count] = .distribution(message: message, sender: who.name, groupID: group)
        return append(fields)
    }

    private func groupCreateFields(_ who: PartyRecord, group: String, message: [UInt8],
                                   draws: [[UInt8]]) throws -> [(String, JSON)] {
        let parsed = try LibSignalParty.parseDistributionMessage(message)
        var fields: [(String, JSON)] = [
            ("step", .int(steps.count)), ("op", .string("group_create")), ("who", .string(who.name)),
            ("group_id", .string(group)),
            ("sender_key_id", .int(parsed.keyID)), ("iteration", .int(parsed.iteration)),
            ("chain_key", .hex(parsed.chainKey)),
        ]
        if draws.isEmpty {
            // Re-export of the existing sender key.
        } else {
            try expectDraws(draws, [4, 32, 32], "group_create")
            let idValue = draws[0].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
            let signingKey = try KeyPair(privateKey: LibSignalParty.clamp(draws[2]))
            guard (idValue & 0x7FFF_FFFF) % 0x7FFF_FFFF == parsed.keyID, draws[1] == parsed.chainKey,
                  parsed.iteration == 0, signingKey.publicKey == parsed.signingKey,
                  try who.party.ownSenderKey(groupID: group)?.signingKey == signingKey else {
                throw GeneratorError("group_create: the sender key does not match the draws")
            }
            fields += [("sender_key_id_random", .hex(draws[0])), ("signing_key", keyPairJSON(signingKey))]
        }
        fields += [("distribution_message", .hex(message)), ("expect", .string("ok"))]
        return fields
    }

    @discardableResult
    func groupProcess(_ who: PartyRecord, _ sender: PartyRecord, step: Int, expect: Expect = .ok) throws -> Int {
        guard case .distribution(let message, _, let group)? = sent[step] else {
            throw GeneratorError("step \(step) is not a group_create step")
        }
        let fields: [(String, JSON)] = [
            ("step", .int(steps.count)), ("op", .string("group_process")), ("who", .string(who.name)),
            ("peer", .string(sender.name)), ("group_id", .string(group)), ("of_step", .int(step)),
        ]
        _ = rng.takeDraws()
        do {
            try who.party.processDistributionMessage(message, groupID: group, from: sender.address)
        } catch let error as LibSignalPeerError {
            return try failed(fields, error, who: who, expect: expect)
        }
        try expectDraws(rng.takeDraws(), [], "group_process")
        try check(expect, .ok, step: steps.count)
        return append(fields + [("expect", .string("ok"))])
    }

    @discardableResult
    func groupEncrypt(_ who: PartyRecord, group: String, _ text: String) throws -> Int {
        let plaintext = Array(text.utf8)
        _ = rng.takeDraws()
        let ciphertext = try who.party.groupEncrypt(plaintext, groupID: group)
        let draws = rng.takeDraws()
        try expectDraws(draws, [64], "group_encrypt")
        let (keyID, iteration) = try LibSignalParty.parseSenderKeyMessage(ciphertext)
        let fields: [(String, JSON)] = [
            ("step", .int(steps.count)), ("op", .string("group_encrypt")), ("who", .string(who.name)),
            ("group_id", .string(group)), ("plaintext", .hex(plaintext)), ("type", .string("senderkey")),
            ("ciphertext", .hex(ciphertext)), ("sender_key_id", .int(keyID)), ("iteration", .int(iteration)),
            ("signature_random", .hex(draws[0])),
        ]
        sent[steps.count] = .message(ciphertext: ciphertext, type: "senderkey", sender: who.name, plaintext: plaintext)
        return append(fields)
    }

    @discardableResult
    func groupDecrypt(_ who: PartyRecord, _ sender: PartyRecord, group: String, step: Int,
                      mutation: Mutation? = nil, expect: Expect = .ok) throws -> Int {
        guard case .message(let original, "senderkey", _, let sentPlaintext)? = sent[step] else {
            throw GeneratorError("step \(step) is not a group_encrypt step")
        }
        var fields: [(String, JSON)] = [
            ("step", .int(steps.count)), ("op", .string("group_decrypt")), ("who", .string(who.name)),
            ("peer", .string(sender.name)), ("group_id", .string(group)), ("type", .string("senderkey")),
            ("of_step", .int(step)),
        ]
        var ciphertext = original
        if let mutation {
            ciphertext = mutation.apply(original)
            fields += [("ciphertext", .hex(ciphertext)), ("mutation", .string(mutation.description))]
        }
        _ = rng.takeDraws()
        let plaintext: [UInt8]
        do {
            plaintext = try who.party.groupDecrypt(ciphertext, groupID: group, from: sender.address)
        } catch let error as LibSignalPeerError {
            return try failed(fields, error, who: who, expect: expect)
        }
        try expectDraws(rng.takeDraws(), [], "group_decrypt")
        guard plaintext == sentPlaintext || mutation != nil else {
            throw GeneratorError("step \(steps.count): decrypted plaintext differs from step \(step)'s")
        }
        try check(expect, .ok, step: steps.count)
        return append(fields + [("expect", .string("ok")), ("plaintext", .hex(plaintext))])
    }

    // MARK: - Output

    func render() -> String {
        let header: [(String, JSON)] = [
            ("format", .string(Transcript.format)),
            ("generator", .string(Transcript.generator)),
            ("scenario", .string(scenario)),
            ("description", .string(description)),
            ("seed", .int(Int64(bitPattern: seed))),
            ("rng", .string(TranscriptDRBG.description)),
        ]
        let partyObjects: [[(String, JSON)]] = parties.map { record in
            [
                ("name", .string(record.name)),
                ("address", .object([("name", .string(record.address.name)),
                                     ("device_id", .int(record.address.deviceID))])),
                ("registration_id", .int(record.registrationID)),
                ("identity_key", keyPairJSON(record.identity)),
                ("signed_prekeys", .array(record.signedPreKeys.map { key, random in
                    .object([
                        ("id", .int(key.id)), ("timestamp", .int(Int64(bitPattern: key.timestamp))),
                        ("private", .hex(key.keyPair.privateKey)), ("public", .hex(key.keyPair.publicKey)),
                        ("signature", .hex(key.signature)), ("signature_random", .hex(random)),
                    ])
                })),
                ("one_time_prekeys", .array(record.oneTimePreKeys.map { key in
                    .object([("id", .int(key.id)), ("private", .hex(key.keyPair.privateKey)),
                             ("public", .hex(key.keyPair.publicKey))])
                })),
            ]
        }
        return renderTranscript(header: header, parties: partyObjects, steps: steps)
    }

    // MARK: - Private

    private func header(_ op: String, who: PartyRecord, peer: PartyRecord) -> [(String, JSON)] {
        [("step", .int(steps.count)), ("op", .string(op)), ("who", .string(who.name)), ("peer", .string(peer.name))]
    }

    private func append(_ fields: [(String, JSON)]) -> Int {
        steps.append(.object(fields))
        return steps.count - 1
    }

    private func failed(_ fields: [(String, JSON)], _ error: LibSignalPeerError, who: PartyRecord,
                        expect: Expect) throws -> Int {
        guard case .rejected(let canonical, _, let codeName, _) = error else {
            throw GeneratorError("step \(steps.count): \(error)")
        }
        try check(expect, .error(canonical), step: steps.count, detail: error.description)
        let log = who.party.lastLog.filter { $0.level <= Transcript.logLevel }.map(\.text)
        return append(fields + [
            ("expect", .string("error")), ("error", .string(canonical)),
            ("libsignal_error", .string(codeName)), ("libsignal_log", .string(log.joined(separator: " | "))),
        ])
    }

    private func check(_ expected: Expect, _ actual: Expect, step: Int, detail: String = "") throws {
        guard expected == actual else {
            throw GeneratorError("step \(step): expected \(expected), libsignal gave \(actual) \(detail)")
        }
    }

    private func expectDraws(_ draws: [[UInt8]], _ sizes: [Int], _ what: String) throws {
        guard draws.map(\.count) == sizes else {
            throw GeneratorError("\(what): libsignal drew \(draws.map(\.count)) bytes, expected \(sizes)")
        }
    }

    private func keyPairJSON(_ pair: KeyPair) -> JSON {
        .object([("private", .hex(pair.privateKey)), ("public", .hex(pair.publicKey))])
    }
}
