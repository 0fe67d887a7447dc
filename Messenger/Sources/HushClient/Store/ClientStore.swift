import Hush
import HushPQ

// The contract between HushClient's engine and its local store (Docs/client.md §Store).
//
// A client store keeps everything a device owns: Hush's protocol records (identities, prekeys,
// signed prekeys, Kyber prekeys, sessions, sender keys) and the app's data (device settings, contacts,
// conversations, messages with their tick state, the outbox, the ids of inbound messages already
// processed). Two implementations: `InMemoryClientStore` (tests) and the encrypted SQLite store
// (GRDB; sensitive columns sealed with XChaCha20-Poly1305 under a database key that an
// Argon2id-derived key wraps).
//
// Atomicity is the point of the design: receiving a message is "decrypt (session advances) +
// insert message + mark its server id processed" in ONE `atomically` step, and only then is the
// relay acked; sending is "encrypt (session advances) + enqueue the sealed payload in the outbox +
// insert the outgoing message" in one step. A kill -9 between the step and the relay ack then
// neither loses a message nor shows it twice: on redelivery the server id is found processed and
// merely acked again.

/// Who sent a message, and its sender-chosen id: unique for the lifetime of the sending device.
public struct MessageID: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The sending account.
    public var account: String
    /// The sending device.
    public var device: UInt32
    /// The sending device's client message id (also the relay's dedupe key, spec relay §7.2).
    public var clientMessageID: UInt64

    public init(account: String, device: UInt32, clientMessageID: UInt64) {
        self.account = account
        self.device = device
        self.clientMessageID = clientMessageID
    }

    public var description: String { "\(account).\(device)#\(clientMessageID)" }
}

/// WhatsApp's ticks, in the only order they may advance.
public enum TickState: Int, Sendable, Codable, Comparable, CaseIterable {
    /// Written, not yet accepted by the relay (in the outbox).
    case pending = 0
    /// The relay committed it durably (✓).
    case sent = 1
    /// The recipient's device decrypted it (✓✓).
    case delivered = 2
    /// The recipient opened the conversation (blue ✓✓).
    case read = 3

    public static func < (a: TickState, b: TickState) -> Bool { a.rawValue < b.rawValue }
}

/// Whether a message was written here or received.
public enum MessageDirection: Int, Sendable, Codable { case incoming = 0, outgoing = 1 }

/// A message as the local store keeps it.
public struct StoredMessage: Sendable, Equatable {
    /// Globally unique id.
    public var id: MessageID
    /// The other party's account (one-to-one conversations).
    public var conversation: String
    /// In or out.
    public var direction: MessageDirection
    /// The text (sealed on disk).
    public var body: String
    /// Sender's clock when written, Unix milliseconds.
    public var sentAt: UInt64
    /// Relay's clock when it accepted it (0 until known), Unix milliseconds.
    public var serverTime: UInt64
    /// Outgoing: the ticks; incoming: `.delivered` once stored, `.read` once the user saw it.
    public var state: TickState
    /// Local insertion order, assigned by the store (0 before insertion), increasing across the
    /// whole store. Conversations are paged and shown in sequence order (the order this device
    /// stored them; `messages(in:before:limit:)` pages by it).
    public var sequence: Int64

    public init(id: MessageID, conversation: String, direction: MessageDirection, body: String,
                sentAt: UInt64, serverTime: UInt64 = 0, state: TickState, sequence: Int64 = 0) {
        self.id = id
        self.conversation = conversation
        self.direction = direction
        self.body = body
        self.sentAt = sentAt
        self.serverTime = serverTime
        self.state = state
        self.sequence = sequence
    }
}

/// One line of the conversation list.
public struct ConversationSummary: Sendable, Equatable {
    public var account: String
    public var lastMessage: StoredMessage?
    /// Incoming messages not yet read.
    public var unread: Int

    public init(account: String, lastMessage: StoredMessage?, unread: Int) {
        self.account = account
        self.lastMessage = lastMessage
        self.unread = unread
    }
}

/// A stanza waiting to be sent: its session ciphertext is fixed when it is enqueued, so a retry
/// after a reconnect carries the very same session message under the same client message id (the
/// relay dedupes). The sealed envelope around it is the same bytes too, unless its sender
/// certificate is about to expire: then only the envelope is sealed again (``inner``).
public struct OutboxItem: Sendable, Equatable {
    /// The relay dedupe key.
    public var clientMessageID: UInt64
    /// Recipient account.
    public var account: String
    /// Recipient devices (the payload below is for exactly these).
    public var devices: [UInt32]
    /// The `Send.payload` bytes (a sealed envelope; sealed again on disk); for a deferred item
    /// (`devices` empty) the encoded content; for a prepared one-to-one item a
    /// ``FanOutPayload`` (the content and one envelope per device, `Docs/client.md` §Several devices).
    public var payload: [UInt8]
    /// The message this item carries, if it is a user message (receipts have none).
    public var message: MessageID?
    /// When it was enqueued, Unix milliseconds.
    public var createdAt: UInt64
    /// Send order, assigned by the store (0 before insertion).
    public var sequence: Int64
    /// The session message sealed in `payload` and its certificate's expiration, for sealing the
    /// envelope again (nil for a deferred item, whose payload is still the content, and for items
    /// written by a store of schema v1).
    public var inner: SessionCiphertext?

    public init(clientMessageID: UInt64, account: String, devices: [UInt32], payload: [UInt8],
                message: MessageID?, createdAt: UInt64, sequence: Int64 = 0, inner: SessionCiphertext? = nil) {
        self.clientMessageID = clientMessageID
        self.account = account
        self.devices = devices
        self.payload = payload
        self.message = message
        self.createdAt = createdAt
        self.sequence = sequence
        self.inner = inner
    }
}

/// Everything a HushClient keeps. All methods are synchronous and thread-safe.
///
/// `atomically(_:)` is the unit of durability: the calls `body` makes on this store (from the same
/// thread) commit together when it returns, and none of them does when it throws. Calls outside
/// it are each atomic. Other threads' calls wait until the step ends (it is isolated). Nesting is
/// allowed: the inner step joins the outer one; when the inner one throws, its own changes are
/// undone and the outer one decides the rest (it may catch and go on). `updateSession` and
/// `updateSenderKey` are such steps too: when their body throws, nothing they or it did is kept
/// (a one-time prekey removed during a failed PreKeySignalMessage is still there).
public protocol ClientStore: SignalProtocolStore, SenderKeyStore, KyberPreKeyStore {
    /// Runs `body` as one atomic, durable step.
    func atomically<R>(_ body: () throws -> R) throws -> R

    // MARK: Key-value settings (device profile, relay pin, counters, privacy settings)

    /// The value under `key`, or nil. Values are sealed on disk.
    func setting(_ key: String) throws -> [UInt8]?
    /// Sets (or, with nil, removes) the value under `key`.
    func setSetting(_ key: String, _ value: [UInt8]?) throws

    // MARK: Messages

    /// Inserts `message` (assigning its sequence) and returns it; returns nil and changes
    /// nothing when a message with the same id exists (duplicate suppression).
    func insertMessage(_ message: StoredMessage) throws -> StoredMessage?
    /// The message with `id`.
    func message(_ id: MessageID) throws -> StoredMessage?
    /// Advances the state of `id` to `state` if that is later than its current state (ticks never
    /// go back). Returns true when the state changed; false too for an unknown id. A non-zero
    /// `serverTime` is recorded if none was known yet, even when the state does not change (a
    /// late relay ack after the delivery receipt).
    @discardableResult
    func advance(_ id: MessageID, to state: TickState, serverTime: UInt64?) throws -> Bool
    /// Up to `limit` messages of `conversation`, newest last, older than `before` (a sequence) if given.
    func messages(in conversation: String, before: Int64?, limit: Int) throws -> [StoredMessage]
    /// Up to `limit` messages of every conversation with a sequence above `after`, in sequence
    /// order (oldest first): the whole history, page by page (a backup streams it so).
    func allMessages(after: Int64, limit: Int) throws -> [StoredMessage]
    /// Incoming messages of `conversation` not yet `.read`, oldest first.
    func unreadIncoming(in conversation: String) throws -> [StoredMessage]
    /// Every conversation that has a message, most recent (highest last sequence) first.
    func conversations() throws -> [ConversationSummary]

    // MARK: Inbound dedupe

    /// Whether the relay message `serverID` was already processed (its effects stored).
    func isProcessed(serverID: UInt64) throws -> Bool
    /// Records `serverID` as processed.
    func markProcessed(serverID: UInt64, at: UInt64) throws
    /// Forgets processed ids recorded before `before` (the relay's 30-day TTL bounds redelivery).
    /// Marking an id again keeps its first time.
    func pruneProcessed(before: UInt64) throws

    // MARK: Outbox

    /// Appends `item` (assigning its sequence); a second item with the same client message id is
    /// ignored (returns false).
    @discardableResult
    func enqueue(_ item: OutboxItem) throws -> Bool
    /// Every item not yet acked by the relay, in send order (sequence ascending).
    func outbox() throws -> [OutboxItem]
    /// Removes the item with `clientMessageID` (the relay acked it).
    func removeFromOutbox(clientMessageID: UInt64) throws
    /// Replaces the payload and inner ciphertext of the item with `clientMessageID` — and its
    /// devices, unless `devices` is nil — keeping its place in the send order (a re-sealed
    /// envelope; a group item without a device the relay no longer knows). Returns false when
    /// there is no such item.
    @discardableResult
    func replaceOutboxPayload(clientMessageID: UInt64, payload: [UInt8], inner: SessionCiphertext?, devices: [UInt32]?) throws -> Bool

    // MARK: Signed prekey rotation

    /// Every signed prekey held (current and previous ones kept for late messages), by id.
    func signedPreKeys() throws -> [SignedPreKeyRecord]
    /// Removes a rotated-away signed prekey.
    func removeSignedPreKey(id: UInt32) throws
    /// The ids of the one-time prekeys still held, ascending.
    func preKeyIDs() throws -> [UInt32]

    // MARK: Kyber prekeys (PQXDH)

    /// Every Kyber prekey held (one-time ones not yet used, the current last-resort one and the
    /// previous ones kept for late messages), by id.
    func kyberPreKeys() throws -> [KyberPreKeyRecord]
    /// Removes a Kyber prekey of either kind (a rotated-away last-resort key).
    func removeKyberPreKey(id: UInt32) throws

    // MARK: Sessions

    /// Deletes the session with `address` (the next message to it needs a new bundle).
    func deleteSession(for address: ProtocolAddress) throws
    /// The devices of account `name` this device has a session with, ascending.
    func sessionDevices(for name: String) throws -> [UInt32]
}

extension ClientStore {
    /// ``replaceOutboxPayload(clientMessageID:payload:inner:devices:)`` keeping the devices.
    @discardableResult
    public func replaceOutboxPayload(clientMessageID: UInt64, payload: [UInt8], inner: SessionCiphertext?) throws -> Bool {
        try replaceOutboxPayload(clientMessageID: clientMessageID, payload: payload, inner: inner, devices: nil)
    }
}
