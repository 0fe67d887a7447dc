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
    /// Runs `body` on the record `name` and keeps what it leaves, as one step.
    ///
    /// ``GroupCipher`` and ``GroupSessionBuilder`` use it for every operation, so that two
    /// concurrent encryptions never use one message key and two concurrent decryptions of one
    /// message cannot both succeed. The default implementation loads, runs `body` and stores
    /// the result if `body` returned a record — it is not atomic; a store that can, runs
    /// `body` under a lock (``InMemorySignalProtocolStore`` does). `body` calls no store. When
    /// `body` throws, nothing may be stored.
    func updateSenderKey<R, E: Error>(for name: SenderKeyName, _ body: (inout SenderKeyRecord?) throws(E) -> R) throws -> R
}

extension SenderKeyStore {
    /// Loads, runs `body` on the copy, stores the result if `body` returned (see the requirement).
    public func updateSenderKey<R, E: Error>(for name: SenderKeyName, _ body: (inout SenderKeyRecord?) throws(E) -> R) throws -> R {
        var record = try loadSenderKey(for: name)
        let result = try body(&record)
        if let record { try storeSenderKey(record, for: name) }
        return result
    }
}
