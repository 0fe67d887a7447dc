import HushNoise
import Testing

/// The example of Docs/noise.md (the relay's side), run against a device.
@Suite struct DocsExampleTests {
    @Test func relaySideOfTheGuide() throws {
        let relayKey = staticKey(2), deviceKey = staticKey(1)
        var deviceHandshake = try NoiseHandshake(pattern: .ik, role: .initiator, localStatic: deviceKey, remoteStatic: relayKey.publicKey)
        let firstMessage = try deviceHandshake.writeMessage(payload: Array("login".utf8))
        let welcome = Array("welcome".utf8), stanza = Array("stanza".utf8)

        // Docs/noise.md:
        var handshake = try NoiseHandshake(pattern: .ik, role: .responder, localStatic: relayKey)
        let login = try handshake.readMessage(firstMessage)
        let device = handshake.remoteStaticKey!
        let reply = try handshake.writeMessage(payload: welcome)
        var channel = try handshake.split()
        let frame = try channel.encrypt(stanza)

        #expect(login == Array("login".utf8) && device == deviceKey.publicKey)
        #expect(try deviceHandshake.readMessage(reply) == welcome)
        var deviceChannel = try deviceHandshake.split()
        #expect(try deviceChannel.decrypt(frame) == stanza)
        #expect(try channel.decrypt(deviceChannel.encrypt(stanza)) == stanza)
        #expect(firstMessage.count == 96 + 5 && reply.count == 48 + 7 && frame.count == stanza.count + 16)
    }
}
