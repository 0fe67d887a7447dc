import Hush

/// A safety number: 60 digits two users compare out of band (read aloud, or side by side) to
/// check that each has the other's real identity key.
///
/// Signal's numeric fingerprint construction (version 0), built on Hush's SHA-512: for each
/// party, `h = SHA-512(0x00 0x00 || key || id)` then 5,199 times `h = SHA-512(h || key)`, where
/// `key` is the 33-byte identity key (0x05 || X25519) and `id` the account name in UTF-8; the
/// first 30 bytes of `h` make six 5-byte big-endian numbers, each taken mod 100,000 as five
/// digits. The two 30-digit halves are ordered (the smaller first), so both users see the same 60 digits.
public struct SafetyNumber: Sendable, Equatable, CustomStringConvertible {
    /// The 60 digits.
    public let digits: String

    /// Hash iterations (Signal's value).
    public static let iterations = 5_200

    /// The safety number between `local` (account, identity) and `remote`.
    public init(local: (account: String, identity: IdentityKey), remote: (account: String, identity: IdentityKey)) {
        let a = Self.half(local.account, local.identity)
        let b = Self.half(remote.account, remote.identity)
        digits = a < b ? a + b : b + a
    }

    /// One party's 30 digits.
    static func half(_ account: String, _ identity: IdentityKey) -> String {
        let key = identity.serialized
        var h = SHA512.hash([0, 0] + key + Array(account.utf8))
        for _ in 1..<iterations { h = SHA512.hash(h + key) }
        var out = ""
        for chunk in 0..<6 {
            var v: UInt64 = 0
            for i in 0..<5 { v = v << 8 | UInt64(h[chunk * 5 + i]) }
            let n = String(v % 100_000)
            out += String(repeating: "0", count: 5 - n.count) + n
        }
        return out
    }

    /// Twelve groups of five digits.
    public var description: String {
        stride(from: 0, to: digits.count, by: 5).map { i -> String in
            let start = digits.index(digits.startIndex, offsetBy: i)
            return String(digits[start..<digits.index(start, offsetBy: 5)])
        }.joined(separator: " ")
    }
}
