import Hush

// Session and sender key record decoders: every input yields a record or a typed error, and
// a record that parses re-serializes to exactly the input (the format is canonical).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let record = try? SessionRecord(serialized: bytes) {
        // Format 2 re-serializes to itself; format 1 (no suite byte) is upgraded to 2.
        let again = record.serialized().bytes
        if bytes[3] == 2 { precondition(again == bytes) } else { precondition(try! SessionRecord(serialized: again).serialized().bytes == again) }
    }
    if let record = try? SenderKeyRecord(serialized: bytes) { precondition(record.serialized().bytes == bytes) }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzSessionRecord_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
