import Foundation
import Histogram
import Hush
import HushTransport
import NIOCore
import NIOPosix

/// The settings one worker process runs with.
struct WorkerPlan: Codable, Sendable {
    var relays: [String]            // ws://host:port
    var trustRoot: String?
    var connections: Int            // online devices of this worker
    var offlineDevices: Int
    var offlineShare: Double
    var rate: Double                // messages/s of this worker, 0 = closed loop
    var duration: Double
    var window: Int
    var threads: Int
    var sourceAddresses: Int
    var sourceOffset: Int
    var connectConcurrency: Int
    var accountPrefix: String
    var crossNode = false           // partners on relay (r + 1) % relays.count
}

/// What one worker measured (merged by the coordinator when several processes ran).
struct WorkerResult: Codable, Sendable {
    var connections = 0
    var registered = 0
    var registerFailures = 0
    var registerSeconds = 0.0
    var logins = 0
    var loginFailures = 0
    var loginSeconds = 0.0
    var attempted = 0
    var ackedOnline = 0
    var ackedOffline = 0
    var deliveredOnline = 0
    var deliveredOffline = 0
    var lost = 0
    var duplicates = 0
    var sendErrors = 0
    var skipped = 0
    var unexpectedCloses = 0
    var sendSeconds = 0.0
    var offlineDevices = 0
    var offlineLoginFailures = 0
    var drainSeconds = 0.0
    var errors: [String: Int] = [:]
    var failureSamples: [String] = []
    var latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    var loadCPUMicroseconds = 0
    /// This process's RSS growth over the login phase (bytes), for comparison with the relay's.
    var loadRSSGrowth = 0
}

/// Where a worker pauses so that the coordinator can measure the relay between phases.
protocol PhaseBarrier: Sendable {
    func reached(_ phase: String) async
}

/// One process's share of the load: registers its devices, logs them in, sends, drains.
final class Worker: @unchecked Sendable {
    let plan: WorkerPlan
    let group: MultiThreadedEventLoopGroup
    let loops: [EventLoop]
    let totals = Totals()
    let stats: [LoopStats]
    var targets: [RelayTarget]
    let log: @Sendable (String) -> Void

    init(plan: WorkerPlan, log: @escaping @Sendable (String) -> Void) throws {
        self.plan = plan
        self.log = log
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, plan.threads))
        loops = Array(group.makeIterator())
        let totals = self.totals
        stats = loops.map { _ in LoopStats(totals: totals) }
        let root = try plan.trustRoot.map(parseKey)
        targets = try plan.relays.map { url in
            let (host, port) = try parseRelayURL(url)
            return RelayTarget(host: host, port: port, trustRoot: root, certificate: nil)
        }
    }

    func source(_ i: Int, relay: Int) -> String {
        if targets[relay].host.contains(":") { return "::1" }
        return "127.0.0.\(2 + (plan.sourceOffset + i) % max(1, min(plan.sourceAddresses, 250)))"
    }

    func open(_ d: LoadDevice, pattern: RelayProtocol.Pattern, hello: RelayClientHello, readyWhen: ReadyWhen) async throws -> LoadConnection {
        let l = d.index % loops.count
        return try await LoadConnection.open(device: d, target: targets[d.relay], source: source(d.index, relay: d.relay), loop: loops[l],
                                             stats: stats[l], pattern: pattern, hello: hello, readyWhen: readyWhen).get()
    }

    /// Runs `body` for `0..<count` with at most `concurrency` at once; returns the successes
    /// in index order (`nil` for failures) and up to 5 failure descriptions.
    func bounded<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) async throws -> T) async -> ([T?], [String]) {
        var out = [T?](repeating: nil, count: count)
        var failures: [String] = []
        await withTaskGroup(of: (Int, Result<T, Error>).self) { g in
            var next = 0
            func add() {
                let i = next
                next += 1
                g.addTask { do { return (i, .success(try await body(i))) } catch { return (i, .failure(error)) } }
            }
            while next < min(count, max(1, plan.connectConcurrency)) { add() }
            while let (i, r) = await g.next() {
                switch r {
                case .success(let v): out[i] = v
                case .failure(let e): if failures.count < 5 { failures.append("\(e)") }
                }
                if next < count { add() }
            }
        }
        return (out, failures)
    }

    func run(barrier: some PhaseBarrier) async throws -> WorkerResult {
        var result = WorkerResult()
        let total = plan.connections + plan.offlineDevices
        let devices = try (0..<total).map { i in
            try LoadDevice(index: i, account: "\(plan.accountPrefix)-\(i)", relay: i % targets.count, offline: i >= plan.connections)
        }
        result.connections = plan.connections
        result.offlineDevices = plan.offlineDevices

        // First contact: one XX registration per relay pins its certificate.
        var firstOnRelay = Set<Int>()
        for r in targets.indices {
            guard let d = devices.first(where: { $0.relay == r }) else { continue }
            let c = try await open(d, pattern: .xx, hello: try d.registerHello(), readyWhen: .welcome)
            guard let cert = c.certificate else { throw LoadError.refused("no certificate from \(plan.relays[r])") }
            targets[r].certificate = cert
            if targets[r].trustRoot == nil {
                log("warning: no --trust-root: accepted the certificate of \(plan.relays[r]) (key id \(cert.keyID)) on first contact, unverified")
            }
            c.loop.execute { c.closeGracefully() }
            firstOnRelay.insert(d.index)
        }

        // Registration of the other devices (IK, the relay key now known).
        let rest = devices.filter { !firstOnRelay.contains($0.index) }
        let t0 = monotonicNanos()
        let (regs, regFailures) = await bounded(rest.count) { [self] i in
            let d = rest[i]
            let c = try await open(d, pattern: .ik, hello: try d.registerHello(), readyWhen: .welcome)
            c.loop.execute { c.closeGracefully() }
            return true
        }
        result.registerSeconds = Double(monotonicNanos() - t0) / 1e9
        result.registered = regs.compactMap { $0 }.count + firstOnRelay.count
        result.registerFailures = rest.count - regs.compactMap { $0 }.count
        result.failureSamples += regFailures
        try await Task.sleep(for: .milliseconds(500))   // let the registration connections close

        await barrier.reached("registered")

        // Logins: every online device, IK, kept open; ready at QueueEmpty.
        let online = Array(devices.prefix(plan.connections))
        let selfProbe = ProcessProbe(pid: getpid())
        let rssBefore = selfProbe.rssBytes ?? 0
        let t1 = monotonicNanos()
        let (opened, loginFailures) = await bounded(online.count) { [self] i in
            try await open(online[i], pattern: .ik, hello: online[i].loginHello, readyWhen: .queueEmpty)
        }
        result.loginSeconds = Double(monotonicNanos() - t1) / 1e9
        let conns = opened.compactMap { $0 }
        result.logins = conns.count
        result.loginFailures = online.count - conns.count
        result.failureSamples += loginFailures
        result.loadRSSGrowth = (selfProbe.rssBytes ?? 0) - rssBefore

        await barrier.reached("connected")

        // Send phase.
        let offlineByRelay = Dictionary(grouping: devices.filter(\.offline), by: \.relay)
        let onlineByRelay = Dictionary(grouping: conns, by: \.device.relay)
        var partner: [Int: LoadDevice] = [:]
        for (r, list) in onlineByRelay {
            if plan.crossNode, let other = onlineByRelay[(r + 1) % targets.count], !other.isEmpty {
                for (k, c) in list.enumerated() { partner[c.device.index] = other[k % other.count].device }
            } else {
                for (k, c) in list.enumerated() { partner[c.device.index] = list[(k + 1) % list.count].device }
            }
        }
        let crossNode = plan.crossNode, relayCount = targets.count
        let perLoopRate = plan.rate / Double(loops.count)
        let drivers = loops.map { SendDriver(loop: $0, rate: perLoopRate, window: plan.window) }
        let byLoop = Dictionary(grouping: conns, by: { $0.device.index % loops.count })

        await barrier.reached("send")
        let t2 = monotonicNanos()
        let sendCPU = selfCPUMicroseconds()
        for (l, loop) in loops.enumerated() {
            let list = byLoop[l] ?? []
            let driver = drivers[l]
            let st = stats[l]
            let share = plan.offlineShare
            try await loop.submit {
                for c in list {
                    c.driver = driver
                    c.partner = partner[c.device.index]
                    c.offlineTargets = offlineByRelay[crossNode ? (c.device.relay + 1) % relayCount : c.device.relay] ?? []
                    c.offlineShare = share
                }
                driver.senders = list
                st.recording = true
                driver.start()
            }.get()
        }
        try await Task.sleep(for: .seconds(plan.duration))
        for (l, loop) in loops.enumerated() { try await loop.submit { drivers[l].stop() }.get() }
        // Tail: wait (bounded) for the acks and online deliveries still in flight.
        let tailDeadline = monotonicNanos() + 15_000_000_000
        while monotonicNanos() < tailDeadline {
            if totals.outstanding.load(ordering: .relaxed) <= 0,
               totals.deliveredOnline.load(ordering: .relaxed) >= totals.ackedOnline.load(ordering: .relaxed) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        result.sendSeconds = Double(monotonicNanos() - t2) / 1e9
        result.loadCPUMicroseconds = selfCPUMicroseconds() - sendCPU
        for (l, loop) in loops.enumerated() {
            let st = stats[l]
            try await loop.submit { st.recording = false }.get()
            result.skipped += try await loop.submit { drivers[l].skipped }.get()
        }

        await barrier.reached("sent")

        // Offline devices connect and drain.
        let offline = devices.filter(\.offline)
        var offlineConns: [LoadConnection] = []
        if !offline.isEmpty {
            let t3 = monotonicNanos()
            let (oc, failures) = await bounded(offline.count) { [self] i in
                try await open(offline[i], pattern: .ik, hello: offline[i].loginHello, readyWhen: .queueEmpty)
            }
            offlineConns = oc.compactMap { $0 }
            result.offlineLoginFailures = offline.count - offlineConns.count
            result.failureSamples += failures
            // QueueEmpty follows the drain, but acks of the last window may still be in flight.
            let deadline = monotonicNanos() + 10_000_000_000
            while monotonicNanos() < deadline,
                  totals.deliveredOffline.load(ordering: .relaxed) < totals.ackedOffline.load(ordering: .relaxed) {
                try await Task.sleep(for: .milliseconds(5))
            }
            result.drainSeconds = Double(monotonicNanos() - t3) / 1e9
        }
        try await Task.sleep(for: .milliseconds(300))   // late duplicates, if any, arrive

        // Collect.
        var acked = Set<UInt64>()
        var received = Set<UInt64>()
        for (l, loop) in loops.enumerated() {
            let st = stats[l]
            let (a, r, dup, h, e) = try await loop.submit { (st.acked, st.received, st.duplicates, st.latency, st.errors) }.get()
            acked.formUnion(a)
            result.duplicates += dup
            let before = received.count
            received.formUnion(r)
            result.duplicates += r.count - (received.count - before)
            result.latency.add(h)
            for (k, v) in e { result.errors[k, default: 0] += v }
        }
        result.lost = acked.subtracting(received).count
        result.attempted = totals.attempted.load(ordering: .relaxed)
        result.ackedOnline = totals.ackedOnline.load(ordering: .relaxed)
        result.ackedOffline = totals.ackedOffline.load(ordering: .relaxed)
        result.deliveredOnline = totals.deliveredOnline.load(ordering: .relaxed)
        result.deliveredOffline = totals.deliveredOffline.load(ordering: .relaxed)
        result.sendErrors = totals.sendErrors.load(ordering: .relaxed)

        // Close everything.
        let all = conns + offlineConns
        for c in all { c.loop.execute { c.closeGracefully() } }
        try await Task.sleep(for: .milliseconds(500))
        result.unexpectedCloses = totals.unexpectedCloses.load(ordering: .relaxed)
        try await group.shutdownGracefully()
        return result
    }
}

/// This process's user + system CPU time, microseconds.
func selfCPUMicroseconds() -> Int {
    var u = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &u)
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1_000_000 + Int(u.ru_utime.tv_usec + u.ru_stime.tv_usec)
}

/// A 32-byte X25519 public key given as 64 hex digits or base64.
func parseKey(_ text: String) throws -> Curve25519.KeyAgreement.PublicKey {
    let t = text.trimmingCharacters(in: .whitespaces)
    var bytes: [UInt8]?
    if t.count == 64, t.allSatisfy(\.isHexDigit) {
        var out: [UInt8] = []
        var it = t.makeIterator()
        while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
        bytes = out
    } else if let d = Data(base64Encoded: t) {
        bytes = Array(d)
    }
    guard let bytes, bytes.count == 32, let key = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: bytes) else {
        throw LoadError.refused("--trust-root: expected a 32-byte key as 64 hex digits or base64")
    }
    return key
}

/// `ws://HOST:PORT[/]` with a loopback host (127.0.0.0/8, ::1, localhost); anything else is refused.
func parseRelayURL(_ url: String) throws -> (String, Int) {
    guard url.hasPrefix("ws://") else { throw LoadError.refused("--relay \(url): expected ws://HOST:PORT") }
    var rest = url.dropFirst(5)
    if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
    let host: String
    let portText: Substring
    if rest.hasPrefix("[") {
        guard let end = rest.firstIndex(of: "]") else { throw LoadError.refused("--relay \(url): bad IPv6 address") }
        host = String(rest[rest.index(after: rest.startIndex)..<end])
        portText = rest[rest.index(after: end)...].dropFirst()
    } else {
        guard let colon = rest.lastIndex(of: ":") else { throw LoadError.refused("--relay \(url): no port") }
        host = String(rest[..<colon])
        portText = rest[rest.index(after: colon)...]
    }
    guard let port = Int(portText), (1...65_535).contains(port) else { throw LoadError.refused("--relay \(url): bad port") }
    let resolved = host == "localhost" ? "127.0.0.1" : host
    let octets = resolved.split(separator: ".", omittingEmptySubsequences: false)
    let isV4Loopback = octets.count == 4 && octets.allSatisfy { UInt8($0) != nil } && octets[0] == "127"
    guard isV4Loopback || resolved == "::1" else {
        throw LoadError.refused("--relay \(url): hush-load only targets loopback (127.0.0.0/8 or ::1)")
    }
    return (resolved, port)
}
