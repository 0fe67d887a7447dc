import Foundation
import HushClient

// Any bytes, as a value read from a client store (Docs/client.md §Store): every decoder of
// StoredValues, SessionCiphertext, GroupSendPayload and FanOutPayload returns a value, nil or a typed error, never a crash; what
// decodes re-encodes to the same bytes where the encoding is canonical.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let inner = try? SessionCiphertext(decoding: bytes) {
        precondition(inner.encoded == bytes, "session ciphertext bytes")
    }
    if let v = StoredValues.u64(bytes) { precondition(StoredValues.encodeU64(v) == bytes, "u64") }
    _ = StoredValues.u32(bytes)
    if let list = StoredValues.u32List(bytes) { precondition(list.count * 4 == bytes.count, "u32 list") }
    let ids = StoredValues.ids(bytes)
    // The ids decoded are a canonical prefix of the input.
    let prefix = StoredValues.encodeIDs(ids)
    precondition(prefix.count <= bytes.count && Array(bytes[..<prefix.count]) == prefix, "ids prefix")
    precondition(StoredValues.strings(bytes).allSatisfy { !$0.isEmpty && !$0.contains("\n") }, "strings")
    if let text = StoredValues.text(bytes) { precondition(Array(text.utf8) == bytes, "text") }
    // A prepared group item's payload (Docs/client.md §Store): canonical.
    if let group = GroupSendPayload(decoding: bytes) { precondition(group.encoded == bytes, "group send payload") }
    // A prepared one-to-one item's payload (Docs/client.md §Several devices): canonical.
    if let fan = FanOutPayload(decoding: bytes) { precondition(fan.encoded == bytes, "fan-out payload") }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ cb: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("FuzzClientStore_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
