import Foundation
import Hush
import HushTransport
import Testing
@testable import HushClient

/// Issue 12's group goal, in bytes (Docs/client.md §Groups, "Measured"): a 5-byte text to 100
/// member devices as one MultiSend (one sender-key encryption, one payload, 100 headers)
/// against 100 Sends of a pairwise-sealed copy each, on the wire from the sender to the relay:
/// stanza + Noise tag (16) + WebSocket client frame header (2, 4 or 10 bytes, + 4 mask).
/// The sender's CPU for both is in Benchmarks (`group_send_100_devices`,
/// `pairwise_send_100_devices` in ProtocolBenchmarks).
@Suite struct GroupWireSizeTests {
    static func wire(_ stanza: RelayStanza) throws -> Int {
        let bytes: [UInt8] = try stanza.serializedBytes()
        let n = bytes.count + 16
        let header = n < 126 ? 2 : (n < 65_536 ? 4 : 10)
        return n + header + 4
    }

    @Test func aGroupMessageToOneHundredDevicesCostsOnePayloadAndOneHundredHeaders() throws {
        let random = SeededRandom(seed: 12)
        let root = try Curve25519.KeyAgreement.PrivateKey(using: random)
        let serverKey = try Curve25519.KeyAgreement.PrivateKey(using: random)
        let server = try ServerCertificate.issue(keyID: 1, key: serverKey.publicKey, expiration: UInt64.max, signedBy: root, random: random)
        let alice = try IdentityKeyPair.generate(using: random)
        let aliceStore = InMemorySignalProtocolStore(identity: alice, registrationID: 1)
        let certificate = try SenderCertificate.issue(senderID: "alice", deviceID: 1, identityKey: alice.identityKey,
                                                      expiration: UInt64.max, server: server, signedBy: serverKey, random: random)
        // 100 members, one device each, in an established hush-1 session (counters < 128).
        var members: [(ProtocolAddress, IdentityKeyPair)] = []
        for i in 0..<100 {
            let identity = try IdentityKeyPair.generate(using: random)
            let store = InMemorySignalProtocolStore(identity: identity, registrationID: 2)
            let spk = try SignedPreKeyRecord.generate(id: 1, signedBy: identity, using: random)
            store.storeSignedPreKey(spk)
            let address = ProtocolAddress(name: "member\(i)", deviceID: 1)
            try SessionBuilder.process(PreKeyBundle(registrationID: 2, deviceID: 1, identityKey: identity.identityKey,
                                                    signedPreKey: spk.publicSignedPreKey, oneTimePreKey: nil),
                                       for: address, store: aliceStore, suite: .hush1)
            let me = ProtocolAddress(name: "alice", deviceID: 1)
            _ = try SessionCipher.decrypt(try SessionCipher.encrypt([1], for: address, store: aliceStore), from: me, store: store)
            _ = try SessionCipher.decrypt(try SessionCipher.encrypt([1], for: me, store: store), from: address, store: aliceStore)
            members.append((address, identity))
        }
        let text = MessageContent.text(id: 1_000, sentAt: 1_800_000_000_000, body: "hello").encoded

        // One group message: one encryption with the sender key, one envelope, one stanza.
        let group = GroupID(bytes: [UInt8](repeating: 7, count: 16))!
        let name = SenderKeyName(groupID: group.hex, sender: ProtocolAddress(name: "alice", deviceID: 1))
        _ = try GroupSessionBuilder.distributionMessage(for: name, store: aliceStore, random: random)
        let skm = try GroupCipher.encrypt(text, for: name, store: aliceStore, random: random)
        let envelope = try MultiRecipientEnvelope.seal(group.bytes + skm.serialized, contentType: .groupMessage, certificate: certificate,
                                                       senderIdentity: alice, to: members.map(\.1.identityKey), random: random)
        var multi = RelayStanza()
        multi.multiSend.clientMessageID = 1_000
        multi.multiSend.recipients = members.map { m in
            var r = RelayMultiRecipient()
            r.account = m.0.name
            r.devices = [1]
            return r
        }
        multi.multiSend.envelope = Data(envelope.serialized)
        let groupWire = try Self.wire(multi)
        let copy = try envelope.delivered(to: 0)

        // The same text as 100 pairwise messages, each sealed for its recipient and sent alone.
        var pairwiseWire = 0, sealedBytes = 0
        for (i, m) in members.enumerated() {
            let message = try SessionCipher.encrypt(text, for: m.0, store: aliceStore)
            let sealed = try SealedEnvelope.seal(message.serialized, contentType: .message, certificate: certificate,
                                                 senderIdentity: alice, to: m.1.identityKey, random: random)
            sealedBytes = sealed.count
            var s = RelayStanza()
            s.send.clientMessageID = 2_000 + UInt64(i)
            s.send.account = m.0.name
            s.send.devices = [1]
            s.send.payload = Data(sealed)
            pairwiseWire += try Self.wire(s)
        }
        // The figures in Docs/client.md §Groups; any change to a format moves them.
        #expect(skm.serialized.count == 91)
        #expect(envelope.serialized.count == 9_988)
        #expect(copy.count == 483)
        #expect(sealedBytes == 387)
        #expect(groupWire == 11_512)
        #expect(pairwiseWire == 43_290)
    }
}
