import CCrypto
import Foundation
@testable import HushCrypto
import Testing

/// `FieldInversion` (GF(2^255 − 19) on public values): exact results, and agreement with
/// libcrypto's default `BN_mod_inverse` path on many inputs, including the edge values.
@Suite struct FieldInversionTests {
    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    static func y(_ u: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0xAA, count: 32)
        let ok = u.withUnsafeBytes { i in out.withUnsafeMutableBytes { FieldInversion.edwardsY(fromMontgomeryU: i.baseAddress!, into: $0.baseAddress!) } }
        return ok ? out : nil
    }

    static func inverse(_ x: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0xAA, count: 32)
        let ok = x.withUnsafeBytes { i in out.withUnsafeMutableBytes { FieldInversion.inverse(of: i.baseAddress!, into: $0.baseAddress!) } }
        return ok ? out : nil
    }

    /// (u − 1)/(u + 1) mod p through `BN_CTX_new` and the default (binary) `BN_mod_inverse`.
    static func reference(_ u: [UInt8]) -> [UInt8] {
        let ctx = BN_CTX_new()!
        defer { BN_CTX_free(ctx) }
        let p = BN_new()!, a = BN_new()!, num = BN_new()!, den = BN_new()!
        defer { [p, a, num, den].forEach { BN_free($0) } }
        _ = BN_lebin2bn(FieldInversion.prime, 32, p)
        _ = BN_lebin2bn(u, 32, a)
        _ = BN_mod_sub(num, a, BN_value_one(), p, ctx)
        _ = BN_mod_add(den, a, BN_value_one(), p, ctx)
        if BN_is_zero(den) == 1 { BN_zero_ex(num) } else {
            _ = BN_mod_inverse(den, den, p, ctx)
            _ = BN_mod_mul(num, num, den, p, ctx)
        }
        var out = [UInt8](repeating: 0, count: 32)
        _ = BN_bn2lebinpad(num, &out, 32)
        return out
    }

    @Test func basePointMapsToTheEd25519BasePoint() {
        // u = 9 → y = 4/5, the Ed25519 base point's encoding (RFC 8032 §5.1).
        let nine = [9] + [UInt8](repeating: 0, count: 31)
        #expect(Self.y(nine) == Self.hex("5866666666666666666666666666666666666666666666666666666666666666"))
        // u + p (below 2^256) maps as u does.
        let ninePlusP = [0xF6] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]
        #expect(Self.y(ninePlusP) == Self.y(nine))
    }

    @Test func edgeValues() {
        let zero = [UInt8](repeating: 0, count: 32)
        var minusOne = FieldInversion.prime
        minusOne[0] -= 1
        // u = −1: no inverse; y = 0 as libsignal maps it. u = 0: y = −1. u = 1: y = 0.
        #expect(Self.y(minusOne) == zero)
        #expect(Self.y(zero) == minusOne)
        #expect(Self.y([1] + zero.dropFirst()) == zero)
        // x = 0 and x = p have no inverse; 1/2 = (p + 1)/2 = 2^254 − 9; 1/1 = 1.
        #expect(Self.inverse(zero) == nil)
        #expect(Self.inverse(FieldInversion.prime) == nil)
        #expect(Self.inverse([2] + zero.dropFirst()) == [0xF7] + [UInt8](repeating: 0xFF, count: 30) + [0x3F])
        #expect(Self.inverse([1] + zero.dropFirst()) == [1] + zero.dropFirst())
    }

    @Test func agreesWithTheDefaultBignumInversion() {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<500 {
            var u = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if round % 2 == 0 { u[31] &= 0x7F }  // below 2^255, as a masked libsignal key
            #expect(Self.y(u) == Self.reference(u), "u = \(u)")
            if let inv = Self.inverse(u) {
                // x · x⁻¹ ≡ 1: checked through the map's own reference on 1/x … directly with BIGNUM:
                let ctx = BN_CTX_new()!, p = BN_new()!, a = BN_new()!, b = BN_new()!, r = BN_new()!
                _ = BN_lebin2bn(FieldInversion.prime, 32, p)
                _ = BN_lebin2bn(u, 32, a)
                _ = BN_lebin2bn(inv, 32, b)
                _ = BN_mod_mul(r, a, b, p, ctx)
                #expect(BN_is_one(r) == 1)
                [p, a, b, r].forEach { BN_free($0) }
                BN_CTX_free(ctx)
            }
        }
    }

    @Test func eachThreadHasItsOwnWorkspace() async {
        let nine = [9] + [UInt8](repeating: 0, count: 31)
        let expected = Self.y(nine)
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<200).allSatisfy { _ in Self.y(nine) == expected } }
            }
            for await ok in group { #expect(ok) }
        }
    }
}
