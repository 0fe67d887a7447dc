import Hush

/// Signal v3 session transcripts made by libsignal-protocol-c (`signal-v3-session-vectors/1`,
/// described in the shared vectors' FORMAT.md).
///
/// This runner checks what the primitives layer can: every signed prekey signature in the
/// parties verifies and is reproduced byte for byte from its listed randomness, and every
/// listed key pair is consistent. Replaying the session steps needs the protocol layer (X3DH,
/// the Double Ratchet, sender keys); until it lands those steps are reported as skipped.
enum SignalV3 {
    static let format = "signal-v3-session-vectors/1"

    static func run(_ root: Fields, report: inout FileReport) throws(VectorError) {
        report.format = "\(format) \((try? root.string("scenario")) ?? "?")"
        for party in try root.objects("parties") {
            let name = (try? party.string("name")) ?? "?"
            let identity = try Fields(party.object["identity_key"], name: "identity_key")
            report.run("\(name).identity") { () throws(VectorError) -> CaseOutcome in
                keyPairOutcome(try identity.hex("private"), try identity.hex("public"))
            }
            for spk in try party.objects("signed_prekeys") {
                let id = (try? spk.int("id")).map(String.init) ?? "?"
                report.run("\(name).signed_prekey.\(id)") { () throws(VectorError) -> CaseOutcome in
                    let pair = keyPairOutcome(try spk.hex("private"), try spk.hex("public"))
                    guard pair == .passed else { return pair }
                    let check = PrimitiveChecks.xeddsa(
                        privateKey: try identity.hex("private"), publicKey: try identity.hex("public"),
                        message: try spk.hex("public"), signature: try spk.hex("signature"),
                        randomness: try spk.hex("signature_random"), variant: .libsignal, policy: .libsignalCompatible)
                    return judge(result: "valid", accepted: check.accepted, detail: check.detail)
                }
            }
            for otk in try party.objects("one_time_prekeys") {
                let id = (try? otk.int("id")).map(String.init) ?? "?"
                report.run("\(name).one_time_prekey.\(id)") { () throws(VectorError) -> CaseOutcome in
                    keyPairOutcome(try otk.hex("private"), try otk.hex("public"))
                }
            }
        }
        let steps = try root.array("steps")
        for index in steps.indices {
            report.record("step.\(index)", .skipped("session replay needs the Signal v3 protocol layer (not yet in Hush)"))
        }
    }

    /// A listed private key must produce the listed 33-byte public key.
    static func keyPairOutcome(_ privateKey: [UInt8], _ publicKey: [UInt8]) -> CaseOutcome {
        guard let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateKey) else {
            return .failed("private key rejected")
        }
        return key.publicKey.signalRepresentation == publicKey ? .passed : .failed("public key does not match private key")
    }
}
