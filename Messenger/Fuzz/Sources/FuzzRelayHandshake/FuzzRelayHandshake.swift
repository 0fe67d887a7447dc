import Foundation
import Hush
import HushTransport

// Fixed keys so that runs reproduce.
let relayKey = try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: [UInt8](repeating: 7, count: 32))
let rootKey = try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: [UInt8](repeating: 9, count: 32))
let certificate = try! RelayCertificate.issue(keyID: 1, relayKey: relayKey.publicKey, notBefore: 0, notAfter: .max,
                                              trustRoot: rootKey, random: SeededRandom(seed: 1))

// The input is split at its first byte's value: a first handshake message and a second one.
// Each must be consumed or rejected with a TransportError; the handshake never traps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let cut = bytes.first else { return 0 }
    let rest = Array(bytes.dropFirst())
    let split = min(rest.count, Int(cut) * 2)
    var server = ServerHandshake(relayKey: relayKey, certificate: certificate, serverTime: 0, random: SeededRandom(seed: 2))
    do {
        switch try server.receive(Array(rest[..<split])) {
        case .reply:
            _ = try server.receive(Array(rest[split...]))
        case .finished(_, _, var channel):
            _ = try? channel.receiver.open(Array(rest[split...]))
        }
    } catch {
        _ = error as TransportError
    }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ cb: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("FuzzRelayHandshake_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
