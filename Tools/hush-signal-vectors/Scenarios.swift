// The scenario scripts. With seed 1 they reproduce the shared transcripts
// (/work/shared/vectors/signal-v3/<scenario>-seed1.json): same parties created in the same
// order (so the same draws from the stream), same steps.

struct Scenario: Sendable {
    let name: String
    let description: String
    let run: @Sendable (Transcript) throws -> Void
}

enum Scenarios {
    static let all: [Scenario] = [basic, noOTK, outOfOrder, longChain, errors, group, simultaneous, archived,
                                  identityChange]

    static func named(_ name: String) -> Scenario? { all.first { $0.name == name } }

    // MARK: - Shared pieces

    /// alice and bob; bob has signed prekey 1 and, optionally, one-time prekeys from 101.
    private static func aliceAndBob(_ t: Transcript, oneTimePreKeys: UInt32 = 1) throws -> (PartyRecord, PartyRecord) {
        let alice = try t.party("alice")
        let bob = try t.party("bob")
        try t.signedPreKey(bob, id: 1)
        if oneTimePreKeys > 0 {
            try t.oneTimePreKeys(bob, start: 101, count: oneTimePreKeys)
        }
        return (alice, bob)
    }

    private static func message(_ from: PartyRecord, _ to: PartyRecord, _ number: Int) -> String {
        "\(from.name) to \(to.name), message \(number)"
    }

    /// X3DH, then `rounds` messages each way, alternating (every reply a DH ratchet step).
    private static func pingPong(_ t: Transcript, _ alice: PartyRecord, _ bob: PartyRecord, rounds: Int) throws {
        for round in 1...rounds {
            let a = try t.encrypt(alice, bob, message(alice, bob, round))
            try t.decrypt(bob, alice, step: a)
            let b = try t.encrypt(bob, alice, message(bob, alice, round))
            try t.decrypt(alice, bob, step: b)
        }
    }

    // MARK: - Scenarios

    static let basic = Scenario(
        name: "basic",
        description: "X3DH with a one-time prekey, then 3 messages each way, alternating (every reply is a DH ratchet step)"
    ) { t in
        let (alice, bob) = try aliceAndBob(t)
        try t.processBundle(alice, bob, signedPreKey: 1, oneTimePreKey: 101)
        try pingPong(t, alice, bob, rounds: 3)
    }

    static let noOTK = Scenario(
        name: "no-otk",
        description: "as basic, but the bundle has no one-time prekey (X3DH with 3 DH outputs)"
    ) { t in
        let (alice, bob) = try aliceAndBob(t, oneTimePreKeys: 0)
        try t.processBundle(alice, bob, signedPreKey: 1, oneTimePreKey: nil)
        try pingPong(t, alice, bob, rounds: 3)
    }

    static let outOfOrder = Scenario(
        name: "out-of-order",
        description: "PreKeySignalMessages out of order; messages of one chain delivered reversed and interleaved across DH ratchet steps, using skipped message keys"
    ) { t in
        let (alice, bob) = try aliceAndBob(t)
        try t.processBundle(alice, bob, signedPreKey: 1, oneTimePreKey: 101)
        let a1 = try t.encrypt(alice, bob, message(alice, bob, 1))
        let a2 = try t.encrypt(alice, bob, message(alice, bob, 2))
        let a3 = try t.encrypt(alice, bob, message(alice, bob, 3))
        try t.decrypt(bob, alice, step: a3)
        try t.decrypt(bob, alice, step: a1)
        try t.decrypt(bob, alice, step: a2)
        let b1 = try t.encrypt(bob, alice, message(bob, alice, 1))
        try t.decrypt(alice, bob, step: b1)
        let a4 = try t.encrypt(alice, bob, message(alice, bob, 4))
        let a5 = try t.encrypt(alice, bob, message(alice, bob, 5))
        let a6 = try t.encrypt(alice, bob, message(alice, bob, 6))
        let a7 = try t.encrypt(alice, bob, message(alice, bob, 7))
        try t.decrypt(bob, alice, step: a6)
        let b2 = try t.encrypt(bob, alice, message(bob, alice, 2))
        try t.decrypt(alice, bob, step: b2)
        let a8 = try t.encrypt(alice, bob, message(alice, bob, 8))
        let a9 = try t.encrypt(alice, bob, message(alice, bob, 9))
        try t.decrypt(bob, alice, step: a9)
        try t.decrypt(bob, alice, step: a4)
        try t.decrypt(bob, alice, step: a8)
        try t.decrypt(bob, alice, step: a7)
        try t.decrypt(bob, alice, step: a5)
        let b3 = try t.encrypt(bob, alice, message(bob, alice, 3))
        let b4 = try t.encrypt(bob, alice, message(bob, alice, 4))
        let b5 = try t.encrypt(bob, alice, message(bob, alice, 5))
        let b6 = try t.encrypt(bob, alice, message(bob, alice, 6))
        try t.decrypt(alice, bob, step: b5)
        try t.decrypt(alice, bob, step: b3)
        let a10 = try t.encrypt(alice, bob, message(alice, bob, 10))
        try t.decrypt(bob, alice, step: a10)
        let b7 = try t.encrypt(bob, alice, message(bob, alice, 7))
        try t.decrypt(alice, bob, step: b7)
        try t.decrypt(alice, bob, step: b6)
        try t.decrypt(alice, bob, step: b4)
    }

    static let longChain = Scenario(
        name: "long-chain",
        description: "1500 messages in one chain, the last delivered first (1499 skipped keys), then the rest in order, then replies"
    ) { t in
        let (alice, bob) = try aliceAndBob(t)
        try t.processBundle(alice, bob, signedPreKey: 1, oneTimePreKey: 101)
        let first = try t.encrypt(alice, bob, message(alice, bob, 0))
        try t.decrypt(bob, alice, step: first)
        let reply = try t.encrypt(bob, alice, message(bob, alice, 0))
        try t.decrypt(alice, bob, step: reply)
        var chain: [Int] = []
        for number in 1...1500 {
            chain.append(try t.encrypt(alice, bob, "a" + fourDigits(number)))
        }
        try t.decrypt(bob, alice, step: chain[chain.count - 1])
        for step in chain.dropLast() {
            try t.decrypt(bob, alice, step: step)
        }
        try t.decrypt(bob, alice, step: chain[chain.count - 1], expect: .error("duplicate_message"))
        let b1 = try t.encrypt(bob, alice, message(bob, alice, 1))
        try t.decrypt(alice, bob, step: b1)
        let a1501 = try t.encrypt(alice, bob, message(alice, bob, 1501))
        try t.decrypt(bob, alice, step: a1501)
        let b2 = try t.encrypt(bob, alice, message(bob, alice, 2))
        try t.decrypt(alice, bob, step: b2)
        let a1502 = try t.encrypt(alice, bob, message(alice, bob, 1502))
        try t.decrypt(bob, alice, step: a1502)
    }

    static let errors = Scenario(
        name: "errors",
        description: "tampered MAC/body/version byte, truncation, replays, no session, untrusted identity, message beyond max skip (2000), stale one-time prekey"
    ) { t in
        let (alice, bob) = try aliceAndBob(t, oneTimePreKeys: 2)
        // mallory claims alice's address with another identity key; carol has no sessions.
        let mallory = try t.party("mallory", address: Address(name: "alice", deviceID: 1))
        let carol = try t.party("carol")

        try t.processBundle(alice, bob, signedPreKey: 1, oneTimePreKey: 101)
        let a0 = try t.encrypt(alice, bob, message(alice, bob, 0))
        try t.decrypt(bob, alice, step: a0)
        let b0 = try t.encrypt(bob, alice, message(bob, alice, 0))
        try t.decrypt(alice, bob, step: b0)
        try t.decrypt(bob, alice, step: a0, expect: .error("duplicate_message"))

        let a1 = try t.encrypt(alice, bob, message(alice, bob, 1))
        let tampered: [(Mutation, String)] = [
            (.macByte, "bad_mac"),
            (.bodyByte, "bad_mac"),
            (.versionByte(0x43), "invalid_version"),
            (.versionByte(0x23), "legacy_version"),
            (.versionByte(0x13), "legacy_version"),
            (.versionByte(0x32, note: " (low nibble)"), "bad_mac"),
            (.truncatedByOne, "malformed"),
            (.macRemoved, "malformed"),
            (.truncatedToNine, "malformed"),
        ]
        for (mutation, error) in tampered {
            try t.decrypt(bob, alice, step: a1, mutation: mutation, expect: .error(error))
        }
        try t.decrypt(bob, alice, step: a1)
        try t.decrypt(bob, alice, step: a1, expect: .error("duplicate_message"))

        let a2 = try t.encrypt(alice, bob, message(alice, bob, 2))
        try t.decrypt(carol, alice, step: a2, expect: .error("no_session"))
        try t.decrypt(bob, alice, step: a2)

        try t.processBundle(mallory, bob, signedPreKey: 1, oneTimePreKey: 102)
        let m0 = try t.encrypt(mallory, bob, message(mallory, bob, 0))
        try t.decrypt(bob, mallory, step: m0, expect: .error("untrusted_identity"))

        let b1 = try t.encrypt(bob, alice, message(bob, alice, 1))
        try t.decrypt(alice, bob, step: b1)
        // One chain of 2002 messages: counter 2001 is one beyond the maximum skip.
        var chain: [Int] = []
        for number in 0...2001 {
            chain.append(try t.encrypt(alice, bob, "c" + fourDigits(number)))
        }
        try t.decrypt(bob, alice, step: chain[2001], expect: .error("too_far_in_future"))
        try t.decrypt(bob, alice, step: chain[2000])
        try t.decrypt(bob, alice, step: chain[0])
        try t.decrypt(bob, alice, step: chain[1999])
        try t.decrypt(bob, alice, step: chain[2001])

        // A bundle fetched before one-time prekey 101 was used.
        try t.processBundle(alice, bob, signedPreKey: 1, oneTimePreKey: 101)
        let a3 = try t.encrypt(alice, bob, message(alice, bob, 3))
        try t.decrypt(bob, alice, step: a3, expect: .error("unknown_prekey"))
    }

    static let group = Scenario(
        name: "group",
        description: "sender keys for three senders: distribution messages, group messages in and out of order, duplicate, bad signature, a late joiner"
    ) { t in
        let alice = try t.party("alice")
        let bob = try t.party("bob")
        let carol = try t.party("carol")
        let g = "group-1"
        func text(_ sender: PartyRecord, _ number: Int) -> String { "\(sender.name) to \(g), message \(number)" }

        let aliceKey = try t.groupCreate(alice, group: g)
        try t.groupProcess(bob, alice, step: aliceKey)
        var a: [Int] = []
        for number in 0...3 {
            a.append(try t.groupEncrypt(alice, group: g, text(alice, number)))
        }
        try t.groupDecrypt(bob, alice, group: g, step: a[0])
        try t.groupDecrypt(bob, alice, group: g, step: a[2])
        try t.groupDecrypt(bob, alice, group: g, step: a[1])
        try t.groupDecrypt(bob, alice, group: g, step: a[1], expect: .error("duplicate_message"))
        try t.groupDecrypt(bob, alice, group: g, step: a[3], mutation: .signatureByte, expect: .error("bad_signature"))
        try t.groupDecrypt(bob, alice, group: g, step: a[3])

        // carol joins late: alice re-exports her sender key at its current iteration.
        let aliceAgain = try t.groupCreate(alice, group: g)
        try t.groupProcess(carol, alice, step: aliceAgain)
        let a4 = try t.groupEncrypt(alice, group: g, text(alice, 4))
        try t.groupDecrypt(carol, alice, group: g, step: a4)
        try t.groupDecrypt(carol, alice, group: g, step: a[0], expect: .error("duplicate_message"))
        try t.groupDecrypt(bob, alice, group: g, step: a4)

        let bobKey = try t.groupCreate(bob, group: g)
        try t.groupProcess(alice, bob, step: bobKey)
        try t.groupProcess(carol, bob, step: bobKey)
        let b0 = try t.groupEncrypt(bob, group: g, text(bob, 0))
        try t.groupDecrypt(alice, bob, group: g, step: b0)
        try t.groupDecrypt(carol, bob, group: g, step: b0)

        let carolKey = try t.groupCreate(carol, group: g)
        try t.groupProcess(alice, carol, step: carolKey)
        try t.groupProcess(bob, carol, step: carolKey)
        let c0 = try t.groupEncrypt(carol, group: g, text(carol, 0))
        let c1 = try t.groupEncrypt(carol, group: g, text(carol, 1))
        try t.groupDecrypt(alice, carol, group: g, step: c1)
        try t.groupDecrypt(bob, carol, group: g, step: c0)
        try t.groupDecrypt(alice, carol, group: g, step: c0)
        try t.groupDecrypt(bob, carol, group: g, step: c1)
    }

    static let simultaneous = Scenario(
        name: "simultaneous",
        description: "simultaneous initiation: both process the other's bundle and send before receiving; each received PreKeySignalMessage builds a new state and archives the receiver's own; a state that decrypts becomes current (archived ones are promoted), so both end up on the session of the last messages exchanged; a late PreKeySignalMessage matches an archived state's base key"
    ) { t in
        let (alice, bob) = try aliceAndBob(t)
        try t.signedPreKey(alice, id: 1)
        try t.oneTimePreKeys(alice, start: 201, count: 1)

        try t.processBundle(alice, bob, signedPreKey: 1, oneTimePreKey: 101)
        try t.processBundle(bob, alice, signedPreKey: 1, oneTimePreKey: 201)
        let a1 = try t.encrypt(alice, bob, message(alice, bob, 1))
        let b1 = try t.encrypt(bob, alice, message(bob, alice, 1))
        let a2 = try t.encrypt(alice, bob, message(alice, bob, 2))
        try t.decrypt(alice, bob, step: b1)
        try t.decrypt(bob, alice, step: a1)
        let a3 = try t.encrypt(alice, bob, message(alice, bob, 3))
        try t.decrypt(bob, alice, step: a3)
        let b2 = try t.encrypt(bob, alice, message(bob, alice, 2))
        try t.decrypt(alice, bob, step: b2)
        let a4 = try t.encrypt(alice, bob, message(alice, bob, 4))
        try t.decrypt(bob, alice, step: a4)
        let b3 = try t.encrypt(bob, alice, message(bob, alice, 3))
        try t.decrypt(alice, bob, step: b3)
        let a5 = try t.encrypt(alice, bob, message(alice, bob, 5))
        try t.decrypt(bob, alice, step: a5)
        let b4 = try t.encrypt(bob, alice, message(bob, alice, 4))
        try t.decrypt(alice, bob, step: b4)
        // The late second PreKeySignalMessage of alice's first session.
        try t.decrypt(bob, alice, step: a2)
        let b5 = try t.encrypt(bob, alice, message(bob, alice, 5))
        try t.decrypt(alice, bob, step: b5)
        let a6 = try t.encrypt(alice, bob, message(alice, bob, 6))
        try t.decrypt(bob, alice, step: a6)
        let b6 = try t.encrypt(bob, alice, message(bob, alice, 6))
        try t.decrypt(alice, bob, step: b6)
    }

    static let archived = Scenario(
        name: "archived",
        description: "bob re-keys (signed prekey 2, one-time prekey 102) while old-session messages are in flight: archived-state decryption and promotion, old messages after the new session's, duplicates found in an archived and in the current state"
    ) { t in
        let (alice, bob) = try aliceAndBob(t)
        try t.signedPreKey(bob, id: 2)
        try t.oneTimePreKeys(bob, start: 102, count: 1)

        try t.processBundle(alice, bob, signedPreKey: 1, oneTimePreKey: 101)
        let a1 = try t.encrypt(alice, bob, message(alice, bob, 1))
        try t.decrypt(bob, alice, step: a1)
        let b1 = try t.encrypt(bob, alice, message(bob, alice, 1))
        try t.decrypt(alice, bob, step: b1)
        let a2 = try t.encrypt(alice, bob, message(alice, bob, 2))
        try t.decrypt(bob, alice, step: a2)
        let b2 = try t.encrypt(bob, alice, message(bob, alice, 2))
        let b3 = try t.encrypt(bob, alice, message(bob, alice, 3))
        let b4 = try t.encrypt(bob, alice, message(bob, alice, 4))
        // alice starts a new session (archiving the old state) while b2..b4 are in flight.
        try t.processBundle(alice, bob, signedPreKey: 2, oneTimePreKey: 102)
        let a3 = try t.encrypt(alice, bob, message(alice, bob, 3))
        try t.decrypt(alice, bob, step: b2)
        try t.decrypt(bob, alice, step: a3)
        let b5 = try t.encrypt(bob, alice, message(bob, alice, 5))
        try t.decrypt(alice, bob, step: b5)
        let a4 = try t.encrypt(alice, bob, message(alice, bob, 4))
        try t.decrypt(bob, alice, step: a4)
        let b6 = try t.encrypt(bob, alice, message(bob, alice, 6))
        try t.decrypt(alice, bob, step: b6)
        try t.decrypt(alice, bob, step: b2, expect: .error("duplicate_message"))
        try t.decrypt(alice, bob, step: b4)
        try t.decrypt(alice, bob, step: b3)
        let a5 = try t.encrypt(alice, bob, message(alice, bob, 5))
        try t.decrypt(bob, alice, step: a5)
        let b7 = try t.encrypt(bob, alice, message(bob, alice, 7))
        try t.decrypt(alice, bob, step: b7)
        try t.decrypt(alice, bob, step: b2, expect: .error("duplicate_message"))
    }

    static let identityChange = Scenario(
        name: "identity-change",
        description: "mallory (another identity key, bob's address) offers a bundle and sends a PreKeySignalMessage to alice: both rejected as untrusted_identity; alice's session and one-time prekey are unchanged"
    ) { t in
        let (alice, bob) = try aliceAndBob(t)
        try t.signedPreKey(alice, id: 1)
        try t.oneTimePreKeys(alice, start: 201, count: 1)
        let mallory = try t.party("mallory", address: Address(name: "bob", deviceID: 1))
        try t.signedPreKey(mallory, id: 1)
        try t.oneTimePreKeys(mallory, start: 301, count: 1)

        try t.processBundle(alice, bob, signedPreKey: 1, oneTimePreKey: 101)
        let a1 = try t.encrypt(alice, bob, message(alice, bob, 1))
        try t.decrypt(bob, alice, step: a1)
        let b1 = try t.encrypt(bob, alice, message(bob, alice, 1))
        try t.decrypt(alice, bob, step: b1)
        try t.processBundle(alice, mallory, signedPreKey: 1, oneTimePreKey: 301, expect: .error("untrusted_identity"))
        try t.processBundle(mallory, alice, signedPreKey: 1, oneTimePreKey: 201)
        let m1 = try t.encrypt(mallory, alice, message(mallory, alice, 1))
        try t.decrypt(alice, mallory, step: m1, expect: .error("untrusted_identity"))
        let b2 = try t.encrypt(bob, alice, message(bob, alice, 2))
        try t.decrypt(alice, bob, step: b2)
        let a2 = try t.encrypt(alice, bob, message(alice, bob, 2))
        try t.decrypt(bob, alice, step: a2)
        // bob starts a new session with alice's unused one-time prekey 201.
        try t.processBundle(bob, alice, signedPreKey: 1, oneTimePreKey: 201)
        let b3 = try t.encrypt(bob, alice, message(bob, alice, 3))
        try t.decrypt(alice, bob, step: b3)
        let a3 = try t.encrypt(alice, bob, message(alice, bob, 3))
        try t.decrypt(bob, alice, step: a3)
    }

    private static func fourDigits(_ number: Int) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
