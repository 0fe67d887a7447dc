import Synchronization

/// Every Signal store in memory, thread-safe, with trust on first use.
///
/// One lock per kind of record, so that a session update (``updateSession(for:_:)``, which
/// runs under the sessions lock) may consult and update the identities and prekeys (a first
/// PreKeySignalMessage saves the identity and removes its one-time prekey inside it). Lock
/// order is always sessions before identities, prekeys and signed prekeys; the sender keys
/// lock (``updateSenderKey(for:_:)``) is never held with another. For tests, demos and apps
/// that persist records themselves
/// (``SessionRecord/serialized()``). Nothing survives the process.
public final class InMemorySignalProtocolStore: SignalProtocolStore, SenderKeyStore {
    private let identity: IdentityKeyPair
    private let registrationID: UInt32
    private let identities = Mutex<[ProtocolAddress: IdentityKey]>([:])
    private let preKeys = Mutex<[UInt32: PreKeyRecord]>([:])
    private let signedPreKeys = Mutex<[UInt32: SignedPreKeyRecord]>([:])
    /// Records sit in boxes so that an update finds one by a single lookup and changes it in
    /// place (a dictionary's own in-place access costs an allocation per call).
    private final class SessionBox: @unchecked Sendable {
        var record: SessionRecord?
        init(_ record: SessionRecord?) { self.record = record }
    }
    private let sessions = Mutex<[ProtocolAddress: SessionBox]>([:])
    private let senderKeys = Mutex<[SenderKeyName: SenderKeyRecord]>([:])

    /// A store for a device with `identity` and `registrationID`.
    public init(identity: IdentityKeyPair, registrationID: UInt32) {
        self.identity = identity
        self.registrationID = registrationID
    }

    // MARK: IdentityKeyStore

    /// This device's identity.
    public func identityKeyPair() -> IdentityKeyPair { identity }
    /// This device's registration id.
    public func localRegistrationID() -> UInt32 { registrationID }

    /// Records `identity` for `address`; `true` if it replaced a different key.
    @discardableResult
    public func saveIdentity(_ identity: IdentityKey, for address: ProtocolAddress) -> Bool {
        identities.withLock { map in
            let previous = map.updateValue(identity, forKey: address)
            return previous != nil && previous != identity
        }
    }

    /// Trust on first use: unknown addresses are trusted, known ones only with the same key.
    public func isTrustedIdentity(_ identity: IdentityKey, for address: ProtocolAddress, direction: IdentityDirection) -> Bool {
        identities.withLock { map in map[address].map { $0 == identity } ?? true }
    }

    /// The key recorded for `address`.
    public func identity(for address: ProtocolAddress) -> IdentityKey? {
        identities.withLock { $0[address] }
    }

    // MARK: PreKeyStore

    /// The one-time prekey `id`, if still held.
    public func loadPreKey(id: UInt32) -> PreKeyRecord? { preKeys.withLock { $0[id] } }
    /// Adds a one-time prekey.
    public func storePreKey(_ record: PreKeyRecord) { preKeys.withLock { $0[record.id] = record } }
    /// Deletes a one-time prekey (the protocol does this after use).
    public func removePreKey(id: UInt32) { _ = preKeys.withLock { $0.removeValue(forKey: id) } }
    /// The ids of the one-time prekeys still held.
    public var preKeyIDs: Set<UInt32> { preKeys.withLock { Set($0.keys) } }

    // MARK: SignedPreKeyStore

    /// The signed prekey `id`.
    public func loadSignedPreKey(id: UInt32) -> SignedPreKeyRecord? { signedPreKeys.withLock { $0[id] } }
    /// Adds a signed prekey.
    public func storeSignedPreKey(_ record: SignedPreKeyRecord) { signedPreKeys.withLock { $0[record.id] = record } }
    /// Removes a rotated-away signed prekey.
    public func removeSignedPreKey(id: UInt32) { _ = signedPreKeys.withLock { $0.removeValue(forKey: id) } }

    // MARK: SessionStore

    /// The session record of `address`.
    public func loadSession(for address: ProtocolAddress) -> SessionRecord? { sessions.withLock { $0[address]?.record } }
    /// Replaces the session record of `address`.
    public func storeSession(_ record: SessionRecord, for address: ProtocolAddress) {
        sessions.withLock { map in
            if let box = map[address] { box.record = record } else { map[address] = SessionBox(record) }
        }
    }
    /// Deletes the session with `address` (the next message to it needs a new bundle).
    public func deleteSession(for address: ProtocolAddress) { _ = sessions.withLock { $0.removeValue(forKey: address) } }

    /// Runs `body` on the record of `address` in place, under the sessions lock: no copy of
    /// the record is made, and concurrent operations on the store wait. If `body` throws,
    /// the record must be as it was (the protocol guarantees this for its own closures).
    public func updateSession<R, E: Error>(
        for address: ProtocolAddress, _ body: (inout SessionRecord?) throws(E) -> R
    ) throws(E) -> R {
        try sessions.withLock { (map: inout [ProtocolAddress: SessionBox]) throws(E) -> R in
            if let box = map[address] { return try body(&box.record) }
            var record: SessionRecord?
            let result = try body(&record)
            if record != nil { map[address] = SessionBox(record) }
            return result
        }
    }

    // MARK: SenderKeyStore

    /// The sender key record `name`.
    public func loadSenderKey(for name: SenderKeyName) -> SenderKeyRecord? { senderKeys.withLock { $0[name] } }
    /// Replaces the sender key record `name`.
    public func storeSenderKey(_ record: SenderKeyRecord, for name: SenderKeyName) { senderKeys.withLock { $0[name] = record } }
    /// Runs `body` on the record `name` under the sender keys lock (concurrent group
    /// operations on this store wait). If `body` throws, the record is as it was.
    public func updateSenderKey<R, E: Error>(
        for name: SenderKeyName, _ body: (inout SenderKeyRecord?) throws(E) -> R
    ) throws(E) -> R {
        try senderKeys.withLock { (map: inout [SenderKeyName: SenderKeyRecord]) throws(E) -> R in
            var record = map[name]
            let result = try body(&record)
            if let record { map[name] = record }
            return result
        }
    }

    // MARK: Snapshots

    /// Everything the store holds, in comparable form (session records serialized), for
    /// tests that prove an operation changed nothing.
    public struct Snapshot: Equatable, Sendable {
        /// Recorded identities by address.
        public let identities: [ProtocolAddress: IdentityKey]
        /// Ids of the one-time prekeys held.
        public let preKeyIDs: Set<UInt32>
        /// Ids of the signed prekeys held.
        public let signedPreKeyIDs: Set<UInt32>
        /// Serialized session records by address.
        public let sessions: [ProtocolAddress: SecureBytes]
        /// Serialized sender key records by name.
        public let senderKeys: [SenderKeyName: SecureBytes]
    }

    /// The current contents.
    public func snapshot() -> Snapshot {
        let sessions = sessions.withLock { $0.compactMapValues { $0.record?.serialized() } }
        return Snapshot(
            identities: identities.withLock { $0 }, preKeyIDs: preKeys.withLock { Set($0.keys) },
            signedPreKeyIDs: signedPreKeys.withLock { Set($0.keys) }, sessions: sessions,
            senderKeys: senderKeys.withLock { $0.mapValues { $0.serialized() } })
    }
}
