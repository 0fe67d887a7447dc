/// A Double Ratchet message of Signal's v3 wire format (libsignal's `SignalMessage`,
/// formerly `WhisperMessage`):
///
/// ```
/// 0x33 || protobuf { 1: ratchet key (33), 2: counter, 3: previous counter, 4: ciphertext }
///      || HMAC-SHA256(mac key, IK_sender(33) || IK_receiver(33) || everything before)[0..<8]
/// ```
///
/// Parsing checks structure only; the MAC is checked by ``SessionCipher`` with the session's
/// keys. Any byte string gives a message or a ``SignalProtocolError``, never a trap.
public struct SignalMessage: Sendable, Equatable {
    /// The message version (high nibble of the first byte): 3.
    public let version: UInt8
    /// Where the sender's 32-byte ratchet key lies in ``serialized`` (parsing keeps it in
    /// place: decrypting an in-order message allocates nothing but the plaintext).
    let ratchetKeyRange: Range<Int>
    /// The sender's current ratchet public key (Double Ratchet header `dh`).
    public var ratchetKey: Curve25519.KeyAgreement.PublicKey {
        try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: serialized[ratchetKeyRange])
    }
    /// The message's number in its sending chain (header `n`).
    public let counter: UInt32
    /// The length of the sender's previous sending chain (header `pn`; libsignal's
    /// `max(index − 1, 0)`, see `Docs/protocol.md`).
    public let previousCounter: UInt32
    /// Where the AES-256-CBC ciphertext lies in ``serialized``.
    let ciphertextRange: Range<Int>
    /// AES-256-CBC ciphertext of the plaintext.
    public var ciphertext: [UInt8] { Array(serialized[ciphertextRange]) }
    /// The complete serialized message, MAC included.
    public let serialized: [UInt8]

    /// The smallest length libsignal accepts is 10 bytes; anything up to 9 is malformed.
    static let minimumByteCount = 10

    /// Parses `bytes` (FORMAT §6.4): version checks, then the protobuf between the version
    /// byte and the 8-byte MAC, with fields 1, 2 and 4 required.
    public init(serialized bytes: some ContiguousByteBuffer) throws(SignalProtocolError) {
        try self.init(serialized: bytes.bytes)
    }

    /// Parses `bytes`, keeping the array itself (no copy) as ``serialized``.
    public init(serialized data: [UInt8]) throws(SignalProtocolError) {
        try self.init(serialized: data, maximumVersion: SignalConstants.messageVersion)
    }

    /// Parses a message of version 3 or, with `maximumVersion` 4, of a PQXDH session (HushPQ).
    @_spi(HushPQ) public init(serialized data: [UInt8], maximumVersion: UInt8) throws(SignalProtocolError) {
        guard data.count >= Self.minimumByteCount else { throw .malformed(.tooShort(data.count)) }
        // As libsignal: versions 0 and 1 are refused here; a version-2 message parses and is
        // refused by each session state ("Message version 2, but session version 3"), so it
        // reports `noSession` without a session and `legacyVersion` with one — and inside a
        // PreKeySignalMessage it is an inner/outer version mismatch.
        let version = data[0] >> 4
        guard version >= SignalConstants.messageVersion - 1 else { throw .legacyVersion(version) }
        guard version <= maximumVersion else { throw .invalidVersion(version) }
        var ratchetKey: Range<Int>?
        var counter: UInt32?
        var previousCounter: UInt32 = 0
        var ciphertext: Range<Int>?
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(SignalProtocolError) in
            let body = UnsafeRawBufferPointer(rebasing: raw[1..<(raw.count - SignalConstants.macByteCount)])
            var reader = ProtobufReader(body)
            while let (number, value) = try reader.next() {
                switch number {
                case 1:
                    let range = try Self.keyRange(body, value, field: 1)
                    ratchetKey = (range.lowerBound + 1)..<(range.upperBound + 1)
                case 2: counter = try value.uint32()
                case 3: previousCounter = try value.uint32()
                case 4:
                    let range = try value.byteRange()
                    ciphertext = (range.lowerBound + 1)..<(range.upperBound + 1)
                default: continue
                }
            }
        }
        guard let ratchetKey else { throw .malformed(.missingField(1)) }
        guard let counter else { throw .malformed(.missingField(2)) }
        guard let ciphertext else { throw .malformed(.missingField(4)) }
        self.version = version
        self.ratchetKeyRange = ratchetKey
        self.counter = counter
        self.previousCounter = previousCounter
        self.ciphertextRange = ciphertext
        self.serialized = data
    }

    /// Builds and MACs a message (FORMAT §6.3) in one allocation: the header is written,
    /// AES-256-CBC encrypts the plaintext straight into its place, and the MAC goes last.
    init(
        version: UInt8 = SignalConstants.messageVersion,
        ratchetKey: Curve25519.KeyAgreement.PublicKey, counter: UInt32, previousCounter: UInt32,
        plaintext: UnsafeRawBufferPointer, cipherKey: UnsafeRawBufferPointer, macKey: UnsafeRawBufferPointer,
        iv: UnsafeRawBufferPointer, sender: IdentityKey, receiver: IdentityKey
    ) throws(SignalProtocolError) {
        // Before any length is converted: a plaintext of 2 GiB or more is a typed error, not a trap.
        do { try AES.checkInputLength(plaintext.count) } catch { throw .crypto(error) }
        let bodyCount = (plaintext.count / AES.blockByteCount + 1) * AES.blockByteCount
        let header = 1 + 2 + 33 + 1 + ProtobufWriter.varintSize(UInt64(counter)) + 1 + ProtobufWriter.varintSize(UInt64(previousCounter))
            + 1 + ProtobufWriter.varintSize(UInt64(bodyCount))
        let total = header + bodyCount + SignalConstants.macByteCount
        var failure: CryptoError?
        // 16 bytes of slack: OpenSSL wants room for a whole extra block while encrypting.
        // The header is written through a pointer and a local offset (no nested functions
        // capturing mutable state, which would cost dynamic exclusivity checks per byte).
        let bytes = [UInt8](unsafeUninitializedCapacity: total + AES.blockByteCount) { buffer, initialized in
            let out = UnsafeMutableRawBufferPointer(buffer)
            let base = buffer.baseAddress!
            var offset = 0
            base[0] = (version << 4) | version
            base[1] = 0x0A; base[2] = 33; base[3] = Curve25519.signalKeyType
            ratchetKey.rawRepresentation.withUnsafeBytes { k in
                UnsafeMutableRawBufferPointer(rebasing: out[4..<36]).copyMemory(from: k)
            }
            offset = 36
            base[offset] = 0x10; offset = Self.writeVarint(UInt64(counter), base, offset + 1)
            base[offset] = 0x18; offset = Self.writeVarint(UInt64(previousCounter), base, offset + 1)
            // bodyCount as UInt64: no conversion that could trap (the length was checked above).
            base[offset] = 0x22; offset = Self.writeVarint(UInt64(bodyCount), base, offset + 1)
            do throws(CryptoError) {
                let written = try AES.CBC.encrypt256(plaintext, key: cipherKey, iv: iv, into: UnsafeMutableRawBufferPointer(rebasing: out[offset...]))
                precondition(written == bodyCount)
            } catch {
                out.initializeMemory(as: UInt8.self, repeating: 0)
                failure = error
            }
            offset += bodyCount
            Self.computeMAC(for: UnsafeRawBufferPointer(rebasing: out[0..<offset]), macKey: macKey, sender: sender, receiver: receiver,
                            into: UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + SignalConstants.macByteCount)]))
            // The slack block beyond `total` is not part of the array.
            initialized = total
        }
        if let failure { throw .crypto(failure) }
        self.version = version
        self.ratchetKeyRange = 4..<36
        self.counter = counter
        self.previousCounter = previousCounter
        self.ciphertextRange = header..<(header + bodyCount)
        self.serialized = bytes
    }

    /// Writes `value` as unsigned LEB128 at `offset`; returns the offset after it.
    @inline(__always)
    static func writeVarint(_ value: UInt64, _ base: UnsafeMutablePointer<UInt8>, _ offset: Int) -> Int {
        var v = value, o = offset
        while v >= 0x80 {
            base[o] = UInt8(truncatingIfNeeded: v) | 0x80
            v >>= 7
            o += 1
        }
        base[o] = UInt8(v)
        return o + 1
    }

    /// `true` when the last 8 bytes are the MAC of the rest under `macKey` (constant time).
    func hasValidMAC(macKey: UnsafeRawBufferPointer, sender: IdentityKey, receiver: IdentityKey) -> Bool {
        let split = serialized.count - SignalConstants.macByteCount
        return serialized.withUnsafeBytes { raw in
            withUnsafeTemporaryAllocation(byteCount: SignalConstants.macByteCount, alignment: 8) { expected in
                Self.computeMAC(for: UnsafeRawBufferPointer(rebasing: raw[0..<split]), macKey: macKey,
                                sender: sender, receiver: receiver, into: expected)
                return ConstantTime.equals(UnsafeRawBufferPointer(expected), UnsafeRawBufferPointer(rebasing: raw[split...]))
            }
        }
    }

    /// `HMAC-SHA256(macKey, IK_sender || IK_receiver || message)[0..<8]` into `out` (8 bytes),
    /// with the identities laid out in stack scratch.
    static func computeMAC(
        for message: UnsafeRawBufferPointer, macKey: UnsafeRawBufferPointer,
        sender: IdentityKey, receiver: IdentityKey, into out: UnsafeMutableRawBufferPointer
    ) {
        withUnsafeTemporaryAllocation(byteCount: 66 + HMACSHA256.byteCount, alignment: 16) { scratch in
            scratch[0] = Curve25519.signalKeyType
            sender.publicKey.rawRepresentation.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: scratch[1..<33]).copyMemory(from: $0) }
            scratch[33] = Curve25519.signalKeyType
            receiver.publicKey.rawRepresentation.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: scratch[34..<66]).copyMemory(from: $0) }
            let tag = UnsafeMutableRawBufferPointer(rebasing: scratch[66...])
            try! HMACSHA256.compute(into: tag, key: macKey, parts: UnsafeRawBufferPointer(rebasing: scratch[0..<66]), message)
            out.copyMemory(from: UnsafeRawBufferPointer(rebasing: tag[0..<SignalConstants.macByteCount]))
        }
    }

    /// Validates a 33-byte key field in place and returns the range of its 32 key bytes
    /// (relative to `body`).
    static func keyRange(_ body: UnsafeRawBufferPointer, _ value: ProtobufReader.Value, field: Int) throws(SignalProtocolError) -> Range<Int> {
        let range = try value.byteRange()
        guard range.count == Curve25519.signalKeyByteCount, body[range.lowerBound] == Curve25519.signalKeyType,
              Curve25519.KeyAgreement.PublicKey.isCanonical(UnsafeRawBufferPointer(rebasing: body[(range.lowerBound + 1)..<range.upperBound])) else {
            throw .malformed(.invalidKey(field: field))
        }
        return (range.lowerBound + 1)..<range.upperBound
    }

    static func decodeKey(_ body: UnsafeRawBufferPointer, _ value: ProtobufReader.Value, field: Int) throws(SignalProtocolError) -> Curve25519.KeyAgreement.PublicKey {
        let range = try value.byteRange()
        // Non-canonical encodings (top bit set, or u ≥ p) name the same X25519 key as a
        // canonical one; accepting them would let an attacker change unauthenticated key bytes
        // (a PreKeySignalMessage's base key) without changing the session's keys.
        guard let key = try? Curve25519.KeyAgreement.PublicKey(signalRepresentation: UnsafeRawBufferPointer(rebasing: body[range])),
              key.isCanonical else {
            throw .malformed(.invalidKey(field: field))
        }
        return key
    }
}

/// The first messages of a session initiated by this party (libsignal's
/// `PreKeySignalMessage`): a ``SignalMessage`` wrapped with what the receiver needs to run
/// X3DH (X3DH §3.3, "initial message"):
///
/// ```
/// 0x33 || protobuf { 1: one-time prekey id (absent without one), 2: base key EK_A (33),
///                    3: identity key IK_A (33), 4: SignalMessage, 5: registration id,
///                    6: signed prekey id }
/// ```
/// It has no MAC of its own: the inner message's MAC covers the identities, and the X3DH
/// keys bind the base key.
public struct PreKeySignalMessage: Sendable, Equatable {
    /// The message version: 3.
    public let version: UInt8
    /// The sender's registration id.
    public let registrationID: UInt32
    /// The receiver's one-time prekey the sender used, if any.
    public let preKeyID: UInt32?
    /// The receiver's signed prekey the sender used.
    public let signedPreKeyID: UInt32
    /// The sender's ephemeral X3DH key (`EK_A`).
    public let baseKey: Curve25519.KeyAgreement.PublicKey
    /// The sender's identity key.
    public let identityKey: IdentityKey
    /// The wrapped ratchet message.
    public let message: SignalMessage
    /// PQXDH (version 4) only: the receiver's Kyber prekey the sender encapsulated to.
    public let kyberPreKeyID: UInt32?
    /// PQXDH (version 4) only: the ML-KEM-1024 ciphertext, `0x08 || 1568 bytes`.
    public let kyberCiphertext: [UInt8]?
    /// The complete serialized message.
    public let serialized: [UInt8]

    /// Parses `bytes` (FORMAT §6.5 step 1).
    public init(serialized bytes: some ContiguousByteBuffer) throws(SignalProtocolError) {
        try self.init(serialized: bytes.bytes, maximumVersion: SignalConstants.messageVersion)
    }

    /// Parses a version-3 message or, with `maximumVersion` 4, a PQXDH one (HushPQ): fields 7
    /// (Kyber prekey id) and 8 (KEM ciphertext) are then required, and the inner message must
    /// be of version 4 too.
    @_spi(HushPQ) public init(serialized data: [UInt8], maximumVersion: UInt8) throws(SignalProtocolError) {
        guard data.count >= 2 else { throw .malformed(.tooShort(data.count)) }
        let version = data[0] >> 4
        guard version >= SignalConstants.messageVersion else { throw .legacyVersion(version) }
        guard version <= maximumVersion else { throw .invalidVersion(version) }
        var kyberPreKeyID: UInt32?
        var kyberCiphertext: Range<Int>?
        var preKeyID: UInt32?
        var signedPreKeyID: UInt32?
        var registrationID: UInt32 = 0
        var baseKey: Curve25519.KeyAgreement.PublicKey?
        var identityKey: Curve25519.KeyAgreement.PublicKey?
        var inner: Range<Int>?
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(SignalProtocolError) in
            let body = UnsafeRawBufferPointer(rebasing: raw[1...])
            var reader = ProtobufReader(body)
            while let (number, value) = try reader.next() {
                switch number {
                case 1: preKeyID = try value.uint32()
                case 2: baseKey = try SignalMessage.decodeKey(body, value, field: 2)
                case 3: identityKey = try SignalMessage.decodeKey(body, value, field: 3)
                case 4: inner = try value.byteRange()
                case 5: registrationID = try value.uint32()
                case 6: signedPreKeyID = try value.uint32()
                case 7 where version == SignalConstants.postQuantumMessageVersion: kyberPreKeyID = try value.uint32()
                case 8 where version == SignalConstants.postQuantumMessageVersion:
                    let range = try value.byteRange()
                    kyberCiphertext = (range.lowerBound + 1)..<(range.upperBound + 1)
                default: continue
                }
            }
        }
        guard let signedPreKeyID else { throw .malformed(.missingField(6)) }
        guard let baseKey else { throw .malformed(.missingField(2)) }
        guard let identityKey else { throw .malformed(.missingField(3)) }
        guard let inner else { throw .malformed(.missingField(4)) }
        // `inner` is relative to the protobuf body, which starts at byte 1.
        if version == SignalConstants.postQuantumMessageVersion {
            guard kyberPreKeyID != nil else { throw .malformed(.missingField(7)) }
            guard let kyberCiphertext else { throw .malformed(.missingField(8)) }
            guard kyberCiphertext.count == SignalConstants.kyberCiphertextByteCount,
                  data[kyberCiphertext.lowerBound] == SignalConstants.kyberKeyType else { throw .malformed(.invalidKey(field: 8)) }
        }
        let message = try SignalMessage(serialized: Array(data[(inner.lowerBound + 1)..<(inner.upperBound + 1)]), maximumVersion: maximumVersion)
        guard message.version == version else { throw .invalidVersion(message.version) }
        self.kyberPreKeyID = kyberPreKeyID
        self.kyberCiphertext = kyberCiphertext.map { Array(data[$0]) }
        self.version = version
        self.registrationID = registrationID
        self.preKeyID = preKeyID
        self.signedPreKeyID = signedPreKeyID
        self.baseKey = baseKey
        self.identityKey = IdentityKey(publicKey: identityKey)
        self.message = message
        self.serialized = data
    }

    /// Wraps `message` (FORMAT §6.3).
    init(
        registrationID: UInt32, preKeyID: UInt32?, signedPreKeyID: UInt32,
        baseKey: Curve25519.KeyAgreement.PublicKey, identityKey: IdentityKey, message: SignalMessage,
        kyberPreKeyID: UInt32? = nil, kyberCiphertext: [UInt8]? = nil
    ) {
        let version = message.version
        var writer = ProtobufWriter(capacity: 1 + 6 + 35 + 35 + 3 + message.serialized.count + 6 + 6
                                        + (kyberCiphertext.map { 6 + 3 + $0.count } ?? 0),
                                    prefix: (version << 4) | version)
        if let preKeyID { writer.appendField(1, uint32: preKeyID) }
        writer.appendField(2, bytes: baseKey.signalRepresentation)
        writer.appendField(3, bytes: identityKey.serialized)
        writer.appendField(4, bytes: message.serialized)
        writer.appendField(5, uint32: registrationID)
        writer.appendField(6, uint32: signedPreKeyID)
        if let kyberPreKeyID, let kyberCiphertext {
            writer.appendField(7, uint32: kyberPreKeyID)
            writer.appendField(8, bytes: kyberCiphertext)
        }
        self.kyberPreKeyID = kyberPreKeyID
        self.kyberCiphertext = kyberCiphertext
        self.version = version
        self.registrationID = registrationID
        self.preKeyID = preKeyID
        self.signedPreKeyID = signedPreKeyID
        self.baseKey = baseKey
        self.identityKey = identityKey
        self.message = message
        self.serialized = writer.bytes
    }
}

/// What ``SessionCipher/encrypt(_:for:store:)`` produces: a ``PreKeySignalMessage`` until the peer has
/// answered, then ``SignalMessage``s. The transport must carry the type with the bytes.
public enum CiphertextMessage: Sendable, Equatable {
    /// A message of an established session.
    case signal(SignalMessage)
    /// A message that can also start the session on the receiver (X3DH).
    case preKeySignal(PreKeySignalMessage)
    /// A hush-1 message of an established session.
    case hush(HushMessage)
    /// A hush-1 message that can also start the session on the receiver.
    case hushPreKey(HushPreKeyMessage)

    /// The kinds of message, with libsignal's numbers.
    public enum Kind: Int, Sendable, Equatable {
        /// ``SignalMessage`` (libsignal `CIPHERTEXT_SIGNAL_TYPE`).
        case signal = 2
        /// ``PreKeySignalMessage`` (libsignal `CIPHERTEXT_PREKEY_TYPE`).
        case preKeySignal = 3
        /// ``HushMessage`` (its first byte).
        case hush = 0x11
        /// ``HushPreKeyMessage`` (its first byte).
        case hushPreKey = 0x12

        /// The suite of messages of this kind.
        public var suite: CipherSuite { self == .signal || self == .preKeySignal ? .signalV3 : .hush1 }
    }

    /// Parses `bytes` as a message of `kind`, keeping the array (no copy).
    public init(kind: Kind, serialized bytes: [UInt8]) throws(SignalProtocolError) {
        switch kind {
        case .signal: self = .signal(try SignalMessage(serialized: bytes))
        case .preKeySignal: self = .preKeySignal(try PreKeySignalMessage(serialized: bytes))
        case .hush: self = .hush(try HushMessage(serialized: bytes))
        case .hushPreKey: self = .hushPreKey(try HushPreKeyMessage(serialized: bytes))
        }
    }

    /// Parses `bytes` as a message of `kind`.
    public init(kind: Kind, serialized bytes: some ContiguousByteBuffer) throws(SignalProtocolError) {
        switch kind {
        case .signal: self = .signal(try SignalMessage(serialized: bytes))
        case .preKeySignal: self = .preKeySignal(try PreKeySignalMessage(serialized: bytes))
        case .hush: self = .hush(try HushMessage(serialized: bytes))
        case .hushPreKey: self = .hushPreKey(try HushPreKeyMessage(serialized: bytes))
        }
    }

    /// The message's kind.
    public var kind: Kind {
        switch self {
        case .signal: .signal
        case .preKeySignal: .preKeySignal
        case .hush: .hush
        case .hushPreKey: .hushPreKey
        }
    }

    /// The bytes to send.
    public var serialized: [UInt8] {
        switch self {
        case .signal(let m): m.serialized
        case .preKeySignal(let m): m.serialized
        case .hush(let m): m.serialized
        case .hushPreKey(let m): m.serialized
        }
    }
}
