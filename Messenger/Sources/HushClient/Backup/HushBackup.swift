import Foundation
import Hush
import HushTransport

/// Encrypted backups of a device's history (Docs/spec/backup.md; WhatsApp's msgstore.db.crypt):
/// the account and device keys, contacts' identity keys, every message with its ticks, media
/// pointers and settings — not sessions, prekeys or sender keys. A restored device re-creates
/// its prekeys (replacing every one-time prekey the relay holds for it) and re-establishes a
/// session with every contact at its first connection, as Signal and WhatsApp do.
///
/// Not for: keeping two live copies of a device. A restored backup *is* the device (same
/// account, device id and Noise key); run it in one place only (the relay closes the other
/// connection, spec relay §5.4).
public enum HushBackup {
    /// What a backup held (or an export wrote).
    public struct Summary: Sendable, Equatable {
        public var account: String
        public var deviceID: UInt32
        /// When the backup was made, Unix ms.
        public var createdAt: UInt64
        public var messages: Int
        public var identities: Int
        public var settings: Int
        /// Outgoing messages not yet accepted by the relay when the backup was made: sent again
        /// after a restore (recipients drop copies by message id).
        public var resent: Int
        /// Contacts that get a session reset at the first connection after a restore.
        public var contacts: Int
    }

    /// The result of ``restore(from:secret:configuration:makeStore:)``.
    public struct Restored {
        /// The filled store (the caller opens a ``HushClient`` on it).
        public var store: any ClientStore
        public var summary: Summary
        /// The application's entries (``export(store:to:secret:application:now:random:)``).
        public var application: [String: [UInt8]]
    }

    /// Client message ids of a restored device start this far above the backup's counter: the
    /// lost device may have used ids after the backup, and the relay drops a reused id as a
    /// duplicate for 30 days (spec relay §7.1). 2³² messages after the backup stay safe.
    public static let restoredIDGap: UInt64 = 1 << 32
    /// The most application entries a backup may carry.
    public static let applicationEntryLimit = 64

    static let restoreReplacePreKeys = "restore.replace-prekeys"

    /// The settings a backup carries and a restore accepts (spec backup §5): anything else in a
    /// backup is refused, so an authentic but foreign file cannot set device keys or counters.
    static func isBackedUpSetting(_ key: String) -> Bool {
        [SettingKey.relayKey, SettingKey.readReceipts, SettingKey.presence, SettingKey.subscriptions, SettingKey.groupIndex].contains(key)
            || key.hasPrefix("media.pointer.") || key.hasPrefix("identity.pending.")
            || key.hasPrefix("group.state.") || key.hasPrefix("group.ticks.")
    }

    /// Writes a backup of `store` to `sink`, streaming (memory: one chunk and one page of 256
    /// messages). `application` entries (e.g. the CLI's relay address) are restored as given.
    @discardableResult
    public static func export<Sink: BackupSink>(store: any ClientStore, to sink: inout Sink, secret: BackupSecret,
                                                application: [String: [UInt8]] = [:], now: UInt64,
                                                random: some RandomSource = SystemRandom()) throws(BackupError) -> Summary {
        guard application.count <= applicationEntryLimit else { throw .io("too many application entries") }
        let profile = try wrapStore { () throws -> BackupProfile? in
            guard let a = try store.setting(SettingKey.account), let d = try store.u64(SettingKey.deviceID),
                  var k = try store.setting(SettingKey.noiseKey) else { return nil }
            defer { SecureBytes.wipe(&k) }
            return BackupProfile(account: String(decoding: a, as: UTF8.self), deviceID: UInt32(truncatingIfNeeded: d),
                                 registrationID: try store.localRegistrationID(), identity: try store.identityKeyPair(),
                                 noiseKey: SecureBytes(copying: k), nextID: try store.u64(SettingKey.nextID) ?? 1,
                                 nextPreKeyID: try store.u64(SettingKey.nextPreKeyID) ?? 1,
                                 signedPreKeyID: try store.u64(SettingKey.signedPreKeyID) ?? 1,
                                 nextKyberPreKeyID: try store.u64(SettingKey.nextKyberPreKeyID) ?? 1)
        }
        guard let profile else { throw .store("the store holds no device") }
        let writer = try BackupWriter(sink: sink, secret: secret, createdAt: now, random: random)
        var summary = Summary(account: profile.account, deviceID: profile.deviceID, createdAt: now, messages: 0, identities: 0,
                              settings: 0, resent: 0, contacts: 0)
        try writer.write(.profile(profile))
        for (key, value) in application.sorted(by: { $0.key < $1.key }) { try writer.write(.app(key: key, value: value)) }
        for key in [SettingKey.relayKey, SettingKey.readReceipts, SettingKey.presence, SettingKey.subscriptions] {
            if let v = try wrapStore({ try store.setting(key) }) {
                try writer.write(.setting(key: key, value: v))
                summary.settings += 1
            }
        }
        // Groups (spec backup §5): the index and each group's state; not which devices hold
        // this device's sender key (the key itself is not in the backup: a new one is made).
        var contactSet = Set<String>()
        let groupHexes = try wrapStore { try store.strings(SettingKey.groupIndex) }
        if !groupHexes.isEmpty {
            try writer.write(.setting(key: SettingKey.groupIndex, value: try wrapStore { try store.setting(SettingKey.groupIndex) } ?? []))
            summary.settings += 1
        }
        for hex in groupHexes {
            guard let id = GroupID(conversation: "#" + hex) else { continue }
            let key = SettingKey.groupState(id)
            guard let v = try wrapStore({ try store.setting(key) }) else { continue }
            try writer.write(.setting(key: key, value: v))
            summary.settings += 1
            if let state = try? GroupState(decoding: v) { contactSet.formUnion(state.members) }
        }
        // Contacts: every 1:1 conversation's account, every group member, every sender of an
        // incoming message (below), never this account.
        for c in try wrapStore({ try store.conversations() }) where DeviceBinding.isValidAccountName(c.account) { contactSet.insert(c.account) }
        var seenDevices: [String: Set<UInt32>] = [:]
        // Messages in the order they were stored, each media message's pointer before it.
        var after: Int64 = 0
        while true {
            let page = try wrapStore { try store.allMessages(after: after, limit: 256) }
            guard let last = page.last else { break }
            for m in page {
                // A media message's pointer, a group message's member ticks: right before it.
                for key in [SettingKey.mediaPointer(m.id), SettingKey.groupTicks(m.id)] {
                    if let value = try wrapStore({ try store.setting(key) }) {
                        try writer.write(.setting(key: key, value: value))
                        summary.settings += 1
                    }
                }
                try writer.write(.message(m))
                summary.messages += 1
                if m.direction == .incoming {
                    seenDevices[m.id.account, default: []].insert(m.id.device)
                    if DeviceBinding.isValidAccountName(m.id.account) { contactSet.insert(m.id.account) }
                }
                if m.direction == .outgoing && m.state == .pending { summary.resent += 1 }
            }
            after = last.sequence
        }
        // Contacts' identity keys (so verified safety numbers stay verified): every device with a
        // session or a message, and pending identity changes.
        contactSet.remove(profile.account)
        let contacts = contactSet.sorted()
        for name in contacts {
            let found = try wrapStore { () throws -> [(UInt32, IdentityKey)] in
                let devices = Set(try store.sessionDevices(for: name)).union(seenDevices[name] ?? []).union([1])
                return try devices.sorted().compactMap { d in
                    try store.identity(for: ProtocolAddress(name: name, deviceID: d)).map { (d, $0) }
                }
            }
            for (device, key) in found {
                try writer.write(.identity(account: name, device: device, key: key))
                summary.identities += 1
            }
            let pendingKey = SettingKey.pendingIdentity(name)
            if let v = try wrapStore({ try store.setting(pendingKey) }) {
                try writer.write(.setting(key: pendingKey, value: v))
                summary.settings += 1
            }
        }
        try writer.finish()
        sink = writer.sink
        summary.contacts = contacts.count
        return summary
    }

    /// Reads the backup in `source` and restores it into the empty store that `makeStore` makes
    /// for the backup's device (it is given the profile: the identity key pair and registration
    /// id a store is created with). All or nothing: the restore is one store step, so a damaged
    /// or truncated file leaves the store without a device (the caller deletes it).
    ///
    /// After it, the store holds fresh prekeys (uploaded with `replace_one_time` at the first
    /// connection), no sessions, and a session reset queued for every contact; unsent
    /// outgoing messages are queued again.
    public static func restore<Source: BackupSource>(from source: Source, secret: BackupSecret, configuration: ClientConfiguration,
                                                     makeStore: (BackupProfile) throws -> any ClientStore) throws(BackupError) -> Restored {
        let reader = try BackupReader(source: source, secret: secret)
        guard case .profile(let profile)? = try reader.next() else { throw .invalidRecord(index: 0, problem: .missingProfile) }
        let store: any ClientStore
        do { store = try makeStore(profile) } catch let e as BackupError { throw e } catch { throw .store("\(error)") }
        let now = configuration.clock(), random = configuration.random
        var summary = Summary(account: profile.account, deviceID: profile.deviceID, createdAt: reader.createdAt, messages: 0,
                              identities: 0, settings: 0, resent: 0, contacts: 0)
        var application: [String: [UInt8]] = [:]
        do {
            try store.atomically {
                guard try store.setting(SettingKey.account) == nil else { throw BackupError.storeNotEmpty }
                guard try store.identityKeyPair().identityKey == profile.identity.identityKey else {
                    throw BackupError.store("the store was made with another identity key")
                }
                try store.setSetting(SettingKey.account, Array(profile.account.utf8))
                try store.setU64(SettingKey.deviceID, UInt64(profile.deviceID))
                try store.setSetting(SettingKey.noiseKey, profile.noiseKey.withUnsafeBytes { Array($0) })
                try store.setFlag(SettingKey.registered, true)
                try store.setFlag(SettingKey.readReceipts, true)
                let (nextID, overflow) = profile.nextID.addingReportingOverflow(restoredIDGap)
                try store.setU64(SettingKey.nextID, overflow ? profile.nextID : nextID)
                var contacts = Set<String>()
                var pendingOut: [StoredMessage] = []
                while let record = try reader.next() {
                    switch record {
                    case .profile:
                        throw BackupError.invalidRecord(index: reader.records - 1, problem: .duplicateProfile)
                    case .app(let key, let value):
                        guard application.count < applicationEntryLimit else {
                            throw BackupError.invalidRecord(index: reader.records - 1, problem: .malformed(type: BackupRecord.Kind.app.rawValue))
                        }
                        application[key] = value
                    case .setting(let key, let value):
                        guard isBackedUpSetting(key) else {
                            throw BackupError.invalidRecord(index: reader.records - 1, problem: .settingNotAllowed(key))
                        }
                        try store.setSetting(key, value)
                        summary.settings += 1
                    case .identity(let account, let device, let key):
                        _ = try store.saveIdentity(key, for: ProtocolAddress(name: account, deviceID: device))
                        contacts.insert(account)
                        summary.identities += 1
                    case .message(let m):
                        _ = try store.insertMessage(m)
                        summary.messages += 1
                        // A 1:1 conversation's account, a group message's sender (spec backup §6 step 4).
                        for name in [m.conversation, m.id.account] where name != profile.account && DeviceBinding.isValidAccountName(name) {
                            contacts.insert(name)
                        }
                        if m.direction == .outgoing, m.state == .pending, m.id.account == profile.account, m.id.device == profile.deviceID {
                            pendingOut.append(m)
                        }
                    }
                }
                // Fresh prekeys under new ids (the relay's one-time keys are replaced, spec relay §8.1).
                let spkID = UInt32(truncatingIfNeeded: profile.signedPreKeyID &+ 1)
                try store.storeSignedPreKey(try SignedPreKeyRecord.generate(id: spkID, timestamp: now, signedBy: profile.identity, using: random))
                try store.setU64(SettingKey.signedPreKeyID, UInt64(spkID))
                let first = UInt32(truncatingIfNeeded: profile.nextPreKeyID)
                let count = UInt32(min(configuration.preKeyBatch, RelayProtocol.Limits.maxPrekeysPerUpload))
                let ids = (0..<count).map { first &+ $0 }
                for id in ids { try store.storePreKey(try PreKeyRecord.generate(ids: id...id, using: random)[0]) }
                try store.setU64(SettingKey.nextPreKeyID, UInt64(first &+ count))
                // Kyber prekey ids are 32-bit: a counter beyond them is a damaged profile, not a trap.
                guard profile.nextKyberPreKeyID <= UInt64(UInt32.max) else {
                    throw BackupError.invalidRecord(index: 0, problem: .malformed(type: BackupRecord.Kind.profile.rawValue))
                }
                try store.setU64(SettingKey.nextKyberPreKeyID, profile.nextKyberPreKeyID)
                try HushClient.generateKyberPreKeys(store: store, identity: profile.identity, now: now, random: random,
                                                    count: configuration.kyberPreKeyBatch)
                try store.setFlag(SettingKey.preKeysUploaded, false)
                try store.setFlag(SettingKey.kyberPreKeysUploaded, false)
                try store.setFlag(restoreReplacePreKeys, true)
                // Every member of a restored group is a contact too.
                for hex in try store.strings(SettingKey.groupIndex) {
                    guard let id = GroupID(conversation: "#" + hex), let v = try store.setting(SettingKey.groupState(id)),
                          let state = try? GroupState(decoding: v) else { continue }
                    for m in state.members where m != profile.account { contacts.insert(m) }
                }
                // A session reset to every contact, then the unsent messages, as deferred items:
                // each builds a new session from the contact's bundle when it is sent (a group's
                // goes as a group message, with this device's new sender key).
                for name in contacts.sorted() {
                    try store.enqueue(OutboxItem(clientMessageID: try store.takeID(), account: name, devices: [],
                                                 payload: MessageContent.sessionReset(sentAt: now).encoded, message: nil, createdAt: now))
                }
                for m in pendingOut {
                    let content: MessageContent
                    if let p = try store.setting(SettingKey.mediaPointer(m.id)), let pointer = try? MediaPointer(decoding: p) {
                        content = .media(id: m.id.clientMessageID, sentAt: m.sentAt, pointer: pointer)
                    } else {
                        content = .text(id: m.id.clientMessageID, sentAt: m.sentAt, body: m.body)
                    }
                    try store.enqueue(OutboxItem(clientMessageID: try store.takeID(), account: m.conversation, devices: [],
                                                 payload: content.encoded, message: m.id, createdAt: now))
                }
                summary.resent = pendingOut.count
                summary.contacts = contacts.count
            }
        } catch let e as BackupError { throw e } catch { throw .store("\(error)") }
        return Restored(store: store, summary: summary, application: application)
    }

    private static func wrapStore<R>(_ body: () throws -> R) throws(BackupError) -> R {
        do { return try body() } catch { throw .store("\(error)") }
    }
}
