import Foundation
import Histogram
import NIOCore
import Synchronization

/// Counters shared by every event loop of one process.
final class Totals: Sendable {
    let attempted = Atomic<Int>(0)
    let outstanding = Atomic<Int>(0)
    let ackedOnline = Atomic<Int>(0)
    let ackedOffline = Atomic<Int>(0)
    let deliveredOnline = Atomic<Int>(0)
    let deliveredOffline = Atomic<Int>(0)
    let sendErrors = Atomic<Int>(0)
    let unexpectedCloses = Atomic<Int>(0)
    let queueEmpties = Atomic<Int>(0)
}

/// Per-event-loop statistics; touched only on that loop.
final class LoopStats: @unchecked Sendable {
    let totals: Totals
    /// End-to-end latency of online deliveries, microseconds.
    var latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    var acked = Set<UInt64>()
    var received = Set<UInt64>()
    var duplicates = 0
    var errors: [String: Int] = [:]
    var closeCodes: [UInt16: Int] = [:]
    /// Record latencies only during the send phase.
    var recording = false
    var onQueueEmpty: ((LoadConnection) -> Void)?

    init(totals: Totals) { self.totals = totals }

    func acked(_ key: UInt64, offline: Bool) {
        acked.insert(key)
        totals.outstanding.subtract(1, ordering: .relaxed)
        if offline { totals.ackedOffline.add(1, ordering: .relaxed) } else { totals.ackedOnline.add(1, ordering: .relaxed) }
    }

    func delivered(_ payload: Data, now: UInt64) {
        guard let (key, sent, offline) = LoadPayload.parse(payload) else {
            errors["bad_payload", default: 0] += 1
            return
        }
        guard received.insert(key).inserted else {
            duplicates += 1
            return
        }
        if offline { totals.deliveredOffline.add(1, ordering: .relaxed) } else { totals.deliveredOnline.add(1, ordering: .relaxed) }
        if !offline, recording, now > sent { _ = latency.record((now - sent) / 1_000) }
    }

    func queueEmpty(_ c: LoadConnection) {
        totals.queueEmpties.add(1, ordering: .relaxed)
        onQueueEmpty?(c)
    }
}

/// Drives the sends of the connections on one event loop: either open-loop at a rate, or
/// closed-loop ("as fast as possible": each sender keeps `window` unacknowledged sends).
final class SendDriver: @unchecked Sendable {
    let loop: EventLoop
    var senders: [LoadConnection] = []
    let rate: Double
    let window: Int
    var active = false
    var closedLoop: Bool { rate == 0 }
    private var started: UInt64 = 0
    private var sent = 0
    private var cursor = 0
    private var task: RepeatedTask?
    /// Sends skipped because every sender was at its window (open-loop only).
    private(set) var skipped = 0

    init(loop: EventLoop, rate: Double, window: Int) {
        self.loop = loop
        self.rate = rate
        self.window = window
    }

    func start() {
        active = true
        started = monotonicNanos()
        if closedLoop {
            for s in senders { refill(s); s.flushIfNeeded() }
        } else {
            task = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(1)) { [self] _ in tick() }
        }
    }

    func stop() {
        active = false
        task?.cancel()
        task = nil
    }

    /// Closed loop: tops the sender up to its window.
    func refill(_ s: LoadConnection) {
        guard active else { return }
        var n = 0
        while s.outstanding < window, n < window {
            s.sendOne()
            n += 1
        }
    }

    private func tick() {
        guard active, !senders.isEmpty else { return }
        let elapsed = Double(monotonicNanos() - started) / 1e9
        var due = Int(elapsed * rate) - sent
        // Never build a backlog of more than 100 ms: what cannot be sent on time is skipped.
        let maxBacklog = max(1, Int(rate / 10))
        if due > maxBacklog {
            skipped += due - maxBacklog
            sent += due - maxBacklog
            due = maxBacklog
        }
        var touched: [LoadConnection] = []
        var idle = 0
        while due > 0, idle < senders.count {
            let s = senders[cursor]
            cursor = (cursor + 1) % senders.count
            if s.outstanding < window {
                s.sendOne()
                sent += 1
                due -= 1
                touched.append(s)
                idle = 0
            } else {
                idle += 1
            }
        }
        for s in touched { s.flushIfNeeded() }
    }
}
