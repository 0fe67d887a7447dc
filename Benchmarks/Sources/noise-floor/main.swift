// noise-floor: the server side of a Noise_IK handshake against its floor, interleaved.
//   swift run -c release noise-floor [--rounds N] [--batch M]
// In each round it times a batch of M responder handshakes (read message 1, write message 2,
// split) and a batch of M floors (one fixed-base and four variable-base X25519 scalar
// multiplications through libsodium, the multiplications the pattern requires), alternating
// which goes first, so that slow phases of a shared machine hit both. It prints the median
// per-operation time of each over the rounds and their ratio, as one Markdown table.
import CFloor
import Foundation
import HushNoise

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

@inline(never)
func responderBatch(_ count: Int, server: Curve25519.KeyAgreement.PrivateKey, first: [UInt8]) -> Double {
    let start = now()
    for _ in 0..<count {
        var responder = try! NoiseHandshake(pattern: .ik, role: .responder, localStatic: server)
        _ = try! responder.readMessage(first)
        _ = try! responder.writeMessage(payload: [UInt8]())
        _ = try! responder.split()
    }
    return Double(now() - start) / Double(count)
}

@inline(never)
func floorBatch(_ count: Int, scalar: [UInt8], ephemeral: [UInt8], peer: [UInt8], peerStatic: [UInt8]) -> Double {
    var out = [UInt8](repeating: 0, count: 32), point = [UInt8](repeating: 0, count: 32)
    var sink: UInt8 = 0
    let start = now()
    for _ in 0..<count {
        _ = crypto_scalarmult_curve25519(&out, scalar, peer)          // es
        sink ^= out[0]
        _ = crypto_scalarmult_curve25519(&out, scalar, peerStatic)    // ss
        sink ^= out[0]
        _ = crypto_scalarmult_curve25519_base(&point, ephemeral)      // e
        sink ^= point[0]
        _ = crypto_scalarmult_curve25519(&out, ephemeral, peer)       // ee
        sink ^= out[0]
        _ = crypto_scalarmult_curve25519(&out, ephemeral, peerStatic) // se
        sink ^= out[0]
    }
    let elapsed = Double(now() - start) / Double(count)
    if sink == 0x5a && out[1] == 0x5a { print("") }  // keep the results alive
    return elapsed
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

var rounds = 30, batch = 50
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--rounds": rounds = Int(arguments.next() ?? "") ?? rounds
    case "--batch": batch = Int(arguments.next() ?? "") ?? batch
    default:
        print("usage: noise-floor [--rounds N] [--batch M]")
        exit(2)
    }
}

let server = try! Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 1))
let client = try! Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 2))
var initiator = try! NoiseHandshake(pattern: .ik, role: .initiator, localStatic: client, remoteStatic: server.publicKey)
let first = try! initiator.writeMessage(payload: [UInt8](repeating: 0x6c, count: 100))
let ephemeralScalar = try! Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 3)).rawRepresentation.bytes
let peerEphemeral = Array(first.prefix(32))

_ = responderBatch(batch, server: server, first: first)  // warm-up
var hush: [Double] = [], floor: [Double] = []
for round in 0..<rounds {
    if round % 2 == 0 {
        hush.append(responderBatch(batch, server: server, first: first))
        floor.append(floorBatch(batch, scalar: server.rawRepresentation.bytes, ephemeral: ephemeralScalar, peer: peerEphemeral, peerStatic: client.publicKey.rawRepresentation))
    } else {
        floor.append(floorBatch(batch, scalar: server.rawRepresentation.bytes, ephemeral: ephemeralScalar, peer: peerEphemeral, peerStatic: client.publicKey.rawRepresentation))
        hush.append(responderBatch(batch, server: server, first: first))
    }
}
let h = median(hush) / 1000, f = median(floor) / 1000
let hMin = hush.min()! / 1000, fMin = floor.min()! / 1000
print("| IK responder: read 1, write 2, split | HushNoise (µs) | floor (µs) | HushNoise/floor |")
print("|---|---:|---:|---:|")
print(String(format: "| median of the batches | %.1f | %.1f | %.3f |", h, f, h / f))
print(String(format: "| fastest batch | %.1f | %.1f | %.3f |", hMin, fMin, hMin / fMin))
print("(\(rounds) rounds of \(batch) operations each, interleaved)")
