/// Who a session is with: a user's name and one of their devices.
///
/// Stores key sessions and trusted identities by address. Addresses never appear on the
/// wire; the server tells the app which address a message came from.
public struct ProtocolAddress: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The user's name or id, as the app's server knows it.
    public let name: String
    /// The device id (Signal uses 1 for the primary device).
    public let deviceID: UInt32

    /// The address of device `deviceID` of user `name`.
    public init(name: String, deviceID: UInt32) {
        self.name = name
        self.deviceID = deviceID
    }

    /// `name.deviceID`.
    public var description: String { "\(name).\(deviceID)" }
}
