/// The small part of the protobuf encoding (proto2, https://protobuf.dev/programming-guides/encoding/)
/// that Signal's v3 messages use: varint fields (wire type 0) and length-delimited byte fields
/// (wire type 2). Hush writes these few messages by hand instead of generating code with
/// swift-protobuf; `Docs/protocol.md` ("Wire format") says why.
///
/// The writer emits fields in the order it is called with, which callers keep in field-number
/// order as libsignal-protocol-c does — byte equality with it depends on that.
struct ProtobufWriter {
    private(set) var bytes: [UInt8]

    init(capacity: Int, prefix: UInt8? = nil) {
        bytes = []
        bytes.reserveCapacity(capacity)
        if let prefix { bytes.append(prefix) }
    }

    mutating func appendVarint(_ value: UInt64) { LEB128.encode(value) { bytes.append($0) } }

    /// A varint field (wire type 0). Emitted even when 0, as libsignal does for set fields.
    mutating func appendField(_ number: Int, uint32 value: UInt32) {
        appendVarint(UInt64(number << 3 | 0))
        appendVarint(UInt64(value))
    }

    /// A length-delimited field (wire type 2).
    mutating func appendField(_ number: Int, bytes value: some ContiguousByteBuffer) {
        appendVarint(UInt64(number << 3 | 2))
        value.withUnsafeBytes { raw in
            appendVarint(UInt64(raw.count))
            bytes.append(contentsOf: raw)
        }
    }

    /// The encoded length of a varint.
    static func varintSize(_ value: UInt64) -> Int { LEB128.byteCount(value) }
}

/// A total protobuf reader: every input yields fields or ``MalformedMessage/invalidEncoding``,
/// never a trap. Unknown fields are skipped (wire types 0, 1, 2, 5); groups (3, 4) and wire
/// types 6, 7 are rejected, as is a field number 0.
struct ProtobufReader {
    enum Value {
        case varint(UInt64)
        case bytes(Range<Int>)
        case fixed
    }

    let buffer: UnsafeRawBufferPointer
    private var offset: Int

    init(_ buffer: UnsafeRawBufferPointer) {
        self.buffer = buffer
        self.offset = 0
    }

    /// The next field, or `nil` at the end.
    mutating func next() throws(SignalProtocolError) -> (number: Int, value: Value)? {
        guard offset < buffer.count else { return nil }
        let key = try readVarint()
        let number = key >> 3
        guard number > 0, number <= 0x1FFF_FFFF else { throw .malformed(.invalidEncoding) }
        switch key & 7 {
        case 0:
            return (Int(number), .varint(try readVarint()))
        case 2:
            let length = try readVarint()
            guard length <= UInt64(buffer.count - offset) else { throw .malformed(.invalidEncoding) }
            let start = offset
            offset += Int(length)
            return (Int(number), .bytes(start..<offset))
        case 1:
            try skip(8)
            return (Int(number), .fixed)
        case 5:
            try skip(4)
            return (Int(number), .fixed)
        default:
            throw .malformed(.invalidEncoding)
        }
    }

    private mutating func skip(_ count: Int) throws(SignalProtocolError) {
        guard buffer.count - offset >= count else { throw .malformed(.invalidEncoding) }
        offset += count
    }

    /// A varint of at most 10 bytes whose value fits 64 bits.
    private mutating func readVarint() throws(SignalProtocolError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < buffer.count, shift < 64 else { throw .malformed(.invalidEncoding) }
            let byte = buffer[offset]
            offset += 1
            if shift == 63, byte > 1 { throw .malformed(.invalidEncoding) }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }
}

extension ProtobufReader.Value {
    /// A `uint32` field's value: protobuf truncates wider varints to 32 bits.
    func uint32() throws(SignalProtocolError) -> UInt32 {
        guard case .varint(let v) = self else { throw .malformed(.invalidEncoding) }
        return UInt32(truncatingIfNeeded: v)
    }

    /// A `bytes` field's range.
    func byteRange() throws(SignalProtocolError) -> Range<Int> {
        guard case .bytes(let r) = self else { throw .malformed(.invalidEncoding) }
        return r
    }
}
