/// A message of the hush-1 suite (`Docs/spec/hush-1.md` §4):
///
/// ```
/// 0x11 || ratchet key (32) || varint(counter) || varint(previous counter) || ciphertext || tag (16)
/// ```
/// encrypted with XChaCha20-Poly1305 under associated data
/// `"hush-1/message" || IK_sender (32) || IK_receiver (32) || every byte before the ciphertext`
/// — which, for a message wrapped in a ``HushPreKeyMessage``, includes the whole prekey header.
/// Nothing in a hush-1 message is unauthenticated.
public struct HushMessage: Sendable, Equatable {
    /// Where the sender's ratchet key lies in ``serialized``.
    let ratchetKeyRange: Range<Int>
    /// The sender's current ratchet public key.
    public var ratchetKey: Curve25519.KeyAgreement.PublicKey {
        try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: serialized[ratchetKeyRange])
    }
    /// The message's number in its sending chain.
    public let counter: UInt32
    /// The length of the sender's previous sending chain (`max(index − 1, 0)`, as in v3).
    public let previousCounter: UInt32
    /// The complete serialized bytes: this message, or the prekey message that wraps it.
    public let serialized: [UInt8]
    /// Where this message starts in ``serialized`` (after a prekey header, if wrapped).
    let messageStart: Int
    /// Where the ciphertext starts: everything before it is associated data.
    let ciphertextStart: Int

    /// The smallest hush-1 message: type, key, two one-byte varints, an empty ciphertext's tag.
    static let minimumByteCount = 1 + 32 + 1 + 1 + HushSuiteConstants.tagByteCount

    /// Parses a standalone message.
    public init(serialized bytes: some ContiguousByteBuffer) throws(SignalProtocolError) {
        try self.init(serialized: bytes.bytes)
    }

    /// Parses a standalone message, keeping the array (no copy).
    public init(serialized data: [UInt8]) throws(SignalProtocolError) {
        try self.init(data, start: 0)
    }

    init(_ data: [UInt8], start: Int) throws(SignalProtocolError) {
        var r = WireReader(data, offset: start)
        try HushWire.checkType(try r.byte(), expected: HushSuiteConstants.messageType)
        guard data.count - start >= Self.minimumByteCount else { throw .malformed(.tooShort(data.count - start)) }
        ratchetKeyRange = try r.keyRange(field: 1)
        counter = try r.varint()
        previousCounter = try r.varint()
        guard data.count - r.offset >= HushSuiteConstants.tagByteCount else { throw .malformed(.tooShort(data.count - start)) }
        serialized = data
        messageStart = start
        ciphertextStart = r.offset
    }

    /// Builds a message, or a prekey message when `preKeyHeader` (its bytes up to the inner
    /// message) is given, in one allocation: the header, then XChaCha20-Poly1305 straight
    /// into place with every preceding byte as associated data.
    init(
        ratchetKey: Curve25519.KeyAgreement.PublicKey, counter: UInt32, previousCounter: UInt32,
        plaintext: UnsafeRawBufferPointer, material: UnsafeRawBufferPointer,
        sender: IdentityKey, receiver: IdentityKey, preKeyHeader: [UInt8] = []
    ) {
        let headerCount = preKeyHeader.count + 1 + 32 + WireWriter.varintSize(counter) + WireWriter.varintSize(previousCounter)
        let total = headerCount + plaintext.count + HushSuiteConstants.tagByteCount
        let bytes = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            var w = WireWriter(UnsafeMutableRawBufferPointer(buffer))
            w.put(preKeyHeader)
            w.put(HushSuiteConstants.messageType)
            w.put(ratchetKey)
            w.putVarint(counter)
            w.putVarint(previousCounter)
            HushWire.withAssociatedData(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<headerCount]),
                                        sender: sender, receiver: receiver) { ad in
                XChaChaPoly.encrypt(plaintext, key: UnsafeRawBufferPointer(rebasing: material[0..<32]),
                                    nonce: UnsafeRawBufferPointer(rebasing: material[32..<56]), associatedData: ad,
                                    into: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[headerCount..<total]))
            }
            initialized = total
        }
        self.ratchetKeyRange = (preKeyHeader.count + 1)..<(preKeyHeader.count + 33)
        self.counter = counter
        self.previousCounter = previousCounter
        self.serialized = bytes
        self.messageStart = preKeyHeader.count
        self.ciphertextStart = headerCount
    }
}

extension HushMessage: RatchetWireMessage {
    var suite: CipherSuite { .hush1 }

    func hasRatchetKey(_ key: Curve25519.KeyAgreement.PublicKey) -> Bool {
        RatchetKeyComparison.equals(key, serialized, at: ratchetKeyRange)
    }

    func versionError(forSessionVersion sessionVersion: UInt8) -> SignalProtocolError? { nil }

    func open(material: UnsafeRawBufferPointer, sender: IdentityKey, receiver: IdentityKey) throws(SignalProtocolError) -> [UInt8] {
        let start = ciphertextStart
        var failed = false
        let plaintext = serialized.withUnsafeBytes { raw in
            let body = UnsafeRawBufferPointer(rebasing: raw[start...])
            return [UInt8](unsafeUninitializedCapacity: body.count - HushSuiteConstants.tagByteCount) { buffer, initialized in
                HushWire.withAssociatedData(UnsafeRawBufferPointer(rebasing: raw[0..<start]), sender: sender, receiver: receiver) { ad in
                    do {
                        try XChaChaPoly.decrypt(body, key: UnsafeRawBufferPointer(rebasing: material[0..<32]),
                                                nonce: UnsafeRawBufferPointer(rebasing: material[32..<56]), associatedData: ad,
                                                into: UnsafeMutableRawBufferPointer(buffer))
                        initialized = buffer.count
                    } catch {
                        failed = true
                        initialized = 0
                    }
                }
            }
        }
        if failed { throw .badMAC }
        return plaintext
    }
}

/// The first messages of a hush-1 session initiated by this party (`Docs/spec/hush-1.md` §5):
///
/// ```
/// 0x12 || flags (bit 0: a one-time prekey id follows) || [varint(one-time prekey id)]
///      || varint(signed prekey id) || varint(registration id) || base key (32) || identity key (32)
///      || HushMessage
/// ```
/// Every header byte is associated data of the inner message's AEAD.
public struct HushPreKeyMessage: Sendable, Equatable {
    /// The receiver's one-time prekey the sender used, if any.
    public let preKeyID: UInt32?
    /// The receiver's signed prekey the sender used.
    public let signedPreKeyID: UInt32
    /// The sender's registration id.
    public let registrationID: UInt32
    /// The sender's ephemeral X3DH key (`EK_A`).
    public let baseKey: Curve25519.KeyAgreement.PublicKey
    /// The sender's identity key.
    public let identityKey: IdentityKey
    /// The wrapped message (sharing ``serialized``).
    public let message: HushMessage
    /// PQXDH only (flag bit 1): the receiver's Kyber prekey the sender encapsulated to.
    public let kyberPreKeyID: UInt32?
    /// PQXDH only (flag bit 1): the ML-KEM-1024 ciphertext (1,568 bytes).
    public let kyberCiphertext: [UInt8]?

    /// The complete serialized message.
    public var serialized: [UInt8] { message.serialized }

    /// Parses a prekey message.
    public init(serialized bytes: some ContiguousByteBuffer) throws(SignalProtocolError) {
        try self.init(serialized: bytes.bytes)
    }

    /// Parses a prekey message, keeping the array (no copy).
    public init(serialized data: [UInt8]) throws(SignalProtocolError) {
        try self.init(serialized: data, allowingPostQuantum: false)
    }

    /// Parses a prekey message; with `allowingPostQuantum` (HushPQ), also one with flag bit 1
    /// (`Docs/spec/pqxdh.md` §5.2): `varint(Kyber prekey id) || ciphertext (1568)` after the
    /// identity key.
    @_spi(HushPQ) public init(serialized data: [UInt8], allowingPostQuantum: Bool) throws(SignalProtocolError) {
        var r = WireReader(data, offset: 0)
        try HushWire.checkType(try r.byte(), expected: HushSuiteConstants.preKeyMessageType)
        let flags = try r.byte()
        guard flags & ~(allowingPostQuantum ? 3 : 1) == 0 else { throw .malformed(.invalidEncoding) }
        preKeyID = flags & 1 == 1 ? try r.varint() : nil
        signedPreKeyID = try r.varint()
        registrationID = try r.varint()
        baseKey = try r.publicKey(field: 2)
        identityKey = IdentityKey(publicKey: try r.publicKey(field: 3))
        if flags & 2 == 2 {
            kyberPreKeyID = try r.varint()
            guard data.count - r.offset >= HushSuiteConstants.kyberCiphertextByteCount else { throw .malformed(.tooShort(data.count)) }
            kyberCiphertext = Array(data[r.offset..<(r.offset + HushSuiteConstants.kyberCiphertextByteCount)])
            r.offset += HushSuiteConstants.kyberCiphertextByteCount
        } else {
            kyberPreKeyID = nil
            kyberCiphertext = nil
        }
        guard r.offset < data.count else { throw .malformed(.missingField(4)) }
        message = try HushMessage(data, start: r.offset)
    }

    /// The header bytes up to the inner message (FORMAT of `Docs/spec/hush-1.md` §5).
    static func header(
        preKeyID: UInt32?, signedPreKeyID: UInt32, registrationID: UInt32,
        baseKey: Curve25519.KeyAgreement.PublicKey, identityKey: IdentityKey,
        kyberPreKeyID: UInt32? = nil, kyberCiphertext: [UInt8]? = nil
    ) -> [UInt8] {
        let kem = kyberPreKeyID.flatMap { id in kyberCiphertext.map { (id, $0) } }
        let count = 2 + (preKeyID.map(WireWriter.varintSize) ?? 0) + WireWriter.varintSize(signedPreKeyID)
            + WireWriter.varintSize(registrationID) + 64 + (kem.map { WireWriter.varintSize($0.0) + $0.1.count } ?? 0)
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var w = WireWriter(UnsafeMutableRawBufferPointer(buffer))
            w.put(HushSuiteConstants.preKeyMessageType)
            w.put((preKeyID == nil ? 0 : 1) | (kem == nil ? 0 : 2))
            if let preKeyID { w.putVarint(preKeyID) }
            w.putVarint(signedPreKeyID)
            w.putVarint(registrationID)
            w.put(baseKey)
            w.put(identityKey.publicKey)
            if let kem {
                w.putVarint(kem.0)
                w.put(kem.1)
            }
            initialized = count
        }
    }

    init(preKeyID: UInt32?, signedPreKeyID: UInt32, registrationID: UInt32,
         baseKey: Curve25519.KeyAgreement.PublicKey, identityKey: IdentityKey, message: HushMessage,
         kyberPreKeyID: UInt32? = nil, kyberCiphertext: [UInt8]? = nil) {
        self.kyberPreKeyID = kyberPreKeyID
        self.kyberCiphertext = kyberCiphertext
        self.preKeyID = preKeyID
        self.signedPreKeyID = signedPreKeyID
        self.registrationID = registrationID
        self.baseKey = baseKey
        self.identityKey = identityKey
        self.message = message
    }
}

/// Shared pieces of the hush-1 wire format.
enum HushWire {
    /// Checks a first byte: high nibble = format (1), low nibble = message type.
    static func checkType(_ byte: UInt8, expected: UInt8) throws(SignalProtocolError) {
        if byte == expected { return }
        switch byte >> 4 {
        case SignalConstants.messageVersion: throw .suiteMismatch(expected: .hush1, received: .signalV3)
        case 1: throw .malformed(.unexpectedType(byte))
        default: throw .invalidVersion(byte >> 4)
        }
    }

    /// `"hush-1/message" || IK_sender || IK_receiver || header`, on the stack.
    static func withAssociatedData<R>(
        _ header: UnsafeRawBufferPointer, sender: IdentityKey, receiver: IdentityKey, _ body: (UnsafeRawBufferPointer) -> R
    ) -> R {
        let label = HushSuiteConstants.associatedDataLabel
        let count = label.count + 64 + header.count
        return withUnsafeTemporaryAllocation(byteCount: count, alignment: 8) { ad in
            var w = WireWriter(ad)
            w.put(label)
            w.put(sender.publicKey)
            w.put(receiver.publicKey)
            w.put(header)
            return body(UnsafeRawBufferPointer(ad))
        }
    }
}

/// A bounds-checked reader of hush wire formats.
struct WireReader {
    let data: [UInt8]
    var offset: Int

    init(_ data: [UInt8], offset: Int) {
        self.data = data
        self.offset = offset
    }

    mutating func byte() throws(SignalProtocolError) -> UInt8 {
        guard offset < data.count else { throw .malformed(.tooShort(data.count)) }
        defer { offset += 1 }
        return data[offset]
    }

    /// Canonical unsigned LEB128 of a 32-bit value (``LEB128/decodeCanonical32(_:)``).
    mutating func varint() throws(SignalProtocolError) -> UInt32 {
        let data = self.data
        var offset = self.offset
        defer { self.offset = offset }
        switch LEB128.decodeCanonical32({ () -> UInt8? in
            guard offset < data.count else { return nil }
            defer { offset += 1 }
            return data[offset]
        }) {
        case .value(let v): return v
        case .truncated: throw .malformed(.tooShort(data.count))
        case .invalid: throw .malformed(.invalidEncoding)
        }
    }

    /// The range of a raw 32-byte X25519 key in canonical encoding (validated in place).
    mutating func keyRange(field: Int) throws(SignalProtocolError) -> Range<Int> {
        guard data.count - offset >= 32 else { throw .malformed(.tooShort(data.count)) }
        let range = offset..<(offset + 32)
        let canonical = data.withUnsafeBytes { Curve25519.KeyAgreement.PublicKey.isCanonical(UnsafeRawBufferPointer(rebasing: $0[range])) }
        guard canonical else { throw .malformed(.invalidKey(field: field)) }
        offset += 32
        return range
    }

    /// A raw 32-byte X25519 key in canonical encoding.
    mutating func publicKey(field: Int) throws(SignalProtocolError) -> Curve25519.KeyAgreement.PublicKey {
        guard data.count - offset >= 32 else { throw .malformed(.tooShort(data.count)) }
        let key = try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: data[offset..<(offset + 32)])
        guard key.isCanonical else { throw .malformed(.invalidKey(field: field)) }
        offset += 32
        return key
    }
}

/// Writes hush wire formats into a buffer of exactly the right size.
struct WireWriter {
    let out: UnsafeMutableRawBufferPointer
    var offset = 0

    init(_ out: UnsafeMutableRawBufferPointer) { self.out = out }

    mutating func put(_ byte: UInt8) {
        out[offset] = byte
        offset += 1
    }

    mutating func put(_ bytes: UnsafeRawBufferPointer) {
        UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + bytes.count)]).copyMemory(from: bytes)
        offset += bytes.count
    }

    mutating func put(_ bytes: [UInt8]) { bytes.withUnsafeBytes { put($0) } }
    mutating func put(_ key: Curve25519.KeyAgreement.PublicKey) { put(key.rawRepresentation) }

    mutating func putVarint(_ value: UInt32) { LEB128.encode(UInt64(value)) { put($0) } }

    static func varintSize(_ value: UInt32) -> Int { LEB128.byteCount(UInt64(value)) }
}
