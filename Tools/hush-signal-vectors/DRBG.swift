import LibSignalPeer

/// The transcripts' seeded random stream (their "rng" field):
/// block_i = SHA-256("signal-v3-drbg1" || scenario || 0x00 || le64(seed) || le64(i)),
/// stream = block_0 || block_1 || ...
/// Every draw libsignal makes is also logged, so that the transcript can list what each
/// operation consumed.
final class TranscriptDRBG {
    static let description =
        "block_i = SHA-256(\"signal-v3-drbg1\" || scenario || 0x00 || le64(seed) || le64(i)), stream = block_0 || block_1 || ..."

    private let prefix: [UInt8]
    private var blockIndex: UInt64 = 0
    private var block: [UInt8] = []
    private var used = 0
    /// Draws since the last `takeDraws()`, in order.
    private var draws: [[UInt8]] = []

    init(scenario: String, seed: UInt64) {
        prefix = Array("signal-v3-drbg1".utf8) + Array(scenario.utf8) + [0] + TranscriptDRBG.le64(seed)
    }

    func draw(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            if used == block.count {
                block = LibSignalParty.sha256(prefix + TranscriptDRBG.le64(blockIndex))
                blockIndex += 1
                used = 0
            }
            let take = min(count - out.count, block.count - used)
            out += block[used..<(used + take)]
            used += take
        }
        draws.append(out)
        return out
    }

    /// The draws made since the previous call.
    func takeDraws() -> [[UInt8]] {
        defer { draws.removeAll() }
        return draws
    }

    private static func le64(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}
