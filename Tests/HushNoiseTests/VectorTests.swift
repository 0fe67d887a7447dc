import Foundation
import HushCrypto
@testable import HushNoise
import Testing

/// The cacophony vectors, replayed through the engine: the public XX, IK and NK and, through the
/// package-level initializer, every other fundamental and one-way pattern with 25519,
/// ChaChaPoly and SHA256.
@Suite struct CacophonyVectorTests {
    static let engineVectors = cacophonyVectors().filter {
        $0.suite == "25519_ChaChaPoly_SHA256" && NoiseHandshakePattern.all[$0.patternName] != nil
    }

    @Test(.enabled(if: hasCacophony, "needs ../shared/vectors/noise"))
    func theVectorsCoverEveryEnginePattern() {
        #expect(Set(Self.engineVectors.map(\.patternName)) == Set(NoiseHandshakePattern.all.keys))
        #expect(Self.engineVectors.count == 15)
    }

    @Test(.enabled(if: hasCacophony, "needs ../shared/vectors/noise"), arguments: engineVectors)
    func replay(_ vector: CacophonyVector) throws {
        let definition = try #require(NoiseHandshakePattern.all[vector.patternName])
        var initiator = try NoiseHandshake(
            definition: definition, role: .initiator, prologue: vector.bytes("init_prologue"),
            localStatic: vector.key("init_static"), remoteStatic: vector.publicKey("init_remote_static"),
            presetEphemeral: vector.key("init_ephemeral"), random: SystemRandom())
        var responder = try NoiseHandshake(
            definition: definition, role: .responder, prologue: vector.bytes("resp_prologue"),
            localStatic: vector.key("resp_static"), remoteStatic: vector.publicKey("resp_remote_static"),
            presetEphemeral: vector.key("resp_ephemeral"), random: SystemRandom())
        var index = 0
        while !initiator.isFinished {
            let (payload, ciphertext) = vector.messages[index]
            let fromInitiator = index % 2 == 0
            #expect(initiator.isMyTurnToWrite == fromInitiator && responder.isMyTurnToWrite == !fromInitiator)
            let written = fromInitiator ? try initiator.writeMessage(payload: payload) : try responder.writeMessage(payload: payload)
            #expect(written == ciphertext, "message \(index)")
            let read = fromInitiator ? try responder.readMessage(written) : try initiator.readMessage(written)
            #expect(read == payload, "message \(index)")
            index += 1
        }
        #expect(responder.isFinished)
        // The handshake hash before split equals the one the transports carry.
        #expect(initiator.handshakeHash == vector.bytes("handshake_hash"))
        var i = try initiator.split(), r = try responder.split()
        #expect(i.handshakeHash == vector.bytes("handshake_hash") && r.handshakeHash == i.handshakeHash)
        for (offset, (payload, ciphertext)) in vector.messages.enumerated().dropFirst(index) {
            // One-way patterns (§7.4) send only from the initiator; the others alternate.
            let fromInitiator = definition.isOneWay || offset % 2 == 0
            let written = fromInitiator ? try i.encrypt(payload) : try r.encrypt(payload)
            #expect(written == ciphertext, "message \(offset)")
            #expect(try (fromInitiator ? r.decrypt(written) : i.decrypt(written)) == payload)
        }
    }

    @Test(.enabled(if: hasCacophony, "needs ../shared/vectors/noise"), arguments: NoisePattern.allCases)
    func thePublicPatternsHaveTheirVector(_ pattern: NoisePattern) {
        #expect(Self.engineVectors.contains { $0.protocolName == "Noise_\(pattern.rawValue)_25519_ChaChaPoly_SHA256" })
    }
}
