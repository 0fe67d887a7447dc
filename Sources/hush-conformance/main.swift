import Foundation
import HushConformance

// hush-conformance [--slow] [--quiet] [FILE|DIR ...]
// Runs every vector file (default: TestVectors/), prints one line per file and a closing
// "N passed, M failed[, K skipped]" line; exits 1 if anything failed, 2 on bad usage.
var paths: [String] = []
var runner = ConformanceRunner()
var quiet = false
for argument in CommandLine.arguments.dropFirst() {
    switch argument {
    case "--slow": runner.includeSlow = true
    case "--quiet", "-q": quiet = true
    case "--help", "-h":
        print("""
        usage: hush-conformance [--slow] [--quiet] [FILE|DIR ...]
          Runs test vectors (Wycheproof JSON, hush-kat/1, signal-v3-session-vectors/1, cacophony Noise).
          Directories are searched recursively for *.json. Default: TestVectors/
          --slow   also run cases marked slow (X25519 iterated 1,000,000 times)
          --quiet  print only failing files and the summary
        """)
        exit(0)
    default:
        if argument.hasPrefix("-") {
            FileHandle.standardError.write(Data("hush-conformance: unknown option \(argument)\n".utf8))
            exit(2)
        }
        paths.append(argument)
    }
}
if paths.isEmpty { paths = ["TestVectors"] }

var reports: [FileReport] = []
for path in paths {
    for report in runner.run(paths: [path]) {
        if !quiet || report.failed > 0 {
            print(report.line)
            for line in report.failureLines.prefix(20) { print(line) }
        }
        reports.append(report)
    }
}
let summary = ConformanceSummary(reports)
print(summary.line)
exit(summary.failed == 0 ? 0 : 1)
