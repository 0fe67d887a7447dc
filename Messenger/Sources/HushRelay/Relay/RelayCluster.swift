import Foundation

/// How relay nodes that share one database cooperate (`Docs/architecture.md` §"Several relay
/// nodes"). The queue rows in the store are the source of truth; a cluster only tells nodes
/// when to look. The relay calls it at two points: after a device logged in
/// (``announce(_:)``), and on each committed message for a device held here
/// (``deliversByStoreRead``). The cluster calls back through ``Relay/wake(_:)``,
/// ``Relay/wakeAll()`` and ``Relay/takeOver(_:)``.
public protocol RelayCluster: Sendable {
    /// `true` when other nodes may commit messages for this node's devices. A committed message
    /// then only wakes its device's connection to read the queue, in server-id order: pushing it
    /// directly could overtake an earlier message that another node committed for the same device.
    var deliversByStoreRead: Bool { get }
    /// `address` logged in on this node (it is already this node's connection for the device):
    /// the other nodes close their older connections of the device ("connected elsewhere").
    func announce(_ address: DeviceAddress) async
    /// A `SendProvisioning` found no open address on this node (spec §22.3): hand `body` to the
    /// other nodes, one of which may hold `address` (it calls ``Relay/provisioningArrived(address:body:)``).
    /// True when handed on; a single node returns false (the address is unknown).
    func forwardProvisioning(address: Data, body: Data) async -> Bool
}

extension RelayCluster {
    /// No other node: nothing to forward to.
    public func forwardProvisioning(address: Data, body: Data) async -> Bool { false }
}

/// One relay node alone on its store (the default): nothing to tell anyone.
public struct SingleNodeCluster: RelayCluster {
    /// A single node.
    public init() {}
    /// Pushes are delivered directly.
    public var deliversByStoreRead: Bool { false }
    /// Nothing to do.
    public func announce(_ address: DeviceAddress) async {}
}

extension Relay {
    /// Another node committed messages for `address`: its connection here, if any, reads its queue.
    public func wake(_ address: DeviceAddress) {
        router.connection(address)?.wakeForStoreRead()
    }

    /// Every connection here reads its queue (after notifications may have been missed).
    public func wakeAll() {
        for c in router.all { c.wakeForStoreRead() }
    }

    /// `address` logged in on another node later than here: its connection here, if any, is
    /// closed with 4007 (connected elsewhere). Its unacknowledged messages stay queued.
    public func takeOver(_ address: DeviceAddress) async {
        router.connection(address)?.closeSoon(.connectedElsewhere)
    }

    /// `address` was removed from its account (spec §22.2), on this node or another: its
    /// connection here, if any, is closed with 4008 (device removed).
    public func deviceRemoved(_ address: DeviceAddress) {
        router.connection(address)?.closeSoon(.deviceRemoved)
    }

    /// Another node forwarded a provisioning message (spec §22.3): delivered if `address` is
    /// open here (once), else dropped.
    public func provisioningArrived(address: Data, body: Data) {
        guard let target = provisioning.take(address, now: configuration.clock()) else { return }
        metrics.provisioningSent.increment()
        target.eventLoop.execute { target.deliverProvisioning(body) }
    }

    /// Whether a device has a logged-in connection on this node.
    public func holds(_ address: DeviceAddress) -> Bool { router.connection(address) != nil }
}

extension RelayConnection {
    /// Drops the pushed buffer and reads the queue from the store after the last delivered id.
    /// Callable from any thread (hops onto the connection's event loop).
    func wakeForStoreRead() {
        eventLoop.execute { [self] in
            guard case .device = phase else { return }
            pushed.removeAll(keepingCapacity: true)
            needsStoreRead = true
            generation += 1
            pump()
            flush()
        }
    }
}
