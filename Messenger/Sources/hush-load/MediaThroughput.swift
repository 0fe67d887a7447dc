import ArgumentParser
import Foundation
import Hush
import HushCLIKit
import HushClient
import HushRelay

/// `hush-load media-throughput`: the media goal of issue 12 / Docs/client.md §Media, measured —
/// encrypt + upload + download + check + decrypt of one file of `--mib` MiB between two
/// HushClients through the demo's embedded relay (this process, loopback, media on disk), and
/// the process's memory while it runs. Client and relay share the process, so a flat resident
/// size covers both: the file is never held whole (upload streams 256 KiB pieces into the PUT,
/// the relay streams the body to disk and back, the download appends to a partial file and
/// decrypts as the pieces arrive). Run it at two sizes: the peak growth must not follow the size.
struct MediaThroughput: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "media-throughput",
        abstract: "Time encrypt+upload+download+decrypt of one file through an in-process relay, and the memory it takes; prints JSON."
    )

    @Option(help: "File size in MiB (1...100).")
    var mib = 50
    @Option(help: "Runs (each a fresh file and blob); the report gives each and the best.")
    var runs = 3
    @Option(help: "Seconds the whole run may take before the process exits with status 3.")
    var deadline: Double = 600

    func validate() throws {
        guard (1...100).contains(mib), (1...20).contains(runs) else { throw ValidationError("--mib 1...100, --runs 1...20") }
    }

    struct Run: Encodable {
        let uploadSeconds: Double
        let downloadSeconds: Double
        let endToEndMBps: Double
        let uploadMBps: Double
        let downloadMBps: Double
        /// This process's CPU time (user + system, clients and relay together) per phase: with
        /// 2 cores, a phase whose CPU seconds are near twice its wall seconds is CPU-bound.
        let uploadCPUSeconds: Double
        let downloadCPUSeconds: Double
    }

    struct Report: Encodable {
        let bytes: Int
        let runs: [Run]
        let bestEndToEndMBps: Double
        let rssBeforeBytes: Int
        let rssPeakDuringBytes: Int
        let peakGrowthBytes: Int
        let note: String
    }

    func run() async throws {
        startWatchdog(seconds: deadline)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hush-media-throughput-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: root) }
        let relay = try EmbeddedRelay(dataDirectory: root)
        try await relay.start()
        var config = ClientConfiguration(endpoint: RelayEndpoint(host: "127.0.0.1", port: relay.port), trustRoot: relay.trustRoot)
        config.requestTimeout = .seconds(30)
        func client(_ name: String) throws -> (HushClient, ClientWatch) {
            let keys = try HushClient.generateIdentity()
            let c = try HushClient.create(account: name, store: InMemoryClientStore(identity: keys.identity, registrationID: keys.registrationID),
                                          configuration: config)
            return (c, ClientWatch(c))
        }
        let (alice, aliceWatch) = try client("alice"), (bob, bobWatch) = try client("bob")
        await alice.start()
        await bob.start()
        try await aliceWatch.waitOnline(.seconds(30))
        try await bobWatch.waitOnline(.seconds(30))

        let bytes = mib << 20
        let aliceLibrary = MediaLibrary(root: root.appendingPathComponent("alice-media"))
        let bobLibrary = MediaLibrary(root: root.appendingPathComponent("bob-media"))
        let sampler = RSSSampler()
        var results: [Run] = []
        let before = ProcessProbe(pid: getpid()).rssBytes ?? 0
        sampler.start()
        for n in 0..<runs {
            let file = root.appendingPathComponent("file-\(n).bin")
            try Self.writeRandomFile(file, bytes: bytes)
            let c0 = selfCPUMicroseconds()
            let t0 = monotonicNanos()
            let pointer = try await alice.uploadMedia(file: file, contentType: "application/octet-stream", library: aliceLibrary)
            let t1 = monotonicNanos()
            let c1 = selfCPUMicroseconds()
            let saved = try await bob.downloadMedia(pointer, into: bobLibrary)
            let t2 = monotonicNanos()
            let c2 = selfCPUMicroseconds()
            guard (try FileManager.default.attributesOfItem(atPath: saved.path)[.size] as? NSNumber)?.intValue == bytes else {
                throw MediaThroughputFailure(description: "the downloaded file has the wrong size")
            }
            let up = Double(t1 - t0) / 1e9, down = Double(t2 - t1) / 1e9
            let mb = Double(bytes) / 1e6
            results.append(Run(uploadSeconds: up, downloadSeconds: down, endToEndMBps: mb / (up + down), uploadMBps: mb / up, downloadMBps: mb / down,
                               uploadCPUSeconds: Double(c1 - c0) / 1e6, downloadCPUSeconds: Double(c2 - c1) / 1e6))
            for f in [file, saved] { try? FileManager.default.removeItem(at: f) }
            try? FileManager.default.removeItem(at: aliceLibrary.root)
        }
        let peak = sampler.stop()
        await alice.stop()
        await bob.stop()
        await relay.stop()
        let report = Report(bytes: bytes, runs: results, bestEndToEndMBps: results.map(\.endToEndMBps).max() ?? 0,
                            rssBeforeBytes: before, rssPeakDuringBytes: peak, peakGrowthBytes: max(0, peak - before),
                            note: "MB = 10^6 bytes; end to end = size / (upload + download) with both clients and the relay in this process on loopback")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }

    /// Writes `bytes` bytes in 1 MiB pieces (never the whole file in memory): one random MiB,
    /// repeated (the content does not change the work; a fresh random MiB per piece made the
    /// kernel's CSPRNG the largest item in a profile of the run).
    static func writeRandomFile(_ url: URL, bytes: Int) throws {
        FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        var piece = [UInt8](repeating: 0, count: 1 << 20)
        piece.withUnsafeMutableBytes { _ = try? SystemRandom().fill($0) }
        var left = bytes
        while left > 0 {
            let n = min(left, piece.count)
            try handle.write(contentsOf: piece[0..<n])
            left -= n
        }
    }
}

struct MediaThroughputFailure: Error, CustomStringConvertible {
    let description: String
}

/// Samples this process's resident size every 10 ms on its own thread; `stop` returns the largest.
final class RSSSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var running = false
    private var peak = 0
    private var thread: Thread?

    func start() {
        lock.lock(); running = true; peak = 0; lock.unlock()
        let t = Thread { [self] in
            let probe = ProcessProbe(pid: getpid())
            while true {
                lock.lock()
                let go = running
                if let r = probe.rssBytes { peak = max(peak, r) }
                lock.unlock()
                if !go { return }
                usleep(10_000)
            }
        }
        thread = t
        t.start()
    }

    func stop() -> Int {
        lock.lock(); running = false; let p = peak; lock.unlock()
        usleep(20_000)
        return p
    }
}
