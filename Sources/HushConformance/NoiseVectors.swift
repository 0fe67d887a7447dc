import Hush
import HushNoise

/// The cacophony Noise vectors (`../shared/vectors/noise/cacophony-25519.json`: an object with
/// a `vectors` array, each entry naming its `protocol_name`), and the project's own file in that
/// format from another implementation (`TestVectors/noise`, which may mark a transport message
/// `"rekey": true`).
///
/// The three protocols HushNoise implements — `Noise_XX_25519_ChaChaPoly_SHA256`,
/// `Noise_IK_…` and `Noise_NK_…` — are replayed with the public ``NoiseHandshake`` API, each
/// party from its listed keys, prologue and fixed ephemeral key: every handshake message must
/// be written byte for byte as listed and read back to its payload by the other party, both
/// handshake hashes must equal `handshake_hash`, and every transport message that follows
/// (alternating directions, the initiator first) must encrypt to the listed ciphertext and
/// decrypt to the listed payload. Every other protocol in the file is a skipped case.
enum NoiseVectors {
    static let format = "cacophony"

    /// A cacophony file: `vectors` is a non-empty array whose first entry has a `protocol_name`
    /// starting with `Noise_`.
    static func matches(_ root: Fields) -> Bool {
        guard let vectors = root.object["vectors"] as? [Any], let first = vectors.first as? [String: Any],
              let name = first["protocol_name"] as? String else { return false }
        return name.hasPrefix("Noise_")
    }

    /// The protocols replayed, by name.
    static let supported: [String: NoisePattern] = Dictionary(uniqueKeysWithValues: NoisePattern.allCases.map {
        ("Noise_\($0.rawValue)_25519_ChaChaPoly_SHA256", $0)
    })

    static func run(_ root: Fields, report: inout FileReport) throws(VectorError) {
        report.format = format
        for (index, vector) in try root.objects("vectors").enumerated() {
            let name = (try? vector.string("protocol_name")) ?? "vectors[\(index)]"
            guard let pattern = supported[name] else {
                report.record(name, .skipped("protocol not implemented by HushNoise"))
                continue
            }
            report.run(name) { () throws(VectorError) -> CaseOutcome in
                try replay(vector, pattern: pattern)
            }
        }
    }

    static func replay(_ vector: Fields, pattern: NoisePattern) throws(VectorError) -> CaseOutcome {
        var initiator = try party(vector, prefix: "init", pattern: pattern, role: .initiator)
        var responder = try party(vector, prefix: "resp", pattern: pattern, role: .responder)
        let messages = try vector.objects("messages")
        var index = 0
        // Handshake messages, alternating from the initiator.
        while !initiator.isFinished || !responder.isFinished {
            guard index < messages.count else { return .failed("the vector ends before the handshake does") }
            let payload = try messages[index].hex("payload"), expected = try messages[index].hex("ciphertext")
            let fromInitiator = index % 2 == 0
            do throws(NoiseError) {
                let written = fromInitiator ? try initiator.writeMessage(payload: payload) : try responder.writeMessage(payload: payload)
                guard written == expected else { return .failed("handshake message \(index) differs: \(Hex.encode(written))") }
                let read = fromInitiator ? try responder.readMessage(written) : try initiator.readMessage(written)
                guard read == payload else { return .failed("handshake message \(index) read back as \(Hex.encode(read))") }
            } catch {
                return .failed("handshake message \(index): \(error)")
            }
            index += 1
        }
        var initiatorTransport: NoiseTransport, responderTransport: NoiseTransport
        do throws(NoiseError) {
            initiatorTransport = try initiator.split()
            responderTransport = try responder.split()
        } catch {
            return .failed("split: \(error)")
        }
        if let hash = try vector.optionalHex("handshake_hash") {
            guard initiatorTransport.handshakeHash == hash, responderTransport.handshakeHash == hash else {
                return .failed("handshake hash differs: \(Hex.encode(initiatorTransport.handshakeHash))")
            }
        }
        // Transport messages continue the alternation. `"rekey": true` (an addition of
        // TestVectors/noise) means both sides rekeyed that direction first (§4.2, §11.3).
        while index < messages.count {
            let payload = try messages[index].hex("payload"), expected = try messages[index].hex("ciphertext")
            let fromInitiator = index % 2 == 0
            if messages[index].bool("rekey", default: false) {
                if fromInitiator {
                    initiatorTransport.rekeySending()
                    responderTransport.rekeyReceiving()
                } else {
                    responderTransport.rekeySending()
                    initiatorTransport.rekeyReceiving()
                }
            }
            do throws(NoiseError) {
                let written = fromInitiator ? try initiatorTransport.encrypt(payload) : try responderTransport.encrypt(payload)
                guard written == expected else { return .failed("transport message \(index) differs: \(Hex.encode(written))") }
                let read = fromInitiator ? try responderTransport.decrypt(written) : try initiatorTransport.decrypt(written)
                guard read == payload else { return .failed("transport message \(index) decrypted to \(Hex.encode(read))") }
            } catch {
                return .failed("transport message \(index): \(error)")
            }
            index += 1
        }
        return .passed
    }

    /// One party's handshake from `<prefix>_prologue`, `_static`, `_remote_static` and `_ephemeral`.
    static func party(_ vector: Fields, prefix: String, pattern: NoisePattern, role: NoiseRole) throws(VectorError) -> NoiseHandshake {
        let prologue = try vector.optionalHex("\(prefix)_prologue") ?? []
        let localStatic = try vector.optionalHex("\(prefix)_static").map { (raw) throws(VectorError) in try privateKey(raw, field: "\(prefix)_static") }
        let remoteStatic = try vector.optionalHex("\(prefix)_remote_static").map { (raw) throws(VectorError) in
            do { return try Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw) } catch {
                throw VectorError.badValue(field: "\(prefix)_remote_static", reason: "not a 32-byte key")
            }
        }
        let ephemeral = try privateKey(try vector.hex("\(prefix)_ephemeral"), field: "\(prefix)_ephemeral")
        do {
            return try NoiseHandshake(pattern: pattern, role: role, prologue: prologue, localStatic: localStatic,
                                      remoteStatic: remoteStatic, localEphemeral: ephemeral)
        } catch {
            throw .badValue(field: prefix, reason: "cannot start the handshake: \(error)")
        }
    }

    static func privateKey(_ raw: [UInt8], field: String) throws(VectorError) -> Curve25519.KeyAgreement.PrivateKey {
        do { return try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw) } catch {
            throw .badValue(field: field, reason: "not a 32-byte key")
        }
    }
}
