import HushCrypto

// Hex, Signal-form and raw public keys, signatures and AEAD/CBC decryption over arbitrary
// bytes: every input yields a value or a typed error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? Hex.decode(String(decoding: bytes, as: UTF8.self))
    if let key = try? Curve25519.KeyAgreement.PublicKey(signalRepresentation: bytes.prefix(33)) {
        _ = key.isValidSignature(bytes.dropFirst(33), for: bytes.prefix(5))
    }
    if let key = try? Curve25519.Signing.PublicKey(rawRepresentation: bytes.prefix(32)) {
        _ = key.isValidSignature(bytes.dropFirst(32).prefix(64), for: bytes.suffix(3))
    }
    let key = [UInt8](repeating: 7, count: 32)
    _ = try? XChaChaPoly.decrypt(bytes, key: key, nonce: [UInt8](repeating: 1, count: 24), associatedData: [UInt8]())
    _ = try? AES.CBC.decrypt(bytes, key: key, iv: [UInt8](repeating: 1, count: 16))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzKeyDecoding_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
