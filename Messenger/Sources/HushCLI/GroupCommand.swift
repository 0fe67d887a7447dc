import ArgumentParser
import Foundation
import HushCLIKit
import HushClient

/// `hush group …`: groups (Docs/client.md §Groups). A group is named on the command line by
/// its conversation (`#` and 32 hex digits, as `hush inbox` shows it), those 32 hex digits, or
/// its name when no other group of this account has it.
struct Group: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Groups: create one, list them, send to one, add or remove members (admins), leave.",
        subcommands: [Create.self, List.self, Post.self, Add.self, Remove.self, Leave.self])

    /// The group `reference` names among `account`'s groups.
    static func resolve(_ reference: String, _ account: Account) async throws -> GroupState {
        let groups = try await account.client.groups()
        let hex = reference.hasPrefix("#") ? String(reference.dropFirst()) : reference
        if let id = GroupID(conversation: "#" + hex.lowercased()), let g = groups.first(where: { $0.id == id }) { return g }
        let named = groups.filter { $0.name == reference }
        guard named.count == 1 else {
            throw CLIError.failed(named.isEmpty ? "no group \(reference) here (hush group list)" : "several groups are named \(reference): use its #id")
        }
        return named[0]
    }

    /// `name (#id): alice (admin), bob`, the members as this device holds them.
    static func describe(_ g: GroupState) -> String {
        let members = g.members.map { g.isAdmin($0) ? "\($0) (admin)" : $0 }.joined(separator: ", ")
        return "\(g.name.isEmpty ? "(no name)" : g.name) (\(g.id.conversation)): \(members)"
    }

    /// Connects, runs `body`, waits until the relay took what it queued, closes.
    static func online(_ options: HomeOptions, timeout: Int, _ body: (Account) async throws -> Void) async throws {
        try await runReporting {
            let account = try options.open()
            do {
                try await account.connect(timeout: .seconds(timeout))
                try await body(account)
                try await account.flush(timeout: .seconds(timeout))
                await account.close()
            } catch {
                await account.close()
                throw Account.describe(error)
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a group with these members; you are its admin.")
        @OptionGroup var options: HomeOptions
        @Argument(help: "The group's name (at most 100 bytes).") var name: String
        @Argument(help: "The members' account names.") var members: [String]
        @Option(help: "Seconds to wait for the relay.") var timeout: Int = 15

        func run() async throws {
            try await Group.online(options, timeout: timeout) { account in
                let g = try await account.client.createGroup(name: name, members: members)
                say("created " + Group.describe(g))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List this account's groups and their members (from the store).")
        @OptionGroup var options: HomeOptions

        func run() async throws {
            try await runReporting {
                let account = try options.open()
                defer { try? account.store.close() }
                let groups = try await account.client.groups()
                if groups.isEmpty { say("no groups") }
                for g in groups {
                    say(Group.describe(g) + (g.isMember(account.client.account) ? "" : "  — you are no longer a member"))
                }
            }
        }
    }

    struct Post: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "send",
            abstract: "Send a text to a group and wait for the relay's ✓ (encrypted once, one envelope for every member's device).")
        @OptionGroup var options: HomeOptions
        @Argument(help: "The group: #id, its hex id, or its name.") var group: String
        @Argument(help: "The text.") var text: String
        @Option(help: "Seconds to wait for the relay.") var timeout: Int = 15

        func run() async throws {
            try await Group.online(options, timeout: timeout) { account in
                let g = try await Group.resolve(group, account)
                let id = try await account.client.sendGroup(text, to: g.id)
                let store = account.store
                try await waitUntil("the relay's ✓", timeout: .seconds(timeout)) { (try store.message(id)?.state ?? .pending) >= .sent }
                let state = (try? store.message(id))?.state ?? .sent
                say("\(TickMark.mark(state, style: .detect())) to \(g.name): \(text)")
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add members to a group (admins only).")
        @OptionGroup var options: HomeOptions
        @Argument(help: "The group: #id, its hex id, or its name.") var group: String
        @Argument(help: "The account names to add.") var members: [String]
        @Option(help: "Seconds to wait for the relay.") var timeout: Int = 15

        func run() async throws {
            try await Group.online(options, timeout: timeout) { account in
                let g = try await account.client.addMembers(members, to: try await Group.resolve(group, account).id)
                say(Group.describe(g))
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove members from a group (admins only); your sender key is replaced, so they cannot read what follows.")
        @OptionGroup var options: HomeOptions
        @Argument(help: "The group: #id, its hex id, or its name.") var group: String
        @Argument(help: "The account names to remove.") var members: [String]
        @Option(help: "Seconds to wait for the relay.") var timeout: Int = 15

        func run() async throws {
            try await Group.online(options, timeout: timeout) { account in
                let g = try await account.client.removeMembers(members, from: try await Group.resolve(group, account).id)
                say(Group.describe(g))
            }
        }
    }

    struct Leave: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Leave a group (the other members are told).")
        @OptionGroup var options: HomeOptions
        @Argument(help: "The group: #id, its hex id, or its name.") var group: String
        @Option(help: "Seconds to wait for the relay.") var timeout: Int = 15

        func run() async throws {
            try await Group.online(options, timeout: timeout) { account in
                let g = try await Group.resolve(group, account)
                try await account.client.leaveGroup(g.id)
                say("left \(g.name) (\(g.id.conversation))")
            }
        }
    }
}
