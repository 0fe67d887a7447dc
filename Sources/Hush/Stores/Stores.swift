/// Which way a message goes when an identity's trust is checked, for stores that trust
/// differently for sending and receiving.
public enum IdentityDirection: Sendable, Equatable {
    case sending
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
/// from it has decrypted its first message (X3DH §3.4: "Bob deletes the one-time prekey").
public protocol PreKeyStore: AnyObject, Sendable {
    func loadPreKey(id: UInt32) throws -> PreKeyRecord?
    func storePreKey(_ record: PreKeyRecord) throws
    func removePreKey(id: UInt32) throws
}

/// This device's signed prekeys (the current one and recently rotated ones).
public protocol SignedPreKeyStore: AnyObject, Sendable {
    func loadSignedPreKey(id: UInt32) throws -> SignedPreKeyRecord?
    func storeSignedPreKey(_ record: SignedPreKeyRecord) throws
}

/// Session records by address.
public protocol SessionStore: AnyObject, Sendable {
    func loadSession(for address: ProtocolAddress) throws -> SessionRecord?
    func storeSession(_ record: SessionRecord, for address: ProtocolAddress) throws
}

/// All the stores a pairwise session needs.
public typealias SignalProtocolStore = IdentityKeyStore & PreKeyStore & SignedPreKeyStore & SessionStore
