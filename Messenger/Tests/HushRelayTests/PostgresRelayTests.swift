import Foundation
import Hush
import HushClient
import HushRelayPostgres
import HushTransport
import Synchronization
import Testing
@testable import HushRelay

/// A relay node on PostgreSQL with its cluster listener, in process, on a loopback port.
struct PostgresNode {
    let store: PostgresRelayStore
    let cluster: PostgresRelayCluster
    let relay: TestRelay
    let listener: Task<Void, Never>

    /// A node on `configuration`'s schema (nodes given the same schema share one deployment).
    /// With `media`, the node serves media (§19) from the database (``PostgresMediaStore``,
    /// the deployment's shared capability key), as `hush-relay serve --store postgres://…` does.
    static func start(_ configuration: PostgresStoreConfiguration, node: String, media: Bool = false) async throws -> PostgresNode {
        var config = configuration
        config.nodeID = node
        let store = try await PostgresRelayStore.connect(config, notifyCommits: true, logger: TestPostgres.logger)
        let cluster = PostgresRelayCluster(store: store, logger: TestPostgres.logger)
        var service: MediaService?
        if media {
            let blobs = PostgresMediaStore(store: store)
            service = try MediaService(store: blobs, capabilityKey: try await blobs.sharedCapabilityKey())
        }
        let relay = try await TestRelay.start(store: store) {
            $0.cluster = cluster
            $0.stanzaBurst = 1_000_000  // the test clock stands still: no refill
            $0.media = service
        }
        let (ready, continuation) = AsyncStream<Void>.makeStream()
        let listener = Task { [relay] in await cluster.run(relay: relay.relay, listening: { continuation.yield() }) }
        // Listening on both channels (bounded: a node that never listens fails the test).
        guard await firstElement(of: ready) != nil else {
            listener.cancel()
            await relay.stop()
            await store.shutdown()
            throw ClientError.timedOut
        }
        return PostgresNode(store: store, cluster: cluster, relay: relay, listener: listener)
    }

    func stop() async {
        await relay.stop()
        listener.cancel()
        await listener.value
        await store.shutdown()
    }
}

/// The path of `Messenger/Scripts/postgres.sh` (the fault test restarts the server with it).
let postgresScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Scripts/postgres.sh").standardized

/// A process's exit status, once known.
final class ExitStatus: Sendable {
    private let status = Mutex<Int32?>(nil)
    func set(_ value: Int32) { status.withLock { $0 = value } }
    var value: Int32? { status.withLock { $0 } }
}

/// Runs `postgres.sh restart` (fast shutdown, start) on a thread of its own; returns its exit
/// status. (`system`, not `Process`: the server it starts outlives the script.)
func restartPostgres() async -> Int32 {
    await withCheckedContinuation { continuation in
        let thread = Thread {
            let status = system("/bin/bash '\(postgresScript.path)' restart >/dev/null 2>&1 </dev/null")
            continuation.resume(returning: status == -1 ? -1 : (status >> 8) & 0xFF)
        }
        thread.start()
    }
}

extension PostgresTests {
        /// One message over one node on PostgreSQL: the single-node path end to end.
        @Test func deliveryOnOneNode() async throws {
            let node = try await PostgresNode.start(try TestPostgres.configuration(), node: "n1")
            let alice = TestDevice("alice"), bob = TestDevice("bob")
            let a = try await RelayTestClient.register(node.relay, alice)
            try await a.waitQueueEmpty()
            let b = try await RelayTestClient.register(node.relay, bob)
            try await b.waitQueueEmpty()
            let ack = try await a.sendAndWait(1, to: "bob", "hello")
            guard case .serverAck? = ack.body else { Issue.record("no ack: \(ack)"); return }
            let d = try await b.nextDeliver()
            #expect(d.payload == Data("hello".utf8))
            try await b.ack([d.serverID])
            _ = try await b.ping(1)
            #expect(try await node.store.queueDepth(account: "bob", deviceID: 1) == 0)
            await a.close()
            await b.close()
            await node.stop()
        }

        /// Media across nodes with nothing but the database shared: a grant from node 1 is
        /// honoured by node 2's `PUT`, and the blob is served by node 1, whole and by range;
        /// a second upload of the id is refused on either node; the purge works for all.
        @Test func mediaAcrossNodes() async throws {
            let config = try TestPostgres.configuration()
            let n1 = try await PostgresNode.start(config, node: "n1", media: true)
            let n2 = try await PostgresNode.start(config, node: "n2", media: true)
            let alice = try await RelayTestClient.register(n1.relay, TestDevice("alice"))
            try await alice.waitQueueEmpty()
            let blob = (0..<1_500_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 9) }
            var s = RelayStanza()
            s.requestMediaUpload.requestID = 7
            s.requestMediaUpload.size = UInt64(blob.count)
            try await alice.send(s)
            let reply = try await alice.wait { s in
                switch s.body {
                case .mediaUploadGranted(let g) where g.requestID == 7: s
                case .error(let e) where e.requestID == 7: s
                default: nil
                }
            }
            guard case .mediaUploadGranted(let grant)? = reply.body else { Issue.record("no grant: \(reply)"); return }
            let id = grant.mediaID.map { String(format: "%02x", $0) }.joined()
            let http1 = MediaHTTPClient(host: "127.0.0.1", port: n1.relay.port), http2 = MediaHTTPClient(host: "127.0.0.1", port: n2.relay.port)
            func put(_ http: MediaHTTPClient) async throws {
                var offset = 0
                try await http.upload(mediaID: id, token: Array(grant.token), size: blob.count) {
                    guard offset < blob.count else { return nil }
                    let end = min(blob.count, offset + 100_000)
                    defer { offset = end }
                    return Array(blob[offset..<end])
                }
            }
            try await put(http2)
            var got: [UInt8] = []
            try await http1.download(mediaID: id) { got += $0 }
            #expect(got == blob)
            var tail: [UInt8] = []
            try await http1.download(mediaID: id, from: 1_048_000) { tail += $0 }
            #expect(tail == Array(blob[1_048_000...]))
            do {
                try await put(http1)
                Issue.record("a second upload of the id was stored")
            } catch let error as MediaTransferError {
                #expect(error == .refused(status: 409, code: "exists"))
            }
            // 30 days later (both nodes' clocks), either node's purge removes it for both.
            n1.relay.clock.advance(by: 30 * 86_400_000)
            n2.relay.clock.advance(by: 30 * 86_400_000)
            #expect(await n2.relay.relay.purgeExpiredMedia() == 1)
            do {
                try await http1.download(mediaID: id) { _ in }
                Issue.record("served after the purge")
            } catch let error as MediaTransferError {
                #expect(error == .refused(status: 404, code: "not-found"))
            }
            await alice.close()
            await n1.stop()
            await n2.stop()
        }

        /// Two nodes on one database: a device on node 2 receives, in order, what a device on
        /// node 1 sends (woken by NOTIFY, read from the queue); offline messages drain on
        /// whichever node the device connects to next.
        @Test func twoNodeDelivery() async throws {
            let config = try TestPostgres.configuration()
            let n1 = try await PostgresNode.start(config, node: "n1")
            let n2 = try await PostgresNode.start(config, node: "n2")
            let alice = TestDevice("alice"), bob = TestDevice("bob")
            let a = try await RelayTestClient.register(n1.relay, alice)
            try await a.waitQueueEmpty()
            var b = try await RelayTestClient.register(n2.relay, bob)
            try await b.waitQueueEmpty()

            for i in 1...20 { try await a.sendMessage(UInt64(i), to: "bob", "m\(i)") }
            let online = try await b.receiveAndAck(20)
            #expect(online.map { String(decoding: $0.payload, as: UTF8.self) } == (1...20).map { "m\($0)" })
            #expect(online.map(\.serverID) == online.map(\.serverID).sorted())
            for i in 1...20 {
                let s = try await a.wait { s -> RelayServerAck? in if case .serverAck(let x)? = s.body, x.clientMessageID == UInt64(i) { x } else { nil } }
                _ = s
            }
            // Bob replies to alice across nodes the other way.
            _ = try await b.sendAndWait(1, to: "alice", "back")
            #expect(try await a.nextDeliver().payload == Data("back".utf8))

            // Offline: queued while bob is away, drained on node 1.
            await b.close()
            for i in 21...25 { _ = try await a.sendAndWait(UInt64(i), to: "bob", "m\(i)") }
            b = try await RelayTestClient.login(n1.relay, bob)
            let drained = try await b.receiveAndAck(5)
            #expect(drained.map { String(decoding: $0.payload, as: UTF8.self) } == (21...25).map { "m\($0)" })
            try await b.waitQueueEmpty()
            _ = try await b.ping(9)
            #expect(try await n2.store.queueDepth(account: "bob", deviceID: 1) == 0)
            await a.close()
            await b.close()
            await n1.stop()
            await n2.stop()
        }

        /// A node serves connections before its first LISTEN is established (and while a lost
        /// listening connection is replaced): a wake-up NOTIFYed then never reaches it. So on
        /// every LISTEN, the first one included, it reads the queues of the devices it holds:
        /// bob, logged in on node 2 before node 2 listens, receives what alice sent meanwhile.
        @Test func wakeUpsBeforeTheFirstListenAreNotMissed() async throws {
            let config = try TestPostgres.configuration()
            let n1 = try await PostgresNode.start(config, node: "n1")
            var c2 = config
            c2.nodeID = "n2"
            let store2 = try await PostgresRelayStore.connect(c2, notifyCommits: true, logger: TestPostgres.logger)
            let cluster2 = PostgresRelayCluster(store: store2, logger: TestPostgres.logger)
            let relay2 = try await TestRelay.start(store: store2) {
                $0.cluster = cluster2
                $0.stanzaBurst = 1_000_000
            }
            let alice = TestDevice("alice"), bob = TestDevice("bob")
            let a = try await RelayTestClient.register(n1.relay, alice)
            try await a.waitQueueEmpty()
            let b = try await RelayTestClient.register(relay2, bob)
            try await b.waitQueueEmpty()
            // Node 2 is not listening: the message commits and its NOTIFY goes by unseen.
            let ack = try await a.sendAndWait(1, to: "bob", "early")
            guard case .serverAck? = ack.body else { Issue.record("no ack: \(ack)"); return }
            // Node 2 starts listening, and finds the message by reading bob's queue.
            let (ready, continuation) = AsyncStream<Void>.makeStream()
            let listener = Task { await cluster2.run(relay: relay2.relay, listening: { continuation.yield() }) }
            #expect(await firstElement(of: ready) != nil, "node 2 never listened")
            let d = try await b.nextDeliver()
            #expect(d.payload == Data("early".utf8))
            try await b.ack([d.serverID])
            _ = try await b.ping(1)
            #expect(try await store2.queueDepth(account: "bob", deviceID: 1) == 0)
            await a.close()
            await b.close()
            await relay2.stop()
            listener.cancel()
            await listener.value
            await store2.shutdown()
            await n1.stop()
        }

        /// A device connecting to a second node takes over: its connection on the first node is
        /// closed with 4007 (connected elsewhere), and its unacknowledged message is delivered
        /// again on the new connection.
        @Test func takeoverClosesTheOtherNode() async throws {
            let config = try TestPostgres.configuration()
            let n1 = try await PostgresNode.start(config, node: "n1")
            let n2 = try await PostgresNode.start(config, node: "n2")
            let alice = TestDevice("alice"), bob = TestDevice("bob")
            let a = try await RelayTestClient.register(n1.relay, alice)
            try await a.waitQueueEmpty()
            let old = try await RelayTestClient.register(n1.relay, bob)
            try await old.waitQueueEmpty()
            _ = try await a.sendAndWait(1, to: "bob", "unacked")
            let first = try await old.nextDeliver()

            let new = try await RelayTestClient.login(n2.relay, bob)
            let (code, _) = await old.closeCode()
            #expect(code == RelayProtocol.CloseCode.connectedElsewhere.rawValue)
            let again = try await new.nextDeliver()
            #expect(again.serverID == first.serverID)
            try await new.ack([again.serverID])
            try await new.waitQueueEmpty()
            // Later messages reach the new node's connection.
            _ = try await a.sendAndWait(2, to: "bob", "after")
            #expect(try await new.nextDeliver().payload == Data("after".utf8))
            #expect(!n1.relay.relay.holds(DeviceAddress(account: "bob", deviceID: 1)))
            await a.close()
            await new.close()
            await n1.stop()
            await n2.stop()
        }

        /// The provisioning channel across nodes (spec §22.3): the new device's anonymous
        /// connection on one node, the existing device on another; the message arrives once.
        @Test func provisioningAcrossNodes() async throws {
            let config = try TestPostgres.configuration()
            let n1 = try await PostgresNode.start(config, node: "n1")
            let n2 = try await PostgresNode.start(config, node: "n2")
            let eve = TestDevice("eve")
            let e = try await RelayTestClient.register(n1.relay, eve)
            try await e.waitQueueEmpty()
            let waiting = try await RelayTestClient.connect(n2.relay, nil, pattern: .nk, hello: RelayClientHello())
            var open = RelayStanza()
            open.openProvisioning.requestID = 1
            try await waiting.send(open)
            let address = try await waiting.wait { s -> RelayProvisioningAddress? in
                if case .provisioningAddress(let a)? = s.body { a } else { nil }
            }
            func send(_ address: Data, _ rid: UInt32) async throws -> RelayStanza {
                var s = RelayStanza()
                s.sendProvisioning.requestID = rid
                s.sendProvisioning.address = address
                s.sendProvisioning.body = Data("link me".utf8)
                try await e.send(s)
                return try await e.wait { st in
                    switch st.body {
                    case .ok(let o)? where o.requestID == rid: st
                    case .error(let x)? where x.requestID == rid: st
                    default: nil
                    }
                }
            }
            guard case .ok? = try await send(address.address, 2).body else { Issue.record("not forwarded"); return }
            let got = try await waiting.wait { s -> RelayProvisioningMessage? in
                if case .provisioningMessage(let m)? = s.body { m } else { nil }
            }
            #expect(got.body == Data("link me".utf8))
            #expect(n2.relay.relay.provisioning.count == 0)
            // In a cluster an address no node holds is still answered Ok (forwarded, then dropped).
            guard case .ok? = try await send(Data(repeating: 7, count: 16), 3).body else { Issue.record("not Ok"); return }
            try await Task.sleep(for: .milliseconds(300))
            _ = try await waiting.ping(4)
            #expect(waiting.backlog.isEmpty)  // nothing but the pong arrived
            await e.close()
            await waiting.close()
            await n1.stop()
            await n2.stop()
        }

        /// A device removed on one node (spec §22.2) while its connection is on another: that
        /// node closes it with 4008, and the device can log in on neither.
        @Test func removalClosesTheDeviceOnTheOtherNode() async throws {
            let config = try TestPostgres.configuration()
            let n1 = try await PostgresNode.start(config, node: "n1")
            let n2 = try await PostgresNode.start(config, node: "n2")
            let primary = TestDevice("dora"), linked = primary.sibling(2)
            let p = try await RelayTestClient.register(n1.relay, primary)
            try await p.waitQueueEmpty()
            // Its link token issued on n1 (device 1's node), used on n2 (§22.4: tokens are in the database).
            let l = try await RelayTestClient.registerLinked(n2.relay, linked, via: p)
            try await l.waitQueueEmpty()
            var s = RelayStanza()
            s.removeDevice.requestID = 3
            s.removeDevice.deviceID = 2
            try await p.send(s)
            let ok = try await p.wait { st -> RelayOk? in if case .ok(let o)? = st.body { o } else { nil } }
            #expect(ok.requestID == 3)
            let (code, _) = await l.closeCode()
            #expect(code == RelayProtocol.CloseCode.deviceRemoved.rawValue)
            for node in [n1, n2] {
                let gone = try await RelayTestClient.connect(node.relay, linked, pattern: .ik, hello: linked.loginHello, expectWelcome: false)
                expectError(try await gone.next(), .unknownDevice)
                await gone.close()
            }
            await p.close()
            await n1.stop()
            await n2.stop()
        }

        /// The PostgreSQL server restarted (fast shutdown, start) while a sender keeps a window of
        /// sends in flight: every send is answered with an ack or a typed error (none hangs),
        /// resending the failed ones with the same ids succeeds, and the recipient then receives
        /// every message exactly once: nothing acknowledged was lost, nothing stored twice.
        @Test(.enabled(if: TestPostgres.isPrivateCluster,
                       "HUSH_TEST_POSTGRES_URL is not the running private cluster of Messenger/Scripts/postgres.sh (with this environment's HUSH_PG_DIR/HUSH_PG_PORT): the test would restart a server it does not own"))
        func postgresRestartUnderLoad() async throws {
            let node = try await PostgresNode.start(try TestPostgres.configuration(timeoutMilliseconds: 20_000), node: "n1")
            let alice = TestDevice("alice"), bob = TestDevice("bob")
            let a = try await RelayTestClient.register(node.relay, alice)
            try await a.waitQueueEmpty()
            let passive = try await RelayTestClient.register(node.relay, bob)  // online, never acks
            try await passive.waitQueueEmpty()

            let restarted = ExitStatus()
            var acked = Set<UInt64>()
            var failed = Set<UInt64>()
            var next: UInt64 = 0
            var restart: Task<Void, Never>?
            // Windows of 20 pipelined sends until the restart has finished (at most 200 windows).
            for window in 0..<200 {
                let ids = (1...20).map { next + UInt64($0) }
                next += 20
                for id in ids { try await a.sendMessage(id, to: "bob", "msg \(id)") }
                for _ in ids {
                    let s = try await a.wait { s -> RelayStanza? in
                        switch s.body {
                        case .serverAck?: s
                        case .error(let e)? where e.clientMessageID != 0: s
                        default: nil
                        }
                    }
                    switch s.body {
                    case .serverAck(let x)?: acked.insert(x.clientMessageID)
                    case .error(let e)?:
                        #expect(e.code == .internalError, "a send failed with \(e.code)")
                        failed.insert(e.clientMessageID)
                    default: break
                    }
                }
                if window == 2 { restart = Task { [restarted] in restarted.set(await restartPostgres()) } }
                if window > 2, restarted.value != nil { break }
            }
            print("postgresRestartUnderLoad: \(next) sends, restart status \(String(describing: restarted.value))")
            await restart?.value
            #expect(restarted.value == 0, "postgres.sh restart failed")
            let total = Int(next)
            #expect(acked.count + failed.count == total)
            // Resend what failed, with the same ids (as a client would), until all are acked.
            for id in failed.sorted() {
                for attempt in 0..<20 {
                    let s = try await a.sendAndWait(id, to: "bob", [1], "msg \(id)")
                    if case .serverAck? = s.body { acked.insert(id); break }
                    _ = attempt
                }
            }
            #expect(acked.count == total)
            // Bob's next connection drains everything: each message exactly once.
            let b = try await RelayTestClient.login(node.relay, bob)
            let got = try await b.receiveAndAck(total)
            try await b.waitQueueEmpty()
            let texts = got.map { String(decoding: $0.payload, as: UTF8.self) }
            #expect(Set(got.map(\.serverID)).count == total)
            #expect(Set(texts) == Set((1...total).map { "msg \($0)" }))
            _ = try await b.ping(1)
            #expect(try await node.store.queueDepth(account: "bob", deviceID: 1) == 0)
            await passive.close()
            await a.close()
            await b.close()
            await node.stop()
        }
        /// `kill -9` of a relay node process under load: alice (node 1) keeps sending to bob
        /// (node 2, receiving and acking); node 2 is killed mid-stream; bob reconnects to node 1
        /// and drains there. Every message acknowledged to alice reaches bob, each message is
        /// stored once (one server id per content).
        @Test func killNineOfANodeLosesNothing() async throws {
            try #require(FileManager.default.fileExists(atPath: RelayProcess.binary.path),
                         "build the relay first: swift build --product hush-relay")
            var config = try TestPostgres.configuration()
            let url = try #require(TestPostgres.url)
            let separator = url.contains("?") ? "&" : "?"
            let store = url + separator + "schema=" + config.schema
            config.nodeID = "test"
            // Create the schema before two processes race to (the advisory lock covers that too).
            await (try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)).shutdown()
            let dir1 = FileManager.default.temporaryDirectory.appendingPathComponent("hush-node1-\(UUID().uuidString)")
            let dir2 = FileManager.default.temporaryDirectory.appendingPathComponent("hush-node2-\(UUID().uuidString)")
            defer {
                try? FileManager.default.removeItem(at: dir1)
                try? FileManager.default.removeItem(at: dir2)
            }
            let n1 = try RelayProcess(dataDir: dir1, extraArguments: ["--store", store])
            defer { if n1.process.isRunning { n1.kill9() } }  // a failed test leaves no process behind
            let n2 = try RelayProcess(dataDir: dir2, extraArguments: ["--store", store])
            defer { if n2.process.isRunning { n2.kill9() } }
            try await n1.ready()
            try await n2.ready()
            func connect(_ r: RelayProcess, _ d: TestDevice, register: Bool) async throws -> RelayTestClient {
                try await RelayTestClient.connect(port: r.port, trustRoot: r.trustRoot!, d, pattern: .xx,
                                                  hello: register ? d.registerHello : d.loginHello, relayKey: nil, now: unixSeconds)
            }
            let alice = TestDevice("alice"), bob = TestDevice("bob")
            let a = try await connect(n1, alice, register: true)
            try await a.waitQueueEmpty()
            var b = try await connect(n2, bob, register: true)
            try await b.waitQueueEmpty()

            let total = 200
            for id in 1...total { try await a.sendMessage(UInt64(id), to: "bob", "msg \(id)") }
            var received: [UInt64: String] = [:]
            // Bob takes a quarter on node 2, then node 2 dies.
            while received.count < total / 4 {
                let d = try await b.nextDeliver()
                received[d.serverID] = String(decoding: d.payload, as: UTF8.self)
                try await b.ack([d.serverID])
            }
            n2.kill9()
            _ = await b.closeCode()
            var acked = Set<UInt64>()
            while acked.count < total {
                let id = try await a.wait { if case .serverAck(let s)? = $0.body { s.clientMessageID } else { nil } }
                acked.insert(id)
            }
            // Bob reconnects to node 1 and drains everything not yet acknowledged.
            b = try await connect(n1, bob, register: false)
            while Set(received.values).count < total {
                let d = try await b.nextDeliver()
                received[d.serverID] = String(decoding: d.payload, as: UTF8.self)
                try await b.ack([d.serverID])
            }
            try await b.waitQueueEmpty()
            #expect(acked == Set((1...total).map(UInt64.init)))
            #expect(received.count == total, "one server id per message")
            #expect(Set(received.values) == Set((1...total).map { "msg \($0)" }))
            await a.close()
            await b.close()
            #expect(n1.terminate() == 0)
        }
}
