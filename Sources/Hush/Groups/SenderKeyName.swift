/// Names a sender key: which group, and which member's device sends with it.
public struct SenderKeyName: Hashable, Sendable, CustomStringConvertible {
    /// The app's id for the group.
    public let groupID: String
    /// The sending member's address.
    public let sender: ProtocolAddress

    /// The sender key of `sender` in group `groupID`.
    public init(groupID: String, sender: ProtocolAddress) {
        self.groupID = groupID
        self.sender = sender
    }

    /// `group::name.device`.
    public var description: String { "\(groupID)::\(sender)" }
}

/// Sender key records by name.
public protocol SenderKeyStore: AnyObject, Sendable {
    /// The record `name`, or `nil`.
    func loadSenderKey(for name: SenderKeyName) throws -> SenderKeyRecord?
    /// Replaces the record `name` (called only after an operation succeeded).
    func storeSenderKey(_ record: SenderKeyRecord, for name: SenderKeyName) throws
}
