// A minimal JSON value with ordered objects, written in the layout of the shared
// signal-v3 transcript files: top-level fields and parties indented, one step per line,
// compact separators ", " and ": ", ASCII-only strings (as Python's json.dumps writes them).

indirect enum JSON {
    case string(String)
    case integer(Int64)
    case null
    case array([JSON])
    case object([(String, JSON)])

    static func hex(_ bytes: [UInt8]) -> JSON { .string(Hex.encode(bytes)) }
    static func int<T: BinaryInteger>(_ value: T) -> JSON { .integer(Int64(value)) }

    /// Compact single-line form.
    var compact: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .string(let string):
            JSON.writeString(string, to: &out)
        case .integer(let value):
            out += String(value)
        case .null:
            out += "null"
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += ", " }
                item.write(to: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (index, (key, value)) in fields.enumerated() {
                if index > 0 { out += ", " }
                JSON.writeString(key, to: &out)
                out += ": "
                value.write(to: &out)
            }
            out += "}"
        }
    }

    private static func writeString(_ string: String, to out: inout String) {
        out += "\""
        for unit in string.utf16 {
            switch unit {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20..<0x7F: out += String(UnicodeScalar(UInt8(unit)))
            default:
                let digits = String(unit, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
            }
        }
        out += "\""
    }
}

enum Hex {
    static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var chars: [UInt8] = []
        chars.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            chars.append(digits[Int(byte >> 4)])
            chars.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: chars, as: UTF8.self)
    }
}

/// The file layout: the top-level object with `parties` and `steps` spread over lines.
func renderTranscript(header: [(String, JSON)], parties: [[(String, JSON)]], steps: [JSON]) -> String {
    var out = "{\n"
    for (key, value) in header {
        out += "  " + JSON.string(key).compact + ": " + value.compact + ",\n"
    }
    out += "  \"parties\": [\n"
    for (partyIndex, party) in parties.enumerated() {
        out += "    {\n"
        for (fieldIndex, (key, value)) in party.enumerated() {
            out += "      " + JSON.string(key).compact + ": "
            if case .array(let items) = value, !items.isEmpty {
                out += "[\n"
                for (itemIndex, item) in items.enumerated() {
                    out += "        " + item.compact + (itemIndex + 1 < items.count ? ",\n" : "\n")
                }
                out += "      ]"
            } else {
                out += value.compact
            }
            out += fieldIndex + 1 < party.count ? ",\n" : "\n"
        }
        out += "    }" + (partyIndex + 1 < parties.count ? ",\n" : "\n")
    }
    out += "  ],\n"
    out += "  \"steps\": [\n"
    for (index, step) in steps.enumerated() {
        out += "    " + step.compact + (index + 1 < steps.count ? ",\n" : "\n")
    }
    out += "  ]\n}\n"
    return out
}
