import Foundation
import Hush

/// The setting keys HushClient keeps in its store (values sealed on disk by the store).
enum SettingKey {
    static let account = "device.account"
    static let deviceID = "device.id"
    static let noiseKey = "device.noise-key"
    static let registered = "device.registered"
    static let relayKey = "relay.pinned-key"
    static let nextID = "counter.next-id"
    static let nextPreKeyID = "prekeys.next-id"
    static let preKeysUploaded = "prekeys.uploaded"
    static let signedPreKeyID = "signed-prekey.current-id"
    static let signedPreKeyUploaded = "signed-prekey.uploaded"
    /// The next Kyber prekey id (one-time and last-resort keys share the id space).
    static let nextKyberPreKeyID = "kyber-prekeys.next-id"
    /// The current last-resort Kyber prekey's id.
    static let kyberLastResortID = "kyber-prekeys.last-resort-id"
    /// Every Kyber prekey held was uploaded (cleared when the relay lost the device).
    static let kyberPreKeysUploaded = "kyber-prekeys.uploaded"
    static let senderCertificate = "sender-certificate"
    static let readReceipts = "privacy.read-receipts"
    static let presence = "presence.setting"
    static let subscriptions = "presence.subscriptions"
    /// The media pointer of a media message (sealed like every setting).
    static func mediaPointer(_ id: MessageID) -> String { "media.pointer.\(id.account).\(id.device).\(id.clientMessageID)" }
    static func pendingIdentity(_ account: String) -> String { "identity.pending.\(account)" }
    static func owedDelivered(_ account: String, _ device: UInt32) -> String { "receipts.owed.\(account).\(device)" }
    static let owedIndex = "receipts.owed-index"
    /// Sealed sender (Docs/client.md §Sealed sender): this account's secret, from which its
    /// access key and its sealed sends' client message ids are derived.
    static let sealedSecret = "sealed.secret"
    /// This account's access setting was stored on the relay (cleared when it must be again).
    static let sealedUploaded = "sealed.uploaded"
    /// Accept sealed messages from anyone (not only from holders of the access key).
    static let sealedFromAnyone = "sealed.from-anyone"
    /// The access key `account` shared with us (16 bytes).
    static func sealedKey(_ account: String) -> String { "sealed.key.\(account)" }
    /// Our access key was queued for `account`.
    static func sealedShared(_ account: String) -> String { "sealed.shared.\(account)" }
    /// The groups this device knows (hex ids, strings).
    static let groupIndex = "group.index"
    /// A group's state (``GroupState/encoded``).
    static func groupState(_ id: GroupID) -> String { "group.state.\(id.hex)" }
    /// The devices ("device account") that hold this device's current sender key for a group.
    static func groupKeyShared(_ id: GroupID) -> String { "group.key-shared.\(id.hex)" }
    /// An outgoing group message's tick per member ("state account", strings).
    static func groupTicks(_ id: MessageID) -> String { "group.ticks.\(id.account).\(id.device).\(id.clientMessageID)" }
}

extension ClientStore {
    func u64(_ key: String) throws -> UInt64? {
        try setting(key).flatMap(StoredValues.u64)
    }

    func setU64(_ key: String, _ value: UInt64) throws {
        try setSetting(key, StoredValues.encodeU64(value))
    }

    func flag(_ key: String) throws -> Bool { try setting(key) == [1] }
    func setFlag(_ key: String, _ on: Bool) throws { try setSetting(key, [on ? 1 : 0]) }

    func strings(_ key: String) throws -> [String] {
        try setting(key).map(StoredValues.strings) ?? []
    }

    func setStrings(_ key: String, _ values: [String]) throws {
        try setSetting(key, values.isEmpty ? nil : Array(values.joined(separator: "\n").utf8))
    }

    func ids(_ key: String) throws -> [UInt64] {
        try setting(key).map(StoredValues.ids) ?? []
    }

    func setIDs(_ key: String, _ values: [UInt64]) throws {
        try setSetting(key, values.isEmpty ? nil : StoredValues.encodeIDs(values))
    }

    /// The next id of the device's counter (message ids and relay client message ids share it).
    func takeID() throws -> UInt64 {
        let n = try u64(SettingKey.nextID) ?? 1
        try setU64(SettingKey.nextID, n + 1)
        return n
    }
}
