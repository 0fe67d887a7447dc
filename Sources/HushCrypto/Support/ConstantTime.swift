import CSodium

/// Comparisons whose running time does not depend on the bytes compared.
public enum ConstantTime {
    /// `true` when `a` and `b` hold the same bytes. Runs in time that depends only on the
    /// lengths (`sodium_memcmp`); unequal lengths return `false` at once — lengths are public.
    ///
    /// Use for MACs, tags and any secret-derived value. Not for ordering: it says only
    /// equal or not.
    public static func equals(_ a: some ContiguousByteBuffer, _ b: some ContiguousByteBuffer) -> Bool {
        Sodium.ensureInitialized()
        return a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in
                guard x.count == y.count else { return false }
                guard x.count > 0 else { return true }
                return sodium_memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0
            }
        }
    }

    /// `true` when every byte is zero, in time that depends only on the length.
    public static func isZero(_ a: some ContiguousByteBuffer) -> Bool {
        Sodium.ensureInitialized()
        return a.withUnsafeBytes { x in sodium_is_zero(x.nonNullBase, x.count) == 1 }
    }
}
