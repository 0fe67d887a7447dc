import CCrypto
import CSodium

extension SHA256 {
    /// SHA-256 of `part1 || part2`, written into `out` (at least 32 bytes), with the hash state
    /// on the stack: no heap allocation. For protocol code that folds new data into a running
    /// hash (Noise's `MixHash`, Noise §5.2). `out` may be the memory of `part1`: both parts are
    /// consumed before the digest is written.
    package static func hash(_ part1: UnsafeRawBufferPointer, _ part2: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= byteCount)
        var context = SHA256_CTX()
        SHA256_Init(&context)
        if part1.count > 0 { SHA256_Update(&context, part1.baseAddress, part1.count) }
        if part2.count > 0 { SHA256_Update(&context, part2.baseAddress, part2.count) }
        SHA256_Final(out.baseAddress!.assumingMemoryBound(to: UInt8.self), &context)
        withUnsafeMutableBytes(of: &context) { sodium_memzero($0.baseAddress!, $0.count) }
    }
}
