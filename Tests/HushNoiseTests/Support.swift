import Foundation
import HushCrypto
@testable import HushNoise
import Testing

/// The package root, found from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
/// The cacophony vectors in `../shared`, when present.
let cacophonyFile = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/vectors/noise/cacophony-25519.json")
let hasCacophony = FileManager.default.fileExists(atPath: cacophonyFile.path)

func hex(_ s: String) -> [UInt8] { try! Hex.decode(s) }

/// One cacophony vector.
struct CacophonyVector: Sendable, CustomStringConvertible {
    let protocolName: String
    let fields: [String: String]
    let messages: [(payload: [UInt8], ciphertext: [UInt8])]
    var description: String { protocolName }

    func key(_ name: String) -> Curve25519.KeyAgreement.PrivateKey? {
        fields[name].map { try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: hex($0)) }
    }
    func publicKey(_ name: String) -> Curve25519.KeyAgreement.PublicKey? {
        fields[name].map { try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: hex($0)) }
    }
    func bytes(_ name: String) -> [UInt8] { fields[name].map(hex) ?? [] }

    /// The base pattern name (`XX` in `Noise_XX_25519_ChaChaPoly_SHA256`) and the suite.
    var patternName: String { protocolName.split(separator: "_")[1].description }
    var suite: String { protocolName.split(separator: "_").dropFirst(2).joined(separator: "_") }
}

func cacophonyVectors() -> [CacophonyVector] {
    guard let data = try? Data(contentsOf: cacophonyFile),
          let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let vectors = root["vectors"] as? [[String: Any]] else { return [] }
    return vectors.map { v in
        CacophonyVector(
            protocolName: v["protocol_name"] as! String,
            fields: v.compactMapValues { $0 as? String },
            messages: (v["messages"] as! [[String: String]]).map { (hex($0["payload"]!), hex($0["ciphertext"]!)) })
    }
}

/// A deterministic static key for tests.
func staticKey(_ seed: UInt64) -> Curve25519.KeyAgreement.PrivateKey {
    try! Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: seed))
}

/// Runs a whole handshake of `pattern` between two fresh parties and returns both transports.
func handshake(
    _ pattern: NoisePattern, initiatorKey: Curve25519.KeyAgreement.PrivateKey = staticKey(1),
    responderKey: Curve25519.KeyAgreement.PrivateKey = staticKey(2), prologue: [UInt8] = Array("test".utf8),
    payloads: [[UInt8]] = []
) throws -> (initiator: NoiseTransport, responder: NoiseTransport, received: [[UInt8]]) {
    var initiator = try NoiseHandshake(
        pattern: pattern, role: .initiator, prologue: prologue,
        localStatic: pattern == .nk ? nil : initiatorKey,
        remoteStatic: pattern == .xx ? nil : responderKey.publicKey, random: SeededRandom(seed: 10))
    var responder = try NoiseHandshake(pattern: pattern, role: .responder, prologue: prologue, localStatic: responderKey, random: SeededRandom(seed: 11))
    var received: [[UInt8]] = []
    var index = 0
    while !initiator.isFinished {
        let payload = index < payloads.count ? payloads[index] : []
        if index % 2 == 0 {
            received.append(try responder.readMessage(try initiator.writeMessage(payload: payload)))
        } else {
            received.append(try initiator.readMessage(try responder.writeMessage(payload: payload)))
        }
        index += 1
    }
    #expect(responder.isFinished)
    return (try initiator.split(), try responder.split(), received)
}
