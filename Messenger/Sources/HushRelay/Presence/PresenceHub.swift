import Foundation
import HushTransport
import Logging
import Synchronization

/// Online state, last seen and presence subscriptions (`Docs/spec/relay.md` §17).
///
/// An account is online while at least one of its devices has a logged-in connection. The hub
/// keeps, in memory, which connections are online per account and which accounts each
/// connection subscribes to; last seen and privacy settings are durable in a ``PresenceStore``
/// (cached here, bounded). Pushes to a subscriber are coalesced per watched account (only the
/// newest presence of an account waits), so a subscriber's backlog is bounded by its
/// subscription, and a slow subscriber delays only itself.
final class PresenceHub: Sendable {
    private struct State {
        /// account → its logged-in connections.
        var online: [String: [UInt64: RelayConnection]] = [:]
        /// connection → its account (for connections registered as online).
        var accountOf: [UInt64: String] = [:]
        /// watched account → subscribers (by connection id).
        var watchers: [String: [UInt64: PresenceSubscriber]] = [:]
        /// connection → the accounts it watches.
        var subscriptions: [UInt64: (PresenceSubscriber, Set<String>)] = [:]
        /// Cached durable values.
        var lastSeen: [String: UInt64] = [:]
        var privacy: [String: PresencePrivacy] = [:]
    }
    private let state = Mutex(State())
    let store: any PresenceStore
    let logger: Logger
    let clock: @Sendable () -> UInt64
    /// Cached accounts beyond which the caches are dropped (they are re-read from the store).
    let cacheCapacity = 100_000

    init(store: any PresenceStore, clock: @escaping @Sendable () -> UInt64, logger: Logger) {
        self.store = store
        self.clock = clock
        self.logger = logger
    }

    // MARK: queries

    /// The online connections of `account` (ephemeral delivery, §18).
    func connections(of account: String) -> [RelayConnection] {
        state.withLock { s in s.online[account].map { Array($0.values) } ?? [] }
    }

    func isOnline(_ account: String) -> Bool { state.withLock { !($0.online[account]?.isEmpty ?? true) } }

    /// Loads the durable values of `accounts` into the cache. A privacy setting that cannot be
    /// read is not cached, so the account counts as hidden (fail closed) until a later read works.
    private func load(_ accounts: some Sequence<String>) async {
        for account in accounts {
            let cached = state.withLock { ($0.lastSeen[account] != nil, $0.privacy[account] != nil) }
            var seen: UInt64?
            var privacy: PresencePrivacy?
            if !cached.0 { seen = (try? await store.lastSeen(account)) ?? nil }
            if !cached.1 {
                do { privacy = try await store.privacy(account) ?? .everyone } catch {
                    logger.error("presence privacy read failed", metadata: ["error": "\(error)"])
                }
            }
            state.withLock { s in
                if s.lastSeen.count >= cacheCapacity || s.privacy.count >= cacheCapacity {
                    s.lastSeen.removeAll(keepingCapacity: true)
                    s.privacy.removeAll(keepingCapacity: true)
                }
                if let seen, s.lastSeen[account] == nil { s.lastSeen[account] = seen }
                if let privacy, s.privacy[account] == nil { s.privacy[account] = privacy }
            }
        }
    }

    /// What `viewer` may see of `account` (call with the state locked).
    private static func view(_ account: String, for viewer: String, _ s: State) -> RelayPresence {
        var p = RelayPresence()
        p.account = account
        let privacy = s.privacy[account] ?? PresencePrivacy(visibility: .nobody)
        guard privacy.permits(viewer, owner: account) else {
            p.hidden = true
            return p
        }
        p.online = !(s.online[account]?.isEmpty ?? true)
        p.lastSeen = s.lastSeen[account] ?? 0
        return p
    }

    /// Queues the current view of `account` for each of its watchers (state locked).
    private static func notifyWatchers(of account: String, _ s: State) -> [(PresenceSubscriber, RelayPresence)] {
        guard let watchers = s.watchers[account] else { return [] }
        return watchers.values.map { ($0, view(account, for: $0.account, s)) }
    }

    // MARK: connection hooks

    /// `connection` logged in as a device of `account`.
    func online(_ account: String, _ connection: RelayConnection) async {
        // The privacy setting is needed only to tell watchers; a login nobody watches reads nothing.
        if state.withLock({ $0.watchers[account] != nil }) { await load([account]) }
        let now = clock()
        let pushes = state.withLock { s -> [(PresenceSubscriber, RelayPresence)] in
            let wasOnline = !(s.online[account]?.isEmpty ?? true)
            s.online[account, default: [:]][connection.id] = connection
            s.accountOf[connection.id] = account
            s.lastSeen[account] = max(s.lastSeen[account] ?? 0, now)
            return wasOnline ? [] : Self.notifyWatchers(of: account, s)
        }
        for (sub, p) in pushes { sub.enqueue(p) }
        // Closed while the cache was loading: `ended` ran before the insert above.
        if connection.phase == .closed { ended(connection); return }
        persistLastSeen(account, now)
    }

    /// Writes last seen without holding up the caller (login, close). Writes may land in any
    /// order: the store keeps the latest time.
    private func persistLastSeen(_ account: String, _ time: UInt64) {
        let store = self.store, logger = self.logger
        Task {
            do { try await store.setLastSeen(account, time) } catch {
                logger.error("last seen write failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// `connection` ended (or is closing): it is no longer online nor subscribed. Idempotent.
    func ended(_ connection: RelayConnection) {
        let now = clock()
        let (account, pushes) = state.withLock { s -> (String?, [(PresenceSubscriber, RelayPresence)]) in
            if let (sub, watched) = s.subscriptions.removeValue(forKey: connection.id) {
                sub.cancel()
                for a in watched { s.watchers[a]?[connection.id] = nil; if s.watchers[a]?.isEmpty == true { s.watchers[a] = nil } }
            }
            guard let account = s.accountOf.removeValue(forKey: connection.id) else { return (nil, []) }
            s.online[account]?[connection.id] = nil
            guard s.online[account]?.isEmpty ?? true else { return (nil, []) }
            s.online[account] = nil
            s.lastSeen[account] = max(s.lastSeen[account] ?? 0, now)
            return (account, Self.notifyWatchers(of: account, s))
        }
        for (sub, p) in pushes { sub.enqueue(p) }
        guard let account else { return }
        persistLastSeen(account, now)
    }

    // MARK: requests

    /// Replaces the watched accounts of `connection` (a device of `viewer`) and sends the
    /// current presence of each.
    func subscribe(_ connection: RelayConnection, viewer: String, accounts: [String]) async {
        await load(accounts)
        let pushes = state.withLock { s -> [(PresenceSubscriber, RelayPresence)] in
            let sub: PresenceSubscriber
            if let (existing, old) = s.subscriptions[connection.id] {
                sub = existing
                for a in old { s.watchers[a]?[connection.id] = nil; if s.watchers[a]?.isEmpty == true { s.watchers[a] = nil } }
            } else {
                sub = PresenceSubscriber(connection: connection, account: viewer)
            }
            let set = Set(accounts)
            s.subscriptions[connection.id] = (sub, set)
            for a in set { s.watchers[a, default: [:]][connection.id] = sub }
            return accounts.map { (sub, Self.view($0, for: viewer, s)) }
        }
        for (sub, p) in pushes { sub.enqueue(p) }
    }

    /// Stores `privacy` for `account` and sends its watchers what they may now see.
    func setPrivacy(_ account: String, _ privacy: PresencePrivacy) async throws(PresenceStoreError) {
        try await store.setPrivacy(account, privacy)
        await load([account])
        let pushes = state.withLock { s -> [(PresenceSubscriber, RelayPresence)] in
            s.privacy[account] = privacy
            return Self.notifyWatchers(of: account, s)
        }
        for (sub, p) in pushes { sub.enqueue(p) }
    }
}

/// One subscribed connection's pending presence pushes: the newest per watched account, sent in
/// a single drain task at a time.
final class PresenceSubscriber: Sendable {
    private struct State {
        var pending: [String: RelayPresence] = [:]
        var order: [String] = []
        var draining = false
        var cancelled = false
    }
    let connection: RelayConnection
    let account: String
    private let state = Mutex(State())

    init(connection: RelayConnection, account: String) {
        self.connection = connection
        self.account = account
    }

    func enqueue(_ presence: RelayPresence) {
        let start = state.withLock { s -> Bool in
            guard !s.cancelled else { return false }
            if s.pending.updateValue(presence, forKey: presence.account) == nil { s.order.append(presence.account) }
            guard !s.draining else { return false }
            s.draining = true
            return true
        }
        if start { Task { await self.drain() } }
    }

    func cancel() { state.withLock { $0.cancelled = true; $0.pending.removeAll(); $0.order.removeAll() } }

    private func drain() async {
        while true {
            let next = state.withLock { s -> RelayPresence? in
                while !s.order.isEmpty {
                    let a = s.order.removeFirst()
                    if let p = s.pending.removeValue(forKey: a) { return p }
                }
                s.draining = false
                return nil
            }
            guard let next else { return }
            var stanza = RelayStanza()
            stanza.presence = next
            guard await connection.send(stanza) else {
                cancel()
                state.withLock { $0.draining = false }
                return
            }
        }
    }
}
