import CSodium

extension SecureBytes {
    /// Overwrites `buffer` with zeros in a way the compiler may not elide (`sodium_memzero`):
    /// for scratch memory outside ``SecureBytes`` (stack buffers) that held secrets.
    package static func wipe(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        sodium_memzero(base, buffer.count)
    }
}
