import CSodium

/// libsodium must be initialised once before use. `sodium_init()` is itself idempotent and
/// thread-safe, and a Swift global is initialised exactly once (`swift_once`), so every entry
/// point of HushCrypto that reaches libsodium first touches ``Sodium/ready``.
enum Sodium {
    static let ready: Bool = {
        // 0: initialised now, 1: already initialised, -1: failure (no entropy source).
        let status = sodium_init()
        precondition(status >= 0, "libsodium failed to initialise (sodium_init returned \(status))")
        return true
    }()

    @inline(__always)
    static func ensureInitialized() {
        _ = ready
    }
}
