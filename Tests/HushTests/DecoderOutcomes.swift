import Hush
import Testing

/// Whether a decoder's error for bad bytes is a parse error: a malformed input or a version it
/// does not read — never a cryptographic, session, store or trust error, which no decoder can
/// have a reason to report.
func isParseError(_ error: SignalProtocolError) -> Bool {
    switch error {
    case .malformed, .invalidVersion, .legacyVersion, .suiteMismatch: true
    default: false
    }
}

/// Decodes `input` with `decode`: a value must re-encode to exactly `input`, an error must be a
/// parse error (``isParseError(_:)``). Returns whether it decoded.
@discardableResult
func expectParse<Value>(
    _ input: [UInt8], _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ decode: ([UInt8]) throws(SignalProtocolError) -> Value, encoded: (Value) -> [UInt8]
) -> Bool {
    do {
        let value = try decode(input)
        #expect(encoded(value) == input, "\(what) of \(Hex.encode(input)) does not re-encode", sourceLocation: sourceLocation)
        return true
    } catch {
        #expect(isParseError(error), "\(what) of \(Hex.encode(input)) failed with \(error)", sourceLocation: sourceLocation)
        return false
    }
}
