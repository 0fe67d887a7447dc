import Foundation
import Hush
import HushTransport

// Several devices per account, the sending side (Docs/client.md §Several devices):
// a one-to-one item goes to every device of its account in ONE stanza (`Send.payloads` with
// `all_devices`, relay spec §7.1, §7.6; `SealedSend.payloads`, §20.3), and every message this
// device writes goes to this account's other devices too, as a sync transcript (content 0x06).
// A `MISMATCHED_DEVICES` answer (nothing stored) makes the item fetch the missing devices'
// bundles, drop the extra devices' sessions, encrypt for the new set and go again under the same
// client message id, at most ``HushClient/maxMismatchRetries`` times.

extension HushClient {
    /// `MISMATCHED_DEVICES` answers one item may get before it is given up
    /// (``ClientEvent/sendFailed(_:_:)`` with `.mismatchedDevices`): a device list that keeps
    /// changing cannot make the client loop.
    public static let maxMismatchRetries = 3

    /// The prepared fan-out payload of `item`, if it is one (a one-to-one item with devices).
    func fanOut(_ item: OutboxItem) -> FanOutPayload? {
        guard !item.devices.isEmpty, GroupID(conversation: item.account) == nil else { return nil }
        return FanOutPayload(decoding: item.payload)
    }

    /// The devices of `recipient` a fan-out item goes to: every device this device has a session
    /// with, for its own account all but this one (at most 16).
    func fanOutDevices(_ recipient: String) throws -> [UInt32] {
        var devices = try store.sessionDevices(for: recipient)
        if recipient == account { devices.removeAll { $0 == deviceID } }
        return Array(devices.prefix(RelayProtocol.Limits.maxDevicesPerRequest))
    }

    /// This account's other devices this device knows (has a session with).
    public func ownDevices() throws(ClientError) -> [UInt32] { try step { try fanOutDevices(account) } }

    /// Inside a transaction: the copies of `content` for `devices` of `recipient` (each encrypted
    /// in its session and sealed), keeping the copies in `keeping` for devices listed there.
    func fanOutCopies(_ content: [UInt8], to recipient: String, devices: [UInt32], certificate: SenderCertificate,
                      keeping: [FanOutPayload.Copy] = []) throws -> [FanOutPayload.Copy] {
        var copies: [FanOutPayload.Copy] = []
        for d in devices {
            if let kept = keeping.first(where: { $0.device == d }) {
                copies.append(kept)
                continue
            }
            let sealed = try seal(encoded: content, to: ProtocolAddress(name: recipient, deviceID: d), certificate: certificate)
            copies.append(FanOutPayload.Copy(device: d, inner: sealed.inner, envelope: sealed.payload))
        }
        return copies
    }

    /// The outbox rows for a prepared one-to-one message: one fan-out item (`id`) when its
    /// stanza fits the relay's frame, else one plain item per device (ids: `id`, then new ones)
    /// sent without `all_devices` (a long text to many devices; Docs/client.md §Several devices).
    func fanOutRows(id: UInt64, recipient: String, content: [UInt8], copies: [FanOutPayload.Copy], message: MessageID?,
                    createdAt: UInt64) throws -> [OutboxItem] {
        let payload = FanOutPayload(content: content, copies: copies)
        let item = OutboxItem(clientMessageID: id, account: recipient, devices: payload.devices, payload: payload.encoded,
                              message: message, createdAt: createdAt)
        if copies.count == 1 || Self.fanOutFits(item, payload) { return [item] }
        var rows: [OutboxItem] = []
        for (i, c) in copies.enumerated() {
            rows.append(OutboxItem(clientMessageID: i == 0 ? id : try store.takeID(), account: recipient, devices: [c.device],
                                   payload: c.envelope, message: message, createdAt: createdAt, inner: c.inner))
        }
        return rows
    }

    /// Whether the stanza of `payload` fits a frame (with room for the sealed form's access key).
    static func fanOutFits(_ item: OutboxItem, _ payload: FanOutPayload) -> Bool {
        byteCount(fanOutStanza(item, payload)) + 32 <= RelayProtocol.Limits.maxStanza
    }

    /// Inside a transaction: enqueues `content` for every known device of `recipient` (for this
    /// account: its other devices); nothing when there is none. Returns the rows enqueued.
    @discardableResult
    func enqueueFanOut(_ content: [UInt8], to recipient: String, id: UInt64? = nil, message: MessageID?, certificate: SenderCertificate,
                       now: UInt64) throws -> [OutboxItem] {
        let devices = try fanOutDevices(recipient)
        guard !devices.isEmpty else { return [] }
        let copies = try fanOutCopies(content, to: recipient, devices: devices, certificate: certificate)
        let rows = try fanOutRows(id: try id ?? store.takeID(), recipient: recipient, content: content, copies: copies,
                                  message: message, createdAt: now)
        for r in rows { try store.enqueue(r) }
        return rows
    }

    /// The sync transcript of a message this device sent to `destination`, for this account's
    /// other devices (nil content when it is not a message).
    static func transcript(of content: MessageContent, to destination: String) -> MessageContent? {
        switch content {
        case .text, .media: .syncTranscript(destination: destination, message: content)
        default: nil
        }
    }

    /// The `Send` of a prepared fan-out item: a payload per device, `all_devices` set.
    static func fanOutStanza(_ item: OutboxItem, _ payload: FanOutPayload) -> RelayStanza {
        var s = RelayStanza()
        s.send.clientMessageID = item.clientMessageID
        s.send.account = item.account
        s.send.allDevices = true
        s.send.payloads = devicePayloads(payload)
        return s
    }

    static func devicePayloads(_ payload: FanOutPayload) -> [RelayDevicePayload] {
        payload.copies.map { c in
            var p = RelayDevicePayload()
            p.deviceID = c.device
            p.payload = Data(c.envelope)
            return p
        }
    }

    /// Seals every copy of a fan-out item again with a fresh certificate (same session messages,
    /// same id, same place). Nil (and a retry later) when no fresh certificate can be had.
    func resealFanOut(_ item: OutboxItem, _ payload: FanOutPayload) async -> OutboxItem? {
        do {
            let cert = try await ensureCertificate()
            guard cert.expiration > configuration.clock() + configuration.resealMargin else {
                retryPumpLater()
                return nil
            }
            var fresh = payload
            for i in fresh.copies.indices {
                fresh.copies[i].inner.certificateExpiration = cert.expiration
                fresh.copies[i].envelope = try step {
                    try wrap(fresh.copies[i].inner, to: ProtocolAddress(name: item.account, deviceID: fresh.copies[i].device), certificate: cert)
                }
            }
            outboxCache = nil
            let encoded = fresh.encoded
            guard try step({ try store.replaceOutboxPayload(clientMessageID: item.clientMessageID, payload: encoded, inner: nil) }) else {
                return nil
            }
            var updated = item
            updated.payload = encoded
            return updated
        } catch {
            retryPumpLater()
            return nil
        }
    }

    /// A fan-out item refused: `MISMATCHED_DEVICES` repairs the device set and sends again; a
    /// device gone between the relay's check and its enqueue (`UNKNOWN_DEVICE`) is dropped;
    /// the rest as for any one-to-one item. Returns false when the caller's handling applies.
    func handleFanOutError(_ e: RelayError, _ item: OutboxItem) -> Bool {
        switch e.code {
        case .mismatchedDevices:
            repairing.insert(item.clientMessageID)
            Task { await self.repairFanOut(item, missing: e.missing, extra: e.extra) }
            return true
        case .unknownDevice:
            repairing.insert(item.clientMessageID)
            Task { await self.repairFanOut(item, missing: [], extra: [e.deviceID], counts: false) }
            return true
        default:
            return false
        }
    }

    /// Fetches the bundles of the `missing` devices and builds their sessions, deletes the
    /// sessions of the `extra` ones, and re-encrypts the item for the new set: the copies of
    /// devices that stay are kept (their session messages were never stored: a mismatch stores
    /// nothing, relay spec §7.6), new devices get new copies. Same client message id, same place.
    func repairFanOut(_ item: OutboxItem, missing: [UInt32], extra: [UInt32], counts: Bool = true) async {
        let cmid = item.clientMessageID
        defer {
            repairing.remove(cmid)
            pump()
        }
        if counts {
            let attempts = (mismatchRetries[cmid] ?? 0) + 1
            mismatchRetries[cmid] = attempts
            if attempts > Self.maxMismatchRetries {
                mismatchRetries[cmid] = nil
                giveUp(item, .mismatchedDevices)
                return
            }
        }
        for d in extra { _ = try? store.deleteSession(for: ProtocolAddress(name: item.account, deviceID: d)) }
        let wanted = missing.filter { !(item.account == account && $0 == deviceID) }
        if !wanted.isEmpty {
            // A device whose bundle cannot be had now is missing again on the resend (bounded above).
            do {
                try await fetchAndBuild(item.account, devices: wanted)
                // A device of this account this one did not know: it gets the groups too (§6.7).
                if item.account == account { queueGroupsForOwnDevices() }
            } catch {}
        }
        guard let cert = try? await ensureCertificate() else {
            retryPumpLater()
            return
        }
        var gone: MessageID?
        _ = try? step {
            try store.atomically {
                guard let current = try store.outbox().first(where: { $0.clientMessageID == cmid }),
                      let payload = fanOut(current) else { return }
                let devices = try fanOutDevices(item.account)
                let kept = payload.copies.filter { !extra.contains($0.device) }
                let copies = try fanOutCopies(payload.content, to: item.account, devices: devices, certificate: cert, keeping: kept)
                guard !copies.isEmpty else {
                    try store.removeFromOutbox(clientMessageID: cmid)
                    gone = current.message
                    return
                }
                let rows = try fanOutRows(id: cmid, recipient: item.account, content: payload.content, copies: copies,
                                          message: current.message, createdAt: current.createdAt)
                let first = rows[0]
                try store.replaceOutboxPayload(clientMessageID: cmid, payload: first.payload, inner: first.inner, devices: first.devices)
                for r in rows.dropFirst() { try store.enqueue(r) }
            }
        }
        outboxCache = nil
        if let gone {
            mismatchRetries[cmid] = nil
            emit(.sendFailed(gone, .mismatchedDevices))
        }
    }

    /// At login: brings this device's list of its account's other devices up to date
    /// (Docs/client.md §Several devices, "Learning one's devices"); failures wait for the next.
    func syncOwnDevicesAtLogin() async {
        _ = try? await refreshOwnDevices()
    }

    /// Asks the relay for this account's devices (`ListDevices`, relay spec §22.1: nothing is
    /// consumed), builds a session with each other device this device has none with
    /// (`FetchPrekeys` listing just those), and forgets the sessions of own devices the relay no
    /// longer lists. Returns the other devices now known. Runs at every login; call it after
    /// linking a device.
    @discardableResult
    public func refreshOwnDevices() async throws(ClientError) -> [UInt32] {
        // What waits aside for this check (OwnSync.swift): handed on, or dropped, after it.
        let checked = try step { try store.ids(OwnSyncKey.aside) }
        let reply = try await request { rid in
            var s = RelayStanza()
            s.listDevices.requestID = rid
            return s
        }
        guard case .deviceList(let list)? = reply.body else { throw .relay(.unexpectedStanza) }
        let listed = list.devices.map(\.deviceID).filter { $0 != deviceID }
        let known = try step { try store.sessionDevices(for: account).filter { $0 != deviceID } }
        try step {
            for d in known where !listed.contains(d) { try store.deleteSession(for: ProtocolAddress(name: account, deviceID: d)) }
        }
        let new = listed.filter { !known.contains($0) }
        var learned = false
        if !new.isEmpty {
            // A device without usable prekeys yet is tried again at the next refresh.
            do {
                try await fetchAndBuild(account, devices: Array(new.prefix(RelayProtocol.Limits.maxDevicesPerRequest)))
                learned = true
            } catch .offline {
                throw .offline
            } catch .timeout {
                throw .timeout
            } catch {}
        }
        let now = try ownDevices()
        releaseAside(checked: checked)
        // A device this one did not know gets this device's groups (Docs/spec/client.md §6.7).
        if learned { queueGroupsForOwnDevices() }
        // A linked device greets the others once, so that they send it the account's groups.
        if !now.isEmpty, try step({ try store.flag(OwnSyncKey.helloDue) }) { greetOwnDevices() }
        return now
    }

    /// Inside a receive transaction: a sync transcript from this account's other device
    /// `address` — stored as an outgoing message of `destination` (the same ``MessageID`` as on
    /// the sending device), tick ✓ (the relay accepted it: this copy came through it).
    func applyTranscript(_ destination: String, _ message: MessageContent, from address: ProtocolAddress, serverTime: UInt64,
                         effects: inout [ClientEvent]) throws {
        guard address.name == account, address.deviceID != deviceID, DeviceBinding.isValidAccountName(destination) else { return }
        let stored: StoredMessage
        switch message {
        case .text(let id, let sentAt, let body):
            stored = StoredMessage(id: MessageID(account: account, device: address.deviceID, clientMessageID: id), conversation: destination,
                                   direction: .outgoing, body: body, sentAt: sentAt, serverTime: serverTime, state: .sent)
        case .media(let id, let sentAt, let pointer):
            let mid = MessageID(account: account, device: address.deviceID, clientMessageID: id)
            try store.setSetting(SettingKey.mediaPointer(mid), pointer.encoded)
            stored = StoredMessage(id: mid, conversation: destination, direction: .outgoing, body: pointer.summary, sentAt: sentAt,
                                   serverTime: serverTime, state: .sent)
        default:
            return
        }
        if let inserted = try store.insertMessage(stored) { effects.append(.message(inserted)) }
    }
}
