/// Everything a Signal session operation can fail with.
///
/// Each case carries what the caller needs to act, never secret material, so an error may be
/// logged. Every failing operation leaves every store exactly as it was: after any of these a
/// later, genuine message still decrypts.
///
/// | case | typical cause | what the app does |
/// |---|---|---|
/// | ``malformed(_:)`` | not a message, truncated, bad key encoding | drop it |
/// | ``invalidVersion(_:)`` | sender speaks a newer protocol | drop, maybe tell the user |
/// | ``postQuantumRequired`` | an X3DH session offered to a receiver that requires PQXDH | drop; the sender must use PQXDH |
/// | ``legacyVersion(_:)`` | sender speaks v2 or older | drop |
/// | ``suiteMismatch(expected:received:)`` | a message of another suite than the session's | drop |
/// | ``badMAC`` | tampered, or no session state that matches | drop; if it persists, start a new session |
/// | ``duplicateMessage(counter:)`` | replay, or already-delivered message | drop silently |
/// | ``tooFarInFuture(counter:chainIndex:limit:)`` | more than ``SignalConstants/maximumSkippedMessages`` lost | drop; ask the sender to start over |
/// | ``chainExhausted(counter:)`` | a chain reached counter `UInt32.max` (2³² messages, or a forged distribution message) | start a new session, or rotate the sender key |
/// | ``noSession(_:)`` | no session with that address | ask the sender to fetch a bundle |
/// | ``untrustedIdentity(_:identity:)`` | the peer's identity key changed | show a safety-number change, then trust it (``IdentityKeyStore/saveIdentity(_:for:)``) and retry |
/// | ``unknownPreKey(_:)`` | the prekey was already used or rotated away | drop; the sender must fetch a new bundle |
/// | ``invalidBundle(_:)`` | a bundle whose signed prekey is missing or badly signed | do not start a session |
/// | ``noSenderKey(_:keyID:)`` | a group message before the sender's distribution message | ask the sender to resend it |
/// | ``badSignature`` | a group message not signed by the sender's key | drop it |
public enum SignalProtocolError: Error, Equatable, Hashable, Sendable {
    /// The bytes are not a well-formed message (FORMAT §6.4/§6.5 parsing rules).
    case malformed(MalformedMessage)
    /// The message's version (the high nibble of its first byte) is newer than 3.
    case invalidVersion(UInt8)
    /// A session set up with X3DH was refused because the receiver's policy requires PQXDH
    /// (HushPQ's `PostQuantumPolicy.requirePQXDH`).
    case postQuantumRequired
    /// The message's version is older than 3 (Signal's pre-2016 formats), which Hush refuses.
    case legacyVersion(UInt8)
    /// The message belongs to another cipher suite than the session (or the operation).
    case suiteMismatch(expected: CipherSuite, received: CipherSuite)
    /// The message's MAC does not verify with any of the sessions stored for the sender.
    case badMAC
    /// The message key for this counter was already used (and deleted): a replay or duplicate.
    case duplicateMessage(counter: UInt32)
    /// The counter is more than `limit` ahead of the receiving chain's index.
    case tooFarInFuture(counter: UInt32, chainIndex: UInt32, limit: UInt32)
    /// A chain's 32-bit counter would pass `UInt32.max`: a message (or a group iteration)
    /// numbered `UInt32.max` cannot be sent, received or distributed, since no chain key
    /// follows it. The session must be replaced (or the sender key rotated). Nothing changed.
    case chainExhausted(counter: UInt32)
    /// There is no session with this address.
    case noSession(ProtocolAddress)
    /// The address's identity key differs from the trusted one. `identity` is the new key; the
    /// app decides whether to trust it (after showing the user), then retries.
    case untrustedIdentity(ProtocolAddress, identity: IdentityKey)
    /// A PreKeySignalMessage names a prekey this device does not (or no longer) hold.
    case unknownPreKey(PreKeyReference)
    /// A prekey bundle cannot start a session.
    case invalidBundle(BundleProblem)
    /// No sender key for this (group, sender), or none with the message's key id: the sender's
    /// distribution message has not been processed (or was rotated away).
    case noSenderKey(SenderKeyName, keyID: UInt32?)
    /// A group message's signature does not verify with the sender's signing key.
    case badSignature
    /// The peer sent a key outside Curve25519's prime-order subgroup: a low-order point (an
    /// all-zero Diffie-Hellman result) or a key with a small-order component added
    /// ("torsioned"), as a new ratchet key or in a prekey bundle.
    case invalidRatchetKey
    /// A message authenticated correctly but its encrypted body is not valid AES-CBC-PKCS#7
    /// (a broken sender: the MAC rules out tampering). Nothing changed.
    case invalidCiphertext
    /// A store reported a failure. `operation` names the store call; the session state was not
    /// changed by Hush (a store failing half-way through a commit is the store's concern).
    case storeFailure(operation: String, message: String)
    /// A primitive failed, typically an exhausted deterministic `RandomSource`.
    case crypto(CryptoError)
}

/// Why bytes are not a message.
public enum MalformedMessage: Equatable, Hashable, Sendable {
    /// Shorter than the smallest possible message of its type.
    case tooShort(Int)
    /// The protobuf body does not parse (truncated field, bad varint, unsupported wire type).
    case invalidEncoding
    /// A required protobuf field is missing.
    case missingField(Int)
    /// A key field is not a 33-byte Curve25519 key with type byte 0x05.
    case invalidKey(field: Int)
    /// The first byte names a message type other than the one being parsed.
    case unexpectedType(UInt8)
    /// A PreKeySignalMessage's inner message has a different version from the outer one.
    case innerVersionMismatch(outer: UInt8, inner: UInt8)
}

/// A prekey by kind and id.
public enum PreKeyReference: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// A signed prekey id.
    case signed(UInt32)
    /// A one-time prekey id.
    case oneTime(UInt32)
    /// A Kyber (ML-KEM-1024) prekey id, one-time or last-resort (PQXDH).
    case kyber(UInt32)

    /// `signed prekey 1`, `one-time prekey 7`.
    public var description: String {
        switch self {
        case .signed(let id): "signed prekey \(id)"
        case .oneTime(let id): "one-time prekey \(id)"
        case .kyber(let id): "Kyber prekey \(id)"
        }
    }
}

/// Why a prekey bundle is rejected.
public enum BundleProblem: Equatable, Hashable, Sendable {
    /// The bundle carries no signed prekey (X3DH §3.3 requires one).
    case missingSignedPreKey
    /// The signed prekey's signature does not verify with the bundle's identity key.
    case badSignedPreKeySignature
    /// The policy requires PQXDH and the bundle has no Kyber prekey (a downgrade, or a peer
    /// without post-quantum support).
    case missingKyberPreKey
    /// The Kyber prekey's signature does not verify with the bundle's identity key, or its
    /// encoding is not an ML-KEM-1024 key.
    case badKyberPreKeySignature
}

extension SignalProtocolError {
    /// Wraps a store call, turning any error it throws into ``storeFailure(operation:message:)``.
    @inline(__always)
    static func store<T>(_ operation: String, _ body: () throws -> T) throws(SignalProtocolError) -> T {
        do { return try body() } catch let error as SignalProtocolError {
            throw error
        } catch {
            throw .storeFailure(operation: operation, message: String(describing: error))
        }
    }

    /// Wraps a primitive call.
    @inline(__always)
    static func crypto<T>(_ body: () throws(CryptoError) -> T) throws(SignalProtocolError) -> T {
        do { return try body() } catch { throw .crypto(error) }
    }
}
