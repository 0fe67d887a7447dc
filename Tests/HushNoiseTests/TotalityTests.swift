import HushCrypto
@testable import HushNoise
import Testing

/// Any bytes given to a reader give a payload or a typed error — never a crash — and a refusal
/// leaves the reader unchanged. The fuzz target (Fuzz/Sources/FuzzNoise) does the same without
/// bounds; this is the deterministic slice of it that runs with every `swift test`.
@Suite struct TotalityTests {
    /// Random inputs: lengths around every size boundary of the patterns, and a few large ones.
    static func inputs(seed: UInt64) -> [[UInt8]] {
        let random = SeededRandom(seed: seed)
        var lengths = Array(0...130) + [143, 144, 145, 1_000, 65_535, 65_536, 70_000]
        lengths += (0..<40).map { _ in Int(try! random.secureBytes(count: 2).bytes.withUnsafeBytes { $0.load(as: UInt16.self) }) }
        return lengths.map { try! random.secureBytes(count: $0).bytes }
    }

    static let handshakeErrors: Set<NoiseError> = [.decryptionFailed, .invalidPublicKey]

    @Test(arguments: NoisePattern.allCases)
    func responderReadingArbitraryFirstMessages(_ pattern: NoisePattern) throws {
        let fresh = try NoiseHandshake(pattern: pattern, role: .responder, localStatic: staticKey(2))
        var accepted = 0
        for input in Self.inputs(seed: 100) {
            var r = fresh
            do {
                _ = try r.readMessage(input)
                // Only XX's first message (a clear `e` and payload) can be made without keys.
                #expect(pattern == .xx, "\(pattern) accepted \(input.count) random bytes")
                accepted += 1
            } catch {
                #expect(Self.expected(error, length: input.count, minimum: pattern == .ik ? 96 : pattern == .nk ? 48 : 32), "\(error)")
                #expect(r.handshakeHash == fresh.handshakeHash && !r.isMyTurnToWrite)
            }
        }
        if pattern == .xx { #expect(accepted > 0) }
    }

    @Test(arguments: NoisePattern.allCases)
    func initiatorReadingArbitraryResponses(_ pattern: NoisePattern) throws {
        var i = try NoiseHandshake(pattern: pattern, role: .initiator, localStatic: staticKey(1), remoteStatic: staticKey(2).publicKey)
        _ = try i.writeMessage(payload: [UInt8]())
        let waiting = i
        for input in Self.inputs(seed: 200) {
            var reader = waiting
            do {
                _ = try reader.readMessage(input)
                Issue.record("\(pattern) initiator accepted \(input.count) random bytes")
            } catch {
                #expect(Self.expected(error, length: input.count, minimum: pattern == .xx ? 96 : 48), "\(error)")
                #expect(reader.handshakeHash == waiting.handshakeHash)
            }
        }
    }

    @Test func transportDecryptOfArbitraryBytes() throws {
        var (_, r, _) = try handshake(.ik)
        for input in Self.inputs(seed: 300) {
            do {
                _ = try r.decrypt(input)
                Issue.record("accepted \(input.count) random bytes")
            } catch {
                switch error {
                case .messageTooShort(let length, 16): #expect(length == input.count && length < 16)
                case .messageTooLarge(let length, 65_535): #expect(length == input.count && length > 65_535)
                case .decryptionFailed: #expect((16...65_535).contains(input.count))
                default: Issue.record("unexpected \(error)")
                }
            }
            #expect(r.receivingNonce == 0)
        }
    }

    /// The error a reader may give for `length` random bytes when its message needs `minimum`.
    static func expected(_ error: NoiseError, length: Int, minimum: Int) -> Bool {
        switch error {
        case .messageTooLarge(let l, 65_535): return l == length && length > 65_535
        case .messageTooShort(let l, let m): return l == length && m == minimum && length < minimum
        case .decryptionFailed, .invalidPublicKey: return length >= minimum && length <= 65_535
        default: return false
        }
    }
}
