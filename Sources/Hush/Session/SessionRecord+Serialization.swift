/// Why bytes are not a session record Hush wrote.
public enum SessionRecordError: Error, Equatable, Hashable, Sendable {
    /// The input ended inside a value.
    case truncated
    /// The first bytes are not `HSR` followed by a format version Hush knows.
    case unsupportedFormat(version: UInt8?)
    /// A value is out of range or inconsistent (`field` names it).
    case invalidValue(field: String)
    /// A count exceeds the protocol limit that bounds it.
    case limitExceeded(field: String, count: Int, limit: Int)
    /// Bytes follow the record.
    case trailingBytes(Int)
}

/// The binary form of ``SessionRecord`` (format version 2; version 1, without the suite
/// byte, is read as Signal v3).
///
/// ```
/// record   = "HSR" 0x02 state(current) u8(archived count ≤ 40) state*
/// state    = u8(suite: 3 signal-v3, 1 hush-1) u8(session version: 3 X3DH, 4 PQXDH)
///            key(local identity) key(remote identity) varint(local reg id) varint(remote reg id)
///            key(Alice's base key) bytes32(root key)
///            bytes32(sending ratchet private) key(sending ratchet public)
///            bytes32(sending chain key) varint(sending index) varint(previous counter)
///            u8(receiver chain count ≤ 5) chain*
///            u8(pending: 0 none, 1 without one-time prekey, 2 with; 3 and 4 the same for PQXDH)
///            [varint(otk id)] varint(spk id) key(base key) [varint(Kyber prekey id) varint(n) bytesN(KEM ciphertext)]
/// chain    = key(ratchet key) bytes32(chain key) varint(index) varint(skipped count ≤ 2000) skipped*
/// skipped  = varint(counter) bytesN(message key material: N = 80 for v3, 56 for hush-1)
/// key      = 32 raw bytes of an X25519 public key;  varint = unsigned LEB128, ≤ 5 bytes, < 2^32
/// ```
/// The record holds private keys and chain keys, so ``serialized()`` returns ``SecureBytes``:
/// encrypt it at rest (for example with ``XChaChaPoly`` under a key from the platform keychain).
extension SessionRecord {
    static let magic: [UInt8] = Array("HSR".utf8)
    static let formatVersion: UInt8 = 2

    /// The record's binary form, in wiped storage.
    public func serialized() -> SecureBytes { RecordWriter.serialize(encode(into:)) }

    /// Parses a record written by ``serialized()``.
    ///
    /// - Throws: ``SessionRecordError`` for any input that is not such a record; it never traps.
    public init(serialized bytes: some ContiguousByteBuffer) throws(SessionRecordError) {
        self = try bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(SessionRecordError) -> SessionRecord in
            var reader = RecordReader(raw)
            guard raw.count >= 4 else { throw .unsupportedFormat(version: nil) }
            guard Array(raw[0..<3]) == Self.magic else { throw .unsupportedFormat(version: nil) }
            guard raw[3] == 1 || raw[3] == Self.formatVersion else { throw .unsupportedFormat(version: raw[3]) }
            let hasSuite = raw[3] >= 2
            reader.offset = 4
            let current = try SessionState.decode(&reader, hasSuite: hasSuite)
            let archivedCount = Int(try reader.byte())
            guard archivedCount <= SignalConstants.maximumArchivedStates else {
                throw .limitExceeded(field: "archived", count: archivedCount, limit: SignalConstants.maximumArchivedStates)
            }
            var archived: [SessionState] = []
            archived.reserveCapacity(archivedCount)
            for _ in 0..<archivedCount { archived.append(try SessionState.decode(&reader, hasSuite: hasSuite)) }
            guard reader.offset == raw.count else { throw .trailingBytes(raw.count - reader.offset) }
            return SessionRecord(current: current, archived: archived)
        }
    }

    private func encode(into writer: inout RecordWriter) {
        writer.write(Self.magic)
        writer.write(Self.formatVersion)
        current.encode(into: &writer)
        writer.write(UInt8(archived.count))
        for state in archived { state.encode(into: &writer) }
    }
}

extension SessionState {
    fileprivate func encode(into w: inout RecordWriter) {
        w.write(suite.rawValue)
        w.write(version)
        w.write(localIdentity.publicKey)
        w.write(remoteIdentity.publicKey)
        w.writeVarint(localRegistrationID)
        w.writeVarint(remoteRegistrationID)
        w.write(aliceBaseKey)
        w.write(rootKey.key)
        w.write(sendingRatchetKey.rawRepresentation)
        w.write(sendingRatchetKey.publicKey)
        w.write(sendingChainKey.key)
        w.writeVarint(sendingChainKey.index)
        w.writeVarint(previousCounter)
        w.write(UInt8(receiverChains.count))
        for chain in receiverChains {
            w.write(chain.ratchetKey)
            w.write(chain.chainKey.key)
            w.writeVarint(chain.chainKey.index)
            w.writeVarint(UInt32(chain.skippedKeys.count))
            chain.skippedKeys.forEach { counter, material in
                w.writeVarint(counter)
                w.write(material)
            }
        }
        if let pending = pendingPreKey {
            let pq: UInt8 = pending.kem == nil ? 0 : 2
            if let id = pending.preKeyID {
                w.write(UInt8(2) + pq)
                w.writeVarint(id)
            } else {
                w.write(UInt8(1) + pq)
            }
            w.writeVarint(pending.signedPreKeyID)
            w.write(pending.baseKey)
            if let kem = pending.kem {
                w.writeVarint(kem.kyberPreKeyID)
                w.writeVarint(UInt32(kem.ciphertext.count))
                w.write(kem.ciphertext)
            }
        } else {
            w.write(UInt8(0))
        }
    }

    fileprivate static func decode(_ r: inout RecordReader, hasSuite: Bool) throws(SessionRecordError) -> SessionState {
        var suite = CipherSuite.signalV3
        if hasSuite {
            guard let s = CipherSuite(rawValue: try r.byte()) else { throw .invalidValue(field: "suite") }
            suite = s
        }
        let version = try r.byte()
        guard version == SignalConstants.messageVersion || version == SignalConstants.postQuantumMessageVersion else {
            throw .invalidValue(field: "session version")
        }
        let localIdentity = IdentityKey(publicKey: try r.publicKey())
        let remoteIdentity = IdentityKey(publicKey: try r.publicKey())
        let localRegistrationID = try r.varint()
        let remoteRegistrationID = try r.varint()
        let aliceBaseKey = try r.publicKey()
        let rootKey = RootKey(key: try r.secret(32))
        let sendingScalar = try r.secret(32)
        let sendingPublic = try r.publicKey()
        guard let sendingRatchetKey = Curve25519.KeyAgreement.PrivateKey(storedScalar: sendingScalar, publicKey: sendingPublic) else {
            throw .invalidValue(field: "sending ratchet key")
        }
        let sendingChainKey = ChainKey(key: try r.secret(32), index: try r.varint())
        let previousCounter = try r.varint()
        let chainCount = Int(try r.byte())
        guard chainCount <= SignalConstants.maximumReceiverChains else {
            throw .limitExceeded(field: "receiver chains", count: chainCount, limit: SignalConstants.maximumReceiverChains)
        }
        var chains: [ReceiverChain] = []
        for _ in 0..<chainCount {
            let ratchetKey = try r.publicKey()
            let chainKey = ChainKey(key: try r.secret(32), index: try r.varint())
            let skippedCount = Int(clamping: try r.varint())  // no trap where Int is 32 bits
            guard skippedCount <= SignalConstants.maximumStoredMessageKeys else {
                throw .limitExceeded(field: "skipped message keys", count: skippedCount, limit: SignalConstants.maximumStoredMessageKeys)
            }
            // All of the chain's key material goes into one wiped buffer (SkippedMessageKeys):
            // the entries are located first, then copied in one pass.
            let size = suite.messageKeyMaterialByteCount
            var counters: [UInt32] = []
            counters.reserveCapacity(skippedCount)
            let start = r.offset
            for _ in 0..<skippedCount {
                counters.append(try r.varint())
                _ = try r.take(size)
            }
            let end = r.offset
            guard skippedCount > 0 else {
                chains.append(ReceiverChain(ratchetKey: ratchetKey, chainKey: chainKey, skippedKeys: SkippedMessageKeys(materialByteCount: size)))
                continue
            }
            var copy = r
            copy.offset = start
            let material = SecureBytes(count: skippedCount * size) { out in
                for i in 0..<skippedCount {
                    _ = try! copy.varint()  // already validated above
                    UnsafeMutableRawBufferPointer(rebasing: out[(i * size)..<((i + 1) * size)]).copyMemory(from: try! copy.take(size))
                }
            }
            precondition(copy.offset == end)
            let skipped = SkippedMessageKeys(materialByteCount: size, counters: counters, material: material)
            chains.append(ReceiverChain(ratchetKey: ratchetKey, chainKey: chainKey, skippedKeys: skipped))
        }
        var pending: PendingPreKey?
        let tag = try r.byte()
        switch tag {
        case 0: pending = nil
        case 1, 3: pending = PendingPreKey(preKeyID: nil, signedPreKeyID: try r.varint(), baseKey: try r.publicKey())
        case 2, 4:
            let id = try r.varint()
            pending = PendingPreKey(preKeyID: id, signedPreKeyID: try r.varint(), baseKey: try r.publicKey())
        default: throw .invalidValue(field: "pending prekey")
        }
        // A PQXDH header goes with a session of version 4, and only with one.
        guard (tag >= 3) == (version == SignalConstants.postQuantumMessageVersion) || tag == 0 else {
            throw .invalidValue(field: "pending prekey")
        }
        if tag >= 3 {
            let kyberID = try r.varint()
            let count = Int(try r.varint())
            let expected = suite == .signalV3 ? SignalConstants.kyberCiphertextByteCount : HushSuiteConstants.kyberCiphertextByteCount
            guard count == expected else {
                throw .invalidValue(field: "KEM ciphertext")
            }
            pending!.kem = PendingKEM(kyberPreKeyID: kyberID, ciphertext: Array(try r.take(count)))
        }
        return SessionState(
            suite: suite, version: version, localIdentity: localIdentity, remoteIdentity: remoteIdentity,
            localRegistrationID: localRegistrationID, remoteRegistrationID: remoteRegistrationID,
            aliceBaseKey: aliceBaseKey, rootKey: rootKey, sendingRatchetKey: sendingRatchetKey,
            sendingChainKey: sendingChainKey, previousCounter: previousCounter,
            receiverChains: chains, pendingPreKey: pending)
    }
}

/// Writes a record (session or sender key) into a buffer, or only counts its bytes when there is none.
struct RecordWriter {
    /// Runs `encode` twice: once to count the bytes, once to write them straight into wiped storage.
    static func serialize(_ encode: (inout RecordWriter) -> Void) -> SecureBytes {
        var counter = RecordWriter(output: nil)
        encode(&counter)
        return SecureBytes(count: counter.count) { out in
            var writer = RecordWriter(output: out)
            encode(&writer)
            precondition(writer.count == out.count)
        }
    }

    let output: UnsafeMutableRawBufferPointer?
    var count = 0

    mutating func write(_ byte: UInt8) {
        output?[count] = byte
        count += 1
    }

    mutating func write(_ bytes: UnsafeRawBufferPointer) {
        if let output { UnsafeMutableRawBufferPointer(rebasing: output[count..<(count + bytes.count)]).copyMemory(from: bytes) }
        count += bytes.count
    }

    mutating func write(_ bytes: [UInt8]) { bytes.withUnsafeBytes { write($0) } }
    mutating func write(_ secret: SecureBytes) { secret.withUnsafeBytes { write($0) } }
    mutating func write(_ key: Curve25519.KeyAgreement.PublicKey) { write(key.rawRepresentation) }

    mutating func writeVarint(_ value: UInt32) { LEB128.encode(UInt64(value)) { write($0) } }
}

/// Reads a record; every read is bounds-checked.
struct RecordReader {
    let input: UnsafeRawBufferPointer
    var offset = 0

    init(_ input: UnsafeRawBufferPointer) { self.input = input }

    mutating func byte() throws(SessionRecordError) -> UInt8 {
        guard offset < input.count else { throw .truncated }
        defer { offset += 1 }
        return input[offset]
    }

    mutating func take(_ count: Int) throws(SessionRecordError) -> UnsafeRawBufferPointer {
        guard input.count - offset >= count else { throw .truncated }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: input[offset..<(offset + count)])
    }

    mutating func secret(_ count: Int) throws(SessionRecordError) -> SecureBytes {
        SecureBytes(copying: try take(count))
    }

    mutating func publicKey() throws(SessionRecordError) -> Curve25519.KeyAgreement.PublicKey {
        let raw = try take(32)
        // 32 bytes are always a valid X25519 public key (RFC 7748).
        return try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw)
    }

    /// Canonical unsigned LEB128 of a 32-bit value (``LEB128/decodeCanonical32(_:)``).
    mutating func varint() throws(SessionRecordError) -> UInt32 {
        let input = self.input
        var offset = self.offset
        defer { self.offset = offset }
        switch LEB128.decodeCanonical32({ () -> UInt8? in
            guard offset < input.count else { return nil }
            defer { offset += 1 }
            return input[offset]
        }) {
        case .value(let v): return v
        case .truncated: throw .truncated
        case .invalid: throw .invalidValue(field: "varint")
        }
    }
}
