import Hush

/// The project's own known-answer format, `hush-kat/1` (documented in
/// TestVectors/README.md): `{format, algorithm, source, description, cases[]}`, each case
/// with an `id`, a `result` (`valid`/`invalid`) and the algorithm's fields.
enum HushKAT {
    static let format = "hush-kat/1"

    static func run(_ root: Fields, report: inout FileReport, includeSlow: Bool) throws(VectorError) {
        let algorithm = try root.string("algorithm")
        _ = try root.string("source")  // every file names its source
        report.format = "\(format) \(algorithm)"
        for test in try root.objects("cases") {
            let id = (try? test.int("id")).map(String.init) ?? "?"
            report.run(id) { () throws(VectorError) -> CaseOutcome in
                let result = try test.string("result")
                guard result == "valid" || result == "invalid" else {
                    throw .badValue(field: "result", reason: "must be valid or invalid")
                }
                if test.bool("slow", default: false) && !includeSlow {
                    return .skipped("slow case (run with --slow)")
                }
                let check = try check(algorithm: algorithm, test: test, valid: result == "valid")
                return judge(result: result, accepted: check.accepted, detail: check.detail)
            }
        }
    }

    static func check(algorithm: String, test: Fields, valid: Bool) throws(VectorError) -> Check {
        switch algorithm {
        case "x25519":
            return PrimitiveChecks.x25519(privateKey: try test.hex("private"), publicKey: try test.hex("public"), shared: try test.hex("shared"))
        case "x25519-iterated":
            let iterations = try test.int("iterations")
            guard (0...10_000_000).contains(iterations) else {
                throw .badValue(field: "iterations", reason: "must be between 0 and 10,000,000")
            }
            return PrimitiveChecks.x25519Iterated(iterations: iterations, expected: try test.hex("k"))
        case "ed25519":
            let publicKey = try test.hex("public_key"), message = try test.hex("message"), signature = try test.hex("signature")
            if valid, let seed = try test.optionalHex("secret_key") {
                return PrimitiveChecks.ed25519Sign(seed: seed, publicKey: publicKey, message: message, signature: signature)
            }
            return PrimitiveChecks.ed25519Verify(publicKey: publicKey, message: message, signature: signature)
        case "hkdf-sha256":
            return PrimitiveChecks.hkdfSHA256(
                ikm: try test.hex("ikm"), salt: try test.hex("salt"), info: try test.hex("info"),
                length: try test.int("length"), prk: try test.optionalHex("prk"), okm: try test.hex("okm"))
        case "hmac-sha256":
            return PrimitiveChecks.hmacSHA256(key: try test.hex("key"), message: try test.hex("message"), tag: try test.hex("tag"))
        case "chacha20-poly1305", "xchacha20-poly1305":
            return PrimitiveChecks.aead(
                algorithm == "chacha20-poly1305" ? .chacha : .xchacha,
                key: try test.hex("key"), nonce: try test.hex("nonce"), aad: try test.hex("aad"),
                plaintext: try test.hex("plaintext"), ciphertext: try test.hex("ciphertext"), tag: try test.hex("tag"),
                expectValid: valid)
        case "aes-cbc":
            let padding: AES.Padding
            switch try test.string("padding") {
            case "none": padding = .none
            case "pkcs7": padding = .pkcs7
            default: throw .badValue(field: "padding", reason: "must be none or pkcs7")
            }
            return PrimitiveChecks.aesCBC(
                key: try test.hex("key"), iv: try test.hex("iv"), plaintext: try test.hex("plaintext"),
                ciphertext: try test.hex("ciphertext"), padding: padding, expectValid: valid)
        case "aes-ctr":
            return PrimitiveChecks.aesCTR(
                key: try test.hex("key"), counter: try test.hex("counter"),
                plaintext: try test.hex("plaintext"), ciphertext: try test.hex("ciphertext"))
        case "sha256", "sha512":
            return PrimitiveChecks.digest(sha512: algorithm == "sha512", message: try test.hex("message"), digest: try test.hex("digest"))
        case "xeddsa":
            let variant: XEdDSA.Variant
            switch try test.string("variant") {
            case "libsignal": variant = .libsignal
            case "specification": variant = .specification
            default: throw .badValue(field: "variant", reason: "must be libsignal or specification")
            }
            let policy: XEdDSA.VerificationPolicy
            switch try test.optionalString("policy") ?? "libsignal-compatible" {
            case "libsignal-compatible": policy = .libsignalCompatible
            case "specification-only": policy = .specificationOnly
            default: throw .badValue(field: "policy", reason: "must be libsignal-compatible or specification-only")
            }
            return PrimitiveChecks.xeddsa(
                privateKey: valid ? try test.optionalHex("private") : nil, publicKey: try test.hex("public"),
                message: try test.hex("message"), signature: try test.hex("signature"),
                randomness: valid ? try test.optionalHex("random") : nil, variant: variant, policy: policy)
        default:
            throw .badValue(field: "algorithm", reason: "unknown algorithm '\(algorithm)'")
        }
    }
}
