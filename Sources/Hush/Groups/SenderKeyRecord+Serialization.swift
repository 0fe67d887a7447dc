/// The binary form of ``SenderKeyRecord`` (format version 1), in the style of
/// ``SessionRecord/serialized()``:
///
/// ```
/// record  = "HSK" 0x01 u8(state count ≤ 5) state*
/// state   = varint(key id) bytes32(chain key) varint(iteration) key(signing public)
///           u8(0 | 1) [bytes32(signing private)] varint(skipped count ≤ 2000) skipped*
/// skipped = varint(iteration) bytes48(IV || cipher key)
/// ```
extension SenderKeyRecord {
    static let magic: [UInt8] = Array("HSK".utf8)
    static let formatVersion: UInt8 = 1

    /// The record's binary form, in wiped storage.
    public func serialized() -> SecureBytes { RecordWriter.serialize(encode(into:)) }

    /// Parses a record written by ``serialized()``; any other input gives a
    /// ``SessionRecordError``.
    public init(serialized bytes: some ContiguousByteBuffer) throws(SessionRecordError) {
        self = try bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(SessionRecordError) -> SenderKeyRecord in
            guard raw.count >= 4, Array(raw[0..<3]) == Self.magic else { throw .unsupportedFormat(version: nil) }
            guard raw[3] == Self.formatVersion else { throw .unsupportedFormat(version: raw[3]) }
            var r = RecordReader(raw)
            r.offset = 4
            let count = Int(try r.byte())
            guard count <= SignalConstants.maximumSenderKeyStates else {
                throw .limitExceeded(field: "sender key states", count: count, limit: SignalConstants.maximumSenderKeyStates)
            }
            var states: [SenderKeyState] = []
            for _ in 0..<count {
                let keyID = try r.varint()
                let chainKey = SenderChainKey(key: try r.secret(32), iteration: try r.varint())
                let signingPublic = try r.publicKey()
                var signingPrivate: Curve25519.KeyAgreement.PrivateKey?
                switch try r.byte() {
                case 0: break
                case 1:
                    guard let key = Curve25519.KeyAgreement.PrivateKey(storedScalar: try r.secret(32), publicKey: signingPublic) else {
                        throw .invalidValue(field: "signing private key")
                    }
                    signingPrivate = key
                default: throw .invalidValue(field: "signing private key flag")
                }
                let skippedCount = Int(clamping: try r.varint())  // no trap where Int is 32 bits
                guard skippedCount <= SignalConstants.maximumStoredMessageKeys else {
                    throw .limitExceeded(field: "skipped message keys", count: skippedCount, limit: SignalConstants.maximumStoredMessageKeys)
                }
                var skipped: [SenderMessageKey] = []
                skipped.reserveCapacity(skippedCount)
                for _ in 0..<skippedCount {
                    let iteration = try r.varint()
                    skipped.append(SenderMessageKey(material: try r.secret(48), iteration: iteration))
                }
                states.append(SenderKeyState(keyID: keyID, chainKey: chainKey, signingPublicKey: signingPublic,
                                             signingPrivateKey: signingPrivate, skippedKeys: skipped))
            }
            guard r.offset == raw.count else { throw .trailingBytes(raw.count - r.offset) }
            return SenderKeyRecord(states: states)
        }
    }

    private func encode(into w: inout RecordWriter) {
        w.write(Self.magic)
        w.write(Self.formatVersion)
        w.write(UInt8(states.count))
        for state in states {
            w.writeVarint(state.keyID)
            w.write(state.chainKey.key)
            w.writeVarint(state.chainKey.iteration)
            w.write(state.signingPublicKey)
            if let key = state.signingPrivateKey {
                w.write(UInt8(1))
                w.write(key.rawRepresentation)
            } else {
                w.write(UInt8(0))
            }
            w.writeVarint(UInt32(state.skippedKeys.count))
            for key in state.skippedKeys {
                w.writeVarint(key.iteration)
                w.write(key.material)
            }
        }
    }
}
