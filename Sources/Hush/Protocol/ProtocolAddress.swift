/// Who a session is with: a user's name and one of their devices.
///
/// Stores key sessions and trusted identities by address. Addresses never appear on the
/// wire; the server tells the app which address a message came from.
public struct ProtocolAddress: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The user's name or id, as the app's server knows it.
    public let name: String
    /// The device id (Signal uses 1 for the primary device).
    public let deviceID: UInt32
    /// The name's hash, computed once with the process's seeded `Hasher` (so it is no easier to
    /// collide than hashing the name itself): stores look addresses up once or twice per
    /// message, and hashing a string every time was a measurable part of a message's cost.
    private let nameHash: Int

    /// The address of device `deviceID` of user `name`.
    public init(name: String, deviceID: UInt32) {
        self.name = name
        self.deviceID = deviceID
        var hasher = Hasher()
        hasher.combine(name)
        nameHash = hasher.finalize()
    }

    /// `name.deviceID`.
    public var description: String { "\(name).\(deviceID)" }

    public static func == (lhs: ProtocolAddress, rhs: ProtocolAddress) -> Bool {
        lhs.deviceID == rhs.deviceID && lhs.nameHash == rhs.nameHash && lhs.name == rhs.name
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(nameHash)
        hasher.combine(deviceID)
    }

    private enum CodingKeys: String, CodingKey {
        case name
        case deviceID
    }

    /// Decodes `{"name": …, "deviceID": …}`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try container.decode(String.self, forKey: .name),
                  deviceID: try container.decode(UInt32.self, forKey: .deviceID))
    }

    /// Encodes `{"name": …, "deviceID": …}` (the cached hash is not part of the value).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(deviceID, forKey: .deviceID)
    }
}
