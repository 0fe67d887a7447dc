import Foundation
import Hush
import HushPQ

/// A ``ClientStore`` in memory: for tests and demos. Thread-safe; nothing survives the process.
///
/// One recursive lock guards everything, so a thread inside ``atomically(_:)`` (or inside
/// ``updateSession(for:_:)``, whose body consults the identity and prekey stores) may call the
/// store again while every other thread waits: the step is isolated as well as atomic.
/// ``atomically(_:)`` takes a copy of the small state (keys, sessions, settings, the outbox;
/// copy-on-write, so the copy is free until the first change) and puts it back when `body`
/// throws; the history (messages, processed ids), which grows without bound, is not copied but
/// changed through an undo journal, so a step costs the same with 100,000 messages as with none.
/// A nested call does the same for its own part, so an inner step that throws undoes only itself
/// and the outer one decides the rest.
/// Identities are trusted on first use, as ``InMemorySignalProtocolStore`` does.
public final class InMemoryClientStore: ClientStore, @unchecked Sendable {
    // Everything mutable, in one value so that a step can be undone by assigning a copy back.
    struct State {
        var identities: [ProtocolAddress: IdentityKey] = [:]
        var preKeys: [UInt32: PreKeyRecord] = [:]
        var signedPreKeys: [UInt32: SignedPreKeyRecord] = [:]
        var kyberPreKeys: [UInt32: KyberPreKeyRecord] = [:]
        var sessions: [ProtocolAddress: SessionRecord] = [:]
        var senderKeys: [SenderKeyName: SenderKeyRecord] = [:]
        var settings: [String: [UInt8]] = [:]
        var lastMessageSequence: Int64 = 0
        var outbox: [OutboxItem] = []
        var outboxIDs: Set<UInt64> = []
        var lastOutboxSequence: Int64 = 0
    }

    /// What grows with use: changed in place, undone through ``journal``.
    struct History {
        var messages: [MessageID: StoredMessage] = [:]
        /// Message ids per conversation in sequence order (sequences only grow, so appends keep it sorted).
        var conversationMessages: [String: [MessageID]] = [:]
        /// Processed relay message ids and when they were processed.
        var processed: [UInt64: UInt64] = [:]
    }

    /// How to undo one change of ``History``.
    private enum Undo {
        /// An inserted message (the last id of its conversation).
        case removeMessage(MessageID, conversation: String)
        case restoreMessage(StoredMessage)
        case removeProcessed(UInt64)
        case restoreProcessed([UInt64: UInt64])
    }

    private let identity: IdentityKeyPair
    private let registrationID: UInt32
    private let lock = NSRecursiveLock()
    // Guarded by `lock`.
    private var state = State()
    private var history = History()
    /// Undo entries of the open steps, oldest first (empty outside a step).
    private var journal: [Undo] = []
    /// Open ``atomically(_:)`` calls (nesting depth).
    private var depth = 0

    /// A store for the device with `identity` and `registrationID`.
    public init(identity: IdentityKeyPair, registrationID: UInt32) {
        self.identity = identity
        self.registrationID = registrationID
    }

    private func locked<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: Atomic steps

    public func atomically<R>(_ body: () throws -> R) throws -> R {
        try locked {
            let saved = state, mark = journal.count
            depth += 1
            defer {
                depth -= 1
                if depth == 0 { journal.removeAll(keepingCapacity: true) }
            }
            do { return try body() } catch {
                state = saved
                undo(to: mark)
                throw error
            }
        }
    }

    /// Undoes the history changes journaled after `mark`, newest first.
    private func undo(to mark: Int) {
        while journal.count > mark {
            switch journal.removeLast() {
            case .removeMessage(let id, let conversation):
                history.messages[id] = nil
                history.conversationMessages[conversation]?.removeLast()
                if history.conversationMessages[conversation]?.isEmpty == true { history.conversationMessages[conversation] = nil }
            case .restoreMessage(let m): history.messages[m.id] = m
            case .removeProcessed(let id): history.processed[id] = nil
            case .restoreProcessed(let all): history.processed = all
            }
        }
    }

    private func record(_ entry: Undo) {
        if depth > 0 { journal.append(entry) }
    }

    // MARK: IdentityKeyStore

    public func identityKeyPair() throws -> IdentityKeyPair { identity }
    public func localRegistrationID() throws -> UInt32 { registrationID }

    @discardableResult
    public func saveIdentity(_ identity: IdentityKey, for address: ProtocolAddress) throws -> Bool {
        locked {
            let previous = state.identities.updateValue(identity, forKey: address)
            return previous != nil && previous != identity
        }
    }

    /// Trust on first use, in both directions.
    public func isTrustedIdentity(_ identity: IdentityKey, for address: ProtocolAddress, direction: IdentityDirection) throws -> Bool {
        locked { state.identities[address].map { $0 == identity } ?? true }
    }

    public func identity(for address: ProtocolAddress) throws -> IdentityKey? { locked { state.identities[address] } }

    // MARK: PreKeyStore

    public func loadPreKey(id: UInt32) throws -> PreKeyRecord? { locked { state.preKeys[id] } }
    public func storePreKey(_ record: PreKeyRecord) throws { locked { state.preKeys[record.id] = record } }
    public func removePreKey(id: UInt32) throws { locked { _ = state.preKeys.removeValue(forKey: id) } }
    public func preKeyIDs() throws -> [UInt32] { locked { state.preKeys.keys.sorted() } }

    // MARK: SignedPreKeyStore

    public func loadSignedPreKey(id: UInt32) throws -> SignedPreKeyRecord? { locked { state.signedPreKeys[id] } }
    public func storeSignedPreKey(_ record: SignedPreKeyRecord) throws { locked { state.signedPreKeys[record.id] = record } }
    public func signedPreKeys() throws -> [SignedPreKeyRecord] {
        locked { state.signedPreKeys.values.sorted { $0.id < $1.id } }
    }
    public func removeSignedPreKey(id: UInt32) throws { locked { _ = state.signedPreKeys.removeValue(forKey: id) } }

    // MARK: KyberPreKeyStore

    public func loadKyberPreKey(id: UInt32) throws -> KyberPreKeyRecord? { locked { state.kyberPreKeys[id] } }
    public func storeKyberPreKey(_ record: KyberPreKeyRecord) throws { locked { state.kyberPreKeys[record.id] = record } }
    /// A one-time key is deleted; a last-resort key stays (until rotated away).
    public func markKyberPreKeyUsed(id: UInt32) throws {
        locked { if state.kyberPreKeys[id]?.kind == .oneTime { state.kyberPreKeys[id] = nil } }
    }
    public func kyberPreKeys() throws -> [KyberPreKeyRecord] { locked { state.kyberPreKeys.values.sorted { $0.id < $1.id } } }
    public func removeKyberPreKey(id: UInt32) throws { locked { _ = state.kyberPreKeys.removeValue(forKey: id) } }

    // MARK: SessionStore

    public func loadSession(for address: ProtocolAddress) throws -> SessionRecord? { locked { state.sessions[address] } }
    public func storeSession(_ record: SessionRecord, for address: ProtocolAddress) throws {
        locked { state.sessions[address] = record }
    }
    public func deleteSession(for address: ProtocolAddress) throws { locked { _ = state.sessions.removeValue(forKey: address) } }
    public func sessionDevices(for name: String) throws -> [UInt32] {
        locked { state.sessions.keys.filter { $0.name == name }.map(\.deviceID).sorted() }
    }

    /// Runs `body` on a copy of the record as one atomic step: when `body` throws, neither the
    /// record nor anything `body` did to the identity and prekey stores is kept.
    public func updateSession<R, E: Error>(for address: ProtocolAddress, _ body: (inout SessionRecord?) throws(E) -> R) throws -> R {
        try atomically {
            var record = state.sessions[address]
            let result = try body(&record)
            if let record { state.sessions[address] = record }
            return result
        }
    }

    // MARK: SenderKeyStore

    public func loadSenderKey(for name: SenderKeyName) throws -> SenderKeyRecord? { locked { state.senderKeys[name] } }
    public func storeSenderKey(_ record: SenderKeyRecord, for name: SenderKeyName) throws {
        locked { state.senderKeys[name] = record }
    }
    public func updateSenderKey<R, E: Error>(for name: SenderKeyName, _ body: (inout SenderKeyRecord?) throws(E) -> R) throws -> R {
        try atomically {
            var record = state.senderKeys[name]
            let result = try body(&record)
            if let record { state.senderKeys[name] = record }
            return result
        }
    }

    // MARK: Settings

    public func setting(_ key: String) throws -> [UInt8]? { locked { state.settings[key] } }
    public func setSetting(_ key: String, _ value: [UInt8]?) throws { locked { state.settings[key] = value } }

    // MARK: Messages

    public func insertMessage(_ message: StoredMessage) throws -> StoredMessage? {
        locked {
            guard history.messages[message.id] == nil else { return nil }
            state.lastMessageSequence += 1
            var stored = message
            stored.sequence = state.lastMessageSequence
            history.messages[stored.id] = stored
            history.conversationMessages[stored.conversation, default: []].append(stored.id)
            record(.removeMessage(stored.id, conversation: stored.conversation))
            return stored
        }
    }

    public func message(_ id: MessageID) throws -> StoredMessage? { locked { history.messages[id] } }

    public func allMessages(after: Int64, limit: Int) throws -> [StoredMessage] {
        locked {
            guard limit > 0 else { return [] }
            // Tests' sizes: a sort per page is fine here.
            return Array(history.messages.values.filter { $0.sequence > after }.sorted { $0.sequence < $1.sequence }.prefix(limit))
        }
    }

    @discardableResult
    public func advance(_ id: MessageID, to newState: TickState, serverTime: UInt64?) throws -> Bool {
        locked {
            guard var message = history.messages[id] else { return false }
            record(.restoreMessage(message))
            let changed = newState > message.state
            if changed { message.state = newState }
            if let serverTime, serverTime != 0, message.serverTime == 0 { message.serverTime = serverTime }
            history.messages[id] = message
            return changed
        }
    }

    public func messages(in conversation: String, before: Int64?, limit: Int) throws -> [StoredMessage] {
        locked {
            guard limit > 0, let ids = history.conversationMessages[conversation] else { return [] }
            var end = ids.count
            if let before {
                // First index whose sequence is >= before.
                var low = 0, high = ids.count
                while low < high {
                    let mid = (low + high) / 2
                    if history.messages[ids[mid]]!.sequence < before { low = mid + 1 } else { high = mid }
                }
                end = low
            }
            let start = max(0, end - limit)
            return ids[start..<end].map { history.messages[$0]! }
        }
    }

    public func unreadIncoming(in conversation: String) throws -> [StoredMessage] {
        locked {
            (history.conversationMessages[conversation] ?? []).map { history.messages[$0]! }
                .filter { $0.direction == .incoming && $0.state < .read }
        }
    }

    public func conversations() throws -> [ConversationSummary] {
        locked {
            history.conversationMessages.compactMap { account, ids -> ConversationSummary? in
                guard let last = ids.last.flatMap({ history.messages[$0] }) else { return nil }
                let unread = ids.reduce(0) { count, id in
                    let m = history.messages[id]!
                    return count + (m.direction == .incoming && m.state < .read ? 1 : 0)
                }
                return ConversationSummary(account: account, lastMessage: last, unread: unread)
            }
            .sorted { ($0.lastMessage?.sequence ?? 0) > ($1.lastMessage?.sequence ?? 0) }
        }
    }

    // MARK: Inbound dedupe

    public func isProcessed(serverID: UInt64) throws -> Bool { locked { history.processed[serverID] != nil } }
    public func markProcessed(serverID: UInt64, at time: UInt64) throws {
        locked {
            guard history.processed[serverID] == nil else { return }
            history.processed[serverID] = time
            record(.removeProcessed(serverID))
        }
    }
    public func pruneProcessed(before time: UInt64) throws {
        locked {
            record(.restoreProcessed(history.processed))
            history.processed = history.processed.filter { $0.value >= time }
        }
    }

    // MARK: Outbox

    @discardableResult
    public func enqueue(_ item: OutboxItem) throws -> Bool {
        locked {
            guard !state.outboxIDs.contains(item.clientMessageID) else { return false }
            state.lastOutboxSequence += 1
            var stored = item
            stored.sequence = state.lastOutboxSequence
            state.outbox.append(stored)
            state.outboxIDs.insert(item.clientMessageID)
            return true
        }
    }

    public func outbox() throws -> [OutboxItem] { locked { state.outbox } }

    public func removeFromOutbox(clientMessageID: UInt64) throws {
        locked {
            guard state.outboxIDs.remove(clientMessageID) != nil else { return }
            state.outbox.removeAll { $0.clientMessageID == clientMessageID }
        }
    }

    @discardableResult
    public func replaceOutboxPayload(clientMessageID: UInt64, payload: [UInt8], inner: SessionCiphertext?, devices: [UInt32]?) throws -> Bool {
        locked {
            guard let i = state.outbox.firstIndex(where: { $0.clientMessageID == clientMessageID }) else { return false }
            state.outbox[i].payload = payload
            state.outbox[i].inner = inner
            if let devices { state.outbox[i].devices = devices }
            return true
        }
    }
}
