import Foundation
import HushRelay
import HushTransport
import Logging
import PostgresNIO
import Synchronization

/// Several relay nodes on one PostgreSQL database (`Docs/architecture.md` §"Several relay nodes").
///
/// - Delivery across nodes: the store (opened with `notifyCommits: true`) NOTIFYs the wake
///   channel inside each enqueue's transaction, so a notification exists exactly when the
///   message committed. Every node LISTENs; the node holding the device wakes its connection,
///   which reads the queue. Nodes never talk to each other directly.
/// - Takeover: a login bumps the device's session number in the database and NOTIFYs it; a node
///   holding an older session of that device closes it with 4007 (connected elsewhere).
/// - Missed notifications: a wake-up NOTIFYed before this node LISTENs is never seen (the
///   node may already hold connections then, and the listening connection may be lost and
///   re-established). So each time it starts listening — the first time and after every
///   re-LISTEN — every local connection reads its queue, and sessions are re-checked against
///   the database.
/// - `kill -9` of a node: its queue rows are committed; its devices reconnect to another node.
public final class PostgresRelayCluster: RelayCluster {
    private let store: PostgresRelayStore
    private let logger: Logger
    /// Session numbers of the devices that logged in here (latest login per device).
    private let sessions = Mutex<[DeviceAddress: Int64]>([:])
    /// Most devices whose sessions are remembered (older entries are dropped; a dropped entry
    /// only means a late takeover notice is also honoured).
    static let maxSessions = 1_000_000

    /// A cluster over `store` (which must have been opened with `notifyCommits: true`).
    public init(store: PostgresRelayStore, logger: Logger = Logger(label: "hush-relay.cluster")) {
        self.store = store
        self.logger = logger
    }

    /// Other nodes commit messages for this node's devices.
    public var deliversByStoreRead: Bool { true }

    public func announce(_ address: DeviceAddress) async {
        do {
            let session = try await store.announce(account: address.account, deviceID: address.deviceID)
            sessions.withLock { map in
                if map.count >= Self.maxSessions { map.removeAll(keepingCapacity: true) }
                map[address] = max(map[address] ?? 0, session)
            }
        } catch {
            // The login stands; another node's older connection stays open until its own
            // close (both read the same queue; the client ignores repeated server ids).
            logger.warning("announce failed", metadata: ["error": "\(error)"])
        }
    }

    /// Listens until cancelled, reconnecting after a lost connection; wakes and takes over
    /// connections of `relay`. Run it beside the relay's server. `listening` is called each time
    /// both channels are listened to (tests wait for it).
    public func run(relay: Relay, listening: (@Sendable () -> Void)? = nil) async {
        let config = store.configuration
        let me = config.nodeID
        var backoff = Duration.milliseconds(50)
        while !Task.isCancelled {
            do {
                try await store.client.withConnection { connection in
                    try await connection.listen(on: config.wakeChannel) { wakes in
                        try await connection.listen(on: config.onlineChannel) { onlines in
                        try await connection.listen(on: config.provisioningChannel) { provisionings in
                            // Listening: anything committed before now (before the first LISTEN,
                            // or while the listening connection was lost) is found by a queue read.
                            await self.resynchronise(relay)
                            backoff = .milliseconds(50)
                            listening?()
                            try await withThrowingTaskGroup(of: Void.self) { group in
                                group.addTask {
                                    for try await n in wakes {
                                        guard let (origin, address) = Self.parseWake(n.payload), origin != me else { continue }
                                        relay.wake(address)
                                    }
                                }
                                group.addTask {
                                    for try await n in onlines {
                                        guard let (origin, session, address) = Self.parseOnline(n.payload), origin != me else { continue }
                                        if session == Self.removedSession {
                                            self.sessions.withLock { _ = $0.removeValue(forKey: address) }
                                            relay.deviceRemoved(address)
                                            continue
                                        }
                                        await self.remoteLogin(address, session: session, relay: relay)
                                    }
                                }
                                group.addTask {
                                    for try await n in provisionings {
                                        guard let (origin, address, body) = Self.parseProvisioning(n.payload), origin != me else { continue }
                                        relay.provisioningArrived(address: address, body: body)
                                    }
                                }
                                try await group.next()
                                group.cancelAll()
                            }
                        }
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("cluster listener lost; reconnecting", metadata: ["error": "\(PostgresGroupCommitter.describe(error))"])
            }
            if Task.isCancelled { return }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(2))
        }
    }

    private func remoteLogin(_ address: DeviceAddress, session: Int64, relay: Relay) async {
        let older = sessions.withLock { map -> Bool in
            guard let mine = map[address] else { return true }
            guard mine < session else { return false }
            map[address] = nil
            return true
        }
        if older { await relay.takeOver(address) }
    }

    /// On (re)starting to listen: every local connection reads its queue, and devices that
    /// logged in elsewhere meanwhile are taken over.
    private func resynchronise(_ relay: Relay) async {
        relay.wakeAll()
        let local = sessions.withLock { $0 }
        for (address, mine) in local where relay.holds(address) {
            if let current = try? await store.session(account: address.account, deviceID: address.deviceID), current > mine {
                await remoteLogin(address, session: current, relay: relay)
            }
        }
    }

    /// Another node had no open provisioning address for a `SendProvisioning` (spec §22.3):
    /// every node is told, and the one that holds it delivers it. True once told.
    public func forwardProvisioning(address: Data, body: Data) async -> Bool {
        do throws(RelayStoreError) {
            try await store.notifyProvisioning(address: address, body: body)
            return true
        } catch {
            logger.warning("provisioning forward failed", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// "origin hex(address) base64(body)".
    static func parseProvisioning(_ payload: String) -> (String, Data, Data)? {
        let parts = payload.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].utf8.count == 2 * RelayProtocol.Limits.provisioningAddressLength,
              let body = Data(base64Encoded: String(parts[2])), !body.isEmpty,
              body.count <= RelayProtocol.Limits.maxProvisioningBody else { return nil }
        var address = Data()
        var chars = parts[1].utf8.makeIterator()
        while let hi = chars.next(), let lo = chars.next() {
            guard let h = hexValue(hi), let l = hexValue(lo) else { return nil }
            address.append(h << 4 | l)
        }
        return (String(parts[0]), address, body)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    /// The session number of an online-channel notice that the device was removed (§22.2).
    static let removedSession: Int64 = -1

    /// "origin account device".
    static func parseWake(_ payload: String) -> (String, DeviceAddress)? {
        let parts = payload.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, let device = UInt32(parts[2]) else { return nil }
        return (String(parts[0]), DeviceAddress(account: String(parts[1]), deviceID: device))
    }

    /// "origin session account device".
    static func parseOnline(_ payload: String) -> (String, Int64, DeviceAddress)? {
        let parts = payload.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 4, let session = Int64(parts[1]), let device = UInt32(parts[3]) else { return nil }
        return (String(parts[0]), session, DeviceAddress(account: String(parts[2]), deviceID: device))
    }
}
