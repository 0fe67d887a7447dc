import Foundation
import HushConformance
import Testing

/// Wycheproof's ML-KEM-1024 files through HushPQ (swift-crypto), with their exact counts.
@Suite struct MLKEMWycheproofTests {
    static let files: [(file: String, passed: Int, skipped: Int)] = [
        ("mlkem_1024_test.json", 193, 0),
        ("mlkem_1024_keygen_seed_test.json", 100, 0),
        // The 133 valid cases fix the encapsulation randomness m: not in swift-crypto's API.
        ("mlkem_1024_encaps_test.json", 136, 133),
    ]

    @Test(.enabled(if: hasWycheproof || runningInCI, "needs ../shared/vectors/wycheproof (always runs with CI=true)"), arguments: files.map(\.file))
    func everyCheckableCasePasses(file: String) {
        let expected = Self.files.first { $0.file == file }!
        let report = ConformanceRunner().run(file: wycheproofDir.appendingPathComponent(file).path)
        #expect(report.fileError == nil)
        #expect(report.failed == 0, "\(report.failureLines.joined(separator: "\n"))")
        #expect(report.passed == expected.passed)
        #expect(report.skipped == expected.skipped)
    }

    /// A changed byte of a valid case's `K` fails the decapsulation file.
    @Test(.enabled(if: hasWycheproof || runningInCI, "needs ../shared/vectors/wycheproof (always runs with CI=true)"))
    func aCorruptedSharedSecretFails() throws {
        let data = try Data(contentsOf: wycheproofDir.appendingPathComponent("mlkem_1024_test.json"))
        var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var groups = json["testGroups"] as! [[String: Any]]
        var tests = groups[0]["tests"] as! [[String: Any]]
        var k = Array(tests[0]["K"] as! String)
        k[0] = k[0] == "0" ? "1" : "0"
        tests[0]["K"] = String(k)
        groups[0]["tests"] = tests
        json["testGroups"] = groups
        let report = ConformanceRunner().run(data: try JSONSerialization.data(withJSONObject: json))
        #expect(report.failed == 1)
    }
}

/// TestVectors/pqxdh: both roles and every rejection, in both suites.
@Suite struct PQXDHVectorTests {
    @Test(arguments: ["signal-v3.json", "hush-1.json"])
    func scenarioReplays(file: String) {
        let report = ConformanceRunner().run(file: packageRoot.appendingPathComponent("TestVectors/pqxdh/\(file)").path)
        #expect(report.fileError == nil)
        #expect(report.failed == 0, "\(report.failureLines.joined(separator: "\n"))")
        let parsing = file == "signal-v3.json"
            ? ["v4_missing_kyber_prekey_id", "v4_missing_kyber_ciphertext", "v4_kyber_ciphertext_type_byte",
               "v4_kyber_ciphertext_one_byte_short", "v4_kyber_prekey_id_length_delimited", "v4_kyber_ciphertext_as_varint",
               "v3_outer_version_with_kyber_fields", "v5_outer_version"]
            : ["flag_bit_2_set", "kem_ciphertext_truncated", "no_inner_message"]
        let expected = ["alice", "bob", "kem_ciphertext_bit_flipped", "unknown_kyber_prekey", "reused_one_time_kyber_prekey",
                        "x3dh_refused_by_policy", "x3dh_unknown_signed_prekey_refused_by_policy", "low_order_base_key_unknown_kyber_prekey"]
            + parsing
            + ["last_resort_kyber_prekey_first", "last_resort_kyber_prekey_again", "bad_kyber_prekey_signature",
               "stripped_bundle_refused_by_policy", "kyber_public_key_out_of_range", "untrusted_identity_before_kyber_signature",
               "kyber_signature_before_low_order_one_time_prekey", "low_order_one_time_prekey"]
        #expect(report.passed == expected.count)
        #expect(report.cases.map(\.id) == expected)
    }

    /// One flipped byte of the first message fails Alice's and Bob's cases.
    @Test func aCorruptedMessageFails() throws {
        let url = packageRoot.appendingPathComponent("TestVectors/pqxdh/hush-1.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var message = Array(json["message"] as! String)
        message[message.count - 1] = message[message.count - 1] == "0" ? "1" : "0"
        json["message"] = String(message)
        let report = ConformanceRunner().run(data: try JSONSerialization.data(withJSONObject: json))
        #expect(report.cases.filter { if case .failed = $0.outcome { true } else { false } }.map(\.id).prefix(2) == ["alice", "bob"])
    }
}
