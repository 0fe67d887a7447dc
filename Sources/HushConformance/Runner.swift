import Foundation
import Hush

/// Runs test-vector files: detects each file's format, runs every case, reports counts.
///
/// Formats: Wycheproof (`xdh_comp`, `eddsa_verify`, `aead_test`, `hkdf_test`, `mac_test`,
/// `ind_cpa_test`), Hush's own `hush-kat/1`, and the Signal v3 transcripts
/// (`signal-v3-session-vectors/1`). Other JSON files are skipped with a reason.
public struct ConformanceRunner: Sendable {
    /// Run cases marked slow (the 1,000,000-iteration X25519 case).
    public var includeSlow: Bool

    public init(includeSlow: Bool = false) {
        self.includeSlow = includeSlow
    }

    /// The JSON files to run for the given paths: a file as is, a directory recursively
    /// (only `*.json`, sorted). A path that does not exist becomes a failing report.
    public func files(for paths: [String]) -> (files: [String], missing: [String]) {
        var files: [String] = []
        var missing: [String] = []
        let fm = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
                missing.append(path)
                continue
            }
            if isDirectory.boolValue {
                let found = (fm.enumerator(atPath: path)?.allObjects as? [String] ?? [])
                    .filter { $0.hasSuffix(".json") }
                    .sorted()
                files += found.map { (path as NSString).appendingPathComponent($0) }
            } else {
                files.append(path)
            }
        }
        return (files, missing)
    }

    /// Runs every file under `paths`.
    public func run(paths: [String]) -> [FileReport] {
        let (files, missing) = files(for: paths)
        var reports = missing.map { path -> FileReport in
            var r = FileReport(path: path, format: "?")
            r.fileError = "no such file or directory"
            return r
        }
        reports += files.map(run(file:))
        return reports
    }

    /// Runs one file.
    public func run(file path: String) -> FileReport {
        var report = FileReport(path: path, format: "?")
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            report.fileError = VectorError.unreadable(path: path, reason: "\(error.localizedDescription)").description
            return report
        }
        run(data: data, report: &report)
        return report
    }

    /// Runs one file's contents (exposed for tests and fuzzing).
    public func run(data: Data, path: String = "<memory>") -> FileReport {
        var report = FileReport(path: path, format: "?")
        run(data: data, report: &report)
        return report
    }

    private func run(data: Data, report: inout FileReport) {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            report.fileError = VectorError.malformedJSON(path: report.path).description
            return
        }
        let root = Fields(object)
        do {
            if root.has("schema"), root.has("testGroups") {
                try Wycheproof.run(root, report: &report)
            } else if let format = try? root.string("format") {
                switch format {
                case HushKAT.format: try HushKAT.run(root, report: &report, includeSlow: includeSlow)
                case SignalV3.format, SignalV3.hushFormat: try SignalV3.run(root, report: &report)
                case EnvelopeVectors.format: try EnvelopeVectors.run(root, report: &report)
                case PQXDHVectors.format: try PQXDHVectors.run(root, report: &report)
                default:
                    report.format = format
                    report.skippedFile = true
                    report.fileError = "format '\(format)' not supported"
                }
            } else if NoiseVectors.matches(root) {
                try NoiseVectors.run(root, report: &report)
            } else {
                report.skippedFile = true
                report.fileError = "not a recognised vector format"
            }
        } catch {
            report.fileError = error.description
        }
        if report.cases.isEmpty && report.fileError == nil {
            report.fileError = "no test cases"
        }
    }
}

/// Totals over several files.
public struct ConformanceSummary: Sendable, Equatable {
    public var passed = 0
    public var failed = 0
    public var skipped = 0

    public init(_ reports: [FileReport]) {
        for r in reports {
            passed += r.passed
            failed += r.failed
            skipped += r.skipped
        }
    }

    /// `N passed, M failed` with `, K skipped` when any were skipped.
    public var line: String {
        "\(passed) passed, \(failed) failed" + (skipped > 0 ? ", \(skipped) skipped" : "")
    }
}

extension FileReport {
    /// One line: status, path, format and counts.
    public var line: String {
        let status = failed > 0 ? "FAIL" : (skippedFile || passed == 0 ? "SKIP" : "PASS")
        var text = "\(status)  \(path)  [\(format)]  \(passed) passed, \(failed) failed"
        if skipped > 0 { text += ", \(skipped) skipped" }
        let acc = acceptable
        if acc.accepted + acc.rejected > 0 { text += " (acceptable: \(acc.accepted) accepted, \(acc.rejected) rejected)" }
        if let fileError { text += "  — \(fileError)" }
        return text
    }

    /// Lines describing each failed case.
    public var failureLines: [String] {
        cases.compactMap { c in
            if case .failed(let why) = c.outcome { return "    case \(c.id): \(why)" }
            return nil
        }
    }
}
