import Hush

/// Hush's envelope vectors (`hush-envelope-vectors/2`, `TestVectors/hush-1/envelope.json`,
/// `Docs/spec/envelope.md` §10): certificates are re-issued from the listed keys, expirations
/// and signature randomness and must match byte for byte; every `seal` case must reproduce its
/// envelope from the listed ephemeral key (and payload key), and one marked `expect_refused`
/// must first be refused by the checking sealer; every `open` case must give the listed content
/// or error at its clock; every `split` case must give the listed `0xE3` copies or error.
enum EnvelopeVectors {
    static let format = "hush-envelope-vectors/2"

    static func run(_ root: Fields, report: inout FileReport) throws(VectorError) {
        report.format = format
        let trustRoot = try privateKey(try Fields(root.object["trust_root"], name: "trust_root"), "private")
        let rogueRoot = try privateKey(try Fields(root.object["rogue_trust_root"], name: "rogue_trust_root"), "private")
        let serverFields = try Fields(root.object["server"], name: "server")
        let serverKey = try privateKey(serverFields, "private")
        let now = UInt64(try root.int("now"))
        var servers: [UInt32: ServerCertificate] = [:]
        var serverKeys: [String: Curve25519.KeyAgreement.PrivateKey] = ["server": serverKey]
        var issuers: [(String, Fields, Curve25519.KeyAgreement.PrivateKey, Curve25519.KeyAgreement.PublicKey)] = [
            ("server", serverFields, trustRoot, serverKey.publicKey),
            ("rogue_server", try Fields(root.object["rogue_server"], name: "rogue_server"), rogueRoot, serverKey.publicKey),
        ]
        if root.has("second_server") {
            let second = try Fields(root.object["second_server"], name: "second_server")
            let key = try privateKey(second, "private")
            serverKeys["second_server"] = key
            issuers.append(("second_server", second, trustRoot, key.publicKey))
        }
        for (name, fields, signer, certifiedKey) in issuers {
            let keyID = try uint32(fields, "key_id")
            let expiration = UInt64(try fields.int("expiration"))
            let expected = try fields.hex("certificate")
            report.run("\(name).certificate") { () throws(VectorError) -> CaseOutcome in
                let issued = try? ServerCertificate.issue(keyID: keyID, key: certifiedKey, expiration: expiration, signedBy: signer,
                                                          random: ReplayRandom(try fields.hex("signature_random")))
                guard let issued else { return .failed("issue failed") }
                servers[keyID] = issued
                return issued.serialized == expected ? .passed : .failed("certificate differs: \(Hex.encode(issued.serialized))")
            }
        }
        var identities: [String: IdentityKeyPair] = [:]
        for party in try root.objects("parties") {
            let key = try Fields(party.object["identity_key"], name: "identity_key")
            identities[try party.string("name")] = IdentityKeyPair(privateKey: try privateKey(key, "private"))
        }
        var certificates: [String: SenderCertificate] = [:]
        for c in try root.objects("certificates") {
            let id = try c.string("id")
            let signerName = (try? c.string("signed_by")) ?? "server"
            guard let signer = serverKeys[signerName] ?? identities[signerName]?.privateKey else {
                throw .badValue(field: "signed_by", reason: "unknown signer '\(signerName)'")
            }
            report.run("certificate.\(id)") { () throws(VectorError) -> CaseOutcome in
                guard let server = servers[try uint32(c, "server_key_id")] else { return .failed("unknown server key id") }
                guard let identity = try? IdentityKey(serialized: [0x05] + (try c.hex("identity_key"))) else {
                    throw .badValue(field: "identity_key", reason: "not a key")
                }
                let issued = try? SenderCertificate.issue(
                    senderID: try c.string("sender_id"), deviceID: try uint32(c, "device_id"), identityKey: identity,
                    expiration: UInt64(try c.int("expiration")), server: server, signedBy: signer,
                    random: ReplayRandom(try c.hex("signature_random")))
                guard let issued else { return .failed("issue failed") }
                certificates[id] = issued
                return issued.serialized == (try c.hex("certificate")) ? .passed : .failed("certificate differs")
            }
        }
        let validatorBase = CertificateValidator(trustRoot: trustRoot.publicKey)
        for c in try root.objects("cases") {
            let id = try c.string("id")
            let op = try c.string("op")
            report.run("case.\(id)") { () throws(VectorError) -> CaseOutcome in
                switch op {
                case "seal":
                    guard let sender = identities[try c.string("sender")], let recipient = identities[try c.string("recipient")],
                          let certificate = certificates[try c.string("certificate")],
                          let type = EnvelopeContentType(rawValue: UInt8(truncatingIfNeeded: try c.int("content_type"))) else {
                        throw .badValue(field: "case", reason: "unknown party, certificate or content type")
                    }
                    if c.has("expect_refused") {
                        let message = try c.hex("message"), draw = try c.hex("ephemeral_private")
                        do throws(EnvelopeError) {
                            _ = try SealedEnvelope.seal(message, contentType: type, certificate: certificate,
                                                        senderIdentity: sender, to: recipient.identityKey, random: ReplayRandom(draw))
                            return .failed("the checking sealer did not refuse")
                        } catch {
                            guard error.transcriptName == (try c.string("expect_refused")) else { return .failed("refused with \(error.transcriptName)") }
                        }
                    }
                    let random = ReplayRandom(try c.hex("ephemeral_private"))
                    let sealed = try? SealedEnvelope.sealUnchecked(try c.hex("message"), contentType: type, certificate: certificate,
                                                                   senderIdentity: sender, to: recipient.identityKey, random: random)
                    guard let sealed else { return .failed("seal failed") }
                    return sealed == (try c.hex("envelope")) ? .passed : .failed("envelope differs: \(Hex.encode(sealed))")
                case "seal_multi":
                    guard let sender = identities[try c.string("sender")], let certificate = certificates[try c.string("certificate")],
                          let names = c.object["recipients"] as? [String],
                          let type = EnvelopeContentType(rawValue: UInt8(truncatingIfNeeded: try c.int("content_type"))) else {
                        throw .badValue(field: "case", reason: "bad multi-recipient case")
                    }
                    let recipients = names.compactMap { identities[$0]?.identityKey }
                    let random = ReplayRandom(try c.hex("ephemeral_private") + c.hex("payload_key"))
                    guard let multi = try? MultiRecipientEnvelope.seal(try c.hex("message"), contentType: type, certificate: certificate,
                                                                       senderIdentity: sender, to: recipients, random: random) else {
                        return .failed("seal failed")
                    }
                    guard multi.serialized == (try c.hex("envelope")) else { return .failed("envelope differs") }
                    let delivered = (c.object["delivered"] as? [String]) ?? []
                    for (i, d) in delivered.enumerated() where Hex.encode((try? multi.delivered(to: i)) ?? []) != d {
                        return .failed("delivered copy \(i) differs")
                    }
                    return .passed
                case "open", "open_delivered":
                    guard let recipient = identities[try c.string("recipient")] else { throw .badValue(field: "recipient", reason: "unknown") }
                    var validator = validatorBase
                    validator.revokedServerKeyIDs = Set(((c.object["revoked_server_key_ids"] as? [Int]) ?? []).map { UInt32($0) })
                    let bytes = try c.hex("envelope")
                    let expect = try c.string("expect")
                    let clock = c.has("now") ? UInt64(try c.int("now")) : now
                    let opened: OpenedEnvelope
                    do throws(EnvelopeError) {
                        opened = op == "open"
                            ? try SealedEnvelope.open(bytes, recipientIdentity: recipient, validator: validator, now: clock)
                            : try MultiRecipientEnvelope.open(bytes, recipientIdentity: recipient, validator: validator, now: clock)
                    } catch {
                        guard expect == "error" else { return .failed("failed with \(error)") }
                        let name = error.transcriptName
                        return name == (try c.string("error")) ? .passed : .failed("failed with \(name), expected \((try? c.string("error")) ?? "?")")
                    }
                    guard expect == "ok" else { return .failed("opened, expected \((try? c.string("error")) ?? "?")") }
                    let o = try Fields(c.object["opened"], name: "opened")
                    guard opened.sender.senderID == (try o.string("sender_id")), Int(opened.sender.deviceID) == (try o.int("device_id")),
                          Int(opened.contentType.rawValue) == (try o.int("content_type")), opened.message == (try o.hex("message")) else {
                        return .failed("opened content differs")
                    }
                    return .passed
                case "split":
                    let expect = try c.string("expect")
                    let parsed: MultiRecipientEnvelope
                    let bytes = try c.hex("envelope")
                    do throws(EnvelopeError) { parsed = try MultiRecipientEnvelope(serialized: bytes) } catch {
                        guard expect == "error" else { return .failed("failed with \(error)") }
                        return error.transcriptName == (try c.string("error")) ? .passed
                            : .failed("failed with \(error.transcriptName), expected \((try? c.string("error")) ?? "?")")
                    }
                    guard expect == "ok" else { return .failed("parsed, expected \((try? c.string("error")) ?? "?")") }
                    let delivered = (0..<parsed.recipientCount).map { Hex.encode((try? parsed.delivered(to: $0)) ?? []) }
                    return delivered == ((c.object["delivered"] as? [String]) ?? []) ? .passed : .failed("delivered copies differ")
                default:
                    throw .badValue(field: "op", reason: "unknown operation '\(op)'")
                }
            }
        }
    }

    static func privateKey(_ fields: Fields, _ key: String) throws(VectorError) -> Curve25519.KeyAgreement.PrivateKey {
        do { return try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: try fields.hex(key)) } catch {
            throw .badValue(field: key, reason: "not a private key")
        }
    }

    static func uint32(_ fields: Fields, _ key: String) throws(VectorError) -> UInt32 {
        guard let v = UInt32(exactly: try fields.int(key)) else { throw .badValue(field: key, reason: "not a 32-bit integer") }
        return v
    }
}
