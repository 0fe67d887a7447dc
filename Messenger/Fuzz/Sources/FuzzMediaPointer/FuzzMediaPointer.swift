import Foundation
import HushClient

// Any bytes: a MediaPointer (Docs/spec/media.md §3) or a typed DecodeError, never a crash; a
// decoded pointer re-encodes to the same bytes (the encoding is canonical) and decodes to the
// same value. The same bytes behind a media content byte go through MessageContent too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let pointer = try? MediaPointer(decoding: bytes) {
        precondition(pointer.encoded == bytes, "canonical encoding")
        precondition(try! MediaPointer(decoding: pointer.encoded) == pointer, "round trip")
        precondition(pointer.plaintextSize <= MediaFormat.maxPlaintextSize, "size limit")
    }
    if let content = try? MessageContent(decoding: [0x05, 0x01, 0x01] + bytes) {
        precondition(content.encoded == [0x05, 0x01, 0x01] + bytes, "canonical content")
    }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ cb: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("FuzzMediaPointer_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
