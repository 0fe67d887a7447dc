/// Unsigned LEB128 ("varint"), the integer encoding of protobuf and of every Hush format:
/// 7 bits per byte, least significant group first, the high bit set on every byte but the
/// last. One implementation for every writer and for the canonical 32-bit reader.
enum LEB128 {
    /// Calls `put` with the shortest encoding of `value`.
    @inline(__always)
    static func encode(_ value: UInt64, _ put: (UInt8) -> Void) {
        var v = value
        while v >= 0x80 {
            put(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        put(UInt8(v))
    }

    /// The length of the shortest encoding of `value`.
    static func byteCount(_ value: UInt64) -> Int {
        var size = 1
        var v = value >> 7
        while v != 0 { size += 1; v >>= 7 }
        return size
    }

    /// The outcome of reading a canonical 32-bit varint.
    enum Decoded {
        case value(UInt32)
        /// The input ended inside the varint.
        case truncated
        /// More than 5 bytes, a value of 2³² or more, or a redundant zero group.
        case invalid
    }

    /// Reads the canonical encoding of a value below 2³² (hush formats and records: exactly
    /// one encoding per value). `next` returns the following byte, or `nil` at the end.
    static func decodeCanonical32(_ next: () -> UInt8?) -> Decoded {
        var result: UInt64 = 0
        for i in 0..<5 {
            guard let b = next() else { return .truncated }
            result |= UInt64(b & 0x7F) << (7 * UInt64(i))
            if b & 0x80 == 0 {
                guard i == 0 || b != 0, result <= UInt64(UInt32.max) else { return .invalid }
                return .value(UInt32(result))
            }
        }
        return .invalid
    }
}
