/// How a session was set up.
public enum SessionEstablishment: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// X3DH (session version 3): no post-quantum protection of the first messages' keys.
    case x3dh
    /// PQXDH (session version 4, HushPQ): X3DH's DHs and an ML-KEM-1024 shared secret.
    case pqxdh

    public var description: String { self == .x3dh ? "X3DH" : "PQXDH" }
}

extension SessionRecord {
    /// How the current session state was set up (``SessionEstablishment``).
    public var establishment: SessionEstablishment { current.establishment }
}

/// What Bob's half of a prekey message needs from HushPQ (which owns ML-KEM and the Kyber
/// prekey store). Hush calls these inside the same ``SessionStore/updateSession(for:_:)`` as
/// the rest of the message, only when the message builds a new state.
@_spi(HushPQ) public struct PostQuantumReceiver: Sendable {
    /// Refuse a new state set up by X3DH (``SignalProtocolError/postQuantumRequired``).
    public var requirePostQuantum: Bool
    /// The KEM shared secret for a Kyber prekey id and ciphertext, or
    /// ``SignalProtocolError/unknownPreKey(_:)`` with ``PreKeyReference/kyber(_:)``.
    public var decapsulate: @Sendable (_ kyberPreKeyID: UInt32, _ ciphertext: [UInt8]) throws(SignalProtocolError) -> SecureBytes
    /// After the message decrypted: consume a one-time Kyber prekey (a last-resort one stays).
    public var markUsed: @Sendable (_ kyberPreKeyID: UInt32) throws(SignalProtocolError) -> Void
    /// The store's commit failed after ``markUsed``: put the one-time Kyber prekey back.
    public var restore: @Sendable (_ kyberPreKeyID: UInt32) -> Void

    public init(
        requirePostQuantum: Bool,
        decapsulate: @escaping @Sendable (UInt32, [UInt8]) throws(SignalProtocolError) -> SecureBytes,
        markUsed: @escaping @Sendable (UInt32) throws(SignalProtocolError) -> Void,
        restore: @escaping @Sendable (UInt32) -> Void
    ) {
        self.requirePostQuantum = requirePostQuantum
        self.decapsulate = decapsulate
        self.markUsed = markUsed
        self.restore = restore
    }
}

/// What Alice's half needs from HushPQ: the Kyber prekey id, the KEM ciphertext as it goes
/// on the wire of the suite, and the KEM shared secret.
@_spi(HushPQ) public struct PostQuantumInitiation: Sendable {
    public var kyberPreKeyID: UInt32
    public var wireCiphertext: [UInt8]
    public var sharedSecret: SecureBytes

    public init(kyberPreKeyID: UInt32, wireCiphertext: [UInt8], sharedSecret: SecureBytes) {
        self.kyberPreKeyID = kyberPreKeyID
        self.wireCiphertext = wireCiphertext
        self.sharedSecret = sharedSecret
    }
}

/// Alice's PQXDH steps, which Hush runs at their place in the bundle checks
/// (`Docs/spec/pqxdh.md` §4, libsignal's order): `verify` right after the signed prekey's
/// signature, `encapsulate` after every check passed and before the device's random draws.
@_spi(HushPQ) public struct PostQuantumInitiator {
    /// The Kyber prekey's signature by the bundle's identity key
    /// (``BundleProblem/badKyberPreKeySignature`` otherwise).
    public var verify: () throws(SignalProtocolError) -> Void
    /// `Encaps(ek)`: the KEM ciphertext and shared secret.
    public var encapsulate: () throws(SignalProtocolError) -> PostQuantumInitiation

    public init(verify: @escaping () throws(SignalProtocolError) -> Void,
                encapsulate: @escaping () throws(SignalProtocolError) -> PostQuantumInitiation) {
        self.verify = verify
        self.encapsulate = encapsulate
    }
}

extension SessionBuilder {
    /// ``process(_:for:sessionStore:identityStore:suite:random:)`` with PQXDH's KEM part:
    /// HushPQ's `verify` and `encapsulate` run inside the checks, in the order of
    /// `Docs/spec/pqxdh.md` §4.
    @_spi(HushPQ) public static func process(
        _ bundle: PreKeyBundle, for address: ProtocolAddress,
        sessionStore: some SessionStore, identityStore: some IdentityKeyStore,
        suite: CipherSuite, random: some RandomSource, postQuantum: PostQuantumInitiator?
    ) throws(SignalProtocolError) {
        try processBundle(bundle, for: address, sessionStore: sessionStore, identityStore: identityStore,
                          suite: suite, random: random, postQuantum: postQuantum)
    }
}

extension SessionCipher {
    /// Bob's half for a prekey message of either suite, with PQXDH (HushPQ).
    @_spi(HushPQ) public static func decrypt(
        _ message: CiphertextMessage, from address: ProtocolAddress,
        store: some SignalProtocolStore, random: some RandomSource, postQuantum: PostQuantumReceiver
    ) throws(SignalProtocolError) -> [UInt8] {
        switch message {
        case .signal(let m):
            return try decryptEstablished(m, from: address, sessionStore: store, random: random)
        case .hush(let m):
            return try decryptEstablished(m, from: address, sessionStore: store, random: random)
        case .preKeySignal(let m):
            return try decryptPreKey(m, from: address, sessionStore: store, identityStore: store, preKeyStore: store,
                                     signedPreKeyStore: store, random: random, postQuantum: postQuantum)
        case .hushPreKey(let m):
            return try decryptPreKey(m, from: address, sessionStore: store, identityStore: store, preKeyStore: store,
                                     signedPreKeyStore: store, random: random, postQuantum: postQuantum)
        }
    }
}

extension CiphertextMessage {
    /// Parses `bytes` as a message of `kind`, also in the PQXDH forms (version-4 Signal
    /// messages, hush-1 prekey messages with flag bit 1).
    @_spi(HushPQ) public init(postQuantumKind kind: Kind, serialized bytes: [UInt8]) throws(SignalProtocolError) {
        let v4 = SignalConstants.postQuantumMessageVersion
        switch kind {
        case .signal: self = .signal(try SignalMessage(serialized: bytes, maximumVersion: v4))
        case .preKeySignal: self = .preKeySignal(try PreKeySignalMessage(serialized: bytes, maximumVersion: v4))
        case .hush: self = .hush(try HushMessage(serialized: bytes))
        case .hushPreKey: self = .hushPreKey(try HushPreKeyMessage(serialized: bytes, allowingPostQuantum: true))
        }
    }
}
