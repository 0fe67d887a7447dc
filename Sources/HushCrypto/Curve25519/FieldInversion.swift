import CCrypto
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Arithmetic in GF(p), p = 2^255 − 19, on **public** values (peer keys), from libcrypto's BIGNUM
/// calls: the field inversion behind the Montgomery→Edwards map (RFC 7748 §4.1) that XEdDSA
/// verification (XEdDSA §2.6 `convert_mont`) and a prime-order-subgroup check of an X25519 key
/// need. libsodium 1.0.18 exports no field arithmetic, so nothing else offers it.
///
/// Speed (the reason this file exists): the obvious `BN_CTX_new` + `BN_mod_inverse` costs
/// ≈30–45 µs here, because for an odd modulus libcrypto picks a bit-at-a-time binary inversion.
/// With `BN_FLG_CONSTTIME` set on the operand, `BN_mod_inverse` runs its Euclidean variant
/// (`BN_div` steps, ≈150 of them for 255 bits) instead, ≈4–5× faster; `BN_mod_exp_mont` (Fermat)
/// and an addition chain of `BN_mod_mul_montgomery` (ref10's `z^(p−2)`) were both measured
/// slower. The context and the BIGNUMs are made once per thread and reused (freed when the
/// thread exits), so a call allocates nothing after the first on a thread.
///
/// Not constant-time in general (BIGNUM sizes and `BN_div` loops depend on the value): use it
/// on public inputs only.
enum FieldInversion {
    /// p = 2^255 − 19, little-endian.
    static let prime: [UInt8] = [0xED] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]

    /// y = (u − 1) / (u + 1) mod p for the little-endian 32-byte `u` (any value below 2^256;
    /// reduced mod p first), written little-endian to `y`. u ≡ −1 (no inverse) gives y = 0, as
    /// libsignal's conversion does. `false` only if libcrypto fails (allocation).
    static func edwardsY(fromMontgomeryU u: UnsafeRawPointer, into y: UnsafeMutableRawPointer) -> Bool {
        guard let w = Workspace.current() else { return false }
        let ctx = w.pointee.ctx, p = w.pointee.p, a = w.pointee.a, num = w.pointee.num, den = w.pointee.den
        guard BN_lebin2bn(u.assumingMemoryBound(to: UInt8.self), 32, a) != nil,
              BN_mod_sub(num, a, BN_value_one(), p, ctx) == 1,
              BN_mod_add(den, a, BN_value_one(), p, ctx) == 1
        else { return false }
        if BN_is_zero(den) == 1 {
            BN_zero_ex(num)
        } else {
            BN_set_flags(den, BN_FLG_CONSTTIME)  // selects the Euclidean inversion (see above)
            let inverted = BN_mod_inverse(den, den, p, ctx) != nil
            BN_set_flags(den, 0)
            guard inverted, BN_mod_mul(num, num, den, p, ctx) == 1 else { return false }
        }
        return BN_bn2lebinpad(num, y.assumingMemoryBound(to: UInt8.self), 32) == 32
    }

    /// x⁻¹ mod p for the little-endian 32-byte `x`, written to `out`; `false` when x ≡ 0 (no
    /// inverse) or libcrypto fails.
    static func inverse(of x: UnsafeRawPointer, into out: UnsafeMutableRawPointer) -> Bool {
        guard let w = Workspace.current() else { return false }
        let ctx = w.pointee.ctx, p = w.pointee.p, a = w.pointee.a, den = w.pointee.den
        guard BN_lebin2bn(x.assumingMemoryBound(to: UInt8.self), 32, a) != nil,
              BN_nnmod(den, a, p, ctx) == 1, BN_is_zero(den) == 0
        else { return false }
        BN_set_flags(den, BN_FLG_CONSTTIME)
        let inverted = BN_mod_inverse(den, den, p, ctx) != nil
        BN_set_flags(den, 0)
        return inverted && BN_bn2lebinpad(den, out.assumingMemoryBound(to: UInt8.self), 32) == 32
    }

    /// One thread's BN_CTX, the prime and three temporaries.
    struct Workspace {
        let ctx: OpaquePointer
        let p: OpaquePointer
        let a: OpaquePointer
        let num: OpaquePointer
        let den: OpaquePointer

        static func current() -> UnsafeMutablePointer<Workspace>? {
            if let existing = pthread_getspecific(key) { return existing.assumingMemoryBound(to: Workspace.self) }
            guard let ctx = BN_CTX_new() else { return nil }
            var numbers: [OpaquePointer] = []
            for _ in 0..<4 {
                guard let n = BN_new() else {
                    numbers.forEach { BN_free($0) }
                    BN_CTX_free(ctx)
                    return nil
                }
                numbers.append(n)
            }
            guard BN_lebin2bn(prime, 32, numbers[0]) != nil else {
                numbers.forEach { BN_free($0) }
                BN_CTX_free(ctx)
                return nil
            }
            let w = UnsafeMutablePointer<Workspace>.allocate(capacity: 1)
            w.initialize(to: Workspace(ctx: ctx, p: numbers[0], a: numbers[1], num: numbers[2], den: numbers[3]))
            pthread_setspecific(key, UnsafeRawPointer(w))
            return w
        }

        private static let key: pthread_key_t = {
            var key = pthread_key_t()
            precondition(pthread_key_create(&key) { raw in
                guard let raw else { return }
                let w = raw.assumingMemoryBound(to: Workspace.self)
                // The values are public, but clear them anyway before freeing.
                for n in [w.pointee.p, w.pointee.a, w.pointee.num, w.pointee.den] { BN_clear_free(n) }
                BN_CTX_free(w.pointee.ctx)
                w.deinitialize(count: 1)
                w.deallocate()
            } == 0, "pthread_key_create failed")
            return key
        }()
    }
}
