import Foundation
import Hush
import HushTransport
import Synchronization
import Testing
@testable import HushRelay

/// A `hush-relay serve` subprocess on a data directory.
final class OutputBuffer: Sendable {
    private let text = Mutex("")
    func append(_ s: String) { text.withLock { $0 += s } }
    var value: String { text.withLock { $0 } }
}

final class RelayProcess: @unchecked Sendable {
    let process = Process()
    let output = OutputBuffer()
    private(set) var port = 0
    private(set) var trustRoot: Curve25519.KeyAgreement.PublicKey?

    static var binary: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/hush-relay").standardized
    }

    init(dataDir: URL, extraArguments: [String] = []) throws {
        process.executableURL = Self.binary
        let debug = ProcessInfo.processInfo.environment["RELAY_TEST_DEBUG"] != nil
        process.arguments = ["serve", "--port", "0", "--data-dir", dataDir.path, "--log-level", debug ? "debug" : "error"] + extraArguments
        let pipe = Pipe()
        process.standardOutput = pipe
        // RELAY_TEST_DEBUG (debug level) or RELAY_TEST_STDERR (error level): the relay's log on stderr.
        if !debug && ProcessInfo.processInfo.environment["RELAY_TEST_STDERR"] == nil { process.standardError = FileHandle.nullDevice }
        pipe.fileHandleForReading.readabilityHandler = { [output] h in
            let data = h.availableData
            output.append(String(decoding: data, as: UTF8.self))
        }
        try process.run()
    }

    /// Waits (bounded) until the relay printed its port.
    func ready() async throws {
        for _ in 0..<600 {
            let text = output.value
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }),
               let p = Int(line.split(separator: ":").last ?? ""),
               let rootLine = text.split(separator: "\n").first(where: { $0.hasPrefix("trust root: ") }) {
                port = p
                trustRoot = try .init(rawRepresentation: Hex.decode(String(rootLine.dropFirst("trust root: ".count))))
                return
            }
            guard process.isRunning else { throw ClientError.unexpected("relay exited: \(text)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ClientError.unexpected("relay did not start")
    }

    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, then its exit status; a relay still running after 30 s is killed (-1).
    func terminate() -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<600 where process.isRunning { usleep(50_000) }
        if process.isRunning {
            kill9()
            return -1
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

@Suite(.serialized) struct CrashTests {
    func client(_ r: RelayProcess, _ d: TestDevice, register: Bool) async throws -> RelayTestClient {
        try await RelayTestClient.connect(port: r.port, trustRoot: r.trustRoot!, d, pattern: .xx,
                                          hello: register ? d.registerHello : d.loginHello, relayKey: nil, now: unixSeconds)
    }

    /// kill -9 at random points during a burst of sends, restart, resend everything not yet
    /// acked (as a client would): every acked message is delivered exactly once, none is lost.
    @Test func killNineDuringBurst() async throws {
        try #require(FileManager.default.fileExists(atPath: RelayProcess.binary.path),
                     "build the relay first: swift build --product hush-relay")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-relay-crash-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let alice = TestDevice("alice"), bob = TestDevice("bob")
        var relay = try RelayProcess(dataDir: dir)
        try await relay.ready()
        await (try await client(relay, bob, register: true)).close()
        var a = try await client(relay, alice, register: true)

        let total = 300
        var acked = Set<UInt64>()
        var rng = SystemRandomNumberGenerator()
        for round in 0..<3 {
            // Pipeline every message not yet acked; kill the relay after a random number of acks.
            let pending = (1...UInt64(total)).filter { !acked.contains($0) }
            let killAfter = Int.random(in: 1...max(1, pending.count / 2), using: &rng)
            let sender = Task { [a] in
                for id in pending { try? await a.sendMessage(id, to: "bob", "msg \(id)") }
            }
            var seen = 0
            do {
                while seen < killAfter {
                    let id = try await a.wait { if case .serverAck(let s)? = $0.body { s.clientMessageID } else { nil } }
                    acked.insert(id)
                    seen += 1
                }
            } catch {}
            relay.kill9()
            sender.cancel()
            _ = await sender.value
            // Acks that arrived before the kill and were still buffered count too.
            while let s = try? await a.next() { if case .serverAck(let x)? = s.body { acked.insert(x.clientMessageID) } }
            await a.close()
            relay = try RelayProcess(dataDir: dir)
            try await relay.ready()
            a = try await client(relay, alice, register: false)
            _ = round
        }
        // Finish: resend everything (acked ones are deduplicated) until all are acked.
        for id in 1...UInt64(total) { try await a.sendMessage(id, to: "bob", "msg \(id)") }
        var final = Set<UInt64>()
        while final.count < total {
            let id = try await a.wait { if case .serverAck(let s)? = $0.body { s.clientMessageID } else { nil } }
            final.insert(id)
        }
        #expect(acked.isSubset(of: final))
        // Bob drains: each message exactly once (distinct server ids, distinct contents).
        let b = try await client(relay, bob, register: false)
        let got = try await b.receiveAndAck(total)
        try await b.waitQueueEmpty()
        let texts = got.map { String(decoding: $0.payload, as: UTF8.self) }
        #expect(Set(got.map(\.serverID)).count == total)
        #expect(Set(texts) == Set((1...total).map { "msg \($0)" }))
        #expect(texts.count == total)
        await a.close()
        // A connection that has not finished (not even started) its handshake.
        let handshaking = try await TestWebSocket.connect(port: relay.port)
        // SIGTERM: the logged-in device and the handshaking connection are both closed with
        // 1001 (spec §11), and the relay exits 0.
        #expect(relay.terminate() == 0)
        #expect(await b.closeCode().0 == 1001)
        let ended = await handshaking.next()
        #expect(ended == .closed(1001), "got \(ended)")
    }
}
