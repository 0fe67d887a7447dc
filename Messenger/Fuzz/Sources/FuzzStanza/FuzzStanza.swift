import Foundation
import HushTransport

// Any bytes: a stanza or a typed error, never a crash; a decoded stanza re-encodes and decodes
// to the same value. The same for the handshake payloads and the relay certificate.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let stanza = try? StanzaCodec.decode(bytes) {
        let again = try! StanzaCodec.encode(stanza)
        precondition(try! StanzaCodec.decode(again) == stanza, "stanza round trip")
    }
    _ = try? RelayClientHello(serializedBytes: bytes)
    _ = try? RelayServerHello(serializedBytes: bytes)
    if let cert = try? RelayCertificate(serialized: bytes) {
        precondition(cert.serialized == bytes, "certificate bytes")
    }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ cb: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("FuzzStanza_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
