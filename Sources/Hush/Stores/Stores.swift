/// Which way a message goes when an identity's trust is checked, for stores that trust
/// differently for sending and receiving.
public enum IdentityDirection: Sendable, Equatable {
    /// Encrypting to, or starting a session with, the address.
    case sending
    /// Decrypting a message from the address.
    case receiving
}

/// This device's identity and the identities it has seen (X3DH §4.1: "parties should compare
/// identity public keys"; trust decisions are the app's).
///
/// The protocol asks ``isTrustedIdentity(_:for:direction:)`` before processing a bundle,
/// before decrypting a PreKeySignalMessage and before encrypting, and calls
/// ``saveIdentity(_:for:)`` after a session is built. The usual policy is trust on first use:
/// an unknown address is trusted, a known one only with the same key
/// (``InMemorySignalProtocolStore`` does that).
///
/// Stores may throw any error; Hush reports it as ``SignalProtocolError/storeFailure(operation:message:)``.
public protocol IdentityKeyStore: AnyObject, Sendable {
    /// This device's identity key pair.
    func identityKeyPair() throws -> IdentityKeyPair
    /// This device's registration id.
    func localRegistrationID() throws -> UInt32
    /// Records `identity` as the key of `address`. Returns `true` when it replaced a different key.
    @discardableResult
    func saveIdentity(_ identity: IdentityKey, for address: ProtocolAddress) throws -> Bool
    /// Whether `identity` may be used for `address`.
    func isTrustedIdentity(_ identity: IdentityKey, for address: ProtocolAddress, direction: IdentityDirection) throws -> Bool
    /// The key recorded for `address`, if any.
    func identity(for address: ProtocolAddress) throws -> IdentityKey?
}

/// This device's unused one-time prekeys. The protocol removes a prekey once a session built
/// from it has decrypted its first message (X3DH §3.4: "Bob deletes the one-time prekey"),
/// and stores it back if the session store then fails to keep that session.
public protocol PreKeyStore: AnyObject, Sendable {
    /// The one-time prekey `id`, or `nil` if it is not (or no longer) held.
    func loadPreKey(id: UInt32) throws -> PreKeyRecord?
    /// Stores a new one-time prekey.
    func storePreKey(_ record: PreKeyRecord) throws
    /// Deletes one-time prekey `id` (called after its first successful use).
    func removePreKey(id: UInt32) throws
}

/// This device's signed prekeys (the current one and recently rotated ones).
public protocol SignedPreKeyStore: AnyObject, Sendable {
    /// The signed prekey `id`, or `nil`.
    func loadSignedPreKey(id: UInt32) throws -> SignedPreKeyRecord?
    /// Stores a signed prekey.
    func storeSignedPreKey(_ record: SignedPreKeyRecord) throws
}

/// Session records by address.
public protocol SessionStore: AnyObject, Sendable {
    /// The session record of `address`, or `nil`.
    func loadSession(for address: ProtocolAddress) throws -> SessionRecord?
    /// Replaces the session record of `address` (called only after an operation succeeded).
    func storeSession(_ record: SessionRecord, for address: ProtocolAddress) throws
    /// Runs `body` on the record of `address` and keeps what it leaves, as one step.
    ///
    /// `SessionCipher` uses it for every message it decrypts or encrypts (PreKeySignalMessages
    /// included: X3DH, decryption and the commit of identity and one-time prekey run inside
    /// `body`). The default implementation loads, runs `body` on the copy and stores the
    /// result if `body` returns; it is not atomic. A store may run `body` under its own lock
    /// (per address, or one for all): `body` calls only the identity, prekey and signed prekey
    /// stores, never this store. A
    /// store that can hand out the record in place (``InMemorySignalProtocolStore``) saves
    /// the copies. When `body` throws, nothing may be stored.
    func updateSession<R, E: Error>(for address: ProtocolAddress, _ body: (inout SessionRecord?) throws(E) -> R) throws -> R
}

extension SessionStore {
/// Loads, runs `body` on the copy, stores the result if `body` returned (see the requirement).
    public func updateSession<R, E: Error>(for address: ProtocolAddress, _ body: (inout SessionRecord?) throws(E) -> R) throws -> R {
        var record = try loadSession(for: address)
        let result = try body(&record)
        if let record { try storeSession(record, for: address) }
        return result
    }
}

/// All the stores a pairwise session needs.
public typealias SignalProtocolStore = IdentityKeyStore & PreKeyStore & SignedPreKeyStore & SessionStore
