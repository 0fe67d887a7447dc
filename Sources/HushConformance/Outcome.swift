/// What happened to one vector case.
public enum CaseOutcome: Equatable, Sendable {
    /// The implementation did what the vector requires.
    case passed
    /// An `acceptable` Wycheproof case: either behaviour is allowed; `accepted` says which.
    case acceptable(accepted: Bool)
    /// The implementation disagreed with the vector, or the case could not be read.
    case failed(String)
    /// Not run, with the reason.
    case skipped(String)
}

/// The result of one vector file.
public struct FileReport: Sendable {
    /// The file's path as given or found.
    public let path: String
    /// The detected format, e.g. `wycheproof/xdh_comp` or `hush-kat/x25519`.
    public var format: String
    /// Case ids and outcomes, in file order.
    public var cases: [(id: String, outcome: CaseOutcome)] = []
    /// A file-level problem (unreadable, malformed, unsupported), if any.
    public var fileError: String?
    /// `true` when the whole file was skipped on purpose (unsupported schema or format).
    public var skippedFile = false

    public init(path: String, format: String) {
        self.path = path
        self.format = format
    }

    public var passed: Int { cases.filter { if case .passed = $0.outcome { true } else if case .acceptable = $0.outcome { true } else { false } }.count }
    public var failed: Int { cases.filter { if case .failed = $0.outcome { true } else { false } }.count + (fileError != nil && !skippedFile ? 1 : 0) }
    public var skipped: Int { cases.filter { if case .skipped = $0.outcome { true } else { false } }.count }
    public var acceptable: (accepted: Int, rejected: Int) {
        var accepted = 0, rejected = 0
        for c in cases { if case .acceptable(let a) = c.outcome { if a { accepted += 1 } else { rejected += 1 } } }
        return (accepted, rejected)
    }

    mutating func record(_ id: String, _ outcome: CaseOutcome) { cases.append((id, outcome)) }

    /// Runs `body` for one case, turning a ``VectorError`` into a failure of that case.
    mutating func run(_ id: String, _ body: () throws(VectorError) -> CaseOutcome) {
        do { record(id, try body()) } catch { record(id, .failed("malformed case: \(error)")) }
    }
}

/// Turns "the implementation accepted or rejected" into an outcome for a Wycheproof-style
/// `result` of `valid`, `invalid` or `acceptable`.
func judge(result: String, accepted: Bool, detail: @autoclosure () -> String) -> CaseOutcome {
    switch result {
    case "valid": return accepted ? .passed : .failed("valid case rejected: \(detail())")
    case "invalid": return accepted ? .failed("invalid case accepted: \(detail())") : .passed
    case "acceptable": return .acceptable(accepted: accepted)
    default: return .failed("unknown result '\(result)'")
    }
}
