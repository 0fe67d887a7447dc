import CSodium

extension SecureBytes {
    /// Overwrites `buffer` with zeros in a way the compiler may not elide (`sodium_memzero`):
    /// for scratch memory outside ``SecureBytes`` (stack buffers) that held secrets. A plain
    /// zeroing store (`initializeMemory(as:repeating: 0)`) to stack memory that is never read
    /// again is a dead store, which `-O` removes; `StackWipeTests` checks in release builds
    /// that the ratchet's and HKDF's stack scratch is really wiped.
    package static func wipe(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        sodium_memzero(base, buffer.count)
    }
}
