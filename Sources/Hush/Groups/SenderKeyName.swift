/// Names a sender key: which group, and which member's device sends with it.
public struct SenderKeyName: Hashable, Sendable, CustomStringConvertible {
    /// The app's id for the group.
    public let groupID: String
    /// The sending member's address.
    public let sender: ProtocolAddress

    public init(groupID: String, sender: ProtocolAddress) {
        self.groupID = groupID
        self.sender = sender
    }

    public var description: String { "\(groupID)::\(sender)" }
}

/// Sender key records by name.
public protocol SenderKeyStore: AnyObject, Sendable {
    func loadSenderKey(for name: SenderKeyName) throws -> SenderKeyRecord?
    func storeSenderKey(_ record: SenderKeyRecord, for name: SenderKeyName) throws
}
