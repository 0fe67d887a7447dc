import Foundation
import Hush
import HushTransport

// A user's own devices in step (Docs/client.md §Several devices, Docs/spec/client.md §3a–§3c):
// what one device does for the user — a message sent (sync transcript, 0x06), a conversation
// read (read sync, 0x07), a group left or changed (0x12, 0x10) — goes to this account's other
// devices too, with `all_devices` on the own account, so a device the relay knows and this one
// does not is reported (`MISMATCHED_DEVICES`) and added. A device that knows no other device of
// its account cannot use `all_devices` for it (relay spec §7.6: the list would be empty). Such a
// device is device 1 (every other one learnt device 1 when it was linked), and a sibling it does
// not know can only be one it linked itself (the relay registers another device only with a
// link token that device 1 asked for, relay spec §22.4) whose hello (0x08) has not arrived.
// So only while one of its link tokens may still be used does it keep such content aside and
// ask the relay for its devices (`ListDevices`) first — found ones get it, otherwise it is
// dropped; the rest of the time (a one-device account: most accounts) it drops it at once,
// with no store write and no request per message.

/// Setting keys of the own-device sync (beside ``SettingKey``, kept here to keep merges small).
enum OwnSyncKey {
    /// Ids (this device's counter) of contents written for this account's other devices while
    /// this device knew none, waiting for the check (oldest first).
    static let aside = "own.aside"
    /// The encoded content of one of them.
    static func asideItem(_ id: UInt64) -> String { "own.aside.\(id)" }
    /// Read syncs for messages not (yet) stored here: "account device id conversation" lines,
    /// oldest first; such a message is stored already read when it arrives.
    static let readAhead = "own.read-ahead"
    /// This device was linked and has not greeted the account's other devices yet (0x08).
    static let helloDue = "own.hello-due"
    /// Until when (this device's clock, Unix ms) a device this one linked may still register:
    /// the last link token's expiry plus a minute.
    static let linkPendingUntil = "own.link-pending-until"
}

extension HushClient {
    /// Contents kept aside by a device that knows no other device of its account (the oldest
    /// beyond this are dropped).
    public static let maxAsideContents = 64
    /// Read syncs remembered for messages that have not arrived (the oldest beyond this are dropped).
    public static let maxReadAhead = 1_000

    /// Inside a transaction: queues `content` for this account's other devices — a fan-out item
    /// with `all_devices` (encrypted now when `online` with `certificate` and no deferred item
    /// for them waits; else deferred), or, when this device knows none of them (or contents wait
    /// aside already, which this one must not pass), aside for the check. Returns true when it
    /// went aside (call ``checkOwnDevicesSoon()`` after the transaction).
    func queueForOwnDevices(_ content: MessageContent, certificate: SenderCertificate?, online: Bool, now: UInt64) throws -> Bool {
        var aside = try store.ids(OwnSyncKey.aside)
        if aside.isEmpty, try !fanOutDevices(account).isEmpty {
            let deferred = try currentOutbox().contains { $0.account == account && $0.devices.isEmpty }
            if let certificate, online, !deferred {
                try enqueueFanOut(content.encoded, to: account, message: nil, certificate: certificate, now: now)
            } else {
                try store.enqueue(OutboxItem(clientMessageID: try store.takeID(), account: account, devices: [],
                                             payload: content.encoded, message: nil, createdAt: now))
            }
            return false
        }
        // Alone, and no link of ours can still complete: nobody to reach.
        if aside.isEmpty, (try store.u64(OwnSyncKey.linkPendingUntil) ?? 0) <= now { return false }
        let id = try store.takeID()
        try store.setSetting(OwnSyncKey.asideItem(id), content.encoded)
        aside.append(id)
        if aside.count > Self.maxAsideContents {
            for old in aside.prefix(aside.count - Self.maxAsideContents) { try store.setSetting(OwnSyncKey.asideItem(old), nil) }
            aside = Array(aside.suffix(Self.maxAsideContents))
        }
        try store.setIDs(OwnSyncKey.aside, aside)
        return true
    }

    /// Asks the relay for this account's devices soon (once at a time; again if more contents
    /// went aside meanwhile), then hands the contents kept aside to the devices found.
    func checkOwnDevicesSoon() {
        guard link != nil else { return }  // the next login checks
        if checkingOwnDevices {
            checkOwnDevicesAgain = true
            return
        }
        checkingOwnDevices = true
        Task { await self.checkOwnDevicesLoop() }
    }

    private func checkOwnDevicesLoop() async {
        defer { checkingOwnDevices = false }
        repeat {
            checkOwnDevicesAgain = false
            // refreshOwnDevices hands the aside contents on (or drops them) itself.
            do { try await refreshOwnDevices() } catch { return }  // offline: the next login checks
        } while checkOwnDevicesAgain
    }

    /// After a check of this account's devices that began when `checked` were aside: with other
    /// devices known now, every aside content goes to them in order (as fan-out items keeping
    /// their ids); with none, the checked ones are dropped (nobody to reach) and later ones wait
    /// for the next check.
    func releaseAside(checked: [UInt64]) {
        let cert = usableCertificate(), online = drained && link != nil, now = configuration.clock()
        var again = false
        _ = try? step {
            try store.atomically {
                let aside = try store.ids(OwnSyncKey.aside)
                guard !aside.isEmpty else { return }
                let devices = try fanOutDevices(account)
                var rest: [UInt64] = []
                let waiting = try currentOutbox().contains { $0.account == account && $0.devices.isEmpty }
                var deferring = cert == nil || !online || waiting
                for id in aside {
                    let key = OwnSyncKey.asideItem(id)
                    guard devices.isEmpty else {
                        guard let content = try store.setting(key) else { continue }
                        try store.setSetting(key, nil)
                        if let cert, !deferring {
                            do {
                                try enqueueFanOut(content, to: account, id: id, message: nil, certificate: cert, now: now)
                                continue
                            } catch {
                                deferring = true
                            }
                        }
                        try store.enqueue(OutboxItem(clientMessageID: id, account: account, devices: [], payload: content,
                                                     message: nil, createdAt: now))
                        continue
                    }
                    if checked.contains(id) { try store.setSetting(key, nil) } else { rest.append(id) }
                }
                try store.setIDs(OwnSyncKey.aside, rest)
                again = !rest.isEmpty
            }
        }
        outboxCache = nil
        pump()
        if again { checkOwnDevicesSoon() }
    }

    /// Queues the device hello (0x08) for this account's other devices and forgets that it is due.
    func greetOwnDevices() {
        let cert = usableCertificate(), online = drained && link != nil, now = configuration.clock()
        var checkOwn = false
        _ = try? step {
            try store.atomically {
                checkOwn = try queueForOwnDevices(.deviceHello, certificate: cert, online: online, now: now)
                try store.setFlag(OwnSyncKey.helloDue, false)
            }
        }
        outboxCache = nil
        pump()
        if checkOwn { checkOwnDevicesSoon() }
    }

    // MARK: read sync

    /// Inside `markRead`'s transaction: this account's other devices learn that `messages` of
    /// `conversation` were read here (content 0x07, whatever the read-receipt setting). Returns
    /// true when the contents went aside (a check is due).
    func queueReadSync(_ conversation: String, _ messages: [MessageID], certificate: SenderCertificate?, online: Bool,
                       now: UInt64) throws -> Bool {
        var aside = false
        for content in MessageContent.readSyncs(conversation: conversation, messages: messages) {
            if try queueForOwnDevices(content, certificate: certificate, online: online, now: now) { aside = true }
        }
        return aside
    }

    /// Whether `name` names a conversation: an account, or a group ("#" and 32 hex digits).
    static func isConversation(_ name: String) -> Bool {
        DeviceBinding.isValidAccountName(name) || GroupID(conversation: name) != nil
    }

    /// Inside a receive transaction: a read sync from this account's other device `address`:
    /// the listed incoming messages of `conversation` held here are marked read (no read receipt:
    /// the reading device sent those it owed); those not here yet are remembered and stored read
    /// when they arrive. Anything from another account, or another conversation's message, is
    /// ignored.
    func applyReadSync(_ conversation: String, _ messages: [MessageID], from address: ProtocolAddress,
                       effects: inout [ClientEvent]) throws {
        guard address.name == account, address.deviceID != deviceID else { return }
        let marked = try Self.applyReadSync(conversation, messages, store: store, me: ProtocolAddress(name: account, deviceID: deviceID))
        if !marked.isEmpty { effects.append(.readOnOtherDevice(conversation: conversation, messages: marked)) }
    }

    /// The store's part of ``applyReadSync(_:_:from:effects:)`` for the device `me` (inside a
    /// transaction): returns the messages it marked read.
    static func applyReadSync(_ conversation: String, _ messages: [MessageID], store: any ClientStore, me: ProtocolAddress) throws -> [MessageID] {
        guard isConversation(conversation) else { return [] }
        var marked: [MessageID] = []
        var ahead: [String] = []
        for m in messages {
            if let stored = try store.message(m) {
                guard stored.direction == .incoming, stored.conversation == conversation else { continue }
                if try store.advance(m, to: .read, serverTime: nil) { marked.append(m) }
            } else if m.account != me.name || m.device != me.deviceID {
                ahead.append(readAheadLine(m, conversation))
            }
        }
        if !ahead.isEmpty {
            var lines = try store.strings(OwnSyncKey.readAhead)
            for line in ahead where !lines.contains(line) { lines.append(line) }
            try store.setStrings(OwnSyncKey.readAhead, Array(lines.suffix(maxReadAhead)))
        }
        return marked
    }

    static func readAheadLine(_ m: MessageID, _ conversation: String) -> String {
        "\(m.account) \(m.device) \(m.clientMessageID) \(conversation)"
    }

    /// Inside a receive transaction, for an incoming message about to be stored in `conversation`:
    /// whether another device of this account already read it (its read sync came first); the
    /// memory of it is then used up.
    func readElsewhere(_ m: MessageID, in conversation: String) throws -> Bool { try Self.readElsewhere(m, in: conversation, store: store) }

    static func readElsewhere(_ m: MessageID, in conversation: String, store: any ClientStore) throws -> Bool {
        var lines = try store.strings(OwnSyncKey.readAhead)
        guard !lines.isEmpty, let i = lines.firstIndex(of: readAheadLine(m, conversation)) else { return false }
        lines.remove(at: i)
        try store.setStrings(OwnSyncKey.readAhead, lines)
        return true
    }
}
