import Foundation
import Hush
import HushTransport

/// Groups (`Docs/client.md` §Groups, `Docs/spec/client.md` §6): admins change a group's state
/// and send it to every member through the pairwise sessions; every member device has its own
/// sender key per group, distributed pairwise to the other members' devices before its first
/// group message and rotated whenever a member is removed or leaves; a group message is
/// encrypted once with it and fanned out as one multi-recipient envelope per relay `MultiSend`
/// (relay spec §21). Delivery and read receipts travel pairwise back to the sending device, which
/// keeps a tick per member.
extension HushClient {
    // MARK: public API

    /// Creates a group named `name` with `members` (this account is added, as its only admin),
    /// and sends its state to the other members. Returns the state.
    @discardableResult
    public func createGroup(name: String, members: [String]) throws(ClientError) -> GroupState {
        guard members.allSatisfy(DeviceBinding.isValidAccountName) else { throw .invalidArgument("account name") }
        let id: GroupID
        do { id = try GroupID.random(using: configuration.random) } catch { throw .crypto("\(error)") }
        guard let state = GroupState(id: id, revision: 1, name: name, members: members + [account], admins: [account]) else {
            throw .invalidArgument("group (name ≤ \(GroupState.maxNameBytes) bytes, ≤ \(GroupState.maxMembers) members)")
        }
        try publish(state, previous: nil)
        return state
    }

    /// Adds `accounts` to the group (admins only) and sends the new state to every member.
    @discardableResult
    public func addMembers(_ accounts: [String], to group: GroupID) throws(ClientError) -> GroupState {
        guard accounts.allSatisfy(DeviceBinding.isValidAccountName) else { throw .invalidArgument("account name") }
        let current = try adminState(group)
        guard let next = GroupState(id: group, revision: current.revision &+ 1, name: current.name,
                                    members: current.members + accounts, admins: current.admins) else {
            throw .invalidArgument("group (≤ \(GroupState.maxMembers) members)")
        }
        try publish(next, previous: current)
        return next
    }

    /// Removes `accounts` from the group (admins only): they get the new state (which tells
    /// them), the others too; this device's sender key is rotated at once, so that nothing it
    /// sends from now on can be read by a removed member.
    @discardableResult
    public func removeMembers(_ accounts: [String], from group: GroupID) throws(ClientError) -> GroupState {
        let current = try adminState(group)
        guard !accounts.contains(account) else { throw .invalidArgument("use leaveGroup to leave") }
        guard let next = GroupState(id: group, revision: current.revision &+ 1, name: current.name,
                                    members: current.members.filter { !accounts.contains($0) }, admins: current.admins) else {
            throw .invalidArgument("group")
        }
        try publish(next, previous: current)
        return next
    }

    /// Makes members admins (admins only).
    @discardableResult
    public func makeAdmins(_ accounts: [String], in group: GroupID) throws(ClientError) -> GroupState {
        let current = try adminState(group)
        guard accounts.allSatisfy(current.isMember) else { throw .invalidArgument("not a member") }
        guard let next = GroupState(id: group, revision: current.revision &+ 1, name: current.name,
                                    members: current.members, admins: current.admins + accounts) else { throw .invalidArgument("group") }
        try publish(next, previous: current)
        return next
    }

    /// Leaves the group: the other members are told (§6.4) and this device no longer sends or
    /// accepts its messages. The history stays.
    public func leaveGroup(_ group: GroupID) throws(ClientError) {
        guard let current = try loadGroup(group) else { throw .unknownGroup(group) }
        guard current.isMember(account) else { throw .notGroupMember(group) }
        let now = configuration.clock()
        let left = current.without(account)
        let cert = usableCertificate(), online = drained && link != nil
        var checkOwn = false
        try step {
            try store.atomically {
                // This account's other devices leave with it (Docs/spec/client.md §6.7), first.
                checkOwn = try queueForOwnDevices(.groupLeave(group), certificate: cert, online: online, now: now)
                for m in current.members where m != account {
                    try store.enqueue(OutboxItem(clientMessageID: try store.takeID(), account: m, devices: [],
                                                 payload: MessageContent.groupLeave(group).encoded, message: nil, createdAt: now))
                }
                // Kept as a state without this account: the conversation stays readable, sending is refused.
                if let left { try saveGroup(left) }
                try store.setStrings(SettingKey.groupKeyShared(group), [])
            }
        }
        outboxCache = nil
        if let left { emit(.groupChanged(left)) }
        pump()
        if checkOwn { checkOwnDevicesSoon() }
    }

    /// The group's state as this device holds it.
    public func group(_ id: GroupID) throws(ClientError) -> GroupState? { try loadGroup(id) }

    /// Every group this device knows.
    public func groups() throws(ClientError) -> [GroupState] {
        try step { try store.strings(SettingKey.groupIndex) }.compactMap { hex in
            GroupID(conversation: "#" + hex).flatMap { try? loadGroup($0) }
        }
    }

    /// Sends `text` to the group: stored (tick `.pending`) and queued at once; encrypted with
    /// this device's sender key and fanned out when connected (one `MultiSend` per 256 devices).
    @discardableResult
    public func sendGroup(_ text: String, to group: GroupID) throws(ClientError) -> MessageID {
        guard !text.isEmpty, text.utf8.count <= MessageContent.maxTextBytes else { throw .invalidArgument("text length") }
        guard let state = try loadGroup(group) else { throw .unknownGroup(group) }
        guard state.isMember(account) else { throw .notGroupMember(group) }
        let now = configuration.clock()
        let id: MessageID = try step {
            try store.atomically {
                let counter = try store.takeID()
                let mid = MessageID(account: account, device: deviceID, clientMessageID: counter)
                // Deferred (devices empty, payload the content): prepared by the pump (prepareGroup).
                try store.enqueue(OutboxItem(clientMessageID: counter, account: group.conversation, devices: [],
                                             payload: MessageContent.text(id: counter, sentAt: now, body: text).encoded,
                                             message: mid, createdAt: now))
                _ = try store.insertMessage(StoredMessage(id: mid, conversation: group.conversation, direction: .outgoing,
                                                          body: text, sentAt: now, state: .pending))
                return mid
            }
        }
        outboxCache = nil
        pump()
        return id
    }

    /// Each member's tick for an outgoing group message (the members it was sent to).
    public func memberTicks(_ message: MessageID) throws(ClientError) -> [String: TickState] {
        var out: [String: TickState] = [:]
        for (account, state) in try step({ try Self.memberTicks(message, store: store) }) { out[account] = state }
        return out
    }

    // MARK: state

    func loadGroup(_ id: GroupID) throws(ClientError) -> GroupState? {
        try step {
            guard let bytes = try store.setting(SettingKey.groupState(id)) else { return nil }
            return try GroupState(decoding: bytes)
        }
    }

    /// Stores `state` (in the caller's atomic step) and indexes its group.
    func saveGroup(_ state: GroupState) throws {
        try store.setSetting(SettingKey.groupState(state.id), state.encoded)
        var index = try store.strings(SettingKey.groupIndex)
        if !index.contains(state.id.hex) {
            index.append(state.id.hex)
            try store.setStrings(SettingKey.groupIndex, index)
        }
    }

    private func adminState(_ group: GroupID) throws(ClientError) -> GroupState {
        guard let current = try loadGroup(group) else { throw .unknownGroup(group) }
        guard current.isMember(account) else { throw .notGroupMember(group) }
        guard current.isAdmin(account) else { throw .notGroupAdmin(group) }
        return current
    }

    /// Saves an admin change made here and queues it, pairwise, for every member of the old and
    /// the new state; a removal rotates this device's sender key (§6.5).
    private func publish(_ state: GroupState, previous: GroupState?) throws(ClientError) {
        let now = configuration.clock()
        let content = MessageContent.groupState(state).encoded
        let random = configuration.random
        let me = ProtocolAddress(name: account, deviceID: deviceID)
        let cert = usableCertificate(), online = drained && link != nil
        var checkOwn = false
        try step {
            try store.atomically {
                try saveGroup(state)
                let everyone = Set(state.members).union(previous?.members ?? [])
                for m in everyone.sorted() where m != account {
                    try store.enqueue(OutboxItem(clientMessageID: try store.takeID(), account: m, devices: [], payload: content,
                                                 message: nil, createdAt: now))
                }
                // This account's other devices hold the group too (Docs/client.md §Several devices).
                checkOwn = try queueForOwnDevices(.groupState(state), certificate: cert, online: online, now: now)
                if let previous, previous.members.contains(where: { !state.isMember($0) }) {
                    try Self.rotateSenderKey(state.id, me: me, store: store, random: random)
                }
            }
        }
        outboxCache = nil
        emit(.groupChanged(state))
        pump()
        if checkOwn { checkOwnDevicesSoon() }
    }

    /// A new sender key for `group` (rotation, §6.5): nobody holds it yet.
    static func rotateSenderKey(_ group: GroupID, me: ProtocolAddress, store: any ClientStore, random: some RandomSource) throws {
        _ = try GroupSessionBuilder.rotateSenderKey(for: SenderKeyName(groupID: group.hex, sender: me), store: store, random: random)
        try store.setStrings(SettingKey.groupKeyShared(group), [])
    }

    /// `device` no longer holds this device's sender keys (a restored device announced itself
    /// with a session reset, §6.5): the next group message to it distributes them again.
    func forgetSenderKeyHolder(_ device: ProtocolAddress) throws {
        let entry = "\(device.deviceID) \(device.name)"
        for hex in try store.strings(SettingKey.groupIndex) {
            guard let id = GroupID(conversation: "#" + hex) else { continue }
            let shared = try store.strings(SettingKey.groupKeyShared(id))
            if shared.contains(entry) { try store.setStrings(SettingKey.groupKeyShared(id), shared.filter { $0 != entry }) }
        }
    }

    static func memberTicks(_ message: MessageID, store: any ClientStore) throws -> [(String, TickState)] {
        try store.strings(SettingKey.groupTicks(message)).compactMap { line in
            guard let space = line.firstIndex(of: " "), let raw = Int(line[..<space]), let state = TickState(rawValue: raw) else { return nil }
            return (String(line[line.index(after: space)...]), state)
        }
    }

    // MARK: receiving (inside handleDeliver's atomic step)

    /// Applies group content from `sender` (authenticated by the pairwise session), §6.3–§6.5.
    /// Anything that breaks a rule is ignored (the message is still processed).
    func applyGroupContent(_ content: MessageContent, from sender: ProtocolAddress, effects: inout [ClientEvent]) throws {
        let me = ProtocolAddress(name: account, deviceID: deviceID)
        switch content {
        case .groupState(let incoming):
            let current = try store.setting(SettingKey.groupState(incoming.id)).flatMap { try? GroupState(decoding: $0) }
            // §6.3: only from an admin of the state held here (or, for an invitation, of the new
            // one, which must name us), and only forward; from another device of this account
            // (the user itself), any state that goes forward (§6.7).
            let accepted = sender.name == account
                ? GroupState.acceptingFromOwnDevice(incoming, held: current, receiver: account)
                : GroupState.accepting(incoming, from: sender.name, held: current, receiver: account)
            guard let next = accepted else { return }
            try saveGroup(next)
            // Someone was removed: our next group message must be unreadable to them.
            if let current, current.members.contains(where: { !next.isMember($0) }), next.isMember(account) {
                try Self.rotateSenderKey(next.id, me: me, store: store, random: configuration.random)
            }
            effects.append(.groupChanged(next))
        case .groupLeave(let id):
            guard let current = try store.setting(SettingKey.groupState(id)).flatMap({ try? GroupState(decoding: $0) }) else { return }
            if sender.name == account {
                // Another device of this account left: so does this one (§6.7). It keeps the
                // history, sends nothing more and drops the group's messages.
                guard sender.deviceID != deviceID, current.isMember(account) else { return }
                if let left = current.without(account) {
                    try saveGroup(left)
                    effects.append(.groupChanged(left))
                }
                try store.setStrings(SettingKey.groupKeyShared(id), [])
                return
            }
            guard let next = GroupState.leaving(sender.name, held: current, receiver: account) else { return }
            try saveGroup(next)
            if next.isMember(account) { try Self.rotateSenderKey(id, me: me, store: store, random: configuration.random) }
            effects.append(.groupChanged(next))
        case .senderKey(let id, let bytes):
            // Stored even for a group not (yet) known here: the key may overtake the invitation
            // (it comes from another member's queue). Group messages are only accepted from
            // members of the state held (handleGroupDeliver).
            // Another device of this account holds its own sender key (group transcripts).
            guard sender != me, let message = try? SenderKeyDistributionMessage(serialized: bytes) else { return }
            try GroupSessionBuilder.process(message, from: SenderKeyName(groupID: id.hex, sender: sender), store: store)
        default:
            return
        }
    }

    /// A receipt for messages of this device from `sender`: in a 1:1 conversation with it, the
    /// message's tick; in a group, that member's tick, and the group's when every member got
    /// there (§6.6).
    func applyReceipt(_ ids: [UInt64], _ state: TickState, from sender: ProtocolAddress, effects: inout [ClientEvent]) throws {
        for id in ids {
            let mid = MessageID(account: account, device: deviceID, clientMessageID: id)
            guard let mine = try store.message(mid), mine.direction == .outgoing else { continue }
            if mine.conversation == sender.name {
                if try store.advance(mid, to: state, serverTime: nil) { effects.append(.tick(mid, state)) }
                continue
            }
            guard GroupID(conversation: mine.conversation) != nil else { continue }
            var ticks = try Self.memberTicks(mid, store: store)
            guard let i = ticks.firstIndex(where: { $0.0 == sender.name }), ticks[i].1 < state else { continue }
            ticks[i].1 = state
            try store.setStrings(SettingKey.groupTicks(mid), ticks.map { "\($0.1.rawValue) \($0.0)" })
            effects.append(.memberTick(mid, account: sender.name, state))
            let least = ticks.map(\.1).min() ?? state
            if least >= .delivered, try store.advance(mid, to: least, serverTime: nil) { effects.append(.tick(mid, least)) }
        }
    }

    /// A delivered multi-recipient envelope (`0xE3`, a group message): opened, checked against
    /// the group state (the sender must be a member), decrypted with the sender's sender key and
    /// stored in the group's conversation; a delivery receipt is owed to the sending device.
    /// Returns whether it was processed (false: a transient store failure, not acked).
    func handleGroupDeliver(_ d: RelayDeliver) -> Bool {
        let sid = d.serverID
        let now = configuration.clock()
        var effects: [ClientEvent] = []
        var owed = false
        do {
            let opened = try MultiRecipientEnvelope.open(Array(d.payload), recipientIdentity: identity, validator: validator,
                                                         now: d.serverTime)
            let sender = opened.sender
            guard sender.senderID == d.senderAccount, sender.deviceID == d.senderDevice, opened.contentType == .groupMessage,
                  opened.message.count > GroupID.byteCount, let group = GroupID(bytes: opened.message.prefix(GroupID.byteCount)) else {
                throw DropReason.mismatch
            }
            let address = ProtocolAddress(name: sender.senderID, deviceID: sender.deviceID)
            let message = try SenderKeyMessage(serialized: Array(opened.message.dropFirst(GroupID.byteCount)))
            try store.atomically {
                guard let state = try loadGroup(group), state.isMember(address.name), state.isMember(account) else {
                    throw DropReason.mismatch
                }
                let plain = try GroupCipher.decrypt(message, from: SenderKeyName(groupID: group.hex, sender: address), store: store)
                if let content = try? MessageContent(decoding: plain) {
                    var stored: StoredMessage?
                    // From another device of this account: its own message, a transcript (✓, no receipt).
                    let mine = address.name == account
                    let direction: MessageDirection = mine ? .outgoing : .incoming
                    var tick: TickState = mine ? .sent : .delivered
                    // Read on another device of this account before it arrived here (OwnSync.swift).
                    if !mine, let id = content.messageID,
                       try readElsewhere(MessageID(account: address.name, device: address.deviceID, clientMessageID: id), in: group.conversation) {
                        tick = .read
                    }
                    switch content {
                    case .text(let id, let sentAt, let body):
                        stored = StoredMessage(id: MessageID(account: address.name, device: address.deviceID, clientMessageID: id),
                                               conversation: group.conversation, direction: direction, body: body, sentAt: sentAt,
                                               serverTime: d.serverTime, state: tick)
                    case .media(let id, let sentAt, let pointer):
                        let mid = MessageID(account: address.name, device: address.deviceID, clientMessageID: id)
                        try store.setSetting(SettingKey.mediaPointer(mid), pointer.encoded)
                        stored = StoredMessage(id: mid, conversation: group.conversation, direction: direction, body: pointer.summary,
                                               sentAt: sentAt, serverTime: d.serverTime, state: tick)
                    default:
                        break  // only messages travel as group messages
                    }
                    if let stored {
                        if let inserted = try store.insertMessage(stored) { effects.append(.message(inserted)) }
                        if !mine {
                            try Self.owe(stored.id.clientMessageID, to: address, store: store)
                            owed = true
                        }
                    }
                }
                try store.markProcessed(serverID: sid, at: now)
            }
        } catch {
            if Self.isTransient(error) { return false }
            _ = try? store.markProcessed(serverID: sid, at: now)
        }
        for e in effects { emit(e) }
        ack(sid)
        if owed { scheduleReceiptFlush() }
        return true
    }

    // MARK: sending (the pump)

    /// The accounts an outbox item goes to: its account, or for a group item the group's
    /// conversation and every recipient account (its own list once prepared, the members before).
    func outboxAccounts(_ item: OutboxItem) -> [String] {
        guard let group = GroupID(conversation: item.account) else { return [item.account] }
        if !item.devices.isEmpty, let prepared = GroupSendPayload(decoding: item.payload) {
            return [item.account] + prepared.recipients.map(\.account)
        }
        let members = ((try? loadGroup(group)) ?? nil)?.members ?? []
        return [item.account] + members.filter { $0 != account }
    }

    /// Prepares a deferred group item (§6.6): sessions with members that lack one, then in one
    /// atomic step: this device's sender key for every recipient device that does not hold it
    /// (pairwise items, ahead of the group message in the outbox), one encryption with the sender
    /// key, and one multi-recipient envelope per chunk of at most 256 devices replacing the item.
    /// Returns true when the outbox changed.
    func prepareGroup(_ item: OutboxItem) async -> Bool {
        guard let group = GroupID(conversation: item.account), let state = (try? loadGroup(group)) ?? nil, state.isMember(account) else {
            giveUp(item, .unknownAccount)
            return true
        }
        let others = state.members.filter { $0 != account }
        for m in others where ((try? store.sessionDevices(for: m)) ?? []).isEmpty {
            // A member without devices, or unreachable now, is left out of this message.
            try? await establishSessions(with: m)
        }
        // A device that knows no other device of its account asks first: the message is its own
        // transcript, so a sibling must be a recipient now (OwnSync.swift; later ones are
        // found through all_devices).
        if ((try? fanOutDevices(account)) ?? []).isEmpty { _ = try? await refreshOwnDevices() }
        let cert: SenderCertificate
        do { cert = try await ensureCertificate() } catch {
            retryPumpLater()
            return false
        }
        let now = configuration.clock(), random = configuration.random
        let me = ProtocolAddress(name: account, deviceID: deviceID)
        let name = SenderKeyName(groupID: group.hex, sender: me)
        do {
            try step {
                try store.atomically {
                    guard let content = try? MessageContent(decoding: item.payload) else {
                        try store.removeFromOutbox(clientMessageID: item.clientMessageID)
                        return
                    }
                    var recipients: [(account: String, devices: [UInt32])] = []
                    for m in others where try store.setting(SettingKey.pendingIdentity(m)) == nil {
                        let devices = try store.sessionDevices(for: m)
                        if !devices.isEmpty { recipients.append((m, Array(devices.prefix(RelayProtocol.Limits.maxDevicesPerRequest)))) }
                    }
                    // The members' ticks; this account's other devices get the message too (a
                    // transcript: the same copy, with `all_devices`, Docs/client.md §Several devices).
                    let members = recipients
                    let own = try fanOutDevices(account)
                    if !own.isEmpty { recipients.append((account, own)) }
                    // The sender key first (created on first use), to each device without it.
                    let distribution = try GroupSessionBuilder.distributionMessage(for: name, store: store, random: random)
                    var shared = Set(try store.strings(SettingKey.groupKeyShared(group)))
                    // The distribution message holds the chain key: its plain copies are wiped.
                    var keyBytes = distribution.serialized.withUnsafeBytes { Array($0) }
                    var keyContent = MessageContent.senderKey(group: group, distribution: keyBytes).encoded
                    defer {
                        SecureBytes.wipe(&keyBytes)
                        SecureBytes.wipe(&keyContent)
                    }
                    for r in recipients {
                        for d in r.devices where !shared.contains("\(d) \(r.account)") {
                            let sealed = try seal(encoded: keyContent, to: ProtocolAddress(name: r.account, deviceID: d), certificate: cert)
                            try store.enqueue(OutboxItem(clientMessageID: try store.takeID(), account: r.account, devices: [d],
                                                         payload: sealed.payload, message: nil, createdAt: now, inner: sealed.inner))
                            shared.insert("\(d) \(r.account)")
                        }
                    }
                    try store.setStrings(SettingKey.groupKeyShared(group), shared.sorted())
                    try store.removeFromOutbox(clientMessageID: item.clientMessageID)
                    if let m = item.message {
                        try store.setStrings(SettingKey.groupTicks(m), members.map { "\(TickState.sent.rawValue) \($0.account)" })
                    }
                    guard !recipients.isEmpty else {
                        // Nobody else to send to (alone in the group): done.
                        if let m = item.message { _ = try store.advance(m, to: .sent, serverTime: now) }
                        return
                    }
                    let message = try GroupCipher.encrypt(content.encoded, for: name, store: store, random: random)
                    let inner = SessionCiphertext(contentType: .groupMessage, message: group.bytes + message.serialized,
                                                  certificateExpiration: cert.expiration)
                    for (i, payload) in try sealChunks(recipients, inner: inner, certificate: cert).enumerated() {
                        try store.enqueue(OutboxItem(clientMessageID: i == 0 ? item.clientMessageID : try store.takeID(),
                                                     account: item.account, devices: payload.devices, payload: payload.encoded,
                                                     message: item.message, createdAt: item.createdAt, inner: inner))
                    }
                }
            }
        } catch {
            outboxCache = nil
            retryPumpLater()
            return false
        }
        outboxCache = nil
        return true
    }

    /// Recipients cut into `MultiSend`s of at most 256 devices (relay spec §21).
    static func chunks(_ recipients: [(account: String, devices: [UInt32])]) -> [[(account: String, devices: [UInt32])]] {
        guard !recipients.isEmpty else { return [] }
        var out: [[(account: String, devices: [UInt32])]] = [[]]
        var count = 0
        for r in recipients {
            if count + r.devices.count > RelayProtocol.Limits.maxMultiSendDevices || out[out.count - 1].count == RelayProtocol.Limits.maxMultiSendAccounts {
                out.append([])
                count = 0
            }
            out[out.count - 1].append(r)
            count += r.devices.count
        }
        return out
    }

    /// The envelopes of `inner` for `recipients`, each within one `MultiSend` of at most 256
    /// devices whose stanza fits the relay's limit (a long message fits fewer headers): a chunk
    /// that does not fit is cut in two (by devices) until it does, or holds one device.
    func sealChunks(_ recipients: [(account: String, devices: [UInt32])], inner: SessionCiphertext,
                    certificate: SenderCertificate) throws -> [GroupSendPayload] {
        var todo = Self.chunks(recipients).reversed().map { $0 }
        var out: [GroupSendPayload] = []
        while let chunk = todo.popLast() {
            let payload = try groupPayload(chunk, inner: inner, certificate: certificate)
            let flat = chunk.flatMap { r in r.devices.map { (r.account, $0) } }
            var probe = OutboxItem(clientMessageID: UInt64.max, account: "", devices: [], payload: payload.encoded, message: nil, createdAt: 0)
            probe.devices = payload.devices
            if Self.byteCount(multiSendStanza(probe)) <= RelayProtocol.Limits.maxStanza || flat.count == 1 {
                out.append(payload)
                continue
            }
            let half = flat.count / 2
            todo.append(Self.regroup(flat[half...]))
            todo.append(Self.regroup(flat[..<half]))
        }
        return out
    }

    static func byteCount(_ stanza: RelayStanza?) -> Int {
        guard let stanza, let bytes: [UInt8] = try? stanza.serializedBytes() else { return Int.max }
        return bytes.count
    }

    /// (account, device) pairs, in order, as recipients (consecutive devices of one account together).
    static func regroup(_ flat: ArraySlice<(String, UInt32)>) -> [(account: String, devices: [UInt32])] {
        var out: [(account: String, devices: [UInt32])] = []
        for (account, device) in flat {
            if out.last?.account == account { out[out.count - 1].devices.append(device) } else { out.append((account, [device])) }
        }
        return out
    }

    /// The multi-recipient envelope of `inner` for `recipients` (header order: account by
    /// account, device by device) with the recipients list, as the outbox keeps it.
    func groupPayload(_ recipients: [(account: String, devices: [UInt32])], inner: SessionCiphertext,
                      certificate: SenderCertificate) throws -> GroupSendPayload {
        var keys: [IdentityKey] = []
        for r in recipients {
            for d in r.devices {
                guard let key = try store.identity(for: ProtocolAddress(name: r.account, deviceID: d)) else {
                    throw SignalProtocolError.noSession(ProtocolAddress(name: r.account, deviceID: d))
                }
                keys.append(key)
            }
        }
        let envelope = try MultiRecipientEnvelope.seal(inner.message, contentType: .groupMessage, certificate: certificate,
                                                       senderIdentity: identity, to: keys, random: configuration.random,
                                                       staticAgreements: staticAgreements)
        return GroupSendPayload(recipients: recipients, envelope: envelope.serialized)
    }

    /// The `MultiSend` of a prepared group item.
    func multiSendStanza(_ item: OutboxItem) -> RelayStanza? {
        guard let prepared = GroupSendPayload(decoding: item.payload) else { return nil }
        var s = RelayStanza()
        s.multiSend.clientMessageID = item.clientMessageID
        s.multiSend.recipients = prepared.recipients.map { r in
            var m = RelayMultiRecipient()
            m.account = r.account
            m.devices = r.devices
            // Every device of each account (relay spec §7.6; of this account all but this one):
            // a device the relay knows and this one does not is reported and added (repairGroup),
            // unless that failed for this account too often (groupLoose).
            m.allDevices = !(groupLoose[item.clientMessageID]?.contains(r.account) ?? false)
            return m
        }
        s.multiSend.envelope = Data(prepared.envelope)
        return s
    }

    /// Seals a prepared group item again for `recipients` (a fresh certificate, or a recipient
    /// device or account the relay no longer knows), keeping its sender-key message and id: the
    /// relay stores each device's copy once per id (relay spec §21.3), so copies already stored
    /// are not repeated. Returns the updated item, nil if it is gone (or given up: nobody left).
    func resealGroup(_ item: OutboxItem, keeping keep: (String, UInt32) -> Bool, certificate: SenderCertificate? = nil) -> OutboxItem? {
        guard let inner = item.inner, let prepared = GroupSendPayload(decoding: item.payload) else { return nil }
        let cert = certificate ?? usableCertificate()
        guard let cert else { return nil }
        var fresh = inner
        fresh.certificateExpiration = cert.expiration
        let recipients = prepared.recipients.compactMap { r -> (account: String, devices: [UInt32])? in
            let devices = r.devices.filter { keep(r.account, $0) }
            return devices.isEmpty ? nil : (r.account, devices)
        }
        outboxCache = nil
        do {
            guard !recipients.isEmpty else {
                try step { try store.removeFromOutbox(clientMessageID: item.clientMessageID) }
                return nil
            }
            let payload = try step { try groupPayload(recipients, inner: fresh, certificate: cert) }
            guard try step({ try store.replaceOutboxPayload(clientMessageID: item.clientMessageID, payload: payload.encoded, inner: fresh,
                                                           devices: payload.devices) }) else { return nil }
            var updated = item
            updated.payload = payload.encoded
            updated.devices = payload.devices
            updated.inner = fresh
            return updated
        } catch {
            return nil
        }
    }

    /// A `MultiSend` answered `MISMATCHED_DEVICES` for `recipient` (nothing stored, relay spec
    /// §21.2 step 4): the sessions of the `extra` devices are deleted, the `missing` ones' bundles
    /// fetched and their sessions built; then, in one atomic step, each device of `recipient`
    /// the item did not list gets the group's state (when this account is an admin, or it is
    /// this account's: a device linked later holds no state yet, §6.7) and this device's sender
    /// key, pairwise; the message is encrypted again with that key (the key goes out at its
    /// current iteration, after the first encryption's, which was stored nowhere) and sealed for
    /// the new device set under the same client message id, moved behind those items (so the key
    /// arrives first, §6.5). After
    /// ``maxMismatchRetries`` answers for one account the item goes to that account's known
    /// devices without `all_devices`.
    func repairGroup(_ item: OutboxItem, account recipient: String, missing: [UInt32], extra: [UInt32]) async {
        let cmid = item.clientMessageID
        defer {
            repairing.remove(cmid)
            pump()
        }
        var counts = groupMismatches[cmid] ?? [:]
        counts[recipient, default: 0] += 1
        groupMismatches[cmid] = counts
        if counts[recipient]! > Self.maxMismatchRetries {
            groupLoose[cmid, default: []].insert(recipient)
            return
        }
        for d in extra { _ = try? store.deleteSession(for: ProtocolAddress(name: recipient, deviceID: d)) }
        let wanted = missing.filter { !(recipient == account && $0 == deviceID) }
        var learnedOwn = false
        if !wanted.isEmpty {
            // A device whose bundle cannot be had now is missing again on the resend (bounded above).
            do {
                try await fetchAndBuild(recipient, devices: wanted)
                learnedOwn = recipient == account
            } catch {}
        }
        guard let cert = try? await ensureCertificate() else {
            retryPumpLater()
            return
        }
        let now = configuration.clock(), random = configuration.random
        let name = SenderKeyName(groupID: GroupID(conversation: item.account)?.hex ?? "", sender: ProtocolAddress(name: account, deviceID: deviceID))
        _ = try? step {
            try store.atomically {
                guard let current = try store.outbox().first(where: { $0.clientMessageID == cmid }), let inner = current.inner,
                      let prepared = GroupSendPayload(decoding: current.payload), let group = GroupID(conversation: current.account),
                      let state = try loadGroup(group) else { return }
                var devices = try fanOutDevices(recipient)
                let listed = prepared.recipients.first { $0.account == recipient }?.devices ?? []
                var added = devices.filter { !listed.contains($0) }
                // The new devices get the sender key at its current iteration, after this message's:
                // the message is encrypted again (its first encryption was stored nowhere, a
                // mismatch stores nothing), from the stored message it was made of.
                let content = try current.message.flatMap { try groupContent(of: $0) }
                if !added.isEmpty, content == nil {
                    devices.removeAll { added.contains($0) }
                    added = []
                }
                var fresh = inner
                fresh.certificateExpiration = cert.expiration
                if !added.isEmpty, let content {
                    if state.isAdmin(account) || recipient == account {
                        let stateContent = MessageContent.groupState(state).encoded
                        for d in added {
                            let sealed = try seal(encoded: stateContent, to: ProtocolAddress(name: recipient, deviceID: d), certificate: cert)
                            try store.enqueue(OutboxItem(clientMessageID: try store.takeID(), account: recipient, devices: [d],
                                                         payload: sealed.payload, message: nil, createdAt: now, inner: sealed.inner))
                        }
                    }
                    let distribution = try GroupSessionBuilder.distributionMessage(for: name, store: store, random: random)
                    var keyBytes = distribution.serialized.withUnsafeBytes { Array($0) }
                    var keyContent = MessageContent.senderKey(group: group, distribution: keyBytes).encoded
                    defer {
                        SecureBytes.wipe(&keyBytes)
                        SecureBytes.wipe(&keyContent)
                    }
                    var shared = Set(try store.strings(SettingKey.groupKeyShared(group)))
                    for d in added where !shared.contains("\(d) \(recipient)") {
                        let sealed = try seal(encoded: keyContent, to: ProtocolAddress(name: recipient, deviceID: d), certificate: cert)
                        try store.enqueue(OutboxItem(clientMessageID: try store.takeID(), account: recipient, devices: [d],
                                                     payload: sealed.payload, message: nil, createdAt: now, inner: sealed.inner))
                        shared.insert("\(d) \(recipient)")
                    }
                    try store.setStrings(SettingKey.groupKeyShared(group), shared.sorted())
                    let message = try GroupCipher.encrypt(content.encoded, for: name, store: store, random: random)
                    fresh.message = group.bytes + message.serialized
                }
                var recipients: [(account: String, devices: [UInt32])] = []
                for r in prepared.recipients {
                    if r.account == recipient {
                        if !devices.isEmpty { recipients.append((r.account, devices)) }
                    } else {
                        recipients.append(r)
                    }
                }
                try store.removeFromOutbox(clientMessageID: cmid)
                guard !recipients.isEmpty else { return }
                for (i, payload) in try sealChunks(recipients, inner: fresh, certificate: cert).enumerated() {
                    try store.enqueue(OutboxItem(clientMessageID: i == 0 ? cmid : try store.takeID(), account: current.account,
                                                 devices: payload.devices, payload: payload.encoded, message: current.message,
                                                 createdAt: current.createdAt, inner: fresh))
                }
            }
        }
        outboxCache = nil
        if learnedOwn { queueGroupsForOwnDevices() }
    }

    /// The content of this device's group message `id` as it was encrypted (``sendGroup(_:to:)``
    /// writes a text: the stored message's body and time), nil when the message is gone.
    func groupContent(of id: MessageID) throws -> MessageContent? {
        guard let m = try store.message(id), m.direction == .outgoing else { return nil }
        return .text(id: id.clientMessageID, sentAt: m.sentAt, body: m.body)
    }

    /// A device of this account this one did not know was found: every group this device is a
    /// member of goes to this account's other devices (content 0x10, §6.7), so a device linked
    /// later learns them (the others ignore what they hold already).
    func queueGroupsForOwnDevices() {
        let cert = usableCertificate(), online = drained && link != nil, now = configuration.clock()
        var checkOwn = false
        _ = try? step {
            try store.atomically {
                for hex in try store.strings(SettingKey.groupIndex) {
                    guard let id = GroupID(conversation: "#" + hex), let state = try loadGroup(id), state.isMember(account) else { continue }
                    if try queueForOwnDevices(.groupState(state), certificate: cert, online: online, now: now) { checkOwn = true }
                }
            }
        }
        outboxCache = nil
        pump()
        if checkOwn { checkOwnDevicesSoon() }
    }

    /// A `MultiSend` refused (relay spec §21.2): a device or account the relay does not know is
    /// dropped from the item (and its session forgotten) and the rest goes again; a malformed or
    /// oversized one is given up; anything else waits for a pause.
    func handleGroupSendError(_ e: RelayError, _ item: OutboxItem) {
        switch e.code {
        case .mismatchedDevices:
            // A member's (or this account's) devices changed: sessions with the new ones, the
            // group's state and this device's sender key to them, and the message again (repairGroup).
            repairing.insert(item.clientMessageID)
            Task { await self.repairGroup(item, account: e.account, missing: e.missing, extra: e.extra) }
        case .unknownDevice:
            _ = try? store.deleteSession(for: ProtocolAddress(name: e.account, deviceID: e.deviceID))
            _ = resealGroup(item, keeping: { !($0 == e.account && $1 == e.deviceID) })
            pump()
        case .unknownAccount:
            _ = resealGroup(item, keeping: { a, _ in a != e.account })
            pump()
        case .malformedStanza, .malformedEnvelope, .payloadTooLarge, .tooManyRecipients:
            giveUp(item, e.code)
            pump()
        default:
            paused.insert(item.account)
            retryPumpLater()
        }
    }
}
