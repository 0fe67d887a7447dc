import ArgumentParser
import Foundation
import Histogram
import Hush
import HushTransport

/// `hush-load`: a load generator for hush-relay (loopback only). See Docs/relay.md.
@main
struct HushLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hush-load",
        abstract: "Opens authenticated Noise connections to hush-relay processes on loopback, sends 100-byte messages, prints one JSON object.",
        subcommands: [Run.self, WorkerCommand.self, LocalRelay.self, ClientLatency.self, ClientRestart.self, MediaThroughput.self],
        defaultSubcommand: Run.self
    )
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run a load (the default command).")

    @Option(name: .long, help: "A relay, ws://HOST:PORT (loopback only); repeat for several relay processes.")
    var relay: [String] = []
    @Option(help: "Authenticated connections to hold (online devices), across all processes.")
    var connections = 100
    @Option(help: "Target messages/s across all processes; 0 = as fast as possible (each sender keeps --window sends unacknowledged).")
    var rate: Double = 0
    @Option(help: "Seconds of sending.")
    var duration: Double = 10
    @Option(name: .customLong("offline-share"), help: "Share of messages sent to devices that stay offline until the end, then connect and drain (0...1).")
    var offlineShare: Double = 0
    @Option(name: .customLong("offline-devices"), help: "Offline devices (default: 10% of --connections, at least 1, when --offline-share > 0).")
    var offlineDevices: Int?
    @Option(name: .customLong("trust-root"), help: "The relay trust root's public key (64 hex digits or base64). Without it the first certificate seen is accepted, unverified.")
    var trustRoot: String?
    @Option(name: .customLong("relay-pid"), help: "PID of a relay process to measure (repeatable); by default the processes listening on the relays' ports.")
    var relayPID: [Int32] = []
    @Option(help: "Load-generator processes (each holds at most ~19,000 connections: 20,000 open files per process).")
    var processes = 1
    @Option(help: "Event-loop threads per process.")
    var threads = 2
    @Option(help: "Unacknowledged sends per sender.")
    var window = 16
    @Option(name: .customLong("source-addresses"), help: "Spread connections over this many source addresses 127.0.0.2... (at most 250).")
    var sourceAddresses = 16
    @Option(name: .customLong("connect-concurrency"), help: "Handshakes in flight at once, per process.")
    var connectConcurrency = 128
    @Option(help: "Seconds to let the relay settle after the logins before reading its memory.")
    var idle: Double = 2
    @Flag(name: .customLong("cross-node"), help: "With several --relay: each sender's partner (and its offline targets) are on the next relay, so every message crosses nodes.")
    var crossNode = false

    func validate() throws {
        guard !relay.isEmpty else { throw ValidationError("give at least one --relay ws://127.0.0.1:PORT") }
        for r in relay { _ = try parseRelayURL(r) }
        guard connections >= 1, connections <= 1_000_000 else { throw ValidationError("--connections must be 1...1,000,000") }
        guard processes >= 1, processes <= 64 else { throw ValidationError("--processes must be 1...64") }
        guard connections / processes + 1 <= 19_500 else { throw ValidationError("at most ~19,500 connections per process: raise --processes") }
        guard (0...1).contains(offlineShare) else { throw ValidationError("--offline-share must be within 0...1") }
        guard duration > 0, duration <= 3_600 else { throw ValidationError("--duration must be within (0, 3600] seconds") }
        guard rate >= 0, window >= 1, window <= 1_000, threads >= 1, threads <= 64 else { throw ValidationError("bad --rate, --window or --threads") }
        guard idle >= 0, idle <= 600 else { throw ValidationError("--idle must be within 0...600 seconds") }
        guard !crossNode || relay.count >= 2 else { throw ValidationError("--cross-node needs at least two --relay") }
    }

    func run() async throws {
        _ = raiseOpenFileLimit()
        let offline = offlineShare > 0 ? (offlineDevices ?? max(1, connections / 10)) : 0
        let prefix = "ld" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
        func share(_ n: Int, _ k: Int) -> Int { n / processes + (k < n % processes ? 1 : 0) }
        let plans = (0..<processes).map { k in
            WorkerPlan(relays: relay, trustRoot: trustRoot, connections: share(connections, k), offlineDevices: share(offline, k),
                       offlineShare: offlineShare, rate: rate / Double(processes), duration: duration, window: window, threads: threads,
                       sourceAddresses: sourceAddresses, sourceOffset: k * 7, connectConcurrency: connectConcurrency,
                       accountPrefix: "\(prefix)p\(k)", crossNode: crossNode)
        }
        var pids = relayPID
        if pids.isEmpty {
            for r in relay {
                let (_, port) = try parseRelayURL(r)
                if let p = ProcessProbe.listener(port: port), !pids.contains(p) { pids.append(p) }
            }
        }
        if pids.isEmpty { log("warning: no relay process found (give --relay-pid): relay memory and CPU are not reported") }
        let coordinator = Coordinator(probes: pids.map(ProcessProbe.init), idle: idle)
        coordinator.mark("start")
        let results: [WorkerResult]
        if processes == 1 {
            let worker = try Worker(plan: plans[0], log: log)
            results = [try await worker.run(barrier: LocalBarrier(coordinator: coordinator))]
        } else {
            results = try await runChildren(plans, coordinator: coordinator)
        }
        coordinator.mark("end")
        let report = Report(results: results, coordinator: coordinator, run: self, offlineDevices: offline, pids: pids)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }
}

let log: @Sendable (String) -> Void = { message in
    FileHandle.standardError.write(Data("hush-load: \(message)\n".utf8))
}

/// Reads the relay processes between phases.
final class Coordinator: @unchecked Sendable {
    struct Mark: Sendable {
        let time: UInt64
        let rss: Int?
        let cpu: Int?
    }
    let probes: [ProcessProbe]
    let idle: Double
    private(set) var marks: [String: Mark] = [:]
    private let lock = NSLock()

    init(probes: [ProcessProbe], idle: Double) {
        self.probes = probes
        self.idle = idle
    }

    func mark(_ name: String) {
        let rss = probes.isEmpty ? nil : probes.reduce(0 as Int?) { acc, p in acc.flatMap { a in p.rssBytes.map { a + $0 } } }
        let cpu = probes.isEmpty ? nil : probes.reduce(0 as Int?) { acc, p in acc.flatMap { a in p.cpuMicroseconds.map { a + $0 } } }
        lock.withLock { marks[name] = Mark(time: monotonicNanos(), rss: rss, cpu: cpu) }
    }

    subscript(_ name: String) -> Mark? { lock.withLock { marks[name] } }

    /// What to measure when every worker reached `phase`.
    func act(_ phase: String) async {
        mark(phase)
        if phase == "connected" {
            try? await Task.sleep(for: .seconds(idle))
            mark("idle")
        }
    }
}

struct LocalBarrier: PhaseBarrier {
    let coordinator: Coordinator
    func reached(_ phase: String) async { await coordinator.act(phase) }
}

/// In a child process: tell the parent, wait for its go.
struct ChildBarrier: PhaseBarrier {
    func reached(_ phase: String) async {
        print("@phase \(phase)")
        fflush(nil)
        _ = readLine()
    }
}

/// The hidden per-process command the coordinator starts for `--processes K`.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker", abstract: "Internal: one load-generator process.", shouldDisplay: false)
    @Option var plan: String

    func run() async throws {
        _ = raiseOpenFileLimit()
        let p = try JSONDecoder().decode(WorkerPlan.self, from: Data(plan.utf8))
        let worker = try Worker(plan: p, log: log)
        let result = try await worker.run(barrier: ChildBarrier())
        let json = try JSONEncoder().encode(result)
        print("@result " + String(decoding: json, as: UTF8.self))
        fflush(nil)
    }
}

/// Starts one child per plan and steps them through the phases together.
func runChildren(_ plans: [WorkerPlan], coordinator: Coordinator) async throws -> [WorkerResult] {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let (lines, continuation) = AsyncStream<(Int, String?)>.makeStream()
    var children: [(Process, FileHandle)] = []
    for (k, plan) in plans.enumerated() {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["worker", "--plan", String(decoding: try JSONEncoder().encode(plan), as: UTF8.self)]
        let out = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardInput = input
        try p.run()
        children.append((p, input.fileHandleForWriting))
        let reader = out.fileHandleForReading
        Thread.detachNewThread {
            var buffer = Data()
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let nl = buffer.firstIndex(of: 0x0A) {
                    continuation.yield((k, String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self)))
                    buffer.removeSubrange(buffer.startIndex...nl)
                }
            }
            continuation.yield((k, nil))
        }
    }
    var results = [WorkerResult?](repeating: nil, count: plans.count)
    var atPhase: [String: Int] = [:]
    var ended = 0
    for await (k, line) in lines {
        guard let line else {
            ended += 1
            if results[k] == nil { throw LoadError.refused("worker \(k) exited without a result") }
            if ended == plans.count { break }
            continue
        }
        if line.hasPrefix("@phase ") {
            let phase = String(line.dropFirst(7))
            atPhase[phase, default: 0] += 1
            if atPhase[phase] == plans.count {
                await coordinator.act(phase)
                for (_, input) in children { input.write(Data("go\n".utf8)) }
            }
        } else if line.hasPrefix("@result ") {
            results[k] = try JSONDecoder().decode(WorkerResult.self, from: Data(line.dropFirst(8).utf8))
        } else {
            log("worker \(k): \(line)")
        }
    }
    for (p, _) in children { p.waitUntilExit() }
    return results.compactMap { $0 }
}

/// The JSON report.
struct Report: Encodable {
    struct Latency: Encodable {
        let p50, p90, p99, p999, max, mean: Double
        let count: UInt64
    }
    struct Offline: Encodable {
        let devices: Int
        let queued: Int
        let delivered: Int
        let drain_seconds: Double
        let drain_msgs_per_s: Double?
        let store_msgs_per_s: Double?
    }
    let connections: Int
    let connections_requested: Int
    let relays: [String]
    let processes: Int
    let cross_node: Bool
    let trust: String
    let registrations: Int
    let registrations_per_s: Double
    let handshakes: Int
    let handshakes_per_s: Double
    let login_seconds: Double
    let connect_failures: Int
    let rate_target: Double
    let duration_s: Double
    let send_seconds: Double
    let messages_attempted: Int
    let messages_sent: Int
    let messages_delivered: Int
    let messages_lost: Int
    let duplicates: Int
    let send_errors: Int
    let sends_skipped: Int
    let msgs_per_s: Double
    let latency_ms: Latency
    let offline: Offline
    let relay_pids: [Int32]
    let relay_rss_bytes_registered: Int?
    let relay_rss_bytes_connected: Int?
    let relay_rss_bytes_per_connection: Double?
    let relay_cpu_us_per_message: Double?
    let relay_cpu_ms_per_login: Double?
    let relay_cpu_cores_during_send: Double?
    let load_cpu_us_per_message: Double?
    let load_rss_bytes_per_connection: Double
    let unexpected_closes: Int
    let errors: [String: Int]
    let failure_samples: [String]
    let loadavg_end: String

    init(results: [WorkerResult], coordinator c: Coordinator, run: Run, offlineDevices: Int, pids: [Int32]) {
        func sum(_ f: (WorkerResult) -> Int) -> Int { results.reduce(0) { $0 + f($1) } }
        func seconds(_ a: String, _ b: String) -> Double {
            guard let x = c[a], let y = c[b], y.time > x.time else { return 0 }
            return Double(y.time - x.time) / 1e9
        }
        func delta(_ a: String, _ b: String, _ f: (Coordinator.Mark) -> Int?) -> Int? {
            guard let x = c[a].flatMap(f), let y = c[b].flatMap(f) else { return nil }
            return y - x
        }
        var hist = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
        for r in results { hist.add(r.latency) }
        var errors: [String: Int] = [:]
        for r in results { for (k, v) in r.errors { errors[k, default: 0] += v } }
        let logins = sum(\.logins)
        connections = logins
        connections_requested = run.connections
        relays = run.relay
        processes = run.processes
        cross_node = run.crossNode
        trust = run.trustRoot == nil ? "first use (certificate accepted unverified)" : "pinned trust root"
        registrations = sum(\.registered)
        registrations_per_s = Double(registrations) / max(results.map(\.registerSeconds).max() ?? 0, 1e-9)
        handshakes = logins
        login_seconds = seconds("registered", "connected")
        handshakes_per_s = Double(logins) / max(login_seconds, 1e-9)
        connect_failures = sum(\.registerFailures) + sum(\.loginFailures) + sum(\.offlineLoginFailures)
        rate_target = run.rate
        duration_s = run.duration
        send_seconds = seconds("send", "sent")
        messages_attempted = sum(\.attempted)
        let sent = sum(\.ackedOnline) + sum(\.ackedOffline)
        messages_sent = sent
        messages_delivered = sum(\.deliveredOnline) + sum(\.deliveredOffline)
        messages_lost = sum(\.lost)
        duplicates = sum(\.duplicates)
        send_errors = sum(\.sendErrors)
        sends_skipped = sum(\.skipped)
        msgs_per_s = Double(sum(\.deliveredOnline)) / max(send_seconds, 1e-9)
        func ms(_ us: UInt64) -> Double { (Double(us) / 1_000 * 1_000).rounded() / 1_000 }
        latency_ms = Latency(p50: ms(hist.valueAtPercentile(50)), p90: ms(hist.valueAtPercentile(90)), p99: ms(hist.valueAtPercentile(99)),
                             p999: ms(hist.valueAtPercentile(99.9)), max: ms(hist.max), mean: (hist.mean / 1_000 * 1_000).rounded() / 1_000,
                             count: hist.totalCount)
        let drain = results.map(\.drainSeconds).max() ?? 0
        let queued = sum(\.ackedOffline)
        offline = Offline(devices: offlineDevices, queued: queued, delivered: sum(\.deliveredOffline), drain_seconds: drain,
                          drain_msgs_per_s: drain > 0 ? Double(sum(\.deliveredOffline)) / drain : nil,
                          store_msgs_per_s: queued > 0 ? Double(queued) / max(send_seconds, 1e-9) : nil)
        relay_pids = pids
        relay_rss_bytes_registered = c["registered"]?.rss
        relay_rss_bytes_connected = c["idle"]?.rss
        relay_rss_bytes_per_connection = delta("registered", "idle", \.rss).map { Double($0) / Double(max(logins, 1)) }
        let sendSeconds = send_seconds
        relay_cpu_us_per_message = delta("send", "sent", \.cpu).map { Double($0) / Double(max(sent, 1)) }
        relay_cpu_ms_per_login = delta("registered", "connected", \.cpu).map { Double($0) / 1_000 / Double(max(logins, 1)) }
        relay_cpu_cores_during_send = delta("send", "sent", \.cpu).map { Double($0) / 1e6 / max(sendSeconds, 1e-9) }
        load_cpu_us_per_message = sent > 0 ? Double(sum(\.loadCPUMicroseconds)) / Double(sent) : nil
        load_rss_bytes_per_connection = Double(sum(\.loadRSSGrowth)) / Double(max(logins, 1))
        unexpected_closes = sum(\.unexpectedCloses)
        self.errors = errors
        failure_samples = Array(results.flatMap(\.failureSamples).prefix(5))
        loadavg_end = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }
}
