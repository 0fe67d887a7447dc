import CCrypto
import CSodium
import Hush

/// Torsioned copies of X25519 public keys, built with libsodium's Edwards addition and the
/// birational maps of RFC 7748 §4.1 (field arithmetic in libcrypto's BIGNUM).
enum Torsion {
    /// The eight points of Curve25519's small-order subgroup (edwards25519 encodings, the
    /// canonical ones of libsodium's small-order list, with both signs of x where x ≠ 0).
    static let smallOrderPoints: [[UInt8]] = [
        [0x01] + [UInt8](repeating: 0, count: 31),                                   // order 1 (identity)
        [0xEC] + [UInt8](repeating: 0xFF, count: 30) + [0x7F],                       // order 2 (y = −1)
        [UInt8](repeating: 0, count: 32),                                            // order 4 (y = 0)
        [UInt8](repeating: 0, count: 31) + [0x80],                                   // order 4, −x
        hex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),     // order 8
        hex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),     // order 8, −x
        hex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),     // order 8
        hex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),     // order 8, −x
    ]

    static let p: [UInt8] = [0xED] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]

    /// `(a ± 1) / (b ± 1)` style maps: `(x + s) / (t·x + r)` mod p with small constants.
    private static func ratio(_ x: [UInt8], numeratorAdd: Int, denominatorSign: Int, denominatorAdd: Int) -> [UInt8] {
        let ctx = BN_CTX_new()!
        defer { BN_CTX_free(ctx) }
        let bp = BN_new()!, bx = BN_new()!, num = BN_new()!, den = BN_new()!, one = BN_new()!, out = BN_new()!
        defer { [bp, bx, num, den, one, out].forEach { BN_free($0) } }
        BN_lebin2bn(p, 32, bp)
        BN_lebin2bn(x, 32, bx)
        BN_set_word(one, 1)
        // numerator = x + numeratorAdd (±1)
        if numeratorAdd > 0 { BN_mod_add(num, bx, one, bp, ctx) } else { BN_mod_sub(num, bx, one, bp, ctx) }
        // denominator = denominatorSign·x + denominatorAdd (±1)
        if denominatorSign > 0 {
            if denominatorAdd > 0 { BN_mod_add(den, bx, one, bp, ctx) } else { BN_mod_sub(den, bx, one, bp, ctx) }
        } else {
            BN_mod_sub(den, one, bx, bp, ctx)  // 1 − x
        }
        precondition(BN_mod_inverse(den, den, bp, ctx) != nil, "not invertible")
        BN_mod_mul(out, num, den, bp, ctx)
        var bytes = [UInt8](repeating: 0, count: 32)
        _ = BN_bn2lebinpad(out, &bytes, 32)
        return bytes
    }

    /// y = (u − 1)/(u + 1).
    static func edwardsY(fromU u: [UInt8]) -> [UInt8] { ratio(u, numeratorAdd: -1, denominatorSign: 1, denominatorAdd: 1) }
    /// u = (1 + y)/(1 − y).
    static func montgomeryU(fromY y: [UInt8]) -> [UInt8] { ratio(y, numeratorAdd: 1, denominatorSign: -1, denominatorAdd: 1) }

    /// `key + T` for each small-order point `T` (the first is `key` itself), as X25519 keys.
    static func variants(of key: Curve25519.KeyAgreement.PublicKey) -> [Curve25519.KeyAgreement.PublicKey] {
        _ = sodium_init()
        let point = edwardsY(fromU: key.rawRepresentation)  // sign bit 0: one of ±P, either works
        return smallOrderPoints.map { t in
            var sum = [UInt8](repeating: 0, count: 32)
            precondition(crypto_core_ed25519_add(&sum, point, t) == 0, "Edwards addition failed")
            sum[31] &= 0x7F
            return try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: montgomeryU(fromY: sum))
        }
    }

    /// The Montgomery u of each small-order point other than those with u = ∞ (y = 1 maps to u = ∞).
    static var smallOrderKeys: [Curve25519.KeyAgreement.PublicKey] {
        smallOrderPoints.dropFirst().map { t in
            var y = t
            y[31] &= 0x7F
            return try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: montgomeryU(fromY: y))
        }
    }
}
