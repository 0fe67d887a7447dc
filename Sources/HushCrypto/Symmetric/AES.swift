import CCrypto

/// AES through libcrypto (AES-NI where the CPU has it), with pre-fetched ciphers.
///
/// These modes are **not authenticated**. They exist for wire formats that need them —
/// Signal's v3 messages use AES-256-CBC under an HMAC (encrypt-then-MAC). For new designs use
/// ``XChaChaPoly``.
public enum AES {
    /// Accepted key lengths: AES-128, AES-192 and AES-256.
    public static let keyByteCounts = [16, 24, 32]
    /// The block (and IV) length.
    public static let blockByteCount = 16

    /// Padding for ``CBC``.
    public enum Padding: Sendable, Equatable {
        /// PKCS#7 (RFC 5652 §6.3): 1 to 16 bytes, each holding the pad length.
        case pkcs7
        /// No padding: the input must be a whole number of blocks.
        case none
    }

    /// Cipher block chaining (NIST SP 800-38A §6.2).
    ///
    /// Not for: decrypting anything that was not authenticated first — padding errors leak
    /// plaintext to an attacker who can observe them.
    public enum CBC {
        /// Encrypts `plaintext` under `key` with the 16-byte `iv`.
        public static func encrypt(
            _ plaintext: some ContiguousByteBuffer, key: some ContiguousByteBuffer,
            iv: some ContiguousByteBuffer, padding: Padding = .pkcs7
        ) throws(CryptoError) -> [UInt8] {
            let cipher = try AES.cipher(forKey: key, cbc: true)
            try AES.checkIV(iv)
            let count = plaintext.byteCount
            if padding == .none, count % blockByteCount != 0 { throw .invalidCiphertextLength(actual: count) }
            let capacity = padding == .pkcs7 ? (count / blockByteCount + 1) * blockByteCount : count
            return try AES.run(cipher, encrypt: true, padding: padding == .pkcs7, key: key, iv: iv, input: plaintext, capacity: capacity)
        }

        /// Decrypts `ciphertext` under `key` with the 16-byte `iv`.
        ///
        /// - Throws: ``CryptoError/invalidCiphertextLength(actual:)`` unless the input is a
        ///   non-empty whole number of blocks; ``CryptoError/invalidPadding`` if PKCS#7 padding
        ///   is malformed.
        public static func decrypt(
            _ ciphertext: some ContiguousByteBuffer, key: some ContiguousByteBuffer,
            iv: some ContiguousByteBuffer, padding: Padding = .pkcs7
        ) throws(CryptoError) -> [UInt8] {
            let cipher = try AES.cipher(forKey: key, cbc: true)
            try AES.checkIV(iv)
            let count = ciphertext.byteCount
            guard count % blockByteCount == 0, padding == .none || count > 0 else {
                throw .invalidCiphertextLength(actual: count)
            }
            return try AES.run(cipher, encrypt: false, padding: padding == .pkcs7, key: key, iv: iv, input: ciphertext, capacity: count + blockByteCount)
        }
    }

    /// Counter mode (NIST SP 800-38A §6.5) with a 16-byte initial counter block incremented
    /// as a 128-bit big-endian integer. Encryption and decryption are the same operation.
    ///
    /// Not for: reusing a counter block with the same key — it reveals the XOR of plaintexts.
    public enum CTR {
        /// XORs `input` with the keystream of `key` starting at `counter`.
        public static func apply(
            _ input: some ContiguousByteBuffer, key: some ContiguousByteBuffer, counter: some ContiguousByteBuffer
        ) throws(CryptoError) -> [UInt8] {
            let cipher = try AES.cipher(forKey: key, cbc: false)
            try AES.checkIV(counter)
            return try AES.run(cipher, encrypt: true, padding: false, key: key, iv: counter, input: input, capacity: input.byteCount + blockByteCount)
        }
    }

    static func cipher(forKey key: some ContiguousByteBuffer, cbc: Bool) throws(CryptoError) -> OpaquePointer {
        switch key.byteCount {
        case 16: return cbc ? OpenSSL.aes128CBC : OpenSSL.aes128CTR
        case 24: return cbc ? OpenSSL.aes192CBC : OpenSSL.aes192CTR
        case 32: return cbc ? OpenSSL.aes256CBC : OpenSSL.aes256CTR
        default: throw .invalidKeySize(actual: key.byteCount, allowed: keyByteCounts)
        }
    }

    /// The longest input one operation takes: OpenSSL's `EVP_CipherUpdate` counts in `int`,
    /// and the output (one padding block more) must fit too.
    public static let maximumInputByteCount = Int(Int32.max) - blockByteCount

    /// Checks an input length against ``maximumInputByteCount`` (a 2 GiB input throws
    /// ``CryptoError/parameterOutOfRange(name:value:allowed:)`` instead of trapping in the
    /// conversion to `Int32`).
    package static func checkInputLength(_ count: Int) throws(CryptoError) {
        guard (0...maximumInputByteCount).contains(count) else {
            throw .parameterOutOfRange(name: "input.count", value: count, allowed: 0...maximumInputByteCount)
        }
    }

    static func checkIV(_ iv: some ContiguousByteBuffer) throws(CryptoError) {
        guard iv.byteCount == blockByteCount else { throw .invalidNonceSize(actual: iv.byteCount, expected: blockByteCount) }
    }

    static func run(
        _ cipher: OpaquePointer, encrypt: Bool, padding: Bool,
        key: some ContiguousByteBuffer, iv: some ContiguousByteBuffer,
        input: some ContiguousByteBuffer, capacity: Int
    ) throws(CryptoError) -> [UInt8] {
        var produced = 0
        var output = try makeBytes(count: capacity) { (out: UnsafeMutableRawBufferPointer) throws(CryptoError) in
            try key.withUnsafeBytes { (k: UnsafeRawBufferPointer) throws(CryptoError) in
                try iv.withUnsafeBytes { (v: UnsafeRawBufferPointer) throws(CryptoError) in
                    try input.withUnsafeBytes { (i: UnsafeRawBufferPointer) throws(CryptoError) in
                        produced = try apply(cipher, encrypt: encrypt, padding: padding, key: k, iv: v, input: i, into: out)
                    }
                }
            }
        }
        output.removeLast(capacity - produced)
        return output
    }

    /// One whole-message AES operation into `out` on this thread's reused cipher context
    /// (OpenSSL allocates its key schedule at init, as for any use). Returns the bytes written. `out` must hold the output: the padded
    /// length when encrypting with PKCS#7, else the input's length.
    /// On a padding error `out` is zeroed.
    static func apply(
        _ cipher: OpaquePointer, encrypt: Bool, padding: Bool,
        key: UnsafeRawBufferPointer, iv: UnsafeRawBufferPointer,
        input: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(CryptoError) -> Int {
        try checkInputLength(input.count)
        precondition(out.count >= (encrypt && padding ? (input.count / blockByteCount + 1) * blockByteCount : input.count))
        let ctx = try OpenSSL.threadCipherContext()
        // Reset after use: OpenSSL frees the key schedule with OPENSSL_clear_free (so no key
        // material stays behind) and restores the default flags (PKCS#7 on).
        defer { EVP_CIPHER_CTX_reset(ctx) }
        guard EVP_CipherInit_ex2(ctx, cipher, key.nonNullBase, iv.nonNullBase, encrypt ? 1 : 0, nil) == 1 else {
            throw .libraryFailure(function: "EVP_CipherInit_ex2")
        }
        // PKCS#7 is the default after a reset, and setting it costs an OSSL_PARAM lookup: only
        // switch it off when asked.
        if !padding { EVP_CIPHER_CTX_set_padding(ctx, 0) }
        var written: Int32 = 0
        if input.count > 0 {
            guard EVP_CipherUpdate(ctx, out.nonNullBase, &written, input.nonNullBase, Int32(truncatingIfNeeded: input.count)) == 1 else {
                throw .libraryFailure(function: "EVP_CipherUpdate")
            }
        }
        var produced = Int(written)
        var tail: Int32 = 0
        guard EVP_CipherFinal_ex(ctx, out.nonNullBase + produced, &tail) == 1 else {
            out.initializeMemory(as: UInt8.self, repeating: 0)
            // Decrypting with PKCS#7 is the only way to fail here with valid lengths.
            throw .invalidPadding
        }
        produced += Int(tail)
        return produced
    }
}

extension AES.CBC {
    /// AES-256-CBC with PKCS#7 into a caller's buffer, for protocol code that lays the
    /// ciphertext straight into its message (no allocation). `out` must have room for
    /// `(input.count / 16 + 1) * 16` bytes; returns the bytes written.
    package static func encrypt256(
        _ input: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, iv: UnsafeRawBufferPointer,
        into out: UnsafeMutableRawBufferPointer
    ) throws(CryptoError) -> Int {
        guard key.count == 32 else { throw .invalidKeySize(actual: key.count, allowed: [32]) }
        try AES.checkIV(iv)
        return try cbc256(encrypt: true, key: key, iv: iv, input: input, into: out)
    }

    /// AES-256-CBC-PKCS#7 on this thread's dedicated context: re-keyed with a NULL cipher (no
    /// fetch, no allocation), then re-keyed with 32 zero bytes and a zero IV, so that neither
    /// the key schedule of a message key nor its IV (the original or the chained one, which
    /// OpenSSL keeps in the context) stays in memory.
    static func cbc256(
        encrypt: Bool, key: UnsafeRawBufferPointer, iv: UnsafeRawBufferPointer,
        input: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(CryptoError) -> Int {
        try AES.checkInputLength(input.count)
        precondition(out.count >= (encrypt ? (input.count / AES.blockByteCount + 1) * AES.blockByteCount : input.count))
        let ctx = try OpenSSL.threadCBC256Context()
        defer {
            withUnsafeTemporaryAllocation(byteCount: 32, alignment: 16) { zero in
                zero.initializeMemory(as: UInt8.self, repeating: 0)
                let zeros = zero.baseAddress!.assumingMemoryBound(to: UInt8.self)
                // A NULL IV would keep the message's IV in the context: pass 16 zero bytes.
                _ = EVP_CipherInit_ex2(ctx, nil, zeros, zeros, 1, nil)
            }
        }
        guard EVP_CipherInit_ex2(ctx, nil, key.nonNullBase, iv.nonNullBase, encrypt ? 1 : 0, nil) == 1 else {
            throw .libraryFailure(function: "EVP_CipherInit_ex2")
        }
        var written: Int32 = 0
        if input.count > 0 {
            guard EVP_CipherUpdate(ctx, out.nonNullBase, &written, input.nonNullBase, Int32(truncatingIfNeeded: input.count)) == 1 else {
                throw .libraryFailure(function: "EVP_CipherUpdate")
            }
        }
        var produced = Int(written)
        var tail: Int32 = 0
        guard EVP_CipherFinal_ex(ctx, out.nonNullBase + produced, &tail) == 1 else {
            out.initializeMemory(as: UInt8.self, repeating: 0)
            throw .invalidPadding
        }
        produced += Int(tail)
        return produced
    }

    /// The original and the current (chained) IV held by this thread's AES-256-CBC context,
    /// for the tests that check nothing of the last message stays behind. Creates the context
    /// if this thread has none.
    package static func threadContextIVs() throws(CryptoError) -> (original: [UInt8], updated: [UInt8]) {
        let ctx = try OpenSSL.threadCBC256Context()
        var original = [UInt8](repeating: 0xFF, count: AES.blockByteCount)
        var updated = [UInt8](repeating: 0xFF, count: AES.blockByteCount)
        guard EVP_CIPHER_CTX_get_original_iv(ctx, &original, original.count) == 1,
              EVP_CIPHER_CTX_get_updated_iv(ctx, &updated, updated.count) == 1 else {
            throw .libraryFailure(function: "EVP_CIPHER_CTX_get_original_iv")
        }
        return (original, updated)
    }

    /// The inverse of ``encrypt256(_:key:iv:into:)``: `out` must hold `input.count` bytes.
    package static func decrypt256(
        _ input: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, iv: UnsafeRawBufferPointer,
        into out: UnsafeMutableRawBufferPointer
    ) throws(CryptoError) -> Int {
        guard key.count == 32 else { throw .invalidKeySize(actual: key.count, allowed: [32]) }
        try AES.checkIV(iv)
        guard input.count > 0, input.count % AES.blockByteCount == 0 else { throw .invalidCiphertextLength(actual: input.count) }
        return try cbc256(encrypt: false, key: key, iv: iv, input: input, into: out)
    }
}
