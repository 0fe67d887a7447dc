import Foundation
import Hush
import HushTransport
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import HushRelay

/// A raw TCP connection to the relay that sends some bytes and then nothing (a client stuck
/// before the WebSocket upgrade).
final class RawTCP: Sendable {
    let channel: Channel

    private init(_ channel: Channel) { self.channel = channel }

    /// Connects to `127.0.0.1:port` and writes `bytes` (possibly none).
    static func connect(port: Int, sending bytes: [UInt8]) async throws -> RawTCP {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(30))
            .connect(host: "127.0.0.1", port: port).get()
        if !bytes.isEmpty { try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get() }
        return RawTCP(channel)
    }

    /// Whether the relay closed the connection within `timeout` (its end of the stream reached us).
    func closedByPeer(within timeout: Duration) async -> Bool {
        await withDeadline(timeout) { [channel] in try? await channel.closeFuture.get() }
    }

    func close() async { try? await channel.close().get() }
}

/// `GET path` over a fresh connection (`Connection: close`); the whole response, or nil if it
/// did not end within `timeout`.
func httpGet(port: Int, _ path: String, timeout: Duration = TestWebSocket.defaultTimeout) async throws -> String? {
    final class Collect: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let bytes = Mutex<[UInt8]>([])
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var b = unwrapInboundIn(data)
            let chunk = b.readBytes(length: b.readableBytes) ?? []
            bytes.withLock { $0 += chunk }
        }
    }
    let collect = Collect()
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connectTimeout(.seconds(10))
        .channelInitializer { $0.pipeline.addHandler(collect) }
        .connect(host: "127.0.0.1", port: port).get()
    let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n"
    try await channel.writeAndFlush(ByteBuffer(string: request)).get()
    guard await withDeadline(timeout, { try? await channel.closeFuture.get() }) else {
        try? await channel.close().get()
        return nil
    }
    return String(decoding: collect.bytes.withLock { $0 }, as: UTF8.self)
}

/// The value of a Prometheus sample `name{labels…}` whose labels include all of `labels`
/// (0 when absent).
func metricValue(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double {
    for line in text.split(separator: "\n") where line.hasPrefix(name) && !line.hasPrefix("#") {
        let rest = line.dropFirst(name.count)
        guard rest.first == "{" || rest.first == " " else { continue }
        guard labels.allSatisfy({ line.contains("\($0.key)=\"\($0.value)\"") }) else { continue }
        if let v = line.split(separator: " ").last.flatMap({ Double($0) }) { return v }
    }
    return 0
}

/// Issue 13's third fault: a client that opens thousands of half-finished handshakes.
extension LoadSensitiveTests {
@Suite(.serialized) struct HalfOpenHandshakeTests {
    /// 3,000 connections to one `hush-relay` process stop mid-handshake: 1,000 before the
    /// WebSocket upgrade (500 silent, 500 in the middle of their HTTP request), 1,000 upgraded
    /// and silent, 1,000 after Noise XX message 1 (the relay's message 2 received). While they
    /// hang (after each wave of 300), a new client registers, logs in again and exchanges
    /// messages with two clients connected throughout. Then every half-open one is
    /// closed by the relay: the pre-upgrade ones by the HTTP timeout, the upgraded ones by the
    /// handshake timeout (4001), and `/metrics` counts exactly those timeouts.
    @Test func thousandsOfHalfOpenHandshakes() async throws {
        try #require(FileManager.default.fileExists(atPath: RelayProcess.binary.path),
                     "build the relay first: swift build --product hush-relay")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hush-halfopen-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let relay = try RelayProcess(dataDir: dir)
        defer { if relay.process.isRunning { relay.kill9() } }  // a failed test leaves no process behind
        try await relay.ready()
        let port = relay.port
        let trustRoot = try #require(relay.trustRoot)
        let perKind = 1_000

        // Everyone else is served while they hang: alice and bob are logged in before; after
        // each wave of 300 half-open connections (the newest of which certainly still hang) a
        // new device registers, logs in again and exchanges messages with alice and bob.
        func client(_ d: TestDevice, register: Bool) async throws -> RelayTestClient {
            try await RelayTestClient.connect(port: port, trustRoot: trustRoot, d, pattern: .xx,
                                              hello: register ? d.registerHello : d.loginHello, relayKey: nil, now: unixSeconds)
        }
        let alice = TestDevice("alice"), bob = TestDevice("bob")
        let a = try await client(alice, register: true)
        try await a.waitQueueEmpty()
        let b = try await client(bob, register: true)
        try await b.waitQueueEmpty()
        var rounds = 0
        func serveRound(_ n: Int) async throws {
            let device = TestDevice("user\(n)")
            let first = try await client(device, register: true)
            try await first.waitQueueEmpty()
            await first.close()
            let c = try await client(device, register: false)
            try await c.waitQueueEmpty()
            for i in 1...5 { try await a.sendMessage(UInt64(n * 100 + i), to: device.account, "m\(n).\(i)") }
            let got = try await c.receiveAndAck(5)
            #expect(got.map { String(decoding: $0.payload, as: UTF8.self) } == (1...5).map { "m\(n).\($0)" })
            for _ in 1...5 { _ = try await a.wait { if case .serverAck(let x)? = $0.body { x.clientMessageID } else { nil } } }
            let reply = try await c.sendAndWait(1, to: "bob", "from \(n)")
            guard case .serverAck? = reply.body else { Issue.record("no ack: \(reply)"); return }
            #expect(try await b.nextDeliver().payload == Data("from \(n)".utf8))
            await c.close()
            rounds += 1
        }

        // Open them in waves of 100 concurrent connects.
        var raw: [RawTCP] = []
        var silent: [TestWebSocket] = []
        var midNoise: [TestWebSocket] = []
        let partialRequest = Array("GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n".utf8)
        for wave in stride(from: 0, to: perKind, by: 100) {
            try await withThrowingTaskGroup(of: RawTCP.self) { group in
                for i in wave..<(wave + 100) { group.addTask { try await RawTCP.connect(port: port, sending: i % 2 == 0 ? [] : partialRequest) } }
                for try await c in group { raw.append(c) }
            }
            try await withThrowingTaskGroup(of: TestWebSocket.self) { group in
                for _ in 0..<100 { group.addTask { try await TestWebSocket.connect(port: port) } }
                for try await c in group { silent.append(c) }
            }
            try await withThrowingTaskGroup(of: TestWebSocket?.self) { group in
                for _ in 0..<100 {
                    group.addTask {
                        let ws = try await TestWebSocket.connect(port: port)
                        var hs = try ClientHandshake(pattern: .xx, deviceKey: try Curve25519.KeyAgreement.PrivateKey(), relayKey: nil,
                                                     trustRoot: trustRoot, hello: TestDevice("x").registerHello, now: unixSeconds)
                        try await ws.send(try hs.start())
                        // The relay answered message 1: this one is mid-handshake.
                        guard case .binary = await ws.next() else { return nil }
                        return ws
                    }
                }
                for try await c in group {
                    if let c { midNoise.append(c) } else { Issue.record("no XX message 2") }
                }
            }
            try await serveRound(wave / 100)
        }
        #expect(rounds == perKind / 100)
        let health = try await httpGet(port: port, "/health")
        #expect(health?.hasSuffix("\r\n\r\nok\n") == true, "health: \(String(describing: health))")
        let during = try await httpGet(port: port, "/metrics") ?? ""
        let timedOut = ["http", "unknown", "xx"].map { metricValue(during, "hush_relay_handshakes_total", ["pattern": $0, "result": "timeout"]) }
        print("thousandsOfHalfOpenHandshakes: after the last wave, already timed out (http, silent, after XX 1): \(timedOut) of \(perKind) each")
        #expect(raw.count == perKind && silent.count == perKind && midNoise.count == perKind)

        // Every half-open connection is closed by the relay (none by us), all within one
        // shared wait (a relay that never closes them fails the test after it).
        let deadline = ContinuousClock.now.advanced(by: TestWebSocket.defaultTimeout)
        func left() -> Duration { max(.zero, deadline - ContinuousClock.now) }
        var rawClosed = 0
        for c in raw where await c.closedByPeer(within: left()) { rawClosed += 1 }
        #expect(rawClosed == perKind, "pre-upgrade connections closed by the relay")
        var codes: [WSEvent: Int] = [:]
        for ws in silent + midNoise { codes[await ws.next(timeout: left()), default: 0] += 1 }
        #expect(codes == [.closed(RelayProtocol.CloseCode.handshakeTimeout.rawValue): 2 * perKind], "\(codes)")

        let metrics = try #require(try await httpGet(port: port, "/metrics"))
        #expect(metricValue(metrics, "hush_relay_handshakes_total", ["pattern": "http", "result": "timeout"]) == Double(perKind))
        #expect(metricValue(metrics, "hush_relay_handshakes_total", ["pattern": "unknown", "result": "timeout"]) == Double(perKind))
        #expect(metricValue(metrics, "hush_relay_handshakes_total", ["pattern": "xx", "result": "timeout"]) == Double(perKind))
        // The served clients are still connected.
        _ = try await a.ping(7)
        _ = try await b.ping(8)
        await a.close()
        await b.close()
        #expect(relay.terminate() == 0)
    }
}
}
