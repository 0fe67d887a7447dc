import Hush

// The pairwise wire decoders of both suites (Signal v3 and hush-1): every input yields a
// message or a typed error, and a message that parses keeps exactly the input bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let m = try? SignalMessage(serialized: bytes) { precondition(m.serialized == bytes) }
    if let m = try? PreKeySignalMessage(serialized: bytes) {
        precondition(m.serialized == bytes)
        precondition(m.message.version == m.version)
    }
    if let m = try? HushMessage(serialized: bytes) { precondition(m.serialized == bytes) }
    if let m = try? HushPreKeyMessage(serialized: bytes) { precondition(m.serialized == bytes) }
    for kind in [CiphertextMessage.Kind.signal, .preKeySignal, .hush, .hushPreKey] {
        _ = try? CiphertextMessage(kind: kind, serialized: bytes)
    }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzSignalMessage_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
