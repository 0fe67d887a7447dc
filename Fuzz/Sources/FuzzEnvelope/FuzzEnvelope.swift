import Hush

// Sealed envelopes, multi-recipient envelopes (as a server parses them and as a recipient
// opens them) and certificates: every input yields a value or a typed error, never a crash,
// and nothing forged opens.
struct Fixture: @unchecked Sendable {
    let recipient: IdentityKeyPair
    let validator: CertificateValidator

    init() {
        let random = SeededRandom(seed: 3)
        recipient = try! IdentityKeyPair.generate(using: random)
        validator = CertificateValidator(trustRoot: try! Curve25519.KeyAgreement.PrivateKey(using: random).publicKey)
    }
}

nonisolated(unsafe) let fixture = Fixture()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if (try? SealedEnvelope.open(bytes, recipientIdentity: fixture.recipient, validator: fixture.validator, now: 0)) != nil {
        fatalError("forged envelope opened")
    }
    if let multi = try? MultiRecipientEnvelope(serialized: bytes) {
        precondition(multi.serialized == bytes)
        for i in 0..<min(multi.recipientCount, 4) { _ = try? multi.delivered(to: i) }
    }
    if (try? MultiRecipientEnvelope.open(bytes, recipientIdentity: fixture.recipient, validator: fixture.validator, now: 0)) != nil {
        fatalError("forged delivered envelope opened")
    }
    if let c = try? SenderCertificate(serialized: bytes) { precondition(c.serialized == bytes) }
    if let c = try? ServerCertificate(serialized: bytes) { precondition(c.serialized == bytes) }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzEnvelope_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
