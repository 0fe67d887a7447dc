import Foundation
import Hush
import HushClient
import Synchronization

extension Demo {
    /// A second device (Docs/client.md §Linked devices, §Several devices; Docs/spec/client.md
    /// §7): alice's laptop shows a link code, her phone sends it the account through the relay
    /// (sealed to the code's key); then a message from the phone appears on the laptop as sent
    /// (a sync transcript), and bob's reply, sent once to every device of alice after one
    /// "mismatched devices" round, reaches both. Returns the laptop.
    func secondDevice(alice: Account, bob: Account, root: URL, relay: EmbeddedRelay, address: RelayAddress) async throws -> Account {
        let keyFile = root.appendingPathComponent("alice-laptop.key").path
        try SecretMaterial.createKeyFile(at: keyFile)
        let home = HushHome(directory: root.appendingPathComponent("alice-laptop"))
        let code = Mutex<String?>(nil)
        let secret = try SecretMaterial.load(.keyFile(keyFile))
        let trustRoot = relay.trustRoot, timeout = stepTimeout
        let linking = Task {
            try await LinkCLI.link(home: home, relay: address, trustRoot: trustRoot, secret: secret, keyFile: keyFile,
                                   limits: .moderate, codeFile: nil, timeout: timeout,
                                   say: { line in
                                       if line.hasPrefix("link code: ") { code.withLock { $0 = String(line.dropFirst("link code: ".count)) } }
                                   }, tune: Self.tune)
        }
        try await waitUntil("the laptop's link code", timeout: stepTimeout) { code.withLock { $0 } != nil }
        let shown = code.withLock { $0 } ?? ""
        let id: UInt32
        do { id = try await alice.client.linkDevice(code: shown) } catch {
            linking.cancel()
            throw LinkCLI.describe(error)
        }
        let laptop: Account
        switch await linking.result {
        case .success(let a): laptop = a
        case .failure(let e): throw e
        }
        try await laptop.connect(timeout: stepTimeout)
        _ = try await alice.client.refreshOwnDevices()
        step("alice links her laptop: it shows \(shown.prefix(18))…, her phone sends it the account sealed to that code's key: device \(id)")

        let text = "Sent from my phone."
        let sent = try await alice.client.send(text, to: "bob")
        try await waitUntil("bob to receive the phone's message", timeout: stepTimeout) {
            try bob.store.messages(in: "alice", before: nil, limit: 50).contains { $0.id == sent }
        }
        try await waitUntil("the laptop to show the phone's message as sent", timeout: stepTimeout) {
            try laptop.store.messages(in: "bob", before: nil, limit: 50).contains { $0.id == sent && $0.direction == .outgoing }
        }
        step("alice's phone → bob \"\(text)\": one Send to bob's devices, and a sync transcript to the laptop, which shows it as sent")

        let reply = "Got it on both?"
        let answer = try await bob.client.send(reply, to: "alice")
        for (who, account) in [("phone", alice), ("laptop", laptop)] {
            try await waitUntil("alice's \(who) to receive bob's reply", timeout: stepTimeout) {
                try account.store.messages(in: "bob", before: nil, limit: 50).contains { $0.id == answer }
            }
        }
        step("bob → alice \"\(reply)\": his client learns of the laptop (MISMATCHED_DEVICES, one retry) and both of alice's devices get it")
        return laptop
    }
}
