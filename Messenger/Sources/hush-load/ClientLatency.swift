import ArgumentParser
import Foundation
import Histogram
import Hush
import HushCLIKit
import HushClient
import Synchronization

/// `hush-load client-latency`: the client goal of Docs/client.md §Measured — the time from
/// `HushClient.send` returning to the recipient's `.message` event, two clients and the relay in
/// this process on loopback. Messages go one at a time (closed loop: the next is sent when the
/// previous one arrived), so each sample is one message's unloaded latency.
///
/// Every wait has a limit, and a watchdog thread ends the process (exit 3) if the whole run
/// outlasts `--deadline`, so a stuck client fails the run instead of hanging it.
struct ClientLatency: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client-latency",
        abstract: "Measure send-return → recipient's decrypted event with two HushClients and an in-process relay; prints JSON."
    )

    @Option(help: "Measured messages.")
    var messages = 10_000
    @Option(help: "Messages sent first and not measured (the first one builds the session).")
    var warmup = 500
    @Option(help: "Client stores: memory (InMemoryClientStore) or sqlite (encrypted SQLite files, fsynced steps).")
    var store: StoreKind = .memory
    @Option(help: "Cipher suite of the session: hush1 or signal.")
    var suite: SuiteName = .hush1
    @Option(help: "Seconds any single wait (relay start, online, one message) may take.")
    var timeout: Double = 10
    @Option(help: "Seconds the whole run may take before the process exits with status 3.")
    var deadline: Double = 900

    enum StoreKind: String, ExpressibleByArgument, Encodable { case memory, sqlite }
    enum SuiteName: String, ExpressibleByArgument, Encodable { case hush1, signal }

    func validate() throws {
        guard (1...10_000_000).contains(messages), (1...1_000_000).contains(warmup) else { throw ValidationError("bad --messages or --warmup") }
        guard timeout > 0, deadline > 0 else { throw ValidationError("--timeout and --deadline must be positive") }
    }

    /// Why the run failed.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    func run() async throws {
        startWatchdog(seconds: deadline)
        let limit = Duration.milliseconds(Int64(timeout * 1_000))
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hush-client-latency-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: root) }
        let relay = try EmbeddedRelay(dataDirectory: root)
        try await withTimeout(limit, "the relay to start") { try await relay.start() }
        var config = ClientConfiguration(endpoint: RelayEndpoint(host: "127.0.0.1", port: relay.port), trustRoot: relay.trustRoot)
        config.suite = suite == .hush1 ? .hush1 : .signalV3
        config.requestTimeout = limit

        let alice = try makeClient("alice", root: root, config: config)
        let bob = try makeClient("bob", root: root, config: config)
        let aliceWatch = ClientWatch(alice), bobWatch = ClientWatch(bob)
        await alice.start()
        await bob.start()
        do {
            try await aliceWatch.waitOnline(limit)
            try await bobWatch.waitOnline(limit)
            var latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000_000,
                                            numberOfSignificantValueDigits: .three)
            var early = 0
            let started = monotonicNanos()
            for n in 0..<(warmup + messages) {
                let id = try await alice.send("latency probe \(n): an ordinary line of chat text", to: "bob")
                let sent = monotonicNanos()
                guard let arrived = await bobWatch.arrival(of: id, timeout: limit) else {
                    throw Failure(description: "message \(n) (\(id)) did not reach bob within \(timeout) s")
                }
                guard n >= warmup else { continue }
                // The event can be yielded before the sender's caller resumes: counted as 0.
                if arrived < sent { early += 1 }
                _ = latency.record(max(arrived, sent) - sent)
            }
            let wall = Double(monotonicNanos() - started) / 1e9
            await alice.stop()
            await bob.stop()
            await relay.stop()
            let report = LatencyReport(messages: messages, warmup: warmup, store: store, suite: suite, histogram: latency,
                                       early: early, wallSeconds: wall)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } catch {
            await alice.stop()
            await bob.stop()
            await relay.stop()
            log("client-latency failed: \(error)")
            throw ExitCode(2)
        }
    }

    private func makeClient(_ name: String, root: URL, config: ClientConfiguration) throws -> HushClient {
        let keys = try HushClient.generateIdentity()
        let store: any ClientStore
        switch self.store {
        case .memory:
            store = InMemoryClientStore(identity: keys.identity, registrationID: keys.registrationID)
        case .sqlite:
            store = try SQLiteClientStore.create(path: root.appendingPathComponent("\(name).sqlite").path,
                                                 secret: .keyFile(try SecureBytes(randomCount: 32)),
                                                 identity: keys.identity, registrationID: keys.registrationID)
        }
        return try HushClient.create(account: name, store: store, configuration: config)
    }
}

/// Ends the process with status 3 (and a message) when `seconds` pass: the last resort against a
/// wait that has no limit somewhere below.
func startWatchdog(seconds: Double) {
    Thread.detachNewThread {
        Thread.sleep(forTimeInterval: seconds)
        log("watchdog: the run took longer than \(seconds) s; exiting")
        exit(3)
    }
}

/// Consumes a client's events: its connection state, and the monotonic time each incoming
/// message's event was read.
final class ClientWatch: Sendable {
    private struct State {
        var online = false
        var arrivals: [MessageID: UInt64] = [:]
        var waiter: (id: MessageID, continuation: CheckedContinuation<UInt64?, Never>)?
        var onlineWaiter: CheckedContinuation<Bool, Never>?
    }
    private let state = Mutex(State())

    init(_ client: HushClient) {
        let events = client.events
        Task.detached { [self] in
            for await event in events {
                switch event {
                case .message(let m): self.arrived(m.id, at: monotonicNanos())
                case .connection(let c): self.connection(c == .online)
                default: break
                }
            }
        }
    }

    private func arrived(_ id: MessageID, at time: UInt64) {
        let waiting = state.withLock { s -> CheckedContinuation<UInt64?, Never>? in
            if let w = s.waiter, w.id == id {
                s.waiter = nil
                return w.continuation
            }
            s.arrivals[id] = time
            return nil
        }
        waiting?.resume(returning: time)
    }

    private func connection(_ online: Bool) {
        let waiting = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            s.online = online
            guard online else { return nil }
            defer { s.onlineWaiter = nil }
            return s.onlineWaiter
        }
        waiting?.resume(returning: true)
    }

    /// Waits until the client is online, or throws after `limit`.
    func waitOnline(_ limit: Duration) async throws {
        let timer = Task {
            try await Task.sleep(for: limit)
            let c = self.state.withLock { s -> CheckedContinuation<Bool, Never>? in defer { s.onlineWaiter = nil }; return s.onlineWaiter }
            c?.resume(returning: false)
        }
        defer { timer.cancel() }
        let ok = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            let now = state.withLock { s -> Bool in
                if s.online { return true }
                s.onlineWaiter = c
                return false
            }
            if now { c.resume(returning: true) }
        }
        guard ok else { throw ClientLatency.Failure(description: "a client did not get online within \(limit)") }
    }

    /// The time `id` arrived (waiting for it up to `limit`), or nil when it did not.
    func arrival(of id: MessageID, timeout limit: Duration) async -> UInt64? {
        if let t = state.withLock({ $0.arrivals.removeValue(forKey: id) }) { return t }
        let timer = Task {
            try await Task.sleep(for: limit)
            let c = self.state.withLock { s -> CheckedContinuation<UInt64?, Never>? in
                guard let w = s.waiter, w.id == id else { return nil }
                s.waiter = nil
                return w.continuation
            }
            c?.resume(returning: nil)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { (c: CheckedContinuation<UInt64?, Never>) in
            let now = state.withLock { s -> UInt64? in
                if let t = s.arrivals.removeValue(forKey: id) { return t }
                s.waiter = (id, c)
                return nil
            }
            if let now { c.resume(returning: now) }
        }
    }
}

/// The JSON `client-latency` prints (milliseconds).
struct LatencyReport: Encodable {
    let messages: Int
    let warmup: Int
    let store: ClientLatency.StoreKind
    let suite: ClientLatency.SuiteName
    let mode = "one at a time: the next message is sent when the previous one reached the recipient"
    let build: String
    let p50Ms, p90Ms, p99Ms, p999Ms, maxMs, meanMs: Double
    /// Samples whose event came before `send` returned to its caller (recorded as 0).
    let eventBeforeSendReturned: Int
    let wallSeconds: Double
    let messagesPerSecond: Double

    init(messages: Int, warmup: Int, store: ClientLatency.StoreKind, suite: ClientLatency.SuiteName,
         histogram: Histogram<UInt64>, early: Int, wallSeconds: Double) {
        self.messages = messages
        self.warmup = warmup
        self.store = store
        self.suite = suite
        #if DEBUG
        build = "debug"
        #else
        build = "release"
        #endif
        func ms(_ ns: UInt64) -> Double { (Double(ns) / 1_000).rounded() / 1_000 }
        p50Ms = ms(histogram.valueAtPercentile(50))
        p90Ms = ms(histogram.valueAtPercentile(90))
        p99Ms = ms(histogram.valueAtPercentile(99))
        p999Ms = ms(histogram.valueAtPercentile(99.9))
        maxMs = ms(histogram.max)
        meanMs = (histogram.mean / 1_000).rounded() / 1_000
        eventBeforeSendReturned = early
        self.wallSeconds = wallSeconds
        messagesPerSecond = Double(messages + warmup) / wallSeconds
    }

    enum CodingKeys: String, CodingKey {
        case messages, warmup, store, suite, mode, build
        case p50Ms = "p50_ms", p90Ms = "p90_ms", p99Ms = "p99_ms", p999Ms = "p999_ms", maxMs = "max_ms", meanMs = "mean_ms"
        case eventBeforeSendReturned = "event_before_send_returned", wallSeconds = "wall_seconds", messagesPerSecond = "messages_per_second"
    }
}
