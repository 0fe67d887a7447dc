import Synchronization

/// Every Signal store in memory, thread-safe (one lock), with trust on first use.
///
/// For tests, demos and apps that persist records themselves (``SessionRecord/serialized()``).
/// Nothing survives the process.
public final class InMemorySignalProtocolStore: SignalProtocolStore, SenderKeyStore {
    private struct Contents {
        var identities: [ProtocolAddress: IdentityKey] = [:]
        var preKeys: [UInt32: PreKeyRecord] = [:]
        var signedPreKeys: [UInt32: SignedPreKeyRecord] = [:]
        var sessions: [ProtocolAddress: SessionRecord] = [:]
        var senderKeys: [SenderKeyName: SenderKeyRecord] = [:]
    }

    private let identity: IdentityKeyPair
    private let registrationID: UInt32
    private let contents = Mutex(Contents())

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
        contents.withLock { c in
            let previous = c.identities.updateValue(identity, forKey: address)
            return previous != nil && previous != identity
        }
    }

    /// Trust on first use: unknown addresses are trusted, known ones only with the same key.
    public func isTrustedIdentity(_ identity: IdentityKey, for address: ProtocolAddress, direction: IdentityDirection) -> Bool {
        contents.withLock { c in c.identities[address].map { $0 == identity } ?? true }
    }

    /// The key recorded for `address`.
    public func identity(for address: ProtocolAddress) -> IdentityKey? {
        contents.withLock { $0.identities[address] }
    }

    // MARK: PreKeyStore

    /// The one-time prekey `id`, if still held.
    public func loadPreKey(id: UInt32) -> PreKeyRecord? { contents.withLock { $0.preKeys[id] } }
    /// Adds a one-time prekey.
    public func storePreKey(_ record: PreKeyRecord) { contents.withLock { $0.preKeys[record.id] = record } }
    /// Deletes a one-time prekey (the protocol does this after use).
    public func removePreKey(id: UInt32) { _ = contents.withLock { $0.preKeys.removeValue(forKey: id) } }
    /// The ids of the one-time prekeys still held.
    public var preKeyIDs: Set<UInt32> { contents.withLock { Set($0.preKeys.keys) } }

    // MARK: SignedPreKeyStore

    /// The signed prekey `id`.
    public func loadSignedPreKey(id: UInt32) -> SignedPreKeyRecord? { contents.withLock { $0.signedPreKeys[id] } }
    /// Adds a signed prekey.
    public func storeSignedPreKey(_ record: SignedPreKeyRecord) { contents.withLock { $0.signedPreKeys[record.id] = record } }
    /// Removes a rotated-away signed prekey.
    public func removeSignedPreKey(id: UInt32) { _ = contents.withLock { $0.signedPreKeys.removeValue(forKey: id) } }

    // MARK: SessionStore

    /// The session record of `address`.
    public func loadSession(for address: ProtocolAddress) -> SessionRecord? { contents.withLock { $0.sessions[address] } }
    /// Replaces the session record of `address`.
    public func storeSession(_ record: SessionRecord, for address: ProtocolAddress) { contents.withLock { $0.sessions[address] = record } }
    /// Deletes the session with `address` (the next message to it needs a new bundle).
    public func deleteSession(for address: ProtocolAddress) { _ = contents.withLock { $0.sessions.removeValue(forKey: address) } }

    // MARK: SenderKeyStore

    /// The sender key record `name`.
    public func loadSenderKey(for name: SenderKeyName) -> SenderKeyRecord? { contents.withLock { $0.senderKeys[name] } }
    /// Replaces the sender key record `name`.
    public func storeSenderKey(_ record: SenderKeyRecord, for name: SenderKeyName) { contents.withLock { $0.senderKeys[name] = record } }

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
        contents.withLock { c in
            Snapshot(
                identities: c.identities, preKeyIDs: Set(c.preKeys.keys), signedPreKeyIDs: Set(c.signedPreKeys.keys),
                sessions: c.sessions.mapValues { $0.serialized() },
                senderKeys: c.senderKeys.mapValues { $0.serialized() })
        }
    }
}
