import Foundation

/// A registered account: its name and identity key (`Docs/spec/relay.md` §5).
public struct AccountRecord: Sendable, Equatable {
    /// The account name.
    public var name: String
    /// The X25519 identity public key, 32 bytes.
    public var identityKey: Data
    /// Creates a record.
    public init(name: String, identityKey: Data) {
        self.name = name
        self.identityKey = identityKey
    }
}

/// A device of an account, identified by its Noise static key.
public struct DeviceRecord: Sendable, Equatable {
    /// The owning account.
    public var account: String
    /// The device id within the account.
    public var deviceID: UInt32
    /// The device's Noise static public key, 32 bytes.
    public var staticKey: Data
    /// The registration id of its latest prekey upload (0 before one).
    public var registrationID: UInt32
    /// Creates a record.
    public init(account: String, deviceID: UInt32, staticKey: Data, registrationID: UInt32 = 0) {
        self.account = account
        self.deviceID = deviceID
        self.staticKey = staticKey
        self.registrationID = registrationID
    }
}

/// A signed prekey as published.
public struct SignedPrekeyRecord: Sendable, Equatable {
    /// The owner's id for it.
    public var id: UInt32
    /// 32-byte public key.
    public var publicKey: Data
    /// 64-byte XEdDSA signature by the identity key over `0x05 || publicKey`.
    public var signature: Data
    /// Creates a record.
    public init(id: UInt32, publicKey: Data, signature: Data) {
        self.id = id
        self.publicKey = publicKey
        self.signature = signature
    }
}

/// A one-time prekey as published.
public struct OneTimePrekeyRecord: Sendable, Equatable {
    /// The owner's id for it.
    public var id: UInt32
    /// 32-byte public key.
    public var publicKey: Data
    /// Creates a record.
    public init(id: UInt32, publicKey: Data) {
        self.id = id
        self.publicKey = publicKey
    }
}

/// A signed Kyber (ML-KEM-1024) prekey as published (`Docs/spec/relay.md` §8.3): a one-time
/// one or the device's last-resort one.
public struct KyberPrekeyRecord: Sendable, Equatable {
    /// The owner's id for it.
    public var id: UInt32
    /// The raw ML-KEM-1024 encapsulation key, 1,568 bytes.
    public var publicKey: Data
    /// 64-byte XEdDSA signature by the identity key over `0x08 || publicKey`.
    public var signature: Data
    /// Creates a record.
    public init(id: UInt32, publicKey: Data, signature: Data) {
        self.id = id
        self.publicKey = publicKey
        self.signature = signature
    }
}

/// One prekey upload of a device (`Docs/spec/relay.md` §8.1, §8.3), validated by the relay.
public struct PrekeyUpload: Sendable, Equatable {
    /// The registration id, stored on every upload.
    public var registrationID: UInt32
    /// Replaces the stored signed prekey when given.
    public var signed: SignedPrekeyRecord?
    /// One-time X25519 prekeys to add (an id already stored is replaced).
    public var oneTime: [OneTimePrekeyRecord]
    /// Replaces the stored last-resort Kyber prekey when given.
    public var kyberLastResort: KyberPrekeyRecord?
    /// One-time Kyber prekeys to add (an id already stored is replaced).
    public var kyberOneTime: [KyberPrekeyRecord]
    /// At most this many one-time X25519 prekeys may be stored after the upload.
    public var maxStored: Int
    /// At most this many one-time Kyber prekeys may be stored after the upload.
    public var maxStoredKyber: Int
    /// Deletes every stored one-time prekey of both kinds before storing this upload's, in the
    /// same transaction (spec relay §8.1 `replace_one_time`: a device restored from a backup
    /// no longer holds the private keys of what it uploaded before).
    public var replaceOneTime: Bool
    /// Creates an upload.
    public init(registrationID: UInt32, signed: SignedPrekeyRecord? = nil, oneTime: [OneTimePrekeyRecord] = [],
                kyberLastResort: KyberPrekeyRecord? = nil, kyberOneTime: [KyberPrekeyRecord] = [],
                maxStored: Int, maxStoredKyber: Int, replaceOneTime: Bool = false) {
        self.replaceOneTime = replaceOneTime
        self.registrationID = registrationID
        self.signed = signed
        self.oneTime = oneTime
        self.kyberLastResort = kyberLastResort
        self.kyberOneTime = kyberOneTime
        self.maxStored = maxStored
        self.maxStoredKyber = maxStoredKyber
    }
}

/// A device's unclaimed one-time prekeys of each kind.
public struct PrekeyCounts: Sendable, Equatable {
    /// One-time X25519 prekeys.
    public var oneTime: Int
    /// One-time Kyber prekeys.
    public var kyberOneTime: Int
    /// Creates counts.
    public init(oneTime: Int, kyberOneTime: Int) {
        self.oneTime = oneTime
        self.kyberOneTime = kyberOneTime
    }
}

/// One device's bundle as handed out; `oneTime`, and `kyber` unless it is the last-resort key,
/// were consumed by the fetch that returned it.
public struct PrekeyBundleRecord: Sendable, Equatable {
    /// The device.
    public var deviceID: UInt32
    /// Its registration id.
    public var registrationID: UInt32
    /// Its signed prekey, if it uploaded one.
    public var signedPrekey: SignedPrekeyRecord?
    /// A one-time prekey, if one was left.
    public var oneTime: OneTimePrekeyRecord?
    /// One-time prekeys left for this device after the fetch.
    public var remaining: Int
    /// A one-time Kyber prekey if one was left, else the last-resort Kyber prekey, else nil.
    public var kyber: KyberPrekeyRecord?
    /// Whether ``kyber`` is the last-resort key (which a fetch never consumes).
    public var kyberIsLastResort: Bool
    /// One-time Kyber prekeys left for this device after the fetch.
    public var kyberRemaining: Int
    /// Creates a record.
    public init(deviceID: UInt32, registrationID: UInt32, signedPrekey: SignedPrekeyRecord?, oneTime: OneTimePrekeyRecord?, remaining: Int,
                kyber: KyberPrekeyRecord? = nil, kyberIsLastResort: Bool = false, kyberRemaining: Int = 0) {
        self.deviceID = deviceID
        self.registrationID = registrationID
        self.signedPrekey = signedPrekey
        self.oneTime = oneTime
        self.remaining = remaining
        self.kyber = kyber
        self.kyberIsLastResort = kyberIsLastResort
        self.kyberRemaining = kyberRemaining
    }

    /// Whether this fetch consumed a one-time prekey of either kind.
    public var consumedOneTime: Bool { oneTime != nil || (kyber != nil && !kyberIsLastResort) }
}

/// A message in a device's queue.
public struct QueuedMessage: Sendable, Equatable {
    /// The relay's id: unique, never reused, increasing in commit order.
    public var serverID: UInt64
    /// The recipient account.
    public var account: String
    /// The recipient device.
    public var deviceID: UInt32
    /// The sender's account ("" for anonymous sends).
    public var senderAccount: String
    /// The sender's device (0 for anonymous sends).
    public var senderDevice: UInt32
    /// When the relay accepted it, Unix milliseconds.
    public var serverTime: UInt64
    /// The opaque payload.
    public var payload: Data
    /// Creates a record.
    public init(serverID: UInt64, account: String, deviceID: UInt32, senderAccount: String, senderDevice: UInt32,
                serverTime: UInt64, payload: Data) {
        self.serverID = serverID
        self.account = account
        self.deviceID = deviceID
        self.senderAccount = senderAccount
        self.senderDevice = senderDevice
        self.serverTime = serverTime
        self.payload = payload
    }
}

/// A `Send` to commit.
public struct EnqueueRequest: Sendable, Equatable {
    /// The sending account and device (the dedupe scope).
    public var senderAccount: String
    /// The sending device.
    public var senderDevice: UInt32
    /// The sender's id for this message (dedupe key).
    public var clientMessageID: UInt64
    /// The recipient account.
    public var recipient: String
    /// The recipient devices (distinct).
    public var devices: [UInt32]
    /// The payload.
    public var payload: Data
    /// Now, Unix milliseconds (injectable clock).
    public var now: UInt64
    /// Messages expire (and dedupe entries are forgotten) at `now + ttl`.
    public var ttlMilliseconds: UInt64
    /// The per-device queue cap.
    public var queueCap: Int
    /// Creates a request.
    public init(senderAccount: String, senderDevice: UInt32, clientMessageID: UInt64, recipient: String, devices: [UInt32],
                payload: Data, now: UInt64, ttlMilliseconds: UInt64, queueCap: Int) {
        self.senderAccount = senderAccount
        self.senderDevice = senderDevice
        self.clientMessageID = clientMessageID
        self.recipient = recipient
        self.devices = devices
        self.payload = payload
        self.now = now
        self.ttlMilliseconds = ttlMilliseconds
        self.queueCap = queueCap
    }
}

/// What `enqueue` did.
public enum EnqueueOutcome: Sendable, Equatable {
    /// Committed: one message per recipient device, in the request's device order.
    case stored(serverTime: UInt64, messages: [QueuedMessage])
    /// The same (sender device, client message id) was committed before, at `serverTime`;
    /// nothing was stored.
    case duplicate(serverTime: UInt64)
}

/// What a login looks up (``RelayStore/loginRecord(account:deviceID:)``).
public struct LoginRecord: Sendable, Equatable {
    /// The account's X25519 identity public key, 32 bytes.
    public var identityKey: Data
    /// The device's Noise static public key, 32 bytes.
    public var staticKey: Data
    /// One-time prekeys stored for the device.
    public var prekeyCount: Int
    /// One-time Kyber prekeys stored for the device.
    public var kyberPrekeyCount: Int
    /// Creates a record.
    public init(identityKey: Data, staticKey: Data, prekeyCount: Int, kyberPrekeyCount: Int = 0) {
        self.identityKey = identityKey
        self.staticKey = staticKey
        self.prekeyCount = prekeyCount
        self.kyberPrekeyCount = kyberPrekeyCount
    }
}

/// What `register` did.
public enum RegisterOutcome: Sendable, Equatable {
    /// A new account with its first device.
    case createdAccount
    /// A new device of an existing account.
    case addedDevice
    /// This exact device (same key, same id) was already registered: nothing changed.
    case alreadyRegistered
}

/// A link token to issue (`Docs/spec/relay.md` §22.4): the store reserves a device id for it.
public struct LinkTokenIssue: Sendable, Equatable {
    /// The account whose device 1 asked.
    public var account: String
    /// SHA-256 of the token, 32 bytes (the token itself is never stored).
    public var tokenHash: Data
    /// Now, Unix milliseconds (injectable clock): tokens with `expiresAt <= now` are not open.
    public var now: UInt64
    /// When the token expires, Unix milliseconds.
    public var expiresAt: UInt64
    /// Registered devices plus open reservations may not exceed this (16).
    public var maxDevices: Int
    /// Open (unexpired, unused) tokens per account may not exceed this (4): the oldest give way.
    public var maxOpenTokens: Int
    /// Creates a request.
    public init(account: String, tokenHash: Data, now: UInt64, expiresAt: UInt64, maxDevices: Int, maxOpenTokens: Int) {
        self.account = account
        self.tokenHash = tokenHash
        self.now = now
        self.expiresAt = expiresAt
        self.maxDevices = maxDevices
        self.maxOpenTokens = maxOpenTokens
    }
}

/// The link token a new device presents when it registers (`Docs/spec/relay.md` §5.1, §22.4).
public struct LinkTokenProof: Sendable, Equatable {
    /// SHA-256 of the token from `Register.link_token`, 32 bytes.
    public var tokenHash: Data
    /// Now, Unix milliseconds: a token with `expiresAt <= now` is refused.
    public var now: UInt64
    /// Creates a proof.
    public init(tokenHash: Data, now: UInt64) {
        self.tokenHash = tokenHash
        self.now = now
    }
}

/// Errors of a ``RelayStore``.
public enum RelayStoreError: Error, Equatable, Sendable {
    /// No such account.
    case unknownAccount
    /// No such device in the account.
    case unknownDevice(UInt32)
    /// This device's queue holds `cap` messages.
    case queueFull(device: UInt32, cap: Int)
    /// The account name is registered with another identity key.
    case accountTaken
    /// The device id is bound to another static key, or the static key to another device.
    case deviceTaken(UInt32)
    /// The account has the maximum number of devices (registered, plus reserved by open link
    /// tokens when a token is issued).
    case tooManyDevices(limit: Int)
    /// A new device of an account that has devices came without a link token that is open
    /// (issued, unexpired, unused, not revoked) for this account and device id (§5.1, §22.4).
    case invalidLinkToken
    /// The upload would store more one-time prekeys (X25519 or Kyber) than allowed.
    case tooManyPrekeys(limit: Int)
    /// The storage engine failed (message text from the engine; no payloads or keys).
    case storage(String)
    /// The database could not be reached within the store's operation timeout (a networked
    /// store, e.g. PostgreSQL restarting). The call was not acknowledged: a write may or may not
    /// have committed, and retrying it with the same ids is safe (dedupe, idempotent acks).
    case unavailable
}

/// Durable state of the relay (`Docs/spec/relay.md` §7). Implementations: ``SQLiteRelayStore``,
/// `PostgresRelayStore` (target HushRelayPostgres); every implementation must pass
/// `RelayStoreConformance`.
///
/// Contract, beyond each method's comment:
/// - Every mutating call is atomic: it commits completely and durably before returning, or
///   changes nothing and throws.
/// - `enqueue` calls `committed` exactly once per stored request, after the commit and before
///   the `committed` call of any later-committed request (so pushes reach a device in
///   server-id order). The callback must not block.
/// - Server ids are unique, never reused, and increase in commit order.
public protocol RelayStore: Sendable {
    /// Registers device `deviceID` of `account` with `staticKey`; creates the account on first
    /// use of the name (first come, first served). The caller has verified the binding signature.
    /// In one transaction, in this order (`Docs/spec/relay.md` §5.1): another identity key →
    /// `accountTaken`; this (account, id, key) registered → `alreadyRegistered` (no token
    /// needed); the id bound to another key or the key elsewhere → `deviceTaken`; the account
    /// exists and has at least one device → `linkToken` must match, in constant time, the hash
    /// of an open token reserved for this account **and** `deviceID` (expires after
    /// `linkToken.now`), else `invalidLinkToken`; `maxDevices` registered → `tooManyDevices`.
    /// The token is deleted (used) in the same transaction as the device insert. A new account
    /// and an account with no device (account recovery) need no token (`linkToken` ignored).
    func register(account: String, identityKey: Data, deviceID: UInt32, staticKey: Data,
                  maxDevices: Int, linkToken: LinkTokenProof?) async throws(RelayStoreError) -> RegisterOutcome
    /// Issues a link token (§22.4), in one transaction: `unknownAccount`; `maxDevices`
    /// registered → `tooManyDevices`; the account's expired tokens are deleted; while the open
    /// ones number `maxOpenTokens`, or registered devices plus open tokens `maxDevices`, the
    /// oldest open token (earliest `expiresAt`, then lowest device id) is revoked (deleted);
    /// then the lowest device id ≥ 2 neither registered nor reserved by an open token is
    /// reserved, and the token's hash stored with it. Returns that id. (Its other half, consuming the token, is part of
    /// ``register(account:identityKey:deviceID:staticKey:maxDevices:linkToken:)``, so that it is
    /// atomic with the device insert.)
    func issueLinkToken(_ request: LinkTokenIssue) async throws(RelayStoreError) -> UInt32
    /// The account, if registered.
    func account(named name: String) async throws(RelayStoreError) -> AccountRecord?
    /// The device, if registered.
    func device(account: String, deviceID: UInt32) async throws(RelayStoreError) -> DeviceRecord?
    /// What a login needs, in one lookup: the account's identity key, the device's static key
    /// and its one-time prekey count. Throws `unknownAccount` when the account does not exist;
    /// `nil` when the account has no such device. (A default implementation composes
    /// ``account(named:)``, ``device(account:deviceID:)`` and ``prekeyCount(account:deviceID:)``.)
    func loginRecord(account: String, deviceID: UInt32) async throws(RelayStoreError) -> LoginRecord?
    /// All devices of an account, by device id.
    func devices(account: String) async throws(RelayStoreError) -> [DeviceRecord]
    /// Removes a device atomically with its prekeys of every kind, every message queued for it
    /// and the dedupe entries of what it sent (`Docs/spec/relay.md` §22.2); returns how many
    /// queued messages were deleted.
    /// Throws `unknownAccount` / `unknownDevice` (nothing changed). Its id and static key may
    /// be registered again afterwards.
    func removeDevice(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int

    /// Stores a prekey upload atomically: replaces the signed prekey and the last-resort Kyber
    /// prekey when given, adds (or replaces by id) one-time prekeys of both kinds. Throws
    /// `tooManyPrekeys` (storing nothing) when either kind would exceed its cap. Returns the
    /// counts now stored.
    func storePrekeys(account: String, deviceID: UInt32, _ upload: PrekeyUpload) async throws(RelayStoreError) -> PrekeyCounts
    /// Hands out one bundle per device (all devices when `devices` is nil), atomically
    /// consuming, per device, the lowest-id one-time prekey and the lowest-id one-time Kyber
    /// prekey (or naming the last-resort Kyber prekey, not consumed, when no one-time Kyber
    /// prekey is left). Unknown device ids throw.
    func claimBundles(account: String, devices: [UInt32]?) async throws(RelayStoreError) -> [PrekeyBundleRecord]
    /// One-time prekeys stored for a device.
    func prekeyCount(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int
    /// One-time Kyber prekeys stored for a device.
    func kyberPrekeyCount(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int

    /// Commits a message for each recipient device, or recognises a duplicate.
    /// Throws `unknownAccount`, `unknownDevice`, `queueFull` (then nothing is stored).
    func enqueue(_ request: EnqueueRequest,
                 committed: @escaping @Sendable ([QueuedMessage]) -> Void) async throws(RelayStoreError) -> EnqueueOutcome
    /// Up to `limit` queued messages of a device with server id > `after`, in server-id order.
    func pending(account: String, deviceID: UInt32, after: UInt64, limit: Int) async throws(RelayStoreError) -> [QueuedMessage]
    /// Deletes the device's messages with these ids (others' ids and unknown ids are ignored).
    /// Returns how many were deleted.
    func acknowledge(account: String, deviceID: UInt32, serverIDs: [UInt64]) async throws(RelayStoreError) -> Int
    /// Messages queued for a device.
    func queueDepth(account: String, deviceID: UInt32) async throws(RelayStoreError) -> Int
    /// Messages queued for all devices (for `/metrics`).
    func totalQueueDepth() async throws(RelayStoreError) -> Int
    /// Deletes messages, dedupe entries and link tokens that expired at or before `now` (Unix
    /// ms). Returns the number of messages deleted.
    func purgeExpired(now: UInt64) async throws(RelayStoreError) -> Int

    /// The account's sealed-sender access setting (spec §20.1); nil when the account set none
    /// or does not exist (a sealed send cannot tell the two apart).
    func sealedAccess(account: String) async throws(RelayStoreError) -> SealedAccess?
    /// Replaces the account's sealed-sender access setting. Throws `unknownAccount`.
    func setSealedAccess(account: String, _ access: SealedAccess) async throws(RelayStoreError)
    /// The `server_time` at which (sender account, sender device, client message id) was stored,
    /// if it is remembered for dedupe (§7.1); nil otherwise.
    func acceptedTime(senderAccount: String, senderDevice: UInt32, clientMessageID: UInt64) async throws(RelayStoreError) -> UInt64?
}

extension RelayStore {
    /// Registers without a link token: a new account's first device, an idempotent repeat, or
    /// account recovery; a new device of an account with devices gets `invalidLinkToken`.
    public func register(account: String, identityKey: Data, deviceID: UInt32, staticKey: Data,
                         maxDevices: Int) async throws(RelayStoreError) -> RegisterOutcome {
        try await register(account: account, identityKey: identityKey, deviceID: deviceID, staticKey: staticKey,
                           maxDevices: maxDevices, linkToken: nil)
    }

    /// The login lookup from three calls, for stores without a joined one.
    public func loginRecord(account: String, deviceID: UInt32) async throws(RelayStoreError) -> LoginRecord? {
        guard let a = try await self.account(named: account) else { throw .unknownAccount }
        guard let d = try await device(account: account, deviceID: deviceID) else { return nil }
        return LoginRecord(identityKey: a.identityKey, staticKey: d.staticKey,
                           prekeyCount: try await prekeyCount(account: account, deviceID: deviceID),
                           kyberPrekeyCount: try await kyberPrekeyCount(account: account, deviceID: deviceID))
    }

    /// An upload of X25519 prekeys only (the form before Kyber prekeys); returns the number of
    /// one-time prekeys now stored.
    public func storePrekeys(account: String, deviceID: UInt32, registrationID: UInt32, signed: SignedPrekeyRecord?,
                             oneTime: [OneTimePrekeyRecord], maxStored: Int) async throws(RelayStoreError) -> Int {
        try await storePrekeys(account: account, deviceID: deviceID,
                               PrekeyUpload(registrationID: registrationID, signed: signed, oneTime: oneTime,
                                            maxStored: maxStored, maxStoredKyber: .max)).oneTime
    }
}

/// The routing hot path with completion handlers instead of `async`, for a store that can
/// call back from its own queue: the relay's event-loop connections then need no Swift task
/// (and no extra thread hop) per send and per ack. Same contract as the `async` methods of
/// ``RelayStore``; `completion` runs exactly once, after the commit (after `committed`).
/// Optional: the relay uses it when the store conforms (``SQLiteRelayStore`` does).
public protocol CallbackRelayStore: RelayStore {
    /// ``RelayStore/enqueue(_:committed:)`` with a completion handler.
    func enqueue(_ request: EnqueueRequest, committed: @escaping @Sendable ([QueuedMessage]) -> Void,
                 completion: @escaping @Sendable (Result<EnqueueOutcome, RelayStoreError>) -> Void)
    /// ``RelayStore/acknowledge(account:deviceID:serverIDs:)`` with a completion handler.
    func acknowledge(account: String, deviceID: UInt32, serverIDs: [UInt64],
                     completion: @escaping @Sendable (Result<Int, RelayStoreError>) -> Void)
    /// ``RelayStore/loginRecord(account:deviceID:)`` answered from memory, without waiting (the
    /// login path then needs no thread hop).
    func loginRecordNow(account: String, deviceID: UInt32) -> Result<LoginRecord?, RelayStoreError>
    /// The number of messages queued for the device and not yet deleted, from memory (`nil`: unknown
    /// device). It is never below the number of committed messages (it counts a write before its
    /// batch commits), so 0 means that a queue read would find nothing.
    func queueDepthNow(account: String, deviceID: UInt32) -> Int?
}
