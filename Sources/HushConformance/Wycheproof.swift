import Hush

/// Wycheproof JSON vectors (github.com/C2SP/wycheproof): `testGroups[].tests[]`, each with a
/// `tcId` and a `result` of `valid`, `invalid` or `acceptable`.
enum Wycheproof {
    /// The schemas this runner understands, by the prefix of the file's `schema` field.
    static let schemas = ["xdh_comp", "eddsa_verify", "aead_test", "hkdf_test", "mac_test", "ind_cpa_test",
                          "mlkem_test", "mlkem_keygen_seed_test", "mlkem_encaps_test"]

    static func run(_ root: Fields, report: inout FileReport) throws(VectorError) {
        let schemaField = try root.string("schema")
        let algorithm = (try? root.string("algorithm")) ?? ""
        guard let schema = schemas.first(where: { schemaField.hasPrefix($0) }) else {
            report.format = "wycheproof/\(schemaField)"
            report.skippedFile = true
            report.fileError = "schema not supported by Hush"
            return
        }
        report.format = "wycheproof/\(schema) \(algorithm)"
        for group in try root.objects("testGroups") {
            for test in try group.objects("tests") {
                let id = (try? test.int("tcId")).map(String.init) ?? "?"
                report.run(id) { () throws(VectorError) -> CaseOutcome in
                    let result = try test.string("result")
                    if schema.hasPrefix("mlkem") {
                        return try MLKEMChecks.check(schema: schema, group: group, test: test, result: result)
                            ?? .skipped("not ML-KEM-1024")
                    }
                    guard let check = try check(schema: schema, algorithm: algorithm, group: group, test: test, result: result) else {
                        return .skipped("\(algorithm) is not a primitive Hush provides")
                    }
                    return judge(result: result, accepted: check.accepted, detail: check.detail)
                }
            }
        }
    }

    /// `nil` when the algorithm is outside what Hush implements (the case is skipped).
    static func check(schema: String, algorithm: String, group: Fields, test: Fields, result: String) throws(VectorError) -> Check? {
        switch schema {
        case "xdh_comp":
            guard (try? group.string("curve")) == "curve25519" else { return nil }
            return PrimitiveChecks.x25519(privateKey: try test.hex("private"), publicKey: try test.hex("public"), shared: try test.hex("shared"))
        case "eddsa_verify":
            let key = try Fields(group.object["publicKey"], name: "publicKey")
            guard (try? key.string("curve")) == "edwards25519" else { return nil }
            return PrimitiveChecks.ed25519Verify(publicKey: try key.hex("pk"), message: try test.hex("msg"), signature: try test.hex("sig"))
        case "aead_test":
            let kind: PrimitiveChecks.AEADKind
            switch algorithm {
            case "CHACHA20-POLY1305": kind = .chacha
            case "XCHACHA20-POLY1305": kind = .xchacha
            default: return nil
            }
            return PrimitiveChecks.aead(
                kind, key: try test.hex("key"), nonce: try test.hex("iv"), aad: try test.hex("aad"),
                plaintext: try test.hex("msg"), ciphertext: try test.hex("ct"), tag: try test.hex("tag"),
                expectValid: result == "valid")
        case "hkdf_test":
            guard algorithm == "HKDF-SHA-256" else { return nil }
            return PrimitiveChecks.hkdfSHA256(
                ikm: try test.hex("ikm"), salt: try test.hex("salt"), info: try test.hex("info"),
                length: try test.int("size"), prk: nil, okm: try test.hex("okm"))
        case "mac_test":
            guard algorithm == "HMACSHA256" else { return nil }
            let tagBits = try group.int("tagSize")
            let tag = try test.hex("tag")
            guard tag.count * 8 <= tagBits else {
                throw .badValue(field: "tag", reason: "longer than the group's tagSize")
            }
            return PrimitiveChecks.hmacSHA256(key: try test.hex("key"), message: try test.hex("msg"), tag: tag)
        case "ind_cpa_test":
            guard algorithm == "AES-CBC-PKCS5" else { return nil }
            return PrimitiveChecks.aesCBC(
                key: try test.hex("key"), iv: try test.hex("iv"), plaintext: try test.hex("msg"),
                ciphertext: try test.hex("ct"), padding: .pkcs7, expectValid: result == "valid")
        default:
            return nil
        }
    }
}
