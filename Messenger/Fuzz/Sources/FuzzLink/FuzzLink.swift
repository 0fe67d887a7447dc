import Foundation
import Hush
import HushClient

// Any bytes: a link code (Docs/spec/client.md §7.1) parsed from them as text, and a provisioning
// message (§7.2) decoded from them, each a value or a typed error, never a crash; what decodes
// re-encodes to the same text / bytes (both encodings are canonical). The same bytes opened as
// a sealed provisioning body under a fixed key are refused with a typed error (they are not
// sealed to it), never a crash.
private let key = try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: [UInt8](repeating: 0x42, count: 32))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let text = String(bytes: bytes, encoding: .utf8), let code = try? LinkCode(parsing: text) {
        // Leading and trailing space, tab, CR and LF are ignored (§7.1); the rest is canonical.
        let trimmed = text.trimmingCharacters(in: CharacterSet(charactersIn: " \t\r\n"))
        precondition(code.string == trimmed, "canonical link code")
        precondition((try? LinkCode(parsing: code.string)) == code, "round trip")
    }
    if let message = try? ProvisioningMessage(decoding: bytes) {
        precondition(message.encoded.withUnsafeBytes { Array($0) } == bytes, "canonical provisioning message")
    }
    _ = try? ProvisioningMessage.open(bytes, keyPair: key)
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ cb: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("FuzzLink_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
