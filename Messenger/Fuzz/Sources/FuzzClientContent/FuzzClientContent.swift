import Foundation
import HushClient

// Any bytes: MessageContent (the plaintext between two HushClient devices, Docs/client.md
// §Content) or a typed DecodeError, never a crash; decoded content re-encodes to the same bytes
// (the encoding is canonical) and decodes to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let content = try? MessageContent(decoding: bytes) {
        precondition(content.encoded == bytes, "canonical encoding")
        precondition(try! MessageContent(decoding: content.encoded) == content, "round trip")
    }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ cb: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("FuzzClientContent_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
