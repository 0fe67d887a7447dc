import Foundation
import Hush
import HushClient

extension Demo {
    /// A group of three (Docs/spec/client.md §6): alice creates it, one message goes to bob and
    /// carol as one multi-recipient envelope (one payload, a header per device), both receive
    /// it and alice's ticks follow each member; then alice removes carol, which rotates her
    /// sender key, and the next message reaches bob only.
    func group(alice: Account, bob: Account, carol: Account, aliceLog: EventLog, relay: EmbeddedRelay) async throws {
        let state = try await alice.client.createGroup(name: "weekend", members: ["bob", "carol"])
        let id = state.id
        for (who, account) in [("bob", bob), ("carol", carol)] {
            try await waitUntil("\(who) to join the group", timeout: stepTimeout) { try await account.client.group(id) == state }
        }
        step("alice creates the group \"weekend\" with bob and carol (admin: alice); its state reaches both, pairwise")
        let before = relay.multiSends.count
        let text = "Dinner at 8?"
        let mid = try await alice.client.sendGroup(text, to: id)
        for (who, account) in [("bob", bob), ("carol", carol)] {
            try await waitUntil("\(who) to receive the group message", timeout: stepTimeout) {
                try account.store.messages(in: id.conversation, before: nil, limit: 10).contains { $0.id == mid }
            }
        }
        try await waitState(alice, mid, .delivered, "✓✓ once both members have the group message")
        guard let fanout = relay.multiSends.dropFirst(before).first else { throw CLIError.failed("the group message was not one MultiSend") }
        step("alice → group \"\(text)\": encrypted once with her sender key, one MultiSend of \(fanout.bytes) bytes for \(fanout.devices) devices; ✓✓ when both have it")
        _ = try await bob.client.markRead(id.conversation)
        try await waitEvent(aliceLog, since: 0, "bob's read tick in the group") { $0 == .memberTick(mid, account: "bob", .read) }
        let ticks = try await alice.client.memberTicks(mid).sorted { $0.key < $1.key }
            .map { "\($0.key) \(TickMark.mark($0.value, style: style))" }.joined(separator: ", ")
        step("bob reads it: alice sees per member \(ticks) (read by some, so the message stays ✓✓)")

        let removed = try await alice.client.removeMembers(["carol"], from: id)
        try await waitUntil("carol to learn she was removed", timeout: stepTimeout) { try await carol.client.group(id) == removed }
        try await waitUntil("bob to see carol removed", timeout: stepTimeout) { try await bob.client.group(id) == removed }
        let after = "Just us two now."
        let second = try await alice.client.sendGroup(after, to: id)
        try await waitUntil("bob to receive the message after the removal", timeout: stepTimeout) {
            try bob.store.messages(in: id.conversation, before: nil, limit: 10).contains { $0.id == second }
        }
        try await waitState(alice, second, .delivered, "✓✓ from bob for the message after the removal")
        guard try carol.store.messages(in: id.conversation, before: nil, limit: 10).contains(where: { $0.id == second }) == false else {
            throw CLIError.failed("carol received a group message after her removal")
        }
        step("alice removes carol: everyone's sender key is rotated; \"\(after)\" reaches bob (✓✓), not carol")
    }
}
