import Hush
import Testing

/// A message that fails to decrypt leaves every store exactly as it was, and the genuine
/// message still decrypts afterwards.
@Suite struct TransactionalDecryptTests {
    /// Changing any authenticated byte of a message is detected and changes nothing; the
    /// session then still decrypts the genuine message.
    @Test(arguments: [CiphertextMessage.Kind.signal, .preKeySignal])
    func everyTamperedByteIsDetected(kind: CiphertextMessage.Kind) throws {
        let (alice, bob, genuine) = try Self.pair(kind)
        let bytes = genuine.serialized
        let exempt: Set<Int>
        if case .preKeySignal(let m) = genuine { exempt = unauthenticatedPositions(of: m) } else { exempt = [] }
        let before = bob.store.snapshot()
        for index in bytes.indices where !exempt.contains(index) {
            for delta: UInt8 in [0x01, 0x10, 0x80, 0xFF] {
                var tampered = bytes
                tampered[index] ^= delta
                do {
                    let plaintext = try bob.decrypt(bytes: tampered, kind: kind, from: alice)
                    Issue.record("byte \(index) ^ \(delta) accepted: \(plaintext)")
                } catch {}
                #expect(bob.store.snapshot() == before, "byte \(index) ^ \(delta) changed the stores")
            }
        }
        for cut in [1, 8, bytes.count / 2, bytes.count - 1] {
            #expect(throws: SignalProtocolError.self) { try bob.decrypt(bytes: Array(bytes.dropLast(cut)), kind: kind, from: alice) }
        }
        #expect(bob.store.snapshot() == before)
        #expect(String(decoding: try bob.decrypt(bytes: bytes, kind: kind, from: alice), as: UTF8.self) == "the genuine message")
    }

    /// The bytes v3 leaves unauthenticated (a PreKeySignalMessage's version low nibble and
    /// registration id) can never change what is decrypted: a change is either rejected or
    /// yields the genuine plaintext.
    @Test func unauthenticatedMetadataCannotChangeThePlaintext() throws {
        let (_, _, genuine) = try Self.pair(.preKeySignal)
        guard case .preKeySignal(let m) = genuine else { Issue.record("expected a prekey message"); return }
        let positions = unauthenticatedPositions(of: m)
        #expect(positions.count == 4, "version byte, field 5 tag and a 2-byte registration id")
        for index in positions.sorted() {
            for delta: UInt8 in [0x01, 0x10, 0x80, 0xFF] {
                let (alice, bob, _) = try Self.pair(.preKeySignal)
                var tampered = m.serialized
                tampered[index] ^= delta
                if let plaintext = try? bob.decrypt(bytes: tampered, kind: .preKeySignal, from: alice) {
                    #expect(String(decoding: plaintext, as: UTF8.self) == "the genuine message")
                }
            }
        }
    }

    /// A deterministic pair and the genuine message of `kind` from Alice to Bob.
    static func pair(_ kind: CiphertextMessage.Kind) throws -> (Device, Device, CiphertextMessage) {
        let alice = Device("alice", seed: 101)
        let bob = Device("bob", seed: 102)
        try alice.startSession(with: bob)
        if kind == .signal {
            _ = try bob.decrypt(try alice.encrypt("first", to: bob), from: alice)
            _ = try alice.decrypt(try bob.encrypt("ack", to: alice), from: bob)
        }
        let genuine = try alice.encrypt("the genuine message", to: bob)
        #expect(genuine.kind == kind)
        return (alice, bob, genuine)
    }

    /// Property test: a seeded random interleaving of genuine deliveries (in any order),
    /// replays, tampered copies, garbage and messages for the wrong session. Every failing
    /// call must leave both stores byte-for-byte unchanged; every genuine message decrypts
    /// exactly once.
    @Test(arguments: [(CipherSuite.signalV3, UInt64(1)), (.signalV3, 2), (.hush1, 3), (.hush1, 4)])
    func failedDecryptsChangeNothing(suite: CipherSuite, seed: UInt64) throws {
        let random = SeededRandom(seed: 5000 + seed)
        func draw(_ n: Int) -> Int { Int(try! random.secureBytes(count: 4).bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } % UInt32(n)) }
        let alice = Device("alice", seed: 200 + seed)
        let bob = Device("bob", seed: 300 + seed)
        try alice.startSession(with: bob, suite: suite)
        var inFlight: [(from: Device, to: Device, message: CiphertextMessage, text: String, sentAt: Int)] = []
        var sends = 0
        var delivered: [(from: Device, to: Device, message: CiphertextMessage)] = []
        var failures = 0
        for step in 0..<400 {
            // Deliver anything older than 8 sends first: beyond that its chain could be one of
            // more than five receiving chains back, which the protocol evicts on purpose.
            if let oldest = inFlight.firstIndex(where: { sends - $0.sentAt >= 8 }) {
                let m = inFlight.remove(at: oldest)
                #expect(try m.to.decrypt(m.message, from: m.from) == m.text)
                delivered.append((m.from, m.to, m.message))
            }
            switch draw(10) {
            case 0...3:
                // Send (Bob only once he has heard from Alice).
                let aliceSends = draw(2) == 0 || bob.store.loadSession(for: alice.address) == nil
                let (from, to) = aliceSends ? (alice, bob) : (bob, alice)
                let text = "\(from.address.name)-\(step)"
                inFlight.append((from, to, try from.encrypt(text, to: to), text, sends))
                sends += 1
            case 4...6 where !inFlight.isEmpty:
                // Deliver a random in-flight message (reordering inside the window).
                let m = inFlight.remove(at: draw(inFlight.count))
                #expect(try m.to.decrypt(m.message, from: m.from) == m.text)
                delivered.append((m.from, m.to, m.message))
            case 7 where !delivered.isEmpty:
                let m = delivered[draw(delivered.count)]
                try expectNoChange(m.to) { () throws(SignalProtocolError) in _ = try m.to.decrypt(m.message, from: m.from) }
                failures += 1
            case 8 where !inFlight.isEmpty || !delivered.isEmpty:
                let pool = inFlight.map { ($0.from, $0.to, $0.message) } + delivered.map { ($0.from, $0.to, $0.message) }
                let (from, to, message) = pool[draw(pool.count)]
                var bytes = message.serialized
                var exempt: Set<Int> = []
                if case .preKeySignal(let m) = message { exempt = unauthenticatedPositions(of: m) }
                var index = draw(bytes.count)
                while exempt.contains(index) { index = draw(bytes.count) }
                bytes[index] ^= UInt8(1 + draw(255))
                try expectNoChange(to) { () throws(SignalProtocolError) in _ = try to.decrypt(bytes: bytes, kind: message.kind, from: from) }
                failures += 1
            case 9:
                let target = draw(2) == 0 ? bob : alice
                let garbage = try random.secureBytes(count: 1 + draw(120)).bytes
                let kind: CiphertextMessage.Kind = suite == .signalV3 ? (draw(2) == 0 ? .signal : .preKeySignal) : (draw(2) == 0 ? .hush : .hushPreKey)
                try expectNoChange(target) { () throws(SignalProtocolError) in
                    _ = try target.decrypt(bytes: [suite == .signalV3 ? 0x33 : UInt8(kind.rawValue)] + garbage, kind: kind, from: target === bob ? alice : bob)
                }
                failures += 1
            default:
                continue
            }
        }
        // Everything still in flight decrypts.
        for m in inFlight { #expect(try m.to.decrypt(m.message, from: m.from) == m.text) }
        #expect(failures > 50)
    }

    private func expectNoChange(_ device: Device, _ body: () throws(SignalProtocolError) -> Void) throws {
        let before = device.store.snapshot()
        #expect(throws: SignalProtocolError.self) { try body() }
        #expect(device.store.snapshot() == before)
    }
}
