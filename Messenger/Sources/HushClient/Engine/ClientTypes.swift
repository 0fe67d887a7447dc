import Foundation
import Hush
import HushPQ
import HushTransport

/// The connection manager's state (`Docs/client.md` §Connection).
public enum ConnectionState: Sendable, Equatable {
    /// Not started, or stopped.
    case offline
    /// Opening a connection (attempt number, from 1).
    case connecting(attempt: Int)
    /// Logged in; receiving what was queued while offline (no outbox sends yet).
    case syncing
    /// The offline queue is drained (QueueEmpty): live traffic, outbox being sent.
    case online
    /// Waiting before the next attempt (after a failure).
    case waiting(attempt: Int, delay: Duration)
    /// The relay refused this device for good (e.g. the account name is taken): no more attempts.
    case failed(RelayErrorCode)
    /// This device was removed from its account (the relay closed its connection with 4008, or a
    /// login found it gone: `UNKNOWN_DEVICE`): no more attempts, ever (Docs/client.md §Linked devices).
    case removed
}

/// Who may see this account's online state and last seen.
public enum PresenceSetting: Sendable, Equatable {
    case everyone
    /// Only these accounts (the allow list uploaded to the relay).
    case contacts([String])
    case nobody
}

/// An account's presence as the relay lets this device see it.
public struct PresenceInfo: Sendable, Equatable {
    public var account: String
    public var online: Bool
    /// Unix milliseconds; nil when unknown or hidden.
    public var lastSeen: UInt64?
    /// The account's privacy setting hides it from us.
    public var hidden: Bool

    public init(account: String, online: Bool, lastSeen: UInt64?, hidden: Bool) {
        self.account = account
        self.online = online
        self.lastSeen = lastSeen
        self.hidden = hidden
    }
}

/// What a ``HushClient`` reports, in order.
public enum ClientEvent: Sendable, Equatable {
    /// The connection state changed.
    case connection(ConnectionState)
    /// An incoming message was stored (shown in arrival order per conversation).
    case message(StoredMessage)
    /// An outgoing message's ticks advanced.
    case tick(MessageID, TickState)
    /// A contact's presence.
    case presence(PresenceInfo)
    /// A contact started (until `expiresAt`, Unix ms, unless renewed) or stopped typing.
    case typing(account: String, isTyping: Bool, expiresAt: UInt64)
    /// A contact's identity key changed: compare the new safety number; sending to them needs
    /// ``HushClient/approveIdentity(of:)``.
    case identityChanged(account: String)
    /// A message could not be sent and was given up (the relay's reason).
    case sendFailed(MessageID, RelayErrorCode)
    /// A message written while offline was given up by this client (the reason): e.g.
    /// ``ClientError/postQuantumRequired(_:)`` when the recipient's devices publish no Kyber
    /// prekey and ``ClientConfiguration/postQuantumPolicy`` is ``PostQuantumPolicy/requirePQXDH``.
    case sendRefused(MessageID, ClientError)
    /// A group this device knows changed (created, joined, members or admins changed, left).
    case groupChanged(GroupState)
    /// An outgoing group message's tick advanced for one member (``tick(_:_:)`` reports the
    /// whole group's: delivered when every member's device has it, read when every member read it).
    case memberTick(MessageID, account: String, TickState)
    /// A contact's device started a new session with this one (it was restored from a backup,
    /// Docs/spec/backup.md §6): from here on messages to and from it use the new session, and this
    /// device's sender keys go to it again. Messages it was sent before the reset under the old
    /// session cannot be read by it.
    case sessionReset(account: String, device: UInt32)
    /// The user read these incoming messages of `conversation` on another device of this
    /// account (its read sync, Docs/spec/client.md §3b): they are marked read here too (no read
    /// receipt goes from this device).
    case readOnOtherDevice(conversation: String, messages: [MessageID])
}

/// Errors of the client API.
public enum ClientError: Error, Equatable, Sendable {
    /// The store failed (its message).
    case store(String)
    /// A protocol operation failed.
    case crypto(String)
    /// Not connected and the operation needs the relay now.
    case offline
    /// The relay answered with an error.
    case relay(RelayErrorCode)
    /// No answer in time.
    case timeout
    /// The contact's identity changed; ``HushClient/approveIdentity(of:)`` first.
    case identityNotApproved(String)
    /// The account has no devices with prekeys.
    case noDevices(String)
    /// Every bundle of the account lacked a Kyber prekey while the policy is
    /// ``PostQuantumPolicy/requirePQXDH`` (a device that never published one, or a relay that
    /// strips them): no session was built and nothing was sent (`Docs/client.md` §Prekeys).
    case postQuantumRequired(String)
    /// Invalid input (empty or too long text, bad account name).
    case invalidArgument(String)
    /// The store holds no device profile (create one with ``HushClient/create(account:deviceID:store:configuration:)``).
    case notProvisioned
    /// The relay issued a sender certificate that does not verify.
    case badSenderCertificate(String)
    /// No group with this id is known here.
    case unknownGroup(GroupID)
    /// Only an admin of the group may change it.
    case notGroupAdmin(GroupID)
    /// This account is not (or no longer) a member of the group.
    case notGroupMember(GroupID)
    /// Not a link code (Docs/spec/client.md §7.1): the reason.
    case invalidLinkCode(LinkCodeError)
    /// A provisioning message that did not open or decode (Docs/spec/client.md §7.2–§7.3).
    case provisioning(ProvisioningError)
    /// The relay closed the provisioning address before a message came (4009, spec relay §22.3).
    case linkExpired
    /// This device was removed from its account (``ConnectionState/removed``).
    case deviceRemoved
}

/// Exponential backoff with jitter: attempt n waits a uniformly random time in
/// [d/2, d] where d = min(maximum, base · 2^(n-1)).
public struct Backoff: Sendable {
    public var base: Duration
    public var maximum: Duration

    public init(base: Duration = .milliseconds(200), maximum: Duration = .seconds(30)) {
        self.base = base
        self.maximum = maximum
    }

    /// The delay before attempt `attempt` (≥ 1), with `unit` ∈ [0, 1) as the jitter draw.
    public func delay(attempt: Int, unit: Double) -> Duration {
        let exp = min(attempt - 1, 30)
        var d = base * (1 << exp)
        if d > maximum { d = maximum }
        let ms = Double(d.components.seconds) * 1_000 + Double(d.components.attoseconds) / 1e15
        return .milliseconds(Int64(ms / 2 + ms / 2 * unit))
    }
}

/// How a ``HushClient`` runs. Every clock, randomness and wait is injectable.
public struct ClientConfiguration: Sendable {
    /// The relay.
    public var endpoint: RelayEndpoint
    /// The relay trust root this client pins (relay certificates and sender certificates).
    public var trustRoot: Curve25519.KeyAgreement.PublicKey
    /// The suite of new sessions.
    public var suite: CipherSuite = .hush1
    /// Wall clock, Unix milliseconds.
    public var clock: @Sendable () -> UInt64 = { UInt64(max(0, Date.now.timeIntervalSince1970 * 1_000)) }
    /// Randomness (keys, jitter).
    public var random: any RandomSource = SystemRandom()
    /// Sleeps (backoff, typing expiry, receipt batching); tests may shorten it.
    public var sleep: @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    /// Reconnect backoff.
    public var backoff = Backoff()
    /// Ping stanza interval while connected; also when the schedules (prekey rotation,
    /// certificate renewal) are checked.
    public var pingInterval: Duration = .seconds(20)
    /// A request (and the handshake) must be answered within this.
    public var requestTimeout: Duration = .seconds(10)
    /// How media blobs travel (nil: HTTP to ``endpoint``'s host and port, Docs/spec/relay.md §19).
    public var mediaTransport: (any MediaTransport)?
    /// A typing indicator lasts this long unless renewed (ms).
    public var typingTTL: UInt64 = 6_000
    /// How many undelivered events `HushClient.events` holds before it drops the oldest. Events
    /// are notifications: every message and tick they report is already in the store, so an app
    /// that fell behind re-reads `messages(in:)` / `conversations()` instead. Bounded so that a
    /// client nobody listens to does not grow without limit.
    public var eventBufferLimit = 10_000
    /// Rotate the signed prekey after this long (ms): 2 days.
    public var signedPreKeyRotation: UInt64 = 2 * 86_400_000
    /// Keep rotated signed prekeys this long (ms): 30 days.
    public var signedPreKeyRetention: UInt64 = 30 * 86_400_000
    /// Renew the sender certificate when it has less than this left (ms): 1 day.
    public var certificateRenewal: UInt64 = 86_400_000
    /// One-time prekeys generated at setup and per replenishment.
    public var preKeyBatch = 100
    /// One-time Kyber prekeys generated at setup and per replenishment (the last-resort Kyber
    /// prekey rotates with the signed prekey: ``signedPreKeyRotation``, ``signedPreKeyRetention``).
    public var kyberPreKeyBatch = 100
    /// Whether sessions must be set up with PQXDH (`Docs/client.md` §Prekeys). The default,
    /// ``PostQuantumPolicy/requirePQXDH``, refuses a bundle without a Kyber prekey (sending
    /// fails with ``ClientError/postQuantumRequired(_:)``) and drops X3DH prekey messages that
    /// would start a session; ``PostQuantumPolicy/acceptEither`` falls back to X3DH for peers
    /// that publish no Kyber prekeys.
    public var postQuantumPolicy: PostQuantumPolicy = .requirePQXDH
    /// An outbox item whose envelope's sender certificate expires within this (ms) is sealed
    /// again with a fresh certificate before it is sent: 10 minutes, room for the relay's clock
    /// (the recipient checks the certificate at the relay's `server_time`).
    public var resealMargin: UInt64 = 600_000
    /// After a retryable send error (rate limited, queue full, relay trouble) the failed item and
    /// the later ones to the same account wait this long before they go again, in order.
    public var retryPause: Duration = .seconds(1)
    /// Received WebSocket messages buffered for the engine. When the engine falls this far
    /// behind, the connection is closed (``LinkError/inboundOverflow``) instead of dropping a
    /// message; the next connection resumes from the relay's queue.
    public var inboundBufferLimit = 4_096
    /// Sealed sender (Docs/client.md §Sealed sender): messages to a contact whose access key
    /// this device holds go over an anonymous connection, naming no sender to the relay.
    /// Off: every message goes over the logged-in connection (the relay sees who sends).
    public var sealedSender = true

    public init(endpoint: RelayEndpoint, trustRoot: Curve25519.KeyAgreement.PublicKey) {
        self.endpoint = endpoint
        self.trustRoot = trustRoot
    }
}
