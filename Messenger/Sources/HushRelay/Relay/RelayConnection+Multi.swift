import Dispatch
import Foundation
import Hush
import HushTransport
import Synchronization

/// Groups fan-out (`Docs/spec/relay.md` §21): one `MultiSend` carries one multi-recipient
/// envelope (`Docs/spec/envelope.md` §6) for devices of several accounts; the relay, which has
/// no key, splits it and queues each device its own `0xE3` copy as if this device had sent it
/// with `Send` (§7.1). The envelope and its copies are never logged.
extension RelayConnection {
    /// Why a `MultiSend` is refused (§21.2): the `Error` code and the account and device it
    /// concerns ("" and 0 when none).
    struct MultiSendRejection: Error, Equatable, Sendable {
        var code: RelayErrorCode
        var account = ""
        var deviceID: UInt32 = 0
        /// `MISMATCHED_DEVICES` (§7.6): the `missing` / `extra` devices of `account`.
        var mismatch: DeviceMismatch?
    }

    /// What a `MultiSend`'s store work did (§21.2 steps 4–6).
    enum MultiSendOutcome: Sendable {
        /// Every copy is queued (now or by an earlier `MultiSend` with this id): the earliest
        /// acceptance time among them, and how many were stored now and recognised as stored.
        case accepted(serverTime: UInt64, stored: Int, duplicates: Int)
        /// Refused (step 4: nothing stored; step 5: `stored` copies of other devices were).
        /// `failure` is the store's error behind an `INTERNAL_ERROR`, for the log.
        case refused(MultiSendRejection, stored: Int, failure: RelayStoreError?)
    }

    /// The label of a copy's dedupe id (§21.3).
    static let multiSendCopyLabel = Array("hush-relay multi-send v1".utf8)

    /// The `client_message_id` under which the copy for (`account`, `deviceID`) of the
    /// `MultiSend` with `clientMessageID` is stored and deduplicated (§21.3): the first 8 bytes,
    /// big-endian, of SHA-256("hush-relay multi-send v1" || be64(client_message_id) ||
    /// be16(len(account)) || account || be32(device_id)). `account` is a valid name (≤ 32 bytes).
    static func multiSendCopyID(_ clientMessageID: UInt64, account: String, deviceID: UInt32) -> UInt64 {
        let name = Array(account.utf8)
        var input = multiSendCopyLabel
        input.reserveCapacity(input.count + 8 + 2 + name.count + 4)
        for shift in stride(from: 56, through: 0, by: -8) { input.append(UInt8(truncatingIfNeeded: clientMessageID >> UInt64(shift))) }
        input.append(UInt8(truncatingIfNeeded: name.count >> 8))
        input.append(UInt8(truncatingIfNeeded: name.count))
        input += name
        for shift in stride(from: 24, through: 0, by: -8) { input.append(UInt8(truncatingIfNeeded: deviceID >> UInt32(shift))) }
        return SHA256.hash(input).prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Step 1 of §21.2, on the recipient lists alone: no recipients (`MALFORMED_STANZA`); then
    /// the cheap bounds, more than 256 accounts or 256 devices in all (`TOO_MANY_RECIPIENTS`);
    /// then, account by account, a repeated account or a device list that breaks §7.1
    /// (`MALFORMED_STANZA` naming the account). Returns the number of devices when accepted.
    static func multiSendRecipientRejection(_ recipients: [RelayMultiRecipient]) -> Result<Int, MultiSendRejection> {
        let limits = RelayProtocol.Limits.self
        guard !recipients.isEmpty else { return .failure(MultiSendRejection(code: .malformedStanza)) }
        guard recipients.count <= limits.maxMultiSendAccounts else { return .failure(MultiSendRejection(code: .tooManyRecipients)) }
        // Bounded by the stanza size (a device id is at least one byte): no overflow.
        let devices = recipients.reduce(0) { $0 + $1.devices.count }
        guard devices <= limits.maxMultiSendDevices else { return .failure(MultiSendRejection(code: .tooManyRecipients)) }
        var seen = Set<String>(minimumCapacity: recipients.count)
        for r in recipients {
            guard seen.insert(r.account).inserted, isValidDeviceList(r.devices) else {
                return .failure(MultiSendRejection(code: .malformedStanza, account: r.account))
            }
        }
        return .success(devices)
    }

    /// Steps 1–3 of §21.2 (no store): the recipient lists, the envelope (`MALFORMED_ENVELOPE`
    /// unless it parses with one header per listed device), the copies' size
    /// (`PAYLOAD_TOO_LARGE` over Send's 64,000 bytes; every copy has the same size). Returns
    /// the parsed envelope; device i of the flattened lists gets header i.
    static func multiSendEnvelope(_ m: RelayMultiSend) -> Result<MultiRecipientEnvelope, MultiSendRejection> {
        let count: Int
        switch multiSendRecipientRejection(m.recipients) {
        case .failure(let rejection): return .failure(rejection)
        case .success(let n): count = n
        }
        guard let envelope = try? MultiRecipientEnvelope(serialized: Array(m.envelope)), envelope.recipientCount == count,
              let first = try? envelope.delivered(to: 0) else {
            return .failure(MultiSendRejection(code: .malformedEnvelope))
        }
        guard first.count <= RelayProtocol.Limits.maxPayload else { return .failure(MultiSendRejection(code: .payloadTooLarge)) }
        return .success(envelope)
    }

    /// Step 5's requests (§21.2, §21.3): one per device in header order, its copy as payload,
    /// its copy id as `client_message_id`, from `sender` exactly as a one-device `Send`.
    /// `envelope` passed ``multiSendEnvelope(_:)`` with these recipients.
    static func multiSendRequests(_ envelope: MultiRecipientEnvelope, recipients: [(account: String, devices: [UInt32])],
                                  clientMessageID cmid: UInt64, sender: DeviceAddress, now: UInt64,
                                  configuration config: RelayConfiguration) throws(RelayStoreError) -> [EnqueueRequest] {
        var requests: [EnqueueRequest] = []
        requests.reserveCapacity(envelope.recipientCount)
        for r in recipients {
            for d in r.devices {
                // In range (the count was checked) and of the first copy's size: does not throw.
                guard let copy = try? envelope.delivered(to: requests.count) else { throw .storage("multi-send copy \(requests.count)") }
                requests.append(EnqueueRequest(senderAccount: sender.account, senderDevice: sender.deviceID,
                                               clientMessageID: multiSendCopyID(cmid, account: r.account, deviceID: d),
                                               recipient: r.account, devices: [d], payload: Data(copy), now: now,
                                               ttlMilliseconds: config.ttlMilliseconds, queueCap: config.queueCap))
            }
        }
        return requests
    }

    /// `MultiSend` (§21), on a logged-in connection: steps 1–3 here on the loop (cheap: no copy
    /// is made but the first), then, as store work off the loop, step 4 (every account and
    /// device exists), the copies, and step 5 (every copy enqueued, each its own
    /// `EnqueueRequest`, all submitted at once so that the store commits them together), then
    /// `ServerAck` with the earliest acceptance time (step 6).
    func handleMultiSend(_ m: RelayMultiSend, from me: DeviceAddress) {
        let cmid = m.clientMessageID
        let envelope: MultiRecipientEnvelope
        switch Self.multiSendEnvelope(m) {
        case .failure(let r): return sendError(r.code, clientMessageID: cmid, deviceID: r.deviceID, account: r.account)
        case .success(let e): envelope = e
        }
        let config = relay.configuration
        let now = config.clock()
        let recipients = m.recipients.map { (account: $0.account, devices: $0.devices) }
        let allDevices = m.recipients.map(\.allDevices)
        let store = relay.store, callbacks = relay.callbacks, router = relay.router
        let started = DispatchTime.now()
        storeWork({ () async throws(RelayStoreError) -> MultiSendOutcome in
            if let missing = try await Self.missingRecipient(recipients, allDevices: allDevices, sender: me, in: store) {
                return .refused(missing, stored: 0, failure: nil)
            }
            let requests = try Self.multiSendRequests(envelope, recipients: recipients, clientMessageID: cmid, sender: me,
                                                      now: now, configuration: config)
            let results = await Self.enqueueAll(requests, store: store, callbacks: callbacks, committed: { router.push($0) })
            return Self.multiSendOutcome(requests, results)
        }) { [self] result in
            switch result {
            case .success(.accepted(let time, let stored, let duplicates)):
                countMultiSend(stored: stored, duplicates: duplicates)
                relay.metrics.commitLatency.recordInterval(since: started)
                var s = RelayStanza()
                s.serverAck.clientMessageID = cmid
                s.serverAck.serverTime = time
                send(s)
            case .success(.refused(let r, let stored, let failure)):
                countMultiSend(stored: stored, duplicates: 0)
                if let failure { log(.error, "multi-send enqueue failed", ["error": "\(failure)", "copies_stored": "\(stored)"]) }
                if let mismatch = r.mismatch { return sendMismatch(mismatch, clientMessageID: cmid, account: r.account) }
                sendError(r.code, clientMessageID: cmid, deviceID: r.deviceID, account: r.account)
            case .failure(let error):
                log(.error, "multi-send failed before its enqueue", ["error": "\(error)"])
                sendError(.internalError, clientMessageID: cmid)
            }
        }
    }

    private func countMultiSend(stored: Int, duplicates: Int) {
        relay.metrics.messagesStored.increment(by: stored)
        relay.metrics.multiCopiesStored.increment(by: stored)
        if duplicates > 0 { relay.metrics.duplicates.increment(by: duplicates) }
    }

    /// Most recipient accounts looked up at once (each lookup is a store read or two).
    static let multiSendLookupConcurrency = 8

    /// Step 4 of §21.2: the first recipient, in order, whose account name is invalid or
    /// unknown (`UNKNOWN_ACCOUNT{account}`), or, when its `all_devices` is set, whose listed
    /// devices are not exactly its devices less `sender`'s own (`MISMATCHED_DEVICES{account,
    /// missing, extra}`, §7.6), or else one of whose listed devices is unknown
    /// (`UNKNOWN_DEVICE{account, device_id}`, the first listed); nil when all pass. `allDevices`
    /// is empty (none set) or one flag per recipient. Accounts are looked up a few at a time; a
    /// store failure throws (`INTERNAL_ERROR`).
    static func missingRecipient(_ recipients: [(account: String, devices: [UInt32])], allDevices: [Bool] = [],
                                 sender: DeviceAddress? = nil,
                                 in store: any RelayStore) async throws(RelayStoreError) -> MultiSendRejection? {
        // nil: no such (or an invalid) account; else its device ids.
        let found = await withTaskGroup(of: (Int, Result<Set<UInt32>?, RelayStoreError>).self) { group in
            var found = [Result<Set<UInt32>?, RelayStoreError>](repeating: .success(nil), count: recipients.count)
            var next = 0
            func lookUp(_ i: Int) {
                let account = recipients[i].account
                group.addTask {
                    guard DeviceBinding.isValidAccountName(account) else { return (i, .success(nil)) }
                    do throws(RelayStoreError) {
                        guard try await store.account(named: account) != nil else { return (i, .success(nil)) }
                        return (i, .success(Set(try await store.devices(account: account).map(\.deviceID))))
                    } catch {
                        return (i, .failure(error))
                    }
                }
            }
            while next < min(multiSendLookupConcurrency, recipients.count) { lookUp(next); next += 1 }
            for await (i, result) in group {
                found[i] = result
                if next < recipients.count { lookUp(next); next += 1 }
            }
            return found
        }
        for (i, (r, result)) in zip(recipients, found).enumerated() {
            guard let devices = try result.get() else { return MultiSendRejection(code: .unknownAccount, account: r.account) }
            if i < allDevices.count, allDevices[i] {
                let own = sender.flatMap { $0.account == r.account ? $0.deviceID : nil }
                if let mismatch = deviceMismatch(listed: r.devices, registered: Array(devices), excluding: own) {
                    return MultiSendRejection(code: .mismatchedDevices, account: r.account, mismatch: mismatch)
                }
                continue
            }
            if let d = r.devices.first(where: { !devices.contains($0) }) {
                return MultiSendRejection(code: .unknownDevice, account: r.account, deviceID: d)
            }
        }
        return nil
    }

    /// Step 5 of §21.2: submits every copy's request at once (the SQLite store's batcher and the
    /// PostgreSQL store's group committer commit concurrent enqueues together) and returns
    /// their results in request order.
    static func enqueueAll(_ requests: [EnqueueRequest], store: any RelayStore, callbacks: (any CallbackRelayStore)?,
                           committed: @escaping @Sendable ([QueuedMessage]) -> Void) async -> [Result<EnqueueOutcome, RelayStoreError>] {
        if let callbacks {
            // Submitted in order from this task, without a task per copy.
            let results = EnqueueResults(count: requests.count)
            return await withCheckedContinuation { continuation in
                results.onDone = { continuation.resume(returning: $0) }
                for (i, r) in requests.enumerated() {
                    callbacks.enqueue(r, committed: committed) { results.set(i, $0) }
                }
            }
        }
        return await withTaskGroup(of: (Int, Result<EnqueueOutcome, RelayStoreError>).self) { group in
            for (i, r) in requests.enumerated() {
                group.addTask {
                    do throws(RelayStoreError) { return (i, .success(try await store.enqueue(r, committed: committed))) } catch {
                        return (i, .failure(error))
                    }
                }
            }
            var out = [Result<EnqueueOutcome, RelayStoreError>](repeating: .failure(.unavailable), count: requests.count)
            for await (i, result) in group { out[i] = result }
            return out
        }
    }

    /// Steps 5–6 of §21.2 from the copies' results: the first refused copy in order decides the
    /// `Error` (`QUEUE_FULL{account, device_id}`; `UNKNOWN_ACCOUNT` / `UNKNOWN_DEVICE` if the
    /// recipient vanished since step 4; else `INTERNAL_ERROR`), else the `ServerAck` time is the
    /// earliest among the copies (a copy stored by an earlier attempt keeps its first time).
    static func multiSendOutcome(_ requests: [EnqueueRequest], _ results: [Result<EnqueueOutcome, RelayStoreError>]) -> MultiSendOutcome {
        var earliest = UInt64.max, stored = 0, duplicates = 0
        var refusal: MultiSendRejection?
        var failure: RelayStoreError?
        for (r, result) in zip(requests, results) {
            switch result {
            case .success(.stored(let time, let messages)):
                stored += messages.count
                earliest = min(earliest, time)
            case .success(.duplicate(let time)):
                duplicates += 1
                earliest = min(earliest, time)
            case .failure(let error):
                guard refusal == nil else { continue }
                let device = r.devices.first ?? 0
                switch error {
                case .queueFull: refusal = MultiSendRejection(code: .queueFull, account: r.recipient, deviceID: device)
                case .unknownAccount: refusal = MultiSendRejection(code: .unknownAccount, account: r.recipient)
                case .unknownDevice: refusal = MultiSendRejection(code: .unknownDevice, account: r.recipient, deviceID: device)
                default:
                    refusal = MultiSendRejection(code: .internalError)
                    failure = error
                }
            }
        }
        if let refusal { return .refused(refusal, stored: stored, failure: failure) }
        return .accepted(serverTime: earliest, stored: stored, duplicates: duplicates)
    }
}

/// The results of a `MultiSend`'s enqueues through the store's completion handlers, gathered
/// from whichever threads complete them; `onDone` runs once, with all of them in order.
private final class EnqueueResults: Sendable {
    private struct State {
        var results: [Result<EnqueueOutcome, RelayStoreError>?]
        var left: Int
        var onDone: (@Sendable ([Result<EnqueueOutcome, RelayStoreError>]) -> Void)?
    }

    private let state: Mutex<State>

    init(count: Int) { state = Mutex(State(results: Array(repeating: nil, count: count), left: count)) }

    /// Set before the first request is submitted.
    var onDone: (@Sendable ([Result<EnqueueOutcome, RelayStoreError>]) -> Void)? {
        get { state.withLock { $0.onDone } }
        set { state.withLock { $0.onDone = newValue } }
    }

    func set(_ index: Int, _ result: Result<EnqueueOutcome, RelayStoreError>) {
        let done = state.withLock { s -> (([Result<EnqueueOutcome, RelayStoreError>]) -> Void, [Result<EnqueueOutcome, RelayStoreError>])? in
            s.results[index] = result
            s.left -= 1
            guard s.left == 0, let onDone = s.onDone else { return nil }
            return (onDone, s.results.map { $0 ?? .failure(.unavailable) })
        }
        if let (onDone, results) = done { onDone(results) }
    }
}
