import CCrypto
import CSodium
import Hush

/// Keys that are not points of the prime-order subgroup, for rejection vectors: a genuine key
/// with a small-order point added ("torsioned": the same X25519 results under every clamped
/// scalar, other bytes), and a point of the quadratic twist. Built from libsodium's Edwards
/// addition and the birational map of RFC 7748 §4.1 in libcrypto's BIGNUM.
enum OddPoints {
    /// p = 2^255 − 19, little-endian.
    static let p: [UInt8] = [0xED] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]
    /// An Edwards point of order 8 (libsodium's small-order list).
    static let order8: [UInt8] = try! Hex.decode("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")

    /// `(a + sa) / (sb·b + tb)` mod p for the two maps below.
    private static func map(_ x: [UInt8], inverse: Bool) -> [UInt8] {
        let ctx = BN_CTX_new()!
        defer { BN_CTX_free(ctx) }
        let bp = BN_new()!, bx = BN_new()!, num = BN_new()!, den = BN_new()!, out = BN_new()!
        defer { for n in [bp, bx, num, den, out] { BN_free(n) } }
        BN_lebin2bn(p, 32, bp)
        BN_lebin2bn(x, 32, bx)
        if inverse {
            // u = (1 + y) / (1 − y)
            BN_mod_add(num, BN_value_one(), bx, bp, ctx)
            BN_mod_sub(den, BN_value_one(), bx, bp, ctx)
        } else {
            // y = (u − 1) / (u + 1)
            BN_mod_sub(num, bx, BN_value_one(), bp, ctx)
            BN_mod_add(den, bx, BN_value_one(), bp, ctx)
        }
        precondition(BN_mod_inverse(den, den, bp, ctx) != nil)
        BN_mod_mul(out, num, den, bp, ctx)
        var bytes = [UInt8](repeating: 0, count: 32)
        _ = BN_bn2lebinpad(out, &bytes, 32)
        return bytes
    }

    /// `key + T` with T of order 8: another canonical u with the same X25519 results.
    static func torsioned(_ key: [UInt8]) -> [UInt8] {
        _ = sodium_init()
        var sum = [UInt8](repeating: 0, count: 32)
        precondition(crypto_core_ed25519_add(&sum, map(key, inverse: false), order8) == 0)
        sum[31] &= 0x7F
        let u = map(sum, inverse: true)
        precondition(u != key && u[31] & 0x80 == 0)
        return u
    }

    /// The smallest u ≥ 2 whose point lies on the twist (its Edwards y does not decode).
    static let twist: [UInt8] = {
        _ = sodium_init()
        for small in UInt8(2)...UInt8(200) {
            let u = [small] + [UInt8](repeating: 0, count: 31)
            var y = map(u, inverse: false)
            y[31] &= 0x7F
            var negated = y
            negated[31] |= 0x80
            if crypto_core_ed25519_is_valid_point(y) == 0, crypto_core_ed25519_is_valid_point(negated) == 0,
               crypto_core_ed25519_add(&negated, y, order8) != 0 { return u }
        }
        fatalError("no twist point below 200")
    }()
}
