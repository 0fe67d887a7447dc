import Foundation
import Hush

/// Why a vector file or one of its cases could not be read. Every malformed input gives one
/// of these; nothing in the runner traps on bad data.
public enum VectorError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read.
    case unreadable(path: String, reason: String)
    /// The file is not valid JSON, or its top level is not an object.
    case malformedJSON(path: String)
    /// A required field is missing or has the wrong JSON type.
    case missingField(String)
    /// A hex field is not valid hex.
    case badHex(field: String, HexError)
    /// A field holds a value the format does not allow.
    case badValue(field: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
        case .malformedJSON(let path): return "\(path) is not a JSON object"
        case .missingField(let field): return "missing or mistyped field '\(field)'"
        case .badHex(let field, let error): return "field '\(field)' is not hex (\(error))"
        case .badValue(let field, let reason): return "field '\(field)': \(reason)"
        }
    }
}

/// A JSON object with typed accessors that throw ``VectorError`` instead of trapping.
struct Fields {
    let object: [String: Any]

    init(_ object: [String: Any]) { self.object = object }

    init(_ any: Any?, name: String) throws(VectorError) {
        guard let object = any as? [String: Any] else { throw .missingField(name) }
        self.object = object
    }

    func has(_ key: String) -> Bool { object[key] != nil && !(object[key] is NSNull) }

    func string(_ key: String) throws(VectorError) -> String {
        guard let value = object[key] as? String else { throw .missingField(key) }
        return value
    }

    func optionalString(_ key: String) throws(VectorError) -> String? {
        guard has(key) else { return nil }
        return try string(key)
    }

    func hex(_ key: String) throws(VectorError) -> [UInt8] {
        let text = try string(key)
        do { return try Hex.decode(text) } catch { throw .badHex(field: key, error) }
    }

    func optionalHex(_ key: String) throws(VectorError) -> [UInt8]? {
        guard has(key) else { return nil }
        return try hex(key)
    }

    func int(_ key: String) throws(VectorError) -> Int {
        // JSONSerialization gives NSNumber for numbers and booleans alike; booleans have the
        // Objective-C type "c" (and `is Bool` is also true for the number 1, so it cannot be used).
        guard let number = object[key] as? NSNumber, String(cString: number.objCType) != "c",
              let value = object[key] as? Int, Double(value) == number.doubleValue
        else { throw .missingField(key) }
        return value
    }

    func optionalInt(_ key: String) throws(VectorError) -> Int? {
        guard has(key) else { return nil }
        return try int(key)
    }

    func bool(_ key: String, default value: Bool) -> Bool {
        (object[key] as? Bool) ?? value
    }

    func array(_ key: String) throws(VectorError) -> [Any] {
        guard let value = object[key] as? [Any] else { throw .missingField(key) }
        return value
    }

    func objects(_ key: String) throws(VectorError) -> [Fields] {
        var out: [Fields] = []
        for element in try array(key) { out.append(try Fields(element, name: key + "[]")) }
        return out
    }
}
