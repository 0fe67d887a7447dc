/// HKDF with HMAC-SHA256 (RFC 5869), built on ``HMACSHA256``.
///
/// The expand step's counter starts at 0x01 (RFC 5869 §2.3), as in Signal's v3 protocol.
/// Not for: passwords or other low-entropy input (use ``Argon2id``).
public enum HKDF {
    /// The largest output RFC 5869 §2.3 allows: 255 blocks of 32 bytes.
    public static let maximumOutputByteCount = 255 * HMACSHA256.byteCount

    /// RFC 5869 §2.2: `PRK = HMAC-Hash(salt, IKM)`; an empty salt means 32 zero bytes.
    public static func extract(
        inputKeyMaterial ikm: some ContiguousByteBuffer,
        salt: some ContiguousByteBuffer
    ) -> SecureBytes {
        if salt.byteCount == 0 {
            return HMACSHA256.secureAuthenticationCode(for: ikm, using: [UInt8](repeating: 0, count: HMACSHA256.byteCount))
        }
        return HMACSHA256.secureAuthenticationCode(for: ikm, using: salt)
    }

    /// RFC 5869 §2.3: `T(i) = HMAC-Hash(PRK, T(i-1) | info | i)`, output the first
    /// `outputByteCount` bytes of `T(1) | T(2) | …`.
    ///
    /// - Throws: ``CryptoError/outputLengthOutOfRange(requested:allowed:)`` beyond
    ///   ``maximumOutputByteCount`` or below 0.
    public static func expand(
        pseudoRandomKey prk: some ContiguousByteBuffer,
        info: some ContiguousByteBuffer,
        outputByteCount: Int
    ) throws(CryptoError) -> SecureBytes {
        guard (0...maximumOutputByteCount).contains(outputByteCount) else {
            throw .outputLengthOutOfRange(requested: outputByteCount, allowed: 0...maximumOutputByteCount)
        }
        // T(i) is written straight into the output; only a final partial block goes through
        // a 32-byte scratch buffer (itself wiped). T(i-1) is read back from the output.
        let scratch = SecureBytes(zeroes: HMACSHA256.byteCount)
        return try SecureBytes(count: outputByteCount) { (out: UnsafeMutableRawBufferPointer) throws(CryptoError) in
            try scratch.withUnsafeBytes { (scratchBytes: UnsafeRawBufferPointer) throws(CryptoError) in
            // `scratch` is ours alone and outlives this closure, so writing through it is safe.
            let tail = UnsafeMutableRawBufferPointer(mutating: scratchBytes)
            try info.withUnsafeBytes { (i: UnsafeRawBufferPointer) throws(CryptoError) in
                var produced = 0
                var counter: UInt8 = 1
                while produced < outputByteCount {
                    let previous = produced == 0
                        ? UnsafeRawBufferPointer(start: nil, count: 0)
                        : UnsafeRawBufferPointer(rebasing: out[(produced - HMACSHA256.byteCount)..<produced])
                    let take = Swift.min(HMACSHA256.byteCount, outputByteCount - produced)
                    let target = take == HMACSHA256.byteCount
                        ? UnsafeMutableRawBufferPointer(rebasing: out[produced..<produced + take])
                        : tail
                    try withUnsafeBytes(of: counter) { (c: UnsafeRawBufferPointer) throws(CryptoError) in
                        try HMACSHA256.compute(into: target, key: prk, parts: previous, i, c)
                    }
                    if take < HMACSHA256.byteCount {
                        UnsafeMutableRawBufferPointer(rebasing: out[produced..<produced + take])
                            .copyMemory(from: UnsafeRawBufferPointer(rebasing: tail[0..<take]))
                    }
                    produced += take
                    counter &+= 1
                }
            }
            }
        }
    }

    /// Extract then expand (RFC 5869 §2).
    public static func deriveKey(
        inputKeyMaterial ikm: some ContiguousByteBuffer,
        salt: some ContiguousByteBuffer,
        info: some ContiguousByteBuffer,
        outputByteCount: Int
    ) throws(CryptoError) -> SecureBytes {
        guard (0...maximumOutputByteCount).contains(outputByteCount) else {
            throw .outputLengthOutOfRange(requested: outputByteCount, allowed: 0...maximumOutputByteCount)
        }
        let prk = extract(inputKeyMaterial: ikm, salt: salt)
        return try expand(pseudoRandomKey: prk, info: info, outputByteCount: outputByteCount)
    }

    /// Extract then expand into `out` (at most ``maximumOutputByteCount`` bytes) with no heap
    /// allocation: the pseudo-random key and a final partial block live in stack scratch that
    /// is wiped before return. An empty `salt` means 32 zero bytes (RFC 5869 §2.2).
    package static func deriveKey(
        into out: UnsafeMutableRawBufferPointer, inputKeyMaterial ikm: UnsafeRawBufferPointer,
        salt: UnsafeRawBufferPointer, info: UnsafeRawBufferPointer
    ) {
        precondition(out.count <= maximumOutputByteCount)
        let n = HMACSHA256.byteCount
        withUnsafeTemporaryAllocation(byteCount: 3 * n, alignment: 16) { scratch in
            scratch.initializeMemory(as: UInt8.self, repeating: 0)
            // `sodium_memzero`: a plain zeroing store to dead stack memory is removed by -O.
            defer { SecureBytes.wipe(scratch) }
            let zeroSalt = UnsafeRawBufferPointer(rebasing: scratch[0..<n])
            let prk = UnsafeMutableRawBufferPointer(rebasing: scratch[n..<(2 * n)])
            let tail = UnsafeMutableRawBufferPointer(rebasing: scratch[(2 * n)...])
            try! HMACSHA256.compute(into: prk, key: salt.count == 0 ? zeroSalt : salt, parts: ikm)
            var produced = 0
            var counter: UInt8 = 1
            while produced < out.count {
                let previous = produced == 0
                    ? UnsafeRawBufferPointer(start: nil, count: 0)
                    : UnsafeRawBufferPointer(rebasing: out[(produced - n)..<produced])
                let take = Swift.min(n, out.count - produced)
                let target = take == n ? UnsafeMutableRawBufferPointer(rebasing: out[produced..<(produced + n)]) : tail
                withUnsafeBytes(of: counter) { c in
                    try! HMACSHA256.compute(into: target, key: UnsafeRawBufferPointer(prk), parts: previous, info, c)
                }
                if take < n {
                    UnsafeMutableRawBufferPointer(rebasing: out[produced..<(produced + take)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: tail[0..<take]))
                }
                produced += take
                counter &+= 1
            }
        }
    }
}
