/// The decoders of the plain values a client store keeps (after a sealed column is opened, or
/// a clear one read): one place, so that each is checked and fuzzed once
/// (`Messenger/Fuzz/Sources/FuzzClientStore`). Every one takes any bytes and returns a value
/// or nil — never traps. Encodings (Docs/client.md §Store):
///
/// ```
/// u64        8 bytes, big-endian                          (counters, device id, setting values)
/// u32        4 bytes, big-endian                          (registration id)
/// u32 list   n × 4 bytes, big-endian                      (an outbox item's devices)
/// ids        concatenated canonical LEB128 varints        (owed receipt ids)
/// strings    UTF-8 lines joined by "\n", none empty       (presence setting, subscriptions, owed index)
/// text       UTF-8                                         (a message body)
/// ```
public enum StoredValues {
    /// A big-endian u64, nil unless exactly 8 bytes.
    public static func u64(_ bytes: [UInt8]) -> UInt64? {
        guard bytes.count == 8 else { return nil }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The encoding of ``u64(_:)``.
    public static func encodeU64(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
    }

    /// A big-endian u32, nil unless exactly 4 bytes.
    public static func u32(_ bytes: [UInt8]) -> UInt32? {
        guard bytes.count == 4 else { return nil }
        return bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Big-endian u32s, nil unless the length is a multiple of 4.
    public static func u32List(_ bytes: [UInt8]) -> [UInt32]? {
        guard bytes.count % 4 == 0 else { return nil }
        return stride(from: 0, to: bytes.count, by: 4).map { i in bytes[i..<i + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } }
    }

    /// Varint ids; a malformed tail is ignored (the ids before it are kept).
    public static func ids(_ bytes: [UInt8]) -> [UInt64] {
        var r = Varint.Reader(bytes: bytes, offset: 0)
        var out: [UInt64] = []
        while r.offset < bytes.count { guard let v = try? r.read() else { break }; out.append(v) }
        return out
    }

    /// The encoding of ``ids(_:)``.
    public static func encodeIDs(_ values: [UInt64]) -> [UInt8] {
        var out: [UInt8] = []
        for v in values { Varint.append(v, to: &out) }
        return out
    }

    /// The lines, split at every 0x0A byte (not at the Character "\n": "\r\n" is one Character
    /// in Swift, so a value ending in "\r" would swallow the next one); invalid UTF-8 repaired
    /// with U+FFFD; empty lines dropped.
    public static func strings(_ bytes: [UInt8]) -> [String] {
        bytes.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A message body: nil unless valid UTF-8.
    public static func text(_ bytes: [UInt8]) -> String? {
        String(validating: bytes, as: UTF8.self)
    }
}
