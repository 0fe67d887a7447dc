/// What a group member sends each other member (inside their pairwise sessions) so they can
/// read its group messages (FORMAT §8):
///
/// ```
/// 0x33 || protobuf { 1: key id, 2: iteration, 3: chain key (32), 4: signing public key (33) }
/// ```
/// It is neither signed nor MACed: its authenticity comes from the pairwise session that
/// carries it. It contains the chain key, so ``serialized`` is `SecureBytes`; never send it
/// any other way.
public struct SenderKeyDistributionMessage: Sendable {
    /// The sender key's id.
    public let keyID: UInt32
    /// The chain iteration the receiver starts from: it cannot read earlier messages.
    public let iteration: UInt32
    let chainKey: SecureBytes
    /// The public key that verifies the sender's group messages.
    public let signingKey: Curve25519.KeyAgreement.PublicKey
    /// The message bytes (secret: they contain the chain key).
    public let serialized: SecureBytes

    init(keyID: UInt32, iteration: UInt32, chainKey: SecureBytes, signingKey: Curve25519.KeyAgreement.PublicKey) {
        self.keyID = keyID
        self.iteration = iteration
        self.chainKey = chainKey
        self.signingKey = signingKey
        // Written straight into wiped storage: the message holds the chain key.
        let count = 1 + 1 + ProtobufWriter.varintSize(UInt64(keyID)) + 1 + ProtobufWriter.varintSize(UInt64(iteration))
            + 2 + 32 + 2 + 33
        serialized = SecureBytes(count: count) { out in
            var offset = 0
            func put(_ byte: UInt8) { out[offset] = byte; offset += 1 }
            func putVarint(_ value: UInt32) { LEB128.encode(UInt64(value), put) }
            put(SignalConstants.versionByte)
            put(0x08); putVarint(keyID)
            put(0x10); putVarint(iteration)
            put(0x1A); put(32)
            chainKey.withUnsafeBytes { ck in for b in ck { put(b) } }
            put(0x22); put(33)
            for b in signingKey.signalRepresentation { put(b) }
        }
    }

    /// Parses a distribution message.
    ///
    /// - Throws: ``SignalProtocolError/malformed(_:)``, ``SignalProtocolError/legacyVersion(_:)``,
    ///   ``SignalProtocolError/invalidVersion(_:)``.
    public init(serialized bytes: some ContiguousByteBuffer) throws(SignalProtocolError) {
        var keyID: UInt32?
        var iteration: UInt32?
        var chainKey: SecureBytes?
        var signingKey: Curve25519.KeyAgreement.PublicKey?
        try bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(SignalProtocolError) in
            guard raw.count >= 2 else { throw .malformed(.tooShort(raw.count)) }
            let version = raw[0] >> 4
            guard version >= SignalConstants.messageVersion else { throw .legacyVersion(version) }
            guard version == SignalConstants.messageVersion else { throw .invalidVersion(version) }
            let body = UnsafeRawBufferPointer(rebasing: raw[1...])
            var reader = ProtobufReader(body)
            while let (number, value) = try reader.next() {
                switch number {
                case 1: keyID = try value.uint32()
                case 2: iteration = try value.uint32()
                case 3:
                    let range = try value.byteRange()
                    guard range.count == 32 else { throw .malformed(.invalidEncoding) }
                    chainKey = SecureBytes(copying: UnsafeRawBufferPointer(rebasing: body[range]))
                case 4: signingKey = try SignalMessage.decodeKey(body, value, field: 4)
                default: continue
                }
            }
        }
        guard let keyID else { throw .malformed(.missingField(1)) }
        guard let iteration else { throw .malformed(.missingField(2)) }
        guard let chainKey else { throw .malformed(.missingField(3)) }
        guard let signingKey else { throw .malformed(.missingField(4)) }
        self.keyID = keyID
        self.iteration = iteration
        self.chainKey = chainKey
        self.signingKey = signingKey
        self.serialized = SecureBytes(copying: bytes)
    }
}

/// A group message (libsignal's `SenderKeyMessage`, FORMAT §8):
///
/// ```
/// m = 0x33 || protobuf { 1: key id, 2: iteration, 3: AES-256-CBC ciphertext }
/// SenderKeyMessage = m || XEdDSA signature of m by the sender's signing key (64)
/// ```
public struct SenderKeyMessage: Sendable, Equatable {
    /// The message version: 3.
    public let version: UInt8
    /// The id of the sender key that encrypted it.
    public let keyID: UInt32
    /// The message's position in the sender's chain.
    public let iteration: UInt32
    /// AES-256-CBC ciphertext of the plaintext.
    public let ciphertext: [UInt8]
    /// The complete message, signature included.
    public let serialized: [UInt8]

    /// Parses `bytes`; the signature is checked by ``GroupCipher`` with the sender's key.
    public init(serialized bytes: some ContiguousByteBuffer) throws(SignalProtocolError) {
        let data = bytes.bytes
        guard data.count > 1 + XEdDSA.signatureByteCount else { throw .malformed(.tooShort(data.count)) }
        let version = data[0] >> 4
        guard version >= SignalConstants.messageVersion else { throw .legacyVersion(version) }
        guard version == SignalConstants.messageVersion else { throw .invalidVersion(version) }
        var keyID: UInt32?
        var iteration: UInt32?
        var ciphertext: [UInt8]?
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(SignalProtocolError) in
            let body = UnsafeRawBufferPointer(rebasing: raw[1..<(raw.count - XEdDSA.signatureByteCount)])
            var reader = ProtobufReader(body)
            while let (number, value) = try reader.next() {
                switch number {
                case 1: keyID = try value.uint32()
                case 2: iteration = try value.uint32()
                case 3: ciphertext = Array(body[try value.byteRange()])
                default: continue
                }
            }
        }
        guard let keyID else { throw .malformed(.missingField(1)) }
        guard let iteration else { throw .malformed(.missingField(2)) }
        guard let ciphertext else { throw .malformed(.missingField(3)) }
        self.version = version
        self.keyID = keyID
        self.iteration = iteration
        self.ciphertext = ciphertext
        self.serialized = data
    }

    init(keyID: UInt32, iteration: UInt32, ciphertext: [UInt8], signingKey: Curve25519.KeyAgreement.PrivateKey,
         edwardsKey: XEdDSA.EdwardsKeyCache? = nil, random: some RandomSource) throws(SignalProtocolError) {
        var w = ProtobufWriter(capacity: 1 + 12 + 3 + ciphertext.count + XEdDSA.signatureByteCount, prefix: SignalConstants.versionByte)
        w.appendField(1, uint32: keyID)
        w.appendField(2, uint32: iteration)
        w.appendField(3, bytes: ciphertext)
        var bytes = w.bytes
        let signature = try SignalProtocolError.crypto { () throws(CryptoError) in
            try XEdDSA.signature(for: bytes, using: signingKey, edwardsPublicKey: edwardsKey?.edwardsPublicKey(of: signingKey) ?? XEdDSA.edwardsPublicKey(of: signingKey),
                                 variant: .libsignal, random: random)
        }
        bytes.append(contentsOf: signature)
        self.version = SignalConstants.messageVersion
        self.keyID = keyID
        self.iteration = iteration
        self.ciphertext = ciphertext
        self.serialized = bytes
    }

    /// Whether the trailing signature is valid for the rest under `key`.
    func hasValidSignature(by key: Curve25519.KeyAgreement.PublicKey) -> Bool {
        let split = serialized.count - XEdDSA.signatureByteCount
        return XEdDSA.isValidSignature(serialized[split...], for: serialized[..<split], publicKey: key, policy: .libsignalCompatible)
    }
}
