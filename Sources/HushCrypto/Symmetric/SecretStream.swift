import CSodium

/// libsodium's secretstream (XChaCha20-Poly1305): a sequence of authenticated chunks under
/// one key, for payloads too large for one AEAD call (files, media). Chunks cannot be
/// reordered, dropped, duplicated or truncated without detection, provided the reader checks
/// for the ``Tag/final`` chunk (``Decryptor/isFinished``).
///
/// Not for: messages that must be decryptable independently of each other (use an AEAD).
public enum SecretStream {
    /// Key length in bytes.
    public static let keyByteCount = Int(crypto_secretstream_xchacha20poly1305_KEYBYTES)
    /// Header length in bytes; the header is sent once, before the first chunk.
    public static let headerByteCount = Int(crypto_secretstream_xchacha20poly1305_HEADERBYTES)
    /// Bytes each chunk adds to its plaintext.
    public static let chunkOverhead = Int(crypto_secretstream_xchacha20poly1305_ABYTES)

    /// The tag of a chunk.
    public enum Tag: UInt8, Sendable {
        /// An ordinary chunk.
        case message = 0
        /// End of a logical message inside the stream.
        case push = 1
        /// Derive a new key; earlier chunks can no longer be decrypted with the state.
        case rekey = 2
        /// The last chunk of the stream.
        case final = 3
    }

    /// Encrypts a stream. Not Sendable: use from one task at a time.
    public final class Encryptor {
        private let state: UnsafeMutablePointer<crypto_secretstream_xchacha20poly1305_state>
        /// The header to send before the first chunk.
        public let header: [UInt8]
        private var finished = false

        /// A new stream under `key` (32 bytes).
        public init(key: some ContiguousByteBuffer) throws(CryptoError) {
            Sodium.ensureInitialized()
            guard key.byteCount == SecretStream.keyByteCount else {
                throw .invalidKeySize(actual: key.byteCount, allowed: [SecretStream.keyByteCount])
            }
            let state = UnsafeMutablePointer<crypto_secretstream_xchacha20poly1305_state>.allocate(capacity: 1)
            self.state = state
            header = key.withUnsafeBytes { k in
                makeBytes(count: SecretStream.headerByteCount) { (h: UnsafeMutableRawBufferPointer) in
                    _ = crypto_secretstream_xchacha20poly1305_init_push(state, h.nonNullBase, k.nonNullBase)
                }
            }
        }

        deinit {
            sodium_memzero(state, MemoryLayout<crypto_secretstream_xchacha20poly1305_state>.size)
            state.deallocate()
        }

        /// Encrypts one chunk. After a ``Tag/final`` chunk the stream accepts no more.
        public func push(
            _ chunk: some ContiguousByteBuffer, tag: Tag = .message,
            associatedData: some ContiguousByteBuffer = [UInt8]()
        ) throws(CryptoError) -> [UInt8] {
            guard !finished else { throw .streamTruncated }
            if tag == .final { finished = true }
            return chunk.withUnsafeBytes { m in
                associatedData.withUnsafeBytes { ad in
                    makeBytes(count: m.count + SecretStream.chunkOverhead) { (c: UnsafeMutableRawBufferPointer) in
                        _ = crypto_secretstream_xchacha20poly1305_push(
                            state, c.nonNullBase, nil, m.nonNullBase, UInt64(m.count),
                            ad.nonNullBase, UInt64(ad.count), tag.rawValue)
                    }
                }
            }
        }
    }

    /// Decrypts a stream. Not Sendable: use from one task at a time.
    public final class Decryptor {
        private let state: UnsafeMutablePointer<crypto_secretstream_xchacha20poly1305_state>
        /// `true` once the ``Tag/final`` chunk has been read. A stream that ends while this is
        /// `false` was truncated.
        public private(set) var isFinished = false

        /// Starts decrypting the stream whose `header` was received, under `key`.
        public init(key: some ContiguousByteBuffer, header: some ContiguousByteBuffer) throws(CryptoError) {
            Sodium.ensureInitialized()
            guard key.byteCount == SecretStream.keyByteCount else {
                throw .invalidKeySize(actual: key.byteCount, allowed: [SecretStream.keyByteCount])
            }
            guard header.byteCount == SecretStream.headerByteCount else {
                throw .invalidNonceSize(actual: header.byteCount, expected: SecretStream.headerByteCount)
            }
            let state = UnsafeMutablePointer<crypto_secretstream_xchacha20poly1305_state>.allocate(capacity: 1)
            self.state = state
            let status = key.withUnsafeBytes { k in
                header.withUnsafeBytes { h in
                    crypto_secretstream_xchacha20poly1305_init_pull(state, h.nonNullBase, k.nonNullBase)
                }
            }
            guard status == 0 else { throw .authenticationFailure }
        }

        deinit {
            sodium_memzero(state, MemoryLayout<crypto_secretstream_xchacha20poly1305_state>.size)
            state.deallocate()
        }

        /// Verifies and decrypts the next chunk. A failed chunk leaves the state unchanged.
        ///
        /// - Throws: ``CryptoError/authenticationFailure`` for a forged, reordered or
        ///   foreign chunk; ``CryptoError/streamTruncated`` for a chunk after the final one;
        ///   ``CryptoError/invalidCiphertextLength(actual:)`` for one shorter than the overhead.
        public func pull(
            _ chunk: some ContiguousByteBuffer, associatedData: some ContiguousByteBuffer = [UInt8]()
        ) throws(CryptoError) -> (plaintext: [UInt8], tag: Tag) {
            guard !isFinished else { throw .streamTruncated }
            guard chunk.byteCount >= SecretStream.chunkOverhead else { throw .invalidCiphertextLength(actual: chunk.byteCount) }
            // libsodium updates the state only after the chunk authenticates.
            var tagByte: UInt8 = 0
            let plaintext = try chunk.withUnsafeBytes { (c: UnsafeRawBufferPointer) throws(CryptoError) in
                try associatedData.withUnsafeBytes { (ad: UnsafeRawBufferPointer) throws(CryptoError) in
                    try makeBytes(count: c.count - SecretStream.chunkOverhead) { (m: UnsafeMutableRawBufferPointer) throws(CryptoError) in
                        guard crypto_secretstream_xchacha20poly1305_pull(
                            state, m.nonNullBase, nil, &tagByte, c.nonNullBase, UInt64(c.count),
                            ad.nonNullBase, UInt64(ad.count)) == 0
                        else { throw .authenticationFailure }
                    }
                }
            }
            guard let tag = Tag(rawValue: tagByte) else { throw .authenticationFailure }
            if tag == .final { isFinished = true }
            return (plaintext, tag)
        }
    }
}
