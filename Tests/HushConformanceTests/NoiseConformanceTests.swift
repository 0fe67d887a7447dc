import Foundation
import HushConformance
import Testing

let cacophony = sharedVectors.appendingPathComponent("noise/cacophony-25519.json")
let hasCacophony = FileManager.default.fileExists(atPath: cacophony.path)

@Suite struct NoiseConformanceTests {
    /// XX, IK and NK with 25519/ChaChaPoly/SHA256 replay; the other 174 protocols are skipped.
    @Test(.enabled(if: hasCacophony, "needs ../shared/vectors/noise"))
    func theThreeProtocolsPassAndTheRestAreSkipped() {
        let report = ConformanceRunner().run(file: cacophony.path)
        #expect(report.format == "cacophony")
        #expect(report.fileError == nil)
        #expect(report.failed == 0, "\(report.failureLines.joined(separator: "\n"))")
        #expect(report.cases.filter { $0.outcome == .passed }.map(\.id).sorted() == [
            "Noise_IK_25519_ChaChaPoly_SHA256", "Noise_NK_25519_ChaChaPoly_SHA256", "Noise_XX_25519_ChaChaPoly_SHA256",
        ])
        #expect(report.skipped == 174)
        #expect(report.line.hasPrefix("PASS"))
    }

    /// One changed byte anywhere in a replayed vector — a handshake message, the handshake hash,
    /// a transport message, a payload — makes its case fail.
    @Test(.enabled(if: hasCacophony, "needs ../shared/vectors/noise"))
    func aChangedByteFails() throws {
        let root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: cacophony)) as? [String: Any])
        let vectors = try #require(root["vectors"] as? [[String: Any]])
        let ik = try #require(vectors.first { $0["protocol_name"] as? String == "Noise_IK_25519_ChaChaPoly_SHA256" })
        func flipped(_ hex: String) -> String { String(hex.dropLast()) + (hex.last == "0" ? "1" : "0") }
        var variants: [[String: Any]] = []
        for index in 0..<(ik["messages"] as! [[String: String]]).count {
            for field in ["ciphertext", "payload"] {
                var v = ik
                var messages = v["messages"] as! [[String: String]]
                messages[index][field] = flipped(messages[index][field]!)
                v["messages"] = messages
                variants.append(v)
            }
        }
        var v = ik
        v["handshake_hash"] = flipped(ik["handshake_hash"] as! String)
        variants.append(v)
        for variant in variants {
            let data = try JSONSerialization.data(withJSONObject: ["vectors": [variant]])
            let report = ConformanceRunner().run(data: data)
            #expect(report.failed == 1 && report.passed == 0, "\(report.line)")
        }
    }
}

/// TestVectors/noise: sessions from PyPI's noiseprotocol (another implementation), with rekeys;
/// present in the repository, so they run without ../shared.
@Suite struct NoiseProjectVectorTests {
    static let file = packageRoot.appendingPathComponent("TestVectors/noise/noiseprotocol-25519.json")

    @Test func everySessionReplays() {
        let report = ConformanceRunner().run(file: Self.file.path)
        #expect(report.failed == 0, "\(report.failureLines.joined(separator: "\n"))")
        #expect(report.passed == 6 && report.skipped == 0)
        #expect(Set(report.cases.map(\.id)) == [
            "Noise_XX_25519_ChaChaPoly_SHA256", "Noise_IK_25519_ChaChaPoly_SHA256", "Noise_NK_25519_ChaChaPoly_SHA256",
        ])
    }

    /// Without a rekey where noiseprotocol did one, the following message no longer matches.
    @Test func theRekeysAreChecked() throws {
        var root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.file)) as? [String: Any])
        var vectors = try #require(root["vectors"] as? [[String: Any]])
        var rekeyed = 0
        for (v, vector) in vectors.enumerated() {
            var messages = vector["messages"] as! [[String: Any]]
            guard let index = messages.firstIndex(where: { $0["rekey"] as? Bool == true }) else { continue }
            messages[index]["rekey"] = nil
            vectors[v]["messages"] = messages
            rekeyed += 1
        }
        #expect(rekeyed == 3)
        root["vectors"] = vectors
        let report = ConformanceRunner().run(data: try JSONSerialization.data(withJSONObject: root))
        #expect(report.failed == 3 && report.passed == 3)
    }
}
