/// Lowercase hexadecimal encoding, for public values: fingerprints, test vectors, debugging.
///
/// Do not hex-encode secrets: the resulting `String` cannot be wiped.
public enum Hex {
    /// Encodes bytes as lowercase hex without separators.
    public static func encode(_ bytes: some ContiguousByteBuffer) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return bytes.withUnsafeBytes { raw in
            String(unsafeUninitializedCapacity: raw.count * 2) { out in
                for (i, byte) in raw.enumerated() {
                    out[2 * i] = digits[Int(byte >> 4)]
                    out[2 * i + 1] = digits[Int(byte & 0x0f)]
                }
                return raw.count * 2
            }
        }
    }

    /// Decodes hex (either case, no separators, no prefix). Any malformed input is a typed error.
    public static func decode(_ string: String) throws(HexError) -> [UInt8] {
        let utf8 = Array(string.utf8)
        guard utf8.count % 2 == 0 else { throw .oddLength(utf8.count) }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let high = nibble(utf8[i]) else { throw .invalidCharacter(offset: i) }
            guard let low = nibble(utf8[i + 1]) else { throw .invalidCharacter(offset: i + 1) }
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
