import HushCrypto

/// One side of a Noise handshake: the `HandshakeState` object of Noise revision 34, §5.3, for
/// `Noise_XX_25519_ChaChaPoly_SHA256`, `Noise_IK_…` and `Noise_NK_…`.
///
/// ```swift
/// var client = try NoiseHandshake(pattern: .ik, role: .initiator, localStatic: clientKey, remoteStatic: serverKey.publicKey)
/// var server = try NoiseHandshake(pattern: .ik, role: .responder, localStatic: serverKey)
/// let login = try server.readMessage(client.writeMessage(payload: Array("login".utf8)))
/// _ = try client.readMessage(server.writeMessage(payload: [UInt8]()))
/// var clientTransport = try client.split(), serverTransport = try server.split()
/// ```
///
/// The parties alternate, the initiator first (§7.1); ``isMyTurnToWrite`` says whose turn it is.
/// Handshake payloads are encrypted once a DH has happened; before that (the first message of
/// `XX`) they travel in the clear. Received public keys that are not canonically encoded or
/// have small order are rejected (``NoiseError/invalidPublicKey``), as is any DH whose output is
/// all zeros. Keys of mixed order are not (X25519's clamping ignores their small component); a
/// server that identifies peers by their static key checks it once, at registration, with
/// `Curve25519.KeyAgreement.PublicKey(validatingRawRepresentation:)` (Docs/noise.md).
///
/// A call that throws leaves the handshake as it was before the call, but a failed handshake
/// should be abandoned (§5: "the handshake has failed and the HandshakeState is deleted").
/// A value type: copies are independent; use one from one task at a time.
public struct NoiseHandshake: Sendable {
    let pattern: NoiseHandshakePattern
    let role: NoiseRole
    var symmetric: SymmetricState
    let localStatic: Curve25519.KeyAgreement.PrivateKey?
    var localEphemeral: Curve25519.KeyAgreement.PrivateKey?
    var remoteStatic: Curve25519.KeyAgreement.PublicKey?
    var remoteEphemeral: Curve25519.KeyAgreement.PublicKey?
    /// A fixed ephemeral key to use at the `e` token instead of a fresh one (test vectors).
    let presetEphemeral: Curve25519.KeyAgreement.PrivateKey?
    let random: any RandomSource
    /// The index of the next message pattern.
    var messageIndex = 0

    /// Starts a handshake: `Initialize()` of §5.3.
    ///
    /// - Parameters:
    ///   - pattern: the handshake pattern.
    ///   - role: initiator (writes first) or responder.
    ///   - prologue: data both parties must agree on (§6); a mismatch makes the first encrypted
    ///     message fail to decrypt.
    ///   - localStatic: this party's static key pair; required by `XX` (both roles), `IK` (both)
    ///     and the `NK` responder, ignored otherwise.
    ///   - remoteStatic: the responder's static public key, required by the `IK` and `NK`
    ///     initiator (the pre-message `<- s`); ignored by every other role and pattern, which
    ///     learn the peer's key, if at all, from the handshake (``remoteStaticKey``).
    ///   - random: the source of the ephemeral key, drawn when the `e` token is written. It must
    ///     not fail: ``SystemRandom`` never does, and a deterministic source that runs out stops
    ///     the process, as libsodium does when the system's entropy source fails.
    /// - Throws: ``NoiseError/missingLocalStaticKey``, ``NoiseError/missingRemoteStaticKey``, or
    ///   ``NoiseError/invalidPublicKey`` when `remoteStatic` is of small order or not canonical.
    public init(
        pattern: NoisePattern, role: NoiseRole, prologue: [UInt8] = [],
        localStatic: Curve25519.KeyAgreement.PrivateKey? = nil,
        remoteStatic: Curve25519.KeyAgreement.PublicKey? = nil,
        random: some RandomSource = SystemRandom()
    ) throws(NoiseError) {
        try self.init(definition: pattern.definition, role: role, prologue: prologue, localStatic: localStatic,
                      remoteStatic: remoteStatic, presetEphemeral: nil, random: random)
    }

    /// For test vectors only: a handshake whose ephemeral key is `localEphemeral` instead of a
    /// fresh one. Reusing an ephemeral key across handshakes destroys their security.
    public init(
        pattern: NoisePattern, role: NoiseRole, prologue: [UInt8] = [],
        localStatic: Curve25519.KeyAgreement.PrivateKey? = nil,
        remoteStatic: Curve25519.KeyAgreement.PublicKey? = nil,
        localEphemeral: Curve25519.KeyAgreement.PrivateKey
    ) throws(NoiseError) {
        try self.init(definition: pattern.definition, role: role, prologue: prologue, localStatic: localStatic,
                      remoteStatic: remoteStatic, presetEphemeral: localEphemeral, random: SystemRandom())
    }

    /// Any pattern of the engine (``NoiseHandshakePattern``): for tests of the other
    /// fundamental patterns against the cacophony vectors.
    init(
        definition: NoiseHandshakePattern, role: NoiseRole, prologue: [UInt8],
        localStatic: Curve25519.KeyAgreement.PrivateKey?, remoteStatic: Curve25519.KeyAgreement.PublicKey?,
        presetEphemeral: Curve25519.KeyAgreement.PrivateKey?, random: any RandomSource
    ) throws(NoiseError) {
        if definition.needsLocalStatic(role), localStatic == nil { throw .missingLocalStaticKey }
        let remoteUpFront = definition.needsRemoteStaticUpFront(role)
        if remoteUpFront {
            guard let remoteStatic else { throw .missingRemoteStaticKey }
            guard Self.isAcceptable(remoteStatic.rawRepresentation) else { throw .invalidPublicKey }
        }
        self.pattern = definition
        self.role = role
        self.localStatic = definition.needsLocalStatic(role) ? localStatic : nil
        self.remoteStatic = remoteUpFront ? remoteStatic : nil
        self.presetEphemeral = presetEphemeral
        self.random = random
        // InitializeSymmetric(protocol_name), MixHash(prologue).
        symmetric = SymmetricState(protocolName: definition.protocolName)
        prologue.withUnsafeBytes { symmetric.mixHash($0) }
        // Pre-message public keys, the initiator's first (§5.3, §7.1).
        for (owner, tokens) in [(NoiseRole.initiator, definition.initiatorPreMessage), (.responder, definition.responderPreMessage)] {
            for token in tokens {
                precondition(token == .s, "pre-messages of the supported patterns hold only s")
                let key = owner == role ? self.localStatic!.publicKey : self.remoteStatic!
                key.rawRepresentation.withUnsafeBytes { symmetric.mixHash($0) }
            }
        }
    }

    /// The protocol name (§8), e.g. `Noise_XX_25519_ChaChaPoly_SHA256`.
    public var protocolName: String { pattern.protocolName }

    /// Whether the next step is this party's ``writeMessage(payload:)`` (false once finished).
    public var isMyTurnToWrite: Bool {
        !isFinished && (messageIndex % 2 == 0) == (role == .initiator)
    }

    /// Whether every handshake message has been written or read; then call ``split()``.
    public var isFinished: Bool { messageIndex == pattern.messages.count }

    /// The peer's static public key, once received (`XX`, and the `IK` responder after the
    /// first message) or as given (the `IK` and `NK` initiator). `nil` for the `NK` responder,
    /// whose peer is anonymous.
    public var remoteStaticKey: Curve25519.KeyAgreement.PublicKey? { remoteStatic }

    /// `h` (§5.2), the hash of everything sent and received so far. After the last message it
    /// identifies the session: the channel binding value of §11.2.
    public var handshakeHash: [UInt8] { symmetric.hash }

    /// `WriteMessage(payload)` (§5.3): processes the next message pattern's tokens and appends
    /// the payload (encrypted once a key exists). Returns the message to send.
    ///
    /// - Throws: ``NoiseError/handshakeFinished``, ``NoiseError/outOfTurn``,
    ///   ``NoiseError/messageTooLarge(length:limit:)`` when the message would exceed 65,535
    ///   bytes (`length` is the payload's, `limit` the largest payload this message can carry),
    ///   ``NoiseError/invalidPublicKey`` when a DH with the peer's key gives all zeros.
    public mutating func writeMessage(payload: some ContiguousByteBuffer) throws(NoiseError) -> [UInt8] {
        try checkTurn(writing: true)
        var next = self
        let message = try payload.withUnsafeBytes { (p: UnsafeRawBufferPointer) throws(NoiseError) -> [UInt8] in
            try next.write(payload: p)
        }
        self = next
        return message
    }

    /// `ReadMessage(message)` (§5.3): processes the next message pattern's tokens from the
    /// received message and returns its decrypted payload.
    ///
    /// - Throws: ``NoiseError/handshakeFinished``, ``NoiseError/outOfTurn``,
    ///   ``NoiseError/messageTooLarge(length:limit:)`` above 65,535 bytes,
    ///   ``NoiseError/messageTooShort(length:minimum:)`` when shorter than the pattern's keys and
    ///   tags, ``NoiseError/invalidPublicKey`` for an unusable received key,
    ///   ``NoiseError/decryptionFailed`` when an encrypted key or payload does not verify. On
    ///   error the handshake is left as it was; abandon it.
    public mutating func readMessage(_ message: some ContiguousByteBuffer) throws(NoiseError) -> [UInt8] {
        try checkTurn(writing: false)
        var next = self
        let payload = try message.withUnsafeBytes { (m: UnsafeRawBufferPointer) throws(NoiseError) -> [UInt8] in
            try next.read(message: m)
        }
        self = next
        return payload
    }

    /// `Split()` (§5.2) after the last message: the transport phase for this side, sending with
    /// the initiator-to-responder CipherState if this side is the initiator, and with the other
    /// one if it is the responder.
    ///
    /// - Throws: ``NoiseError/handshakeNotFinished`` before the last message.
    public consuming func split() throws(NoiseError) -> NoiseTransport {
        guard isFinished else { throw .handshakeNotFinished }
        let (c1, c2) = symmetric.split()
        let (sending, receiving) = role == .initiator ? (c1, c2) : (c2, c1)
        return NoiseTransport(sending: sending, receiving: receiving, handshakeHash: symmetric.hash, remoteStaticKey: remoteStatic)
    }

    // MARK: - Processing

    private func checkTurn(writing: Bool) throws(NoiseError) {
        guard !isFinished else { throw .handshakeFinished }
        let initiatorsTurn = messageIndex % 2 == 0
        let myTurn = initiatorsTurn == (role == .initiator)
        guard myTurn == writing else { throw .outOfTurn }
    }

    /// The bytes the current message pattern adds around its payload: public keys, the tags of
    /// encrypted keys, and the payload's tag if a key exists by then. Mirrors the token
    /// processing below without doing it.
    private var currentOverhead: Int {
        var hasKey = symmetric.cipher.hasKey
        var length = 0
        for token in pattern.messages[messageIndex] {
            switch token {
            case .e: length += NoiseConstants.dhLength
            case .s: length += NoiseConstants.dhLength + (hasKey ? NoiseLimits.tagLength : 0)
            case .ee, .es, .se, .ss: hasKey = true
            }
        }
        return length + (hasKey ? NoiseLimits.tagLength : 0)
    }

    private mutating func write(payload: UnsafeRawBufferPointer) throws(NoiseError) -> [UInt8] {
        let overhead = currentOverhead
        let limit = NoiseLimits.maxMessageLength - overhead
        guard payload.count <= limit else { throw .messageTooLarge(length: payload.count, limit: limit) }
        let message = try [UInt8](unsafeUninitializedCapacity: overhead + payload.count) {
            (buffer: inout UnsafeMutableBufferPointer<UInt8>, initialized: inout Int) throws(NoiseError) in
            let out = UnsafeMutableRawBufferPointer(buffer)
            var offset = 0
            for token in pattern.messages[messageIndex] {
                switch token {
                case .e:
                    // §5.3 "e": e = GENERATE_KEYPAIR(); append e.public_key; MixHash(e.public_key).
                    let ephemeral = presetEphemeral ?? Self.generateKeyPair(using: random)
                    localEphemeral = ephemeral
                    let field = UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + NoiseConstants.dhLength)])
                    ephemeral.publicKey.rawRepresentation.withUnsafeBytes { field.copyMemory(from: $0) }
                    symmetric.mixHash(UnsafeRawBufferPointer(field))
                    offset += NoiseConstants.dhLength
                case .s:
                    // §5.3 "s": append EncryptAndHash(s.public_key).
                    guard let localStatic else { throw .missingLocalStaticKey }
                    let length = NoiseConstants.dhLength + symmetric.cipher.overhead
                    let field = UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + length)])
                    try localStatic.publicKey.rawRepresentation.withUnsafeBytes { (key: UnsafeRawBufferPointer) throws(NoiseError) in
                        try symmetric.encryptAndHash(key, into: field)
                    }
                    offset += length
                case .ee, .es, .se, .ss:
                    try mixDH(token)
                }
            }
            // §5.3: append EncryptAndHash(payload).
            try symmetric.encryptAndHash(payload, into: UnsafeMutableRawBufferPointer(rebasing: out[offset...]))
            initialized = buffer.count
        }
        messageIndex += 1
        return message
    }

    private mutating func read(message: UnsafeRawBufferPointer) throws(NoiseError) -> [UInt8] {
        guard message.count <= NoiseLimits.maxMessageLength else {
            throw .messageTooLarge(length: message.count, limit: NoiseLimits.maxMessageLength)
        }
        let minimum = currentOverhead
        guard message.count >= minimum else { throw .messageTooShort(length: message.count, minimum: minimum) }
        var offset = 0
        for token in pattern.messages[messageIndex] {
            switch token {
            case .e:
                // §5.3 "e": re = the next DHLEN bytes; MixHash(re.public_key).
                let field = UnsafeRawBufferPointer(rebasing: message[offset..<(offset + NoiseConstants.dhLength)])
                remoteEphemeral = try Self.publicKey(field)
                symmetric.mixHash(field)
                offset += NoiseConstants.dhLength
            case .s:
                // §5.3 "s": temp = the next DHLEN + 16 bytes if HasKey(), else DHLEN; rs = DecryptAndHash(temp).
                let length = NoiseConstants.dhLength + symmetric.cipher.overhead
                let field = UnsafeRawBufferPointer(rebasing: message[offset..<(offset + length)])
                remoteStatic = try withUnsafeTemporaryAllocation(byteCount: NoiseConstants.dhLength, alignment: 16) {
                    (key: UnsafeMutableRawBufferPointer) throws(NoiseError) -> Curve25519.KeyAgreement.PublicKey in
                    try symmetric.decryptAndHash(field, into: key)
                    return try Self.publicKey(UnsafeRawBufferPointer(key))
                }
                offset += length
            case .ee, .es, .se, .ss:
                try mixDH(token)
            }
        }
        // §5.3: DecryptAndHash() on the remaining bytes gives the payload.
        let ciphertext = UnsafeRawBufferPointer(rebasing: message[offset...])
        let payload = try [UInt8](unsafeUninitializedCapacity: ciphertext.count - symmetric.cipher.overhead) {
            (buffer: inout UnsafeMutableBufferPointer<UInt8>, initialized: inout Int) throws(NoiseError) in
            try symmetric.decryptAndHash(ciphertext, into: UnsafeMutableRawBufferPointer(buffer))
            initialized = buffer.count
        }
        messageIndex += 1
        return payload
    }

    /// The DH tokens of §5.3: `ee` = DH(e, re); `es` = DH(e, rs) for the initiator, DH(s, re)
    /// for the responder; `se` the mirror image; `ss` = DH(s, rs). Each is followed by MixKey.
    private mutating func mixDH(_ token: NoiseToken) throws(NoiseError) {
        let initiator = role == .initiator
        let (mine, theirs): (Curve25519.KeyAgreement.PrivateKey?, Curve25519.KeyAgreement.PublicKey?)
        switch token {
        case .ee: (mine, theirs) = (localEphemeral, remoteEphemeral)
        case .es: (mine, theirs) = initiator ? (localEphemeral, remoteStatic) : (localStatic, remoteEphemeral)
        case .se: (mine, theirs) = initiator ? (localStatic, remoteEphemeral) : (localEphemeral, remoteStatic)
        case .ss: (mine, theirs) = (localStatic, remoteStatic)
        case .e, .s: preconditionFailure("not a DH token")
        }
        // The supported patterns are valid (§7.3): both keys exist whenever a DH token comes.
        guard let mine else { throw .missingLocalStaticKey }
        guard let theirs else { throw .missingRemoteStaticKey }
        let shared: Curve25519.KeyAgreement.SharedSecret
        do {
            shared = try mine.sharedSecretFromKeyAgreement(with: theirs)
        } catch {
            // HushCrypto rejects an all-zero output (a small-order key, §12.1).
            throw .invalidPublicKey
        }
        shared.withUnsafeBytes { symmetric.mixKey($0) }
    }

    // MARK: - Keys

    /// GENERATE_KEYPAIR() of §12.1.
    static func generateKeyPair(using random: any RandomSource) -> Curve25519.KeyAgreement.PrivateKey {
        do {
            return try Curve25519.KeyAgreement.PrivateKey(using: random)
        } catch {
            fatalError("NoiseHandshake: the RandomSource failed to produce an ephemeral key (\(error))")
        }
    }

    /// A received public key, or ``NoiseError/invalidPublicKey`` if it is not canonical or of
    /// small order. Each X25519 public key has one canonical encoding; refusing the others means
    /// a static key names one peer by one byte string.
    static func publicKey(_ raw: UnsafeRawBufferPointer) throws(NoiseError) -> Curve25519.KeyAgreement.PublicKey {
        guard isAcceptable(raw) else { throw .invalidPublicKey }
        return try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw)
    }

    static func isAcceptable(_ raw: some ContiguousByteBuffer) -> Bool {
        raw.withUnsafeBytes { bytes in
            guard bytes.count == NoiseConstants.dhLength, Curve25519.KeyAgreement.PublicKey.isCanonical(bytes) else { return false }
            return !NoiseConstants.smallOrderPoints.contains { $0.elementsEqual(bytes) }
        }
    }
}
