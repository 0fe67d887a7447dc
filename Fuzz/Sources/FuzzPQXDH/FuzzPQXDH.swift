@_spi(HushPQ) import HushPQ

// HushPQ's decoders: the PQXDH message forms of both suites (version-4 PreKeySignalMessage and
// SignalMessage, hush-1 prekey messages with flag bit 1), ML-KEM-1024 keys, Kyber prekey
// encodings and decapsulation. Every input yields a value or a typed error; a message that
// parses keeps exactly the input bytes, and carries Kyber fields exactly in its PQXDH form.
// At exit LeakSanitizer reports 129 bytes in 2 allocations made inside swift-crypto while the
// key below is built: once per process (the same after 20,000 or 3.7 million runs), not per input.
let key = try! MLKEM1024.PrivateKey(seed: [UInt8](repeating: 0x5A, count: 64))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for kind in [CiphertextMessage.Kind.signal, .preKeySignal, .hush, .hushPreKey] {
        guard let message = try? PQXDH.message(kind: kind, serialized: bytes) else { continue }
        precondition(message.serialized == bytes)
        switch message {
        case .preKeySignal(let m):
            precondition((m.version == 4) == (m.kyberPreKeyID != nil && m.kyberCiphertext?.count == 1569))
            precondition(m.message.version == m.version)
        case .hushPreKey(let m):
            precondition((m.kyberPreKeyID == nil) == (m.kyberCiphertext == nil))
            precondition(m.kyberCiphertext.map { $0.count == 1568 } ?? true)
        case .signal(let m): precondition(m.version == 3 || m.version == 4 || m.version == 2)
        case .hush: break
        }
    }
    _ = try? MLKEM1024.PublicKey(rawRepresentation: bytes)
    _ = try? KyberPreKey.decodePublicKey(bytes)
    if bytes.count == 64 { _ = try? MLKEM1024.PrivateKey(seed: bytes) }
    if let secret = try? key.decapsulate(bytes) { precondition(bytes.count == 1568 && secret.withUnsafeBytes { $0.count } == 32) }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzPQXDH_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
