import Synchronization

/// A token bucket (rate per second, burst), on an injected millisecond clock.
struct TokenBucket {
    let rate: Double
    let burst: Double
    var tokens: Double
    var last: UInt64

    init(rate: Double, burst: Double, now: UInt64) {
        self.rate = rate
        self.burst = burst
        tokens = burst
        last = now
    }

    /// Takes `cost` tokens if there are that many (after refilling up to `now`).
    mutating func take(_ cost: Double = 1, now: UInt64) -> Bool {
        if now > last {
            tokens = min(burst, tokens + Double(now - last) / 1_000 * rate)
            last = now
        }
        guard tokens >= cost else { return false }
        tokens -= cost
        return true
    }
}

/// Token buckets by key, bounded: the least recently refilled keys are dropped beyond `capacity`.
final class KeyedRateLimiter: Sendable {
    private let state: Mutex<[String: TokenBucket]> = Mutex([:])
    let rate: Double
    let burst: Double
    let capacity: Int

    init(rate: Double, burst: Double, capacity: Int = 100_000) {
        self.rate = rate
        self.burst = burst
        self.capacity = capacity
    }

    func take(_ key: String, cost: Double = 1, now: UInt64) -> Bool {
        state.withLock { buckets in
            if buckets.count >= capacity, buckets[key] == nil {
                // Full buckets carry no information: drop them first.
                let full = buckets.filter { $0.value.tokens >= burst - 1 || now - $0.value.last > 3_600_000 }.map(\.key)
                for k in full { buckets[k] = nil }
                if buckets.count >= capacity { buckets.removeAll(keepingCapacity: true) }
            }
            var b = buckets[key] ?? TokenBucket(rate: rate, burst: burst, now: now)
            let ok = b.take(cost, now: now)
            buckets[key] = b
            return ok
        }
    }
}

/// Client ephemeral keys seen in recent handshakes (spec §4.4): a handshake that reuses one
/// within the clock-skew window is a replay. Bounded by time and by `capacity`.
final class ReplayCache: Sendable {
    private struct State {
        var seen: [[UInt8]: UInt64] = [:]
        var order: [([UInt8], UInt64)] = []
        var head = 0
    }
    private let state = Mutex(State())
    let window: UInt64
    let capacity: Int

    init(windowMilliseconds: UInt64, capacity: Int = 1_000_000) {
        window = windowMilliseconds
        self.capacity = capacity
    }

    /// Records `key`; `false` when it was seen within the window.
    func insert(_ key: [UInt8], now: UInt64) -> Bool {
        state.withLock { s in
            while s.head < s.order.count, s.order[s.head].1 + window < now || s.order.count - s.head > capacity {
                let (k, t) = s.order[s.head]
                if s.seen[k] == t { s.seen[k] = nil }
                s.head += 1
            }
            if s.head > 4_096, s.head * 2 > s.order.count {
                s.order.removeFirst(s.head)
                s.head = 0
            }
            if s.seen[key] != nil { return false }
            s.seen[key] = now
            s.order.append((key, now))
            return true
        }
    }
}
