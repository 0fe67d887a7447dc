import Foundation
import Hush
import Testing
@testable import HushClient

/// kill -9 in the middle of send steps: a child process (this test binary, running
/// `crashChild` only) writes steps "encrypt to Bob + enqueue the payload + insert the message +
/// mark a server id processed" in a loop and reports each one that returned; the parent kills it
/// with SIGKILL and checks the store: every reported step is there, whole; no step is there in
/// part; the session is exactly as far as the outbox (Bob decrypts every queued payload in
/// order, and the next message after the restart).
@Suite struct StoreCrashTests {
    static let childPathVariable = "HUSH_STORE_CRASH_CHILD"

    @Test func killNineBetweenStepsKeepsEveryStepThatReturnedAndNoHalfStep() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("alice.sqlite")
        let secret = ClientStoreSecret.keyFile(SQLiteFactory.keyFile)
        let random = SeededRandom(seed: 5)
        let aliceIdentity = try IdentityKeyPair.generate(using: random)
        let bobIdentity = try IdentityKeyPair.generate(using: random)
        let alice = ProtocolAddress(name: "alice", deviceID: 1), bob = ProtocolAddress(name: "bob", deviceID: 1)
        let bobStore = InMemorySignalProtocolStore(identity: bobIdentity, registrationID: 2)
        let signed = try SignedPreKeyRecord.generate(id: 1, signedBy: bobIdentity, using: random)
        bobStore.storeSignedPreKey(signed)
        do {
            let store = try SQLiteClientStore.create(path: path, secret: secret, identity: aliceIdentity, registrationID: 1)
            try SessionBuilder.process(PreKeyBundle(registrationID: 2, deviceID: 1, identityKey: bobIdentity.identityKey,
                                                    signedPreKey: signed.publicSignedPreKey, oneTimePreKey: nil),
                                       for: bob, store: store)
            let hello = try SessionCipher.encrypt(Array("hello".utf8), for: bob, store: store)
            _ = try SessionCipher.decrypt(hello, from: alice, store: bobStore)
            let reply = try SessionCipher.encrypt(Array("hi".utf8), for: alice, store: bobStore)
            _ = try SessionCipher.decrypt(reply, from: bob, store: store)
            try store.close()
        }

        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        child.arguments = ["--testing-library", "swift-testing", "--filter", "crashChild"]
        child.environment = ProcessInfo.processInfo.environment.merging([Self.childPathVariable: path]) { $1 }
        let output = Pipe()
        child.standardOutput = output
        child.standardError = FileHandle.nullDevice
        try child.run()
        var text = ""
        var reported = 0
        while reported < 40 {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }  // the child ended before it was killed
            text += String(decoding: chunk, as: UTF8.self)
            reported = text.split(separator: "\n").compactMap { line in
                line.hasPrefix("committed ") ? Int(line.dropFirst("committed ".count)) : nil
            }.max() ?? 0
        }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        #expect(child.terminationReason == .uncaughtSignal)
        try #require(reported >= 40, "the child reported \(reported) steps")

        let store = try SQLiteClientStore.open(path: path, secret: secret)
        let items = try store.outbox()
        let committed = items.count
        #expect(committed >= reported)
        #expect(items.map(\.clientMessageID) == (1...UInt64(committed)).map { $0 })
        for k in 1...UInt64(committed) {
            #expect(try store.isProcessed(serverID: k))
            #expect(try store.message(MessageID(account: "alice", device: 1, clientMessageID: k))?.body == "step \(k)")
        }
        let next = UInt64(committed + 1)
        #expect(try !store.isProcessed(serverID: next))
        #expect(try store.message(MessageID(account: "alice", device: 1, clientMessageID: next)) == nil)
        #expect(try store.messages(in: "bob", before: nil, limit: 10_000).count == committed)
        // The session advanced exactly with the outbox: Bob reads every queued payload, in order…
        for item in items {
            let message = try CiphertextMessage(kind: .signal, serialized: item.payload)
            #expect(try SessionCipher.decrypt(message, from: alice, store: bobStore) == Array("step \(item.clientMessageID)".utf8))
        }
        // …and what Alice writes after the restart, with no counter used twice.
        let after = try SessionCipher.encrypt(Array("after the crash".utf8), for: bob, store: store)
        #expect(try SessionCipher.decrypt(after, from: alice, store: bobStore) == Array("after the crash".utf8))
    }

    /// The child half: runs only inside the process the test above starts.
    @Test(.enabled(if: ProcessInfo.processInfo.environment[StoreCrashTests.childPathVariable] != nil))
    func crashChild() throws {
        let path = try #require(ProcessInfo.processInfo.environment[Self.childPathVariable])
        let store = try SQLiteClientStore.open(path: path, secret: .keyFile(SQLiteFactory.keyFile))
        let bob = ProtocolAddress(name: "bob", deviceID: 1)
        for k in UInt64(1)...3_000 {
            try store.atomically {
                let payload = try SessionCipher.encrypt(Array("step \(k)".utf8), for: bob, store: store)
                try store.enqueue(OutboxItem(clientMessageID: k, account: "bob", devices: [1], payload: payload.serialized,
                                             message: MessageID(account: "alice", device: 1, clientMessageID: k), createdAt: k))
                _ = try store.insertMessage(StoredMessage(
                    id: MessageID(account: "alice", device: 1, clientMessageID: k), conversation: "bob", direction: .outgoing,
                    body: "step \(k)", sentAt: k, state: .pending))
                try store.markProcessed(serverID: k, at: k)
            }
            // Unbuffered: the line is out the moment the step has returned.
            FileHandle.standardOutput.write(Data("committed \(k)\n".utf8))
        }
    }
}
