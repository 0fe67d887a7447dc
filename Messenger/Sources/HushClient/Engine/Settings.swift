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
    static func pendingIdentity(_ account: String) -> String { "identity.pending.\(account)" }
    static func owedDelivered(_ account: String, _ device: UInt32) -> String { "receipts.owed.\(account).\(device)" }
    static let owedIndex = "receipts.owed-index"
}

extension ClientStore {
    func u64(_ key: String) throws -> UInt64? {
        guard let b = try setting(key), b.count == 8 else { return nil }
        return b.reduce(0) { $0 << 8 | UInt64($1) }
    }

    func setU64(_ key: String, _ value: UInt64) throws {
        try setSetting(key, (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) })
    }

    func flag(_ key: String) throws -> Bool { try setting(key) == [1] }
    func setFlag(_ key: String, _ on: Bool) throws { try setSetting(key, [on ? 1 : 0]) }

    func strings(_ key: String) throws -> [String] {
        guard let b = try setting(key), !b.isEmpty else { return [] }
        return String(decoding: b, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    func setStrings(_ key: String, _ values: [String]) throws {
        try setSetting(key, values.isEmpty ? nil : Array(values.joined(separator: "\n").utf8))
    }

    func ids(_ key: String) throws -> [UInt64] {
        guard let b = try setting(key) else { return [] }
        var r = Varint.Reader(bytes: b, offset: 0)
        var out: [UInt64] = []
        while r.offset < b.count { guard let v = try? r.read() else { break }; out.append(v) }
        return out
    }

    func setIDs(_ key: String, _ values: [UInt64]) throws {
        if values.isEmpty { try setSetting(key, nil); return }
        var out: [UInt8] = []
        for v in values { Varint.append(v, to: &out) }
        try setSetting(key, out)
    }

    /// The next id of the device's counter (message ids and relay client message ids share it).
    func takeID() throws -> UInt64 {
        let n = try u64(SettingKey.nextID) ?? 1
        try setU64(SettingKey.nextID, n + 1)
        return n
    }
}
