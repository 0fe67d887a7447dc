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

extension SecureBytes {
    /// Overwrites the elements of `bytes` with zeros (`sodium_memzero`, which the optimizer may
    /// not elide), for a plain array that held a secret on its way into or out of
    /// ``SecureBytes`` (a decoded record, a file buffer).
    ///
    /// Not for: copies. Arrays are copy-on-write; this wipes the storage `bytes` uses now (after
    /// making it unique, which copies a shared buffer first and leaves the other holder's copy
    /// untouched). Keep a secret in ``SecureBytes`` wherever the API allows.
    public static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { raw in wipe(raw) }
    }
}
