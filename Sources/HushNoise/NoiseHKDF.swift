import HushCrypto

/// `HKDF()` of Noise revision 34, §4.3, with `HMAC-HASH` = HMAC-SHA256 (§12.5), on
/// HushCrypto's HMAC:
///
///     temp_key = HMAC-HASH(chaining_key, input_key_material)
///     output1  = HMAC-HASH(temp_key, byte(0x01))
///     output2  = HMAC-HASH(temp_key, output1 || byte(0x02))
///     output3  = HMAC-HASH(temp_key, output2 || byte(0x03))     (only when three outputs are asked for)
///
/// (RFC 5869's HKDF with `chaining_key` as salt and an empty info; the tests check that too.)
/// `temp_key` lives in stack scratch that is wiped before return; the outputs go straight into
/// the caller's buffers (32 bytes each), normally the storage of new ``SecureBytes``.
enum NoiseHKDF {
    static func derive(
        chainingKey: some ContiguousByteBuffer, inputKeyMaterial: UnsafeRawBufferPointer,
        output1: UnsafeMutableRawBufferPointer, output2: UnsafeMutableRawBufferPointer,
        output3: UnsafeMutableRawBufferPointer? = nil
    ) {
        let n = NoiseConstants.hashLength
        precondition(chainingKey.byteCount == n && output1.count == n && output2.count == n && (output3?.count ?? n) == n)
        withUnsafeTemporaryAllocation(byteCount: n, alignment: 16) { tempKey in
            defer { SecureBytes.wipe(tempKey) }
            let key = UnsafeRawBufferPointer(tempKey)
            // The HMACs cannot fail: HushCrypto's HMAC throws only on library failure of a
            // SHA-256 call that takes no fallible input.
            try! HMACSHA256.compute(into: tempKey, key: chainingKey, parts: inputKeyMaterial)
            withUnsafeBytes(of: UInt8(0x01)) { counter in
                try! HMACSHA256.compute(into: output1, key: key, parts: counter)
            }
            withUnsafeBytes(of: UInt8(0x02)) { counter in
                try! HMACSHA256.compute(into: output2, key: key, parts: UnsafeRawBufferPointer(output1), counter)
            }
            if let output3 {
                withUnsafeBytes(of: UInt8(0x03)) { counter in
                    try! HMACSHA256.compute(into: output3, key: key, parts: UnsafeRawBufferPointer(output2), counter)
                }
            }
        }
    }

    /// Two outputs in new wiped storage: `(output1, output2)`.
    static func derive2(chainingKey: SecureBytes, inputKeyMaterial: UnsafeRawBufferPointer) -> (SecureBytes, SecureBytes) {
        var second = SecureBytes(zeroes: 0)
        let first = SecureBytes(count: NoiseConstants.hashLength) { (out1: UnsafeMutableRawBufferPointer) in
            second = SecureBytes(count: NoiseConstants.hashLength) { (out2: UnsafeMutableRawBufferPointer) in
                derive(chainingKey: chainingKey, inputKeyMaterial: inputKeyMaterial, output1: out1, output2: out2)
            }
        }
        return (first, second)
    }
}
