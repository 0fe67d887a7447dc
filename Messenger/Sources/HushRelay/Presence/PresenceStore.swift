import Foundation
import GRDB
import Synchronization

/// Who may see an account's presence (`Docs/spec/relay.md` §17).
public enum PresenceVisibility: UInt8, Sendable, Equatable, CaseIterable {
    /// Every logged-in account that subscribes.
    case everyone = 0
    /// Only the accounts of the allow list.
    case contacts = 1
    /// Nobody.
    case nobody = 2
}

/// An account's presence privacy setting.
public struct PresencePrivacy: Sendable, Equatable {
    /// Who may see it.
    public var visibility: PresenceVisibility
    /// With ``PresenceVisibility/contacts``: the accounts that may.
    public var allowed: Set<String>

    /// A setting.
    public init(visibility: PresenceVisibility, allowed: Set<String> = []) {
        self.visibility = visibility
        self.allowed = allowed
    }

    /// The default: everyone.
    public static let everyone = PresencePrivacy(visibility: .everyone)

    /// Whether `viewer` may see the presence of `owner`, whose setting this is.
    public func permits(_ viewer: String, owner: String) -> Bool {
        if viewer == owner { return true }
        switch visibility {
        case .everyone: return true
        case .contacts: return allowed.contains(viewer)
        case .nobody: return false
        }
    }
}

/// Errors of a ``PresenceStore``.
public enum PresenceStoreError: Error, Equatable, Sendable {
    /// The database failed.
    case storage(String)
}

/// The durable part of presence: each account's last-seen time and privacy setting. Kept apart
/// from ``RelayStore`` (which holds accounts, prekeys and queues) so that either can change alone.
public protocol PresenceStore: Sendable {
    /// The last time `account` was seen online (Unix milliseconds), or nil.
    func lastSeen(_ account: String) async throws(PresenceStoreError) -> UInt64?
    /// Records that `account` was online at `time`; an earlier time than the stored one is ignored.
    func setLastSeen(_ account: String, _ time: UInt64) async throws(PresenceStoreError)
    /// The privacy setting of `account`, or nil (the default, everyone).
    func privacy(_ account: String) async throws(PresenceStoreError) -> PresencePrivacy?
    /// Replaces the privacy setting of `account`.
    func setPrivacy(_ account: String, _ privacy: PresencePrivacy) async throws(PresenceStoreError)
}

/// A ``PresenceStore`` in memory (tests; a relay without a data directory).
public final class InMemoryPresenceStore: PresenceStore {
    private struct State {
        var lastSeen: [String: UInt64] = [:]
        var privacy: [String: PresencePrivacy] = [:]
    }
    private let state = Mutex(State())

    /// An empty store.
    public init() {}

    public func lastSeen(_ account: String) async throws(PresenceStoreError) -> UInt64? { state.withLock { $0.lastSeen[account] } }

    public func setLastSeen(_ account: String, _ time: UInt64) async throws(PresenceStoreError) {
        state.withLock { s in s.lastSeen[account] = max(s.lastSeen[account] ?? 0, time) }
    }

    public func privacy(_ account: String) async throws(PresenceStoreError) -> PresencePrivacy? { state.withLock { $0.privacy[account] } }

    public func setPrivacy(_ account: String, _ privacy: PresencePrivacy) async throws(PresenceStoreError) {
        state.withLock { $0.privacy[account] = privacy }
    }
}

/// A ``PresenceStore`` on SQLite (GRDB, WAL, `synchronous = NORMAL`: last seen is advisory, a
/// power loss may lose the latest update but never corrupts the file). One table per concern:
///
/// ```sql
/// presence_last_seen (account TEXT PRIMARY KEY, last_seen INTEGER)
/// presence_privacy   (account TEXT PRIMARY KEY, visibility INTEGER, allowed BLOB)  -- allowed: names joined by "\n"
/// ```
public final class SQLitePresenceStore: PresenceStore {
    private let queue: DatabaseQueue

    /// Opens (creating if needed) the database at `path`.
    public init(path: String) throws(PresenceStoreError) {
        var config = Configuration()
        // Another connection to the file (a previous instance still closing, e.g. across a
        // restart in one process) is waited for, up to 5 s, instead of failing at once.
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL") }
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
            var m = DatabaseMigrator()
            m.registerMigration("presence-v1") { db in
                try db.execute(sql: """
                    CREATE TABLE presence_last_seen (account TEXT PRIMARY KEY NOT NULL, last_seen INTEGER NOT NULL) WITHOUT ROWID;
                    CREATE TABLE presence_privacy (account TEXT PRIMARY KEY NOT NULL, visibility INTEGER NOT NULL,
                                                   allowed BLOB NOT NULL) WITHOUT ROWID;
                    """)
            }
            try m.migrate(queue)
        } catch {
            throw .storage("open: \(error)")
        }
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(PresenceStoreError) -> T {
        do { return try await queue.write(body) } catch { throw .storage("\(error)") }
    }

    public func lastSeen(_ account: String) async throws(PresenceStoreError) -> UInt64? {
        try await run { db in
            try Int64.fetchOne(db, sql: "SELECT last_seen FROM presence_last_seen WHERE account = ?", arguments: [account]).map { UInt64($0) }
        }
    }

    public func setLastSeen(_ account: String, _ time: UInt64) async throws(PresenceStoreError) {
        try await run { db in
            try db.execute(sql: """
                INSERT INTO presence_last_seen (account, last_seen) VALUES (?, ?)
                ON CONFLICT(account) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)
                """, arguments: [account, Int64(clamping: time)])
        }
    }

    public func privacy(_ account: String) async throws(PresenceStoreError) -> PresencePrivacy? {
        try await run { db -> PresencePrivacy? in
            guard let row = try Row.fetchOne(db, sql: "SELECT visibility, allowed FROM presence_privacy WHERE account = ?",
                                             arguments: [account]) else { return nil }
            let v: Int = row["visibility"]
            let blob: Data = row["allowed"]
            let names = String(decoding: blob, as: UTF8.self).split(separator: "\n").map(String.init)
            return PresencePrivacy(visibility: PresenceVisibility(rawValue: UInt8(clamping: v)) ?? .nobody, allowed: Set(names))
        }
    }

    public func setPrivacy(_ account: String, _ privacy: PresencePrivacy) async throws(PresenceStoreError) {
        let blob = Data(privacy.allowed.sorted().joined(separator: "\n").utf8)
        try await run { db in
            try db.execute(sql: """
                INSERT INTO presence_privacy (account, visibility, allowed) VALUES (?, ?, ?)
                ON CONFLICT(account) DO UPDATE SET visibility = excluded.visibility, allowed = excluded.allowed
                """, arguments: [account, Int(privacy.visibility.rawValue), blob])
        }
    }
}
