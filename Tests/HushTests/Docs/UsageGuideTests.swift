import Foundation
import Hush
import Testing

// The examples of Docs/usage.md, verbatim (the last test checks that every Swift block of the
// guide appears here, line for line, so the guide cannot drift from code that compiles and runs).

// BEGIN usage: device
/// Everything one device keeps: its identity and prekeys, in stores.
struct MessagingDevice {
    let address: ProtocolAddress
    let store: InMemorySignalProtocolStore
    let signedPreKey: SignedPreKeyRecord
    let preKeys: [PreKeyRecord]

    init(name: String, deviceID: UInt32 = 1) throws {
        let identity = try IdentityKeyPair.generate()
        let registrationID = try RegistrationID.generate()
        store = InMemorySignalProtocolStore(identity: identity, registrationID: registrationID)
        // One signed prekey (rotate it every week or month) and a batch of one-time prekeys.
        signedPreKey = try SignedPreKeyRecord.generate(id: 1, signedBy: identity)
        preKeys = try PreKeyRecord.generate(ids: 1...100)
        store.storeSignedPreKey(signedPreKey)
        for preKey in preKeys { store.storePreKey(preKey) }
        address = ProtocolAddress(name: name, deviceID: deviceID)
    }

    /// What the server hands out to someone who wants to write to this device.
    func bundle(oneTimePreKey: PreKeyRecord?) -> PreKeyBundle {
        PreKeyBundle(
            registrationID: store.localRegistrationID(), deviceID: address.deviceID,
            identityKey: store.identityKeyPair().identityKey,
            signedPreKey: signedPreKey.publicSignedPreKey,
            oneTimePreKey: oneTimePreKey?.publicPreKey)
    }
}
// END usage: device

@Test func aliceAndBob() throws {
    // BEGIN usage: conversation
    let alice = try MessagingDevice(name: "alice")
    let bob = try MessagingDevice(name: "bob")

    // Alice fetches Bob's bundle from the server and starts a session (X3DH).
    let bundle = bob.bundle(oneTimePreKey: bob.preKeys.first)
    try SessionBuilder.process(bundle, for: bob.address, store: alice.store)

    // She can write at once. Until Bob answers, her messages are PreKeySignalMessages.
    let first = try SessionCipher.encrypt(Array("Hi Bob!".utf8), for: bob.address, store: alice.store)
    let wire: (kind: Int, bytes: [UInt8]) = (first.kind.rawValue, first.serialized)

    // Bob receives the bytes and their kind from the server, with the sender's address.
    let received = try CiphertextMessage(kind: CiphertextMessage.Kind(rawValue: wire.kind)!, serialized: wire.bytes)
    let plaintext = try SessionCipher.decrypt(received, from: alice.address, store: bob.store)
    assert(String(decoding: plaintext, as: UTF8.self) == "Hi Bob!")

    // Bob answers; every reply turns the Diffie-Hellman ratchet.
    let reply = try SessionCipher.encrypt(Array("Hi Alice!".utf8), for: alice.address, store: bob.store)
    let answer = try SessionCipher.decrypt(reply, from: bob.address, store: alice.store)
    assert(String(decoding: answer, as: UTF8.self) == "Hi Alice!")
    // END usage: conversation
    #expect(String(decoding: plaintext, as: UTF8.self) == "Hi Bob!")
    #expect(String(decoding: answer, as: UTF8.self) == "Hi Alice!")
    #expect(first.kind == .preKeySignal && reply.kind == .signal)

    // BEGIN usage: errors
    do {
        _ = try SessionCipher.decrypt(received, from: alice.address, store: bob.store)  // delivered twice
    } catch .duplicateMessage {
        // Already read: drop it silently.
    } catch .untrustedIdentity(let address, let newIdentity) {
        // The peer's identity key changed: show the new safety number, and if the user
        // accepts, trust it and retry.
        bob.store.saveIdentity(newIdentity, for: address)
    } catch {
        // Everything else (bad MAC, malformed, unknown prekey, …): drop the message. Nothing
        // in the stores changed, so the session is exactly as it was.
    }
    // END usage: errors

    // BEGIN usage: persistence
    // Session records serialize to a compact, versioned binary form. It holds keys: encrypt
    // it at rest.
    let record = try #require(alice.store.loadSession(for: bob.address))
    let storageKey = try SymmetricKey()
    let sealed = try XChaChaPoly.seal(record.serialized(), using: storageKey)
    let restored = try SessionRecord(serialized: XChaChaPoly.open(sealed, using: storageKey))
    alice.store.storeSession(restored, for: bob.address)
    // END usage: persistence
    #expect(try SessionCipher.decrypt(try SessionCipher.encrypt([1], for: alice.address, store: bob.store),
                                      from: bob.address, store: alice.store) == [1])
}

// BEGIN usage: actor
/// Serializes every operation of one device: the protocol functions are synchronous and the
/// stores thread-safe, but two operations on the same address must not interleave.
actor Messenger {
    private let store: InMemorySignalProtocolStore

    init(store: InMemorySignalProtocolStore) { self.store = store }

    func startSession(with address: ProtocolAddress, bundle: PreKeyBundle) throws(SignalProtocolError) {
        try SessionBuilder.process(bundle, for: address, store: store)
    }

    func encrypt(_ text: String, for address: ProtocolAddress) throws(SignalProtocolError) -> CiphertextMessage {
        try SessionCipher.encrypt(Array(text.utf8), for: address, store: store)
    }

    func decrypt(_ message: CiphertextMessage, from address: ProtocolAddress) throws(SignalProtocolError) -> String {
        String(decoding: try SessionCipher.decrypt(message, from: address, store: store), as: UTF8.self)
    }
}
// END usage: actor

@Test func messengerActor() async throws {
    let alice = try MessagingDevice(name: "alice")
    let bob = try MessagingDevice(name: "bob")
    let aliceMessenger = Messenger(store: alice.store)
    let bobMessenger = Messenger(store: bob.store)
    try await aliceMessenger.startSession(with: bob.address, bundle: bob.bundle(oneTimePreKey: nil))
    let messages = try await withThrowingTaskGroup(of: CiphertextMessage.self) { group in
        for i in 0..<10 { group.addTask { try await aliceMessenger.encrypt("m\(i)", for: bob.address) } }
        return try await group.reduce(into: []) { $0.append($1) }
    }
    var texts: Set<String> = []
    for m in messages { texts.insert(try await bobMessenger.decrypt(m, from: alice.address)) }
    #expect(texts == Set((0..<10).map { "m\($0)" }))
}

@Test func groupExample() throws {
    let alice = try MessagingDevice(name: "alice")
    let bob = try MessagingDevice(name: "bob")
    // BEGIN usage: group
    // Alice creates her sender key for the group and sends the distribution message to each
    // member inside their pairwise session (here: directly).
    let aliceInFamily = SenderKeyName(groupID: "family", sender: alice.address)
    let distribution = try GroupSessionBuilder.distributionMessage(for: aliceInFamily, store: alice.store)
    try GroupSessionBuilder.process(
        SenderKeyDistributionMessage(serialized: distribution.serialized), from: aliceInFamily, store: bob.store)

    // Then every group message is encrypted and signed once, for all members.
    let groupMessage = try GroupCipher.encrypt(Array("Dinner at 8".utf8), for: aliceInFamily, store: alice.store)
    let text = try GroupCipher.decrypt(groupMessage.serialized, from: aliceInFamily, store: bob.store)
    assert(String(decoding: text, as: UTF8.self) == "Dinner at 8")
    // END usage: group
    #expect(String(decoding: text, as: UTF8.self) == "Dinner at 8")
}

@Test func envelopeExample() throws {
    let alice = try MessagingDevice(name: "alice")
    let bob = try MessagingDevice(name: "bob")
    // BEGIN usage: envelope
    // The server operator: a trust root (its public key ships in the app) and a server key,
    // certified for 90 days.
    let nowMilliseconds = UInt64(Date().timeIntervalSince1970 * 1000)
    let trustRoot = try Curve25519.KeyAgreement.PrivateKey()
    let serverKey = try Curve25519.KeyAgreement.PrivateKey()
    let serverCertificate = try ServerCertificate.issue(
        keyID: 1, key: serverKey.publicKey, expiration: nowMilliseconds + 90 * 86_400_000, signedBy: trustRoot)

    // The server certifies Alice's identity key for a day.
    let aliceIdentity = alice.store.identityKeyPair()
    let certificate = try SenderCertificate.issue(
        senderID: "alice", deviceID: 1, identityKey: aliceIdentity.identityKey,
        expiration: nowMilliseconds + 86_400_000, server: serverCertificate, signedBy: serverKey)

    // Alice seals a session message (or a receipt, a typing indicator…) for Bob: the server
    // sees only that it goes to Bob.
    try SessionBuilder.process(bob.bundle(oneTimePreKey: nil), for: bob.address, store: alice.store, suite: .hush1)
    let message = try SessionCipher.encrypt(Array("sealed".utf8), for: bob.address, store: alice.store)
    let envelope = try SealedEnvelope.seal(
        message.serialized, contentType: .preKeyMessage, certificate: certificate,
        senderIdentity: aliceIdentity, to: bob.store.identityKeyPair().identityKey)

    // Bob opens it and learns, authenticated, who sent it.
    let validator = CertificateValidator(trustRoot: trustRoot.publicKey)
    let opened = try SealedEnvelope.open(envelope, recipientIdentity: bob.store.identityKeyPair(),
                                         validator: validator, now: nowMilliseconds)
    let sender = ProtocolAddress(name: opened.sender.senderID, deviceID: opened.sender.deviceID)
    let inner = try CiphertextMessage(kind: .hushPreKey, serialized: opened.message)
    let text = try SessionCipher.decrypt(inner, from: sender, store: bob.store)
    // END usage: envelope
    #expect(String(decoding: text, as: UTF8.self) == "sealed")
    #expect(opened.contentType == .preKeyMessage)
}

/// Every ```swift block of Docs/usage.md appears in this file, line for line (indentation
/// ignored).
@Test func usageGuideMatchesTheseExamples() throws {
    let here = URL(fileURLWithPath: #filePath)
    let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let guide = try String(contentsOf: root.appendingPathComponent("Docs/usage.md"), encoding: .utf8)
    let source = try String(contentsOf: here, encoding: .utf8)
    func normalized(_ text: Substring) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    }
    let sourceLines = normalized(source[...]).joined(separator: "\n")
    var blocks = 0
    var rest = guide[...]
    while let start = rest.range(of: "```swift\n") {
        guard let end = rest[start.upperBound...].range(of: "```") else { break }
        let block = normalized(rest[start.upperBound..<end.lowerBound]).joined(separator: "\n")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(sourceLines.contains(block), "Docs/usage.md block \(blocks + 1) is not in UsageGuideTests.swift")
        blocks += 1
        rest = rest[end.upperBound...]
    }
    #expect(blocks >= 7)
}
