import Foundation
import HushConformance
import Testing

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let sharedVectors = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/vectors")
let wycheproofDir = sharedVectors.appendingPathComponent("wycheproof")
let hasWycheproof = FileManager.default.fileExists(atPath: wycheproofDir.path)
/// In CI (environment `CI=true`) the suites that need `../shared/vectors` always run, so that a
/// missing directory fails them instead of disabling them; on a developer machine without it
/// they are skipped with a reason.
let runningInCI = ["1", "true", "yes"].contains(ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? "")
func hasShared(_ path: String) -> Bool { FileManager.default.fileExists(atPath: sharedVectors.appendingPathComponent(path).path) }

/// CI must have the shared vectors: this names what is missing.
@Test(.enabled(if: runningInCI, "only with CI=true: a developer machine may lack ../shared/vectors"))
func sharedVectorsArePresentInCI() {
    for directory in ["wycheproof", "signal-v3"] {
        #expect(hasShared(directory), "../shared/vectors/\(directory) is missing: the suites that need it fail in CI")
    }
}

/// The seven Wycheproof files the foundation must pass completely, with their case counts.
let requiredWycheproof: [(file: String, cases: Int, outputField: String)] = [
    ("x25519_test.json", 518, "shared"),
    ("ed25519_test.json", 151, "sig"),
    ("chacha20_poly1305_test.json", 325, "ct"),
    ("xchacha20_poly1305_test.json", 315, "tag"),
    ("hkdf_sha256_test.json", 86, "okm"),
    ("hmac_sha256_test.json", 174, "tag"),
    ("aes_cbc_pkcs5_test.json", 216, "ct"),
]

@Suite struct WycheproofConformanceTests {
    @Test(.enabled(if: hasWycheproof || runningInCI, "needs ../shared/vectors/wycheproof (always runs with CI=true)"), arguments: requiredWycheproof.map(\.file))
    func everyCasePasses(file: String) {
        let expected = requiredWycheproof.first { $0.file == file }!.cases
        let report = ConformanceRunner().run(file: wycheproofDir.appendingPathComponent(file).path)
        #expect(report.fileError == nil)
        #expect(report.failed == 0, "\(report.failureLines.joined(separator: "\n"))")
        #expect(report.skipped == 0)
        #expect(report.passed == expected)
    }

    @Test(.enabled(if: hasWycheproof || runningInCI, "needs ../shared/vectors/wycheproof (always runs with CI=true)"))
    func totalOverTheSevenFiles() {
        let reports = requiredWycheproof.map { ConformanceRunner().run(file: wycheproofDir.appendingPathComponent($0.file).path) }
        let summary = ConformanceSummary(reports)
        #expect(summary == { var s = ConformanceSummary([]); s.passed = 1785; return s }())
        #expect(summary.line == "1785 passed, 0 failed")
    }

    /// Changing one byte of the expected output of any valid case makes the file fail.
    @Test(.enabled(if: hasWycheproof || runningInCI, "needs ../shared/vectors/wycheproof (always runs with CI=true)"), arguments: requiredWycheproof.map(\.file))
    func aCorruptedVectorFails(file: String) throws {
        let field = requiredWycheproof.first { $0.file == file }!.outputField
        let data = try Data(contentsOf: wycheproofDir.appendingPathComponent(file))
        var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var groups = json["testGroups"] as! [[String: Any]]
        var tests = groups[0]["tests"] as! [[String: Any]]
        let index = try #require(tests.firstIndex { ($0["result"] as? String) == "valid" && !(($0[field] as? String) ?? "").isEmpty })
        var value = Array(tests[index][field] as! String)
        value[0] = value[0] == "0" ? "1" : "0"
        tests[index][field] = String(value)
        groups[0]["tests"] = tests
        json["testGroups"] = groups
        let corrupted = try JSONSerialization.data(withJSONObject: json)
        let report = ConformanceRunner().run(data: corrupted, path: file)
        #expect(report.failed == 1, "\(report.line)")
        #expect(report.failureLines.count == 1)
    }
}

@Suite struct PrimitiveCheckTests {
    /// An XEdDSA KAT whose listed public key differs from the private key's in one low bit of
    /// byte 31 (the first 31 bytes agree) fails; one that differs only in bit 7 of byte 31, which
    /// libsignal's verification ignores, passes under the libsignal-compatible policy.
    @Test func xeddsaKeyMismatchInTheLastByteFails() throws {
        let url = packageRoot.appendingPathComponent("TestVectors/xeddsa-libsignal.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let cases = try #require(json["cases"] as? [[String: Any]])
        let valid = try #require(cases.first { ($0["result"] as? String) == "valid" && $0["private"] != nil && $0["random"] != nil
                                              && ($0["policy"] as? String ?? "libsignal-compatible") == "libsignal-compatible" })
        func run(lastByteMask: UInt8) throws -> FileReport {
            var key = Array(try #require(valid["public"] as? String))
            let last = UInt8(String(key[62...63]), radix: 16)! ^ lastByteMask
            key.replaceSubrange(62...63, with: Array(String(format: "%02x", last)))
            var c = valid
            c["public"] = String(key)
            json["cases"] = [c]
            return ConformanceRunner().run(data: try JSONSerialization.data(withJSONObject: json))
        }
        #expect(try run(lastByteMask: 0).passed == 1)
        #expect(try run(lastByteMask: 0x01).failed == 1)
        #expect(try run(lastByteMask: 0x40).failed == 1)
        #expect(try run(lastByteMask: 0x80).passed == 1)
    }
}

@Suite struct RunnerRobustnessTests {
    @Test func malformedJSONIsAFileFailure() {
        for bytes in ["", "{", "[1,2]", "null", "\u{0}\u{1}", "{\"format\": 3}"] {
            let report = ConformanceRunner().run(data: Data(bytes.utf8))
            #expect(report.failed >= 1 || report.skippedFile, "\(bytes.debugDescription): \(report.line)")
        }
    }

    @Test func badHexAndMissingFieldsFailTheCaseNotTheProcess() {
        let file = """
        {"format": "hush-kat/1", "algorithm": "sha256", "source": "test", "cases": [
          {"id": 1, "result": "valid", "message": "616263", "digest": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
          {"id": 2, "result": "valid", "message": "6x", "digest": "00"},
          {"id": 3, "result": "valid", "message": "616"},
          {"id": 4, "result": "maybe", "message": "", "digest": ""},
          {"id": 5, "result": "valid", "digest": "00"}
        ]}
        """
        let report = ConformanceRunner().run(data: Data(file.utf8))
        #expect(report.passed == 1)
        #expect(report.failed == 4)
    }

    /// JSON booleans are not integers, and the integer 1 is not a boolean.
    @Test func integersAndBooleansAreDistinguished() {
        let ok = #"{"format": "hush-kat/1", "algorithm": "x25519-iterated", "source": "x", "cases": [{"id": 1, "result": "valid", "iterations": 1, "k": "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"}]}"#
        #expect(ConformanceRunner().run(data: Data(ok.utf8)).passed == 1)
        for bad in ["true", "1.5", "\"1\"", "-1", "100000000000"] {
            let file = #"{"format": "hush-kat/1", "algorithm": "x25519-iterated", "source": "x", "cases": [{"id": 1, "result": "valid", "iterations": "# + bad + #", "k": "00"}]}"#
            #expect(ConformanceRunner().run(data: Data(file.utf8)).failed == 1, "\(bad)")
        }
    }

    @Test func unknownAlgorithmAndMissingPathAreFailures() {
        let file = #"{"format": "hush-kat/1", "algorithm": "rot13", "source": "x", "cases": [{"id": 1, "result": "valid"}]}"#
        #expect(ConformanceRunner().run(data: Data(file.utf8)).failed == 1)
        let reports = ConformanceRunner().run(paths: ["/nonexistent/vectors"])
        #expect(ConformanceSummary(reports).failed == 1)
    }

    @Test func summaryLineFormat() {
        var s = ConformanceSummary([])
        s.passed = 3
        #expect(s.line == "3 passed, 0 failed")
        s.skipped = 2
        s.failed = 1
        #expect(s.line == "3 passed, 1 failed, 2 skipped")
    }

    /// Random byte strings and random mutations of a real file never crash the runner.
    @Test func garbageNeverCrashes() throws {
        var generator = SystemRandomNumberGenerator()
        let seedFile = #"{"format": "hush-kat/1", "algorithm": "hmac-sha256", "source": "x", "cases": [{"id": 1, "result": "valid", "key": "0b0b", "message": "00", "tag": "0000000000000000"}]}"#
        let base = Array(seedFile.utf8)
        for _ in 0..<500 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            _ = ConformanceRunner().run(data: Data(bytes))
            _ = ConformanceRunner().run(data: Data((0..<Int.random(in: 0..<64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }))
        }
    }
}

@Suite struct ProjectVectorTests {
    /// Everything in TestVectors/ passes (slow cases skipped).
    @Test func testVectorsDirectoryPasses() {
        let reports = ConformanceRunner().run(paths: [packageRoot.appendingPathComponent("TestVectors").path])
        let summary = ConformanceSummary(reports)
        for r in reports where r.failed > 0 { Issue.record("\(r.line)\n\(r.failureLines.joined(separator: "\n"))") }
        #expect(summary.failed == 0)
        #expect(summary.passed > 100)
    }

    @Test(.enabled(if: hasShared("signal-v3") || runningInCI, "needs ../shared/vectors/signal-v3 (always runs with CI=true)"))
    func signalTranscriptsReplay() {
        let reports = ConformanceRunner().run(paths: [sharedVectors.appendingPathComponent("signal-v3").path])
        for r in reports where r.failed > 0 { Issue.record("\(r.line)\n\(r.failureLines.prefix(20).joined(separator: "\n"))") }
        #expect(reports.count >= 9)
        let summary = ConformanceSummary(reports)
        #expect(summary.failed == 0)
        #expect(summary.skipped == 0, "every step, group steps included, is replayed")
        #expect(summary.passed >= 5000)
    }

    /// A transcript whose expected bytes were altered fails: the replay really compares.
    @Test(.enabled(if: hasShared("signal-v3/basic-seed1.json") || runningInCI, "needs ../shared/vectors/signal-v3 (always runs with CI=true)"))
    func alteredTranscriptFails() throws {
        let url = sharedVectors.appendingPathComponent("signal-v3/basic-seed1.json")
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var steps = try #require(object["steps"] as? [[String: Any]])
        let original = try #require(steps[3]["ciphertext"] as? String)
        steps[3]["ciphertext"] = String(original.dropLast(2)) + (original.hasSuffix("00") ? "01" : "00")
        object["steps"] = steps
        let report = ConformanceRunner().run(data: try JSONSerialization.data(withJSONObject: object))
        #expect(report.failed >= 1)
        #expect(report.failureLines.contains { $0.contains("step.3.encrypt") })
    }
}
