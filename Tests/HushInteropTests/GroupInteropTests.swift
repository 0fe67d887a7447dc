import Hush
import LibSignalPeer
import Testing

/// Sender keys between Hush and libsignal-protocol-c, live.
@Suite struct GroupInteropTests {
    /// A group member of either implementation.
    final class Member {
        let name: String
        let hush: InMemorySignalProtocolStore?
        let lib: LibSignalParty?
        let random: StepRandom

        init(_ name: String, hush: Bool, seed: UInt64) throws {
            self.name = name
            random = StepRandom(seed: seed)
            if hush {
                let identity = try IdentityKeyPair.generate(using: SeededRandom(seed: seed))
                self.hush = InMemorySignalProtocolStore(identity: identity, registrationID: 1)
                lib = nil
            } else {
                self.hush = nil
                lib = try LibSignalParty(address: .init(name: name, deviceID: 1), random: random.libsignal)
            }
        }

        var address: ProtocolAddress { ProtocolAddress(name: name, deviceID: 1) }
        var implementation: String { hush != nil ? "hush" : "libsignal" }
        func senderKeyName(of sender: Member) -> SenderKeyName { SenderKeyName(groupID: "g", sender: sender.address) }

        func distribution() throws -> [UInt8] {
            if let hush { return try GroupSessionBuilder.distributionMessage(for: senderKeyName(of: self), store: hush, random: random).serialized.bytes }
            return try lib!.createDistributionMessage(groupID: "g")
        }

        func process(_ bytes: [UInt8], from sender: Member) throws {
            if let hush {
                try GroupSessionBuilder.process(try SenderKeyDistributionMessage(serialized: bytes), from: senderKeyName(of: sender), store: hush)
            } else {
                try lib!.processDistributionMessage(bytes, groupID: "g", from: .init(name: sender.name, deviceID: 1))
            }
        }

        func encrypt(_ text: String) throws -> [UInt8] {
            if let hush { return try GroupCipher.encrypt(Array(text.utf8), for: senderKeyName(of: self), store: hush, random: random).serialized }
            return try lib!.groupEncrypt(Array(text.utf8), groupID: "g")
        }

        func decrypt(_ bytes: [UInt8], from sender: Member) -> Outcome {
            outcome {
                if let hush { return try GroupCipher.decrypt(bytes, from: senderKeyName(of: sender), store: hush) }
                return try lib!.groupDecrypt(bytes, groupID: "g", from: .init(name: sender.name, deviceID: 1))
            }
        }
    }

    @Test(arguments: [1, 2] as [UInt64])
    func mixedGroupWithReorderingDuplicatesAndLateJoiners(seed: UInt64) throws {
        let members = try [Member("alice", hush: true, seed: seed * 10 + 1), Member("bob", hush: false, seed: seed * 10 + 2),
                           Member("carol", hush: true, seed: seed * 10 + 3), Member("dave", hush: false, seed: seed * 10 + 4)]
        for sender in members {
            let d = try sender.distribution()
            for member in members where member !== sender { try member.process(d, from: sender) }
        }
        let random = SeededRandom(seed: 7000 + seed)
        func draw(_ n: Int) -> Int { Int(try! random.secureBytes(count: 4).bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } % UInt32(n)) }

        // Everyone sends; each receiver gets the messages in its own random order.
        var sent: [(sender: Member, bytes: [UInt8], text: String)] = []
        for i in 0..<120 {
            let sender = members[draw(members.count)]
            let text = "\(sender.name) #\(i)"
            sent.append((sender, try sender.encrypt(text), text))
        }
        for receiver in members {
            var queue = sent.filter { $0.sender !== receiver }
            while !queue.isEmpty {
                let m = queue.remove(at: draw(queue.count))
                #expect(receiver.decrypt(m.bytes, from: m.sender) == .plaintext(Array(m.text.utf8)),
                        "\(receiver.implementation) \(receiver.name) reading \(m.sender.implementation) \(m.sender.name)")
            }
            // Duplicates and a forged signature are refused the same way by both.
            let m = sent.first { $0.sender !== receiver }!
            #expect(receiver.decrypt(m.bytes, from: m.sender) == .error("duplicate_message"))
            var forged = m.bytes
            forged[forged.count - 1] ^= 0x01
            #expect(receiver.decrypt(forged, from: m.sender) == .error("bad_signature"))
        }

        // Late joiners of both kinds: existing senders re-export their keys at the current iteration.
        let late = try [Member("erin", hush: true, seed: seed * 10 + 5), Member("frank", hush: false, seed: seed * 10 + 6)]
        for sender in members {
            let d = try sender.distribution()
            for joiner in late { try joiner.process(d, from: sender) }
        }
        var after: [(sender: Member, bytes: [UInt8], text: String)] = []
        for sender in members {
            after.append((sender, try sender.encrypt("\(sender.name) after"), "\(sender.name) after"))
        }
        for joiner in late {
            for m in after { #expect(joiner.decrypt(m.bytes, from: m.sender) == .plaintext(Array(m.text.utf8))) }
            // Earlier messages cannot be read: the chain only goes forward.
            for m in sent.prefix(10) { #expect(joiner.decrypt(m.bytes, from: m.sender) == .error("duplicate_message")) }
        }
    }

    /// No sender key: both report it as `no_session`.
    @Test func unknownSenderAgrees() throws {
        let alice = try Member("alice", hush: true, seed: 91)
        let bob = try Member("bob", hush: false, seed: 92)
        let carol = try Member("carol", hush: true, seed: 93)
        _ = try alice.distribution()
        _ = try bob.distribution()
        let fromAlice = try alice.encrypt("x")
        let fromBob = try bob.encrypt("y")
        #expect(carol.decrypt(fromBob, from: bob) == .error("no_session"))
        #expect(bob.decrypt(fromAlice, from: alice) == .error("no_session"))
    }
}
