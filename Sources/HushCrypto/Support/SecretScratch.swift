import CSodium

/// Wiping secrets that live in stack scratch (`withUnsafeTemporaryAllocation`).
///
/// A zeroing store to memory that is never read again is a dead store, and the optimizer
/// removes it: `initializeMemory(as:repeating: 0)` in a `defer` disappears from `-O` builds.
/// `sodium_memzero` is an opaque call that libsodium guarantees is not elided, so every
/// stack wipe of key material goes through ``wipe(_:)``. `StackWipeTests` checks, in release
/// builds too, that no derived key remains on the thread's stack after the functions return.
package enum SecretScratch {
    /// Overwrites `buffer` with zeros in a way the compiler cannot remove.
    @inline(__always)
    package static func wipe(_ buffer: UnsafeMutableRawBufferPointer) {
        if let base = buffer.baseAddress, buffer.count > 0 { sodium_memzero(base, buffer.count) }
    }
}
