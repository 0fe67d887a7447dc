import Hush
import Testing

/// The size table of Docs/spec/envelope.md §9, recomputed: a 5-byte text and a 1 KiB message
/// in an established session (counters below 128), sealed for one recipient with a sender id
/// of 5 bytes ("alice"). If a format changes, this test and the table must change together.
@Test func documentedSizes() throws {
    let pki = try PKI(seed: 800)
    for suite in CipherSuite.allCases {
        let (alice, bob) = try establishedPair(seed: 801, suite: suite)
        for (length, expected) in suite == .hush1 ? [(5, (56, 387)), (1024, (1075, 1443))] : [(5, (66, 387)), (1024, (1091, 1443))] {
            let message = try SessionCipher.encrypt([UInt8](repeating: 0x61, count: length), for: bob.address, store: alice.store)
            let envelope = try SealedEnvelope.seal(message.serialized, contentType: .message, certificate: try pki.certificate(for: alice),
                                                   senderIdentity: alice.identity, to: bob.identity.identityKey, random: alice.random)
            #expect(message.serialized.count == expected.0, "\(suite) \(length): message \(message.serialized.count)")
            #expect(envelope.count == expected.1, "\(suite) \(length): envelope \(envelope.count)")
        }
    }
    #expect(try pki.certificate(for: Device("alice", seed: 1)).serialized.count == 218)
    #expect(pki.server.serialized.count == 106)
}
