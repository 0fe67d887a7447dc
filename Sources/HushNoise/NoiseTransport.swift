import HushCrypto

/// The transport phase of a Noise session (§5: the pair of CipherStates that `Split()`
/// returns): one for the messages this side sends, one for those it receives. Made by
/// ``NoiseHandshake/split()``.
///
/// Each transport message is `ENCRYPT(k, n++, zerolen, plaintext)` (§5.1, §12.3): the
/// ciphertext followed by a 16-byte tag, at most 65,535 bytes in all (§3). Messages must be
/// decrypted in the order they were encrypted (the nonce is implicit). A failed decryption
/// changes nothing, so the next genuine message still decrypts (§5.1).
///
/// A value type: a copy is an independent session state, and encrypting with two copies reuses
/// nonces. Keep one, owned by one task (an actor or a connection handler).
public struct NoiseTransport: Sendable {
    var sending: CipherState
    var receiving: CipherState

    /// `h` at the end of the handshake (§5.2 `GetHandshakeHash()`): a value both sides share
    /// that identifies this session, for channel binding (§11.2).
    public private(set) var handshakeHash: [UInt8]

    /// The peer's static public key, as learned or given in the handshake; `nil` when the peer
    /// has none (the `NK` responder's view of its anonymous initiator).
    public private(set) var remoteStaticKey: Curve25519.KeyAgreement.PublicKey?

    init(sending: CipherState, receiving: CipherState, handshakeHash: [UInt8], remoteStaticKey: Curve25519.KeyAgreement.PublicKey?) {
        self.sending = sending
        self.receiving = receiving
        self.handshakeHash = handshakeHash
        self.remoteStaticKey = remoteStaticKey
    }

    /// The nonce of the next message to send: how many have been sent. Settable only inside the
    /// package (tests of nonce exhaustion).
    public package(set) var sendingNonce: UInt64 {
        get { sending.nonce }
        set { sending.nonce = newValue }
    }

    /// The nonce of the next message expected: how many have been received.
    public package(set) var receivingNonce: UInt64 {
        get { receiving.nonce }
        set { receiving.nonce = newValue }
    }

    // MARK: - Encrypt

    /// Encrypts one transport message: returns ciphertext ‖ tag (`plaintext` + 16 bytes). The
    /// returned array is the only allocation.
    ///
    /// - Throws: ``NoiseError/messageTooLarge(length:limit:)`` above
    ///   ``NoiseLimits/maxPlaintextLength``; ``NoiseError/nonceExhausted`` after 2^64-1 messages
    ///   (the session must end, §5).
    public mutating func encrypt(_ plaintext: some ContiguousByteBuffer) throws(NoiseError) -> [UInt8] {
        try plaintext.withUnsafeBytes { (p: UnsafeRawBufferPointer) throws(NoiseError) -> [UInt8] in
            try Self.checkPlaintext(p.count)
            return try [UInt8](unsafeUninitializedCapacity: p.count + NoiseLimits.tagLength) {
                (buffer: inout UnsafeMutableBufferPointer<UInt8>, count: inout Int) throws(NoiseError) in
                try sending.encrypt(ad: Self.noAD, plaintext: p, into: UnsafeMutableRawBufferPointer(buffer))
                count = buffer.count
            }
        }
    }

    /// Encrypts one transport message into `output`, which must not overlap `plaintext` and
    /// must hold at least `plaintext.count + 16` bytes; returns the bytes written
    /// (`plaintext.count + 16`). No allocation.
    ///
    /// - Throws: as ``encrypt(_:)``, and ``NoiseError/messageTooLarge(length:limit:)`` with the
    ///   space needed and the space given when `output` is too small.
    public mutating func encrypt(_ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(NoiseError) -> Int {
        try Self.checkPlaintext(plaintext.count)
        let length = plaintext.count + NoiseLimits.tagLength
        guard output.count >= length else { throw .messageTooLarge(length: length, limit: output.count) }
        try sending.encrypt(ad: Self.noAD, plaintext: plaintext, into: UnsafeMutableRawBufferPointer(rebasing: output[0..<length]))
        return length
    }

    /// Encrypts in place: the first `plaintextLength` bytes of `buffer` are the plaintext and
    /// become the ciphertext, followed by the tag; `buffer` must hold `plaintextLength + 16`
    /// bytes. Returns the message length (`plaintextLength + 16`). No allocation, no copy.
    ///
    /// - Throws: as ``encrypt(_:into:)``.
    public mutating func encryptInPlace(_ buffer: UnsafeMutableRawBufferPointer, plaintextLength: Int) throws(NoiseError) -> Int {
        precondition(plaintextLength >= 0 && plaintextLength <= buffer.count, "plaintextLength outside the buffer")
        try Self.checkPlaintext(plaintextLength)
        let length = plaintextLength + NoiseLimits.tagLength
        guard buffer.count >= length else { throw .messageTooLarge(length: length, limit: buffer.count) }
        let plaintext = UnsafeRawBufferPointer(rebasing: buffer[0..<plaintextLength])
        try sending.encrypt(ad: Self.noAD, plaintext: plaintext, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]))
        return length
    }

    // MARK: - Decrypt

    /// Decrypts one transport message (ciphertext ‖ tag) and returns the plaintext, the only
    /// allocation. On error nothing changes: the receiving nonce stays where it was.
    ///
    /// - Throws: ``NoiseError/messageTooLarge(length:limit:)`` above 65,535 bytes,
    ///   ``NoiseError/messageTooShort(length:minimum:)`` below the 16-byte tag,
    ///   ``NoiseError/decryptionFailed`` when the tag does not verify (forged, corrupted,
    ///   replayed or reordered), ``NoiseError/nonceExhausted`` after 2^64-1 messages.
    public mutating func decrypt(_ message: some ContiguousByteBuffer) throws(NoiseError) -> [UInt8] {
        try message.withUnsafeBytes { (m: UnsafeRawBufferPointer) throws(NoiseError) -> [UInt8] in
            try Self.checkMessage(m.count)
            return try [UInt8](unsafeUninitializedCapacity: m.count - NoiseLimits.tagLength) {
                (buffer: inout UnsafeMutableBufferPointer<UInt8>, count: inout Int) throws(NoiseError) in
                try receiving.decrypt(ad: Self.noAD, ciphertext: m, into: UnsafeMutableRawBufferPointer(buffer))
                count = buffer.count
            }
        }
    }

    /// Decrypts one transport message into `output` (at least `message.count - 16` bytes, not
    /// overlapping `message`); returns the plaintext length. No allocation. On error nothing
    /// changes and `output` holds zeros.
    ///
    /// - Throws: as ``decrypt(_:)``, and ``NoiseError/messageTooLarge(length:limit:)`` with the
    ///   space needed and the space given when `output` is too small.
    public mutating func decrypt(_ message: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(NoiseError) -> Int {
        try Self.checkMessage(message.count)
        let length = message.count - NoiseLimits.tagLength
        guard output.count >= length else { throw .messageTooLarge(length: length, limit: output.count) }
        try receiving.decrypt(ad: Self.noAD, ciphertext: message, into: UnsafeMutableRawBufferPointer(rebasing: output[0..<length]))
        return length
    }

    /// Decrypts in place: `buffer` holds the whole message; on success its first bytes are the
    /// plaintext, whose length is returned (`buffer.count - 16`). No allocation, no copy. On
    /// error the receiving nonce is unchanged and the plaintext region is zeroed.
    ///
    /// - Throws: as ``decrypt(_:)``.
    public mutating func decryptInPlace(_ buffer: UnsafeMutableRawBufferPointer) throws(NoiseError) -> Int {
        try Self.checkMessage(buffer.count)
        let length = buffer.count - NoiseLimits.tagLength
        try receiving.decrypt(ad: Self.noAD, ciphertext: UnsafeRawBufferPointer(buffer),
                              into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]))
        return length
    }

    // MARK: - Rekey

    /// `Rekey()` (§4.2, §11.3) of the sending CipherState: `k = REKEY(k)`, a one-way step, so
    /// that a later compromise of the key does not expose earlier messages. The nonce is not
    /// reset. The peer must call ``rekeyReceiving()`` at the same point of the message stream
    /// (when is the application's choice, §11.3).
    public mutating func rekeySending() {
        sending.rekey()
    }

    /// `Rekey()` (§4.2, §11.3) of the receiving CipherState; see ``rekeySending()``.
    public mutating func rekeyReceiving() {
        receiving.rekey()
    }

    // MARK: -

    /// Transport messages have zero-length associated data (§5).
    private static var noAD: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }

    private static func checkPlaintext(_ count: Int) throws(NoiseError) {
        guard count <= NoiseLimits.maxPlaintextLength else {
            throw .messageTooLarge(length: count, limit: NoiseLimits.maxPlaintextLength)
        }
    }

    private static func checkMessage(_ count: Int) throws(NoiseError) {
        guard count <= NoiseLimits.maxMessageLength else {
            throw .messageTooLarge(length: count, limit: NoiseLimits.maxMessageLength)
        }
        guard count >= NoiseLimits.tagLength else {
            throw .messageTooShort(length: count, minimum: NoiseLimits.tagLength)
        }
    }
}
