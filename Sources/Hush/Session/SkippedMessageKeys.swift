/// The message keys skipped on one receiving chain (Double Ratchet §3.2 `MKSKIPPED` for one
/// `DHr`), oldest first, at most ``SignalConstants/maximumStoredMessageKeys``.
///
/// All key material of a chain lives in **one** wiped buffer (``SecureBytes``), entry `i` at
/// `i × materialByteCount`, next to a plain array of counters (message numbers are not secret):
/// parsing a record with 2,000 skipped keys makes two allocations for them instead of two per
/// key, and skipping `n` messages makes one. A value type: changing a copy (as decryption does,
/// on a copy of the state it commits only on success) never changes the original.
struct SkippedMessageKeys: Sendable {
    /// The suite's message key material length (80 bytes for v3, 56 for hush-1).
    let materialByteCount: Int
    /// The counters, oldest first; entry `i`'s keys are at `i × materialByteCount` in `material`.
    private(set) var counters: [UInt32]
    /// `counters.count × materialByteCount` bytes; `nil` while there are none (an empty chain
    /// allocates nothing).
    private var material: SecureBytes?

    init(materialByteCount: Int) {
        self.materialByteCount = materialByteCount
        self.counters = []
        self.material = nil
    }

    /// Keys read from a record: `counters[i]` with material `i` of `material`.
    init(materialByteCount: Int, counters: [UInt32], material: SecureBytes) {
        precondition(material.count == counters.count * materialByteCount, "skipped keys: size mismatch")
        self.materialByteCount = materialByteCount
        self.counters = counters
        self.material = counters.isEmpty ? nil : material
    }

    var count: Int { counters.count }
    var isEmpty: Bool { counters.isEmpty }

    /// Calls `body` with each entry's counter and key material, oldest first.
    func forEach(_ body: (UInt32, UnsafeRawBufferPointer) -> Void) {
        guard let material else { return }
        let size = materialByteCount
        material.withUnsafeBytes { all in
            for (i, counter) in counters.enumerated() {
                body(counter, UnsafeRawBufferPointer(rebasing: all[(i * size)..<((i + 1) * size)]))
            }
        }
    }

    /// Removes and returns the keys of message `counter`, or `nil` when there are none.
    mutating func remove(counter: UInt32) -> MessageKeys? {
        guard let index = counters.firstIndex(of: counter), let old = material else { return nil }
        let size = materialByteCount
        let keys = old.withUnsafeBytes { all in
            MessageKeys(material: SecureBytes(copying: UnsafeRawBufferPointer(rebasing: all[(index * size)..<((index + 1) * size)])),
                        counter: counter)
        }
        material = counters.count == 1 ? nil : old.withUnsafeBytes { all in
            SecureBytes(count: all.count - size) { out in
                if index > 0 { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: all[0..<(index * size)])) }
                let rest = all.count - (index + 1) * size
                if rest > 0 {
                    UnsafeMutableRawBufferPointer(rebasing: out[(index * size)...])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: all[((index + 1) * size)...]))
                }
            }
        }
        counters.remove(at: index)
        return keys
    }

    /// Appends `newCount` entries for counters `firstCounter`, `firstCounter + 1`, …, and drops
    /// the oldest entries beyond `limit`. `derive` is called once per new entry, in order, with
    /// the buffer for its material, or `nil` for an entry that is dropped at once (more than
    /// `limit` skipped in one go). One allocation for all of them.
    mutating func append(
        count newCount: Int, firstCounter: UInt32, limit: Int,
        derive: (_ into: UnsafeMutableRawBufferPointer?) -> Void
    ) {
        guard newCount > 0 else { return }
        let size = materialByteCount
        let total = counters.count + newCount
        let dropped = Swift.max(0, total - limit)
        let kept = total - dropped
        let oldCount = counters.count
        func build(_ all: UnsafeRawBufferPointer) -> SecureBytes {
            SecureBytes(count: kept * size) { out in
                // Old entries that survive, then the new ones; new entries that would be dropped
                // at once (more than `limit` skipped in one go) are never written.
                var written = 0
                if dropped < oldCount {
                    let from = UnsafeRawBufferPointer(rebasing: all[(dropped * size)...])
                    UnsafeMutableRawBufferPointer(rebasing: out[0..<from.count]).copyMemory(from: from)
                    written = from.count
                }
                let firstKept = Swift.max(0, dropped - oldCount)
                for i in 0..<newCount {
                    guard i >= firstKept else {
                        derive(nil)
                        continue
                    }
                    derive(UnsafeMutableRawBufferPointer(rebasing: out[written..<(written + size)]))
                    written += size
                }
            }
        }
        if let old = material {
            material = old.withUnsafeBytes { build($0) }
        } else {
            material = build(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        var newCounters: [UInt32] = []
        newCounters.reserveCapacity(kept)
        if dropped < oldCount { newCounters.append(contentsOf: counters[dropped...]) }
        for i in Swift.max(0, dropped - oldCount)..<newCount { newCounters.append(firstCounter &+ UInt32(i)) }
        counters = newCounters
    }
}
