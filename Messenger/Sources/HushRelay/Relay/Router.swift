import Synchronization

/// A device address: account and device id.
public struct DeviceAddress: Hashable, Sendable, CustomStringConvertible {
    /// The account.
    public let account: String
    /// The device id.
    public let deviceID: UInt32
    /// An address.
    public init(account: String, deviceID: UInt32) {
        self.account = account
        self.deviceID = deviceID
    }
    /// `account.device`.
    public var description: String { "\(account).\(deviceID)" }
}

/// Which devices are online, and on which connection. Pushes are synchronous and
/// non-blocking (they hand the message to the connection's event loop, which appends it to
/// the connection's bounded buffer), so the store can call them in commit order.
final class Router: Sendable {
    private let online: Mutex<[DeviceAddress: RelayConnection]> = Mutex([:])

    /// Makes `connection` the device's connection; returns the one it replaces.
    func register(_ address: DeviceAddress, _ connection: RelayConnection) -> RelayConnection? {
        online.withLock { map in
            defer { map[address] = connection }
            return map[address]
        }
    }

    /// Removes `connection` if it is still the device's connection.
    func unregister(_ address: DeviceAddress, _ connection: RelayConnection) -> Bool {
        online.withLock { map in
            guard map[address] === connection else { return false }
            map[address] = nil
            return true
        }
    }

    func connection(_ address: DeviceAddress) -> RelayConnection? { online.withLock { $0[address] } }

    /// Hands committed messages to their devices' connections.
    func push(_ messages: [QueuedMessage]) {
        for m in messages {
            connection(DeviceAddress(account: m.account, deviceID: m.deviceID))?.push([m])
        }
    }

    var count: Int { online.withLock { $0.count } }

    /// Every connection (for shutdown).
    var all: [RelayConnection] { online.withLock { Array($0.values) } }
}
