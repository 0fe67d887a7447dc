import Foundation
import Hush
import Testing
@testable import HushTransport
import HushNoise

/// Replays the cacophony vectors for XX, IK and NK (ChaChaPoly, SHA256) through the Noise
/// implementation HushTransport uses, when `../shared/vectors/noise` is present.
@Suite struct NoiseVectorTests {
    struct Vector: Decodable {
        struct Message: Decodable { let payload: String; let ciphertext: String }
        let protocol_name: String
        let init_prologue: String
        let init_static: String?
        let init_ephemeral: String
        let init_remote_static: String?
        let resp_static: String?
        let resp_ephemeral: String
        let handshake_hash: String?
        let messages: [Message]
        let init_psks: [String]?
    }

    static var vectors: [Vector] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../../shared/vectors/noise/cacophony-25519.json").standardized
        guard let data = try? Data(contentsOf: url),
              let file = try? JSONDecoder().decode([String: [Vector]].self, from: data), let all = file["vectors"] else { return [] }
        let names = ["Noise_XX_25519_ChaChaPoly_SHA256", "Noise_IK_25519_ChaChaPoly_SHA256", "Noise_NK_25519_ChaChaPoly_SHA256"]
        return all.filter { names.contains($0.protocol_name) && ($0.init_psks ?? []).isEmpty }
    }

    static func hex(_ s: String) -> [UInt8] { (try? Hex.decode(s)) ?? [] }
    static func key(_ s: String?) -> Curve25519.KeyAgreement.PrivateKey? {
        s.flatMap { try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: hex($0)) }
    }

    @Test func cacophonyVectors() throws {
        let vectors = Self.vectors
        guard !vectors.isEmpty else { return }
        #expect(vectors.count == 3)
        for v in vectors {
            let pattern: NoisePattern = v.protocol_name.contains("_XX_") ? .xx : v.protocol_name.contains("_IK_") ? .ik : .nk
            let respStatic = Self.key(v.resp_static)
            var i = try NoiseHandshake(pattern: pattern, role: .initiator, prologue: Self.hex(v.init_prologue),
                                       localStatic: Self.key(v.init_static), remoteStatic: v.init_remote_static.flatMap {
                                           try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: Self.hex($0)) },
                                       localEphemeral: Self.key(v.init_ephemeral)!)
            var r = try NoiseHandshake(pattern: pattern, role: .responder, prologue: Self.hex(v.init_prologue),
                                       localStatic: respStatic, remoteStatic: nil, localEphemeral: Self.key(v.resp_ephemeral)!)
            var iT: NoiseTransport?
            var rT: NoiseTransport?
            for (n, m) in v.messages.enumerated() {
                let payload = Self.hex(m.payload)
                if !i.isFinished || !r.isFinished {
                    let initiatorWrites = n % 2 == 0
                    if initiatorWrites {
                        let c = try i.writeMessage(payload: payload)
                        #expect(Hex.encode(c) == m.ciphertext, "\(v.protocol_name) message \(n)")
                        #expect(try r.readMessage(c) == payload)
                    } else {
                        let c = try r.writeMessage(payload: payload)
                        #expect(Hex.encode(c) == m.ciphertext, "\(v.protocol_name) message \(n)")
                        #expect(try i.readMessage(c) == payload)
                    }
                    if i.isFinished && r.isFinished {
                        if let h = v.handshake_hash { #expect(Hex.encode(i.handshakeHash) == h) }
                        iT = try i.split()
                        rT = try r.split()
                    }
                } else {
                    // Transport phase: one-way patterns aside, messages alternate.
                    if n % 2 == 0 {
                        let c = try iT!.encrypt(payload)
                        #expect(Hex.encode(c) == m.ciphertext, "\(v.protocol_name) transport \(n)")
                        #expect(try rT!.decrypt(c) == payload)
                    } else {
                        let c = try rT!.encrypt(payload)
                        #expect(Hex.encode(c) == m.ciphertext, "\(v.protocol_name) transport \(n)")
                        #expect(try iT!.decrypt(c) == payload)
                    }
                }
            }
        }
    }
}
