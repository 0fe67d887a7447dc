import Dispatch
import Foundation
import HushTransport

/// A payload per device (`Docs/spec/relay.md` §7.1 "A payload per device", §20.3): a `Send` or
/// `SealedSend` whose `payloads` give each recipient device its own ciphertext (pairwise
/// sessions differ per device). It is committed as the copies of a one-recipient `MultiSend`
/// are (§21.2 steps 4–6): each device's payload on its own, deduplicated under §21.3's copy id.
extension RelayConnection {
    /// The checks of §7.1's per-device form that need no store, in order: `devices` and
    /// `payload` empty and the `device_id`s a valid §7.1 list (`MALFORMED_STANZA`), then each
    /// payload at most 64,000 bytes (`PAYLOAD_TOO_LARGE`).
    static func perDeviceRejection(_ payloads: [RelayDevicePayload], devices: [UInt32], payload: Data) -> RelayErrorCode? {
        guard devices.isEmpty, payload.isEmpty, isValidDeviceList(payloads.map(\.deviceID)) else { return .malformedStanza }
        guard payloads.allSatisfy({ $0.payload.count <= RelayProtocol.Limits.maxPayload }) else { return .payloadTooLarge }
        return nil
    }

    /// One `EnqueueRequest` per device: its payload, under its copy id (§21.3), in the scope
    /// (`senderAccount`, `senderDevice`) — the sending device, or a sealed send's anonymous scope.
    static func perDeviceRequests(_ payloads: [RelayDevicePayload], to account: String, clientMessageID cmid: UInt64,
                                  senderAccount: String, senderDevice: UInt32, now: UInt64,
                                  configuration config: RelayConfiguration) -> [EnqueueRequest] {
        payloads.map { p in
            EnqueueRequest(senderAccount: senderAccount, senderDevice: senderDevice,
                           clientMessageID: multiSendCopyID(cmid, account: account, deviceID: p.deviceID),
                           recipient: account, devices: [p.deviceID], payload: p.payload, now: now,
                           ttlMilliseconds: config.ttlMilliseconds, queueCap: config.queueCap)
        }
    }

    /// `Send` with `payloads` (§7.1): the limits here on the loop, then as store work the
    /// account and device checks (`UNKNOWN_ACCOUNT`; `MISMATCHED_DEVICES` with `all_devices`,
    /// else `UNKNOWN_DEVICE`), every copy enqueued at once, and `ServerAck` with the earliest
    /// acceptance time — or the error of the first refused copy, in `Send`'s shape.
    func handlePerDeviceSend(_ m: RelaySend, from me: DeviceAddress) {
        let cmid = m.clientMessageID
        if let rejection = Self.perDeviceRejection(m.payloads, devices: m.devices, payload: m.payload) {
            return sendError(rejection, clientMessageID: cmid)
        }
        guard DeviceBinding.isValidAccountName(m.account) else { return sendError(.unknownAccount, clientMessageID: cmid) }
        let config = relay.configuration
        let account = m.account, payloads = m.payloads, allDevices = m.allDevices
        let requests = Self.perDeviceRequests(payloads, to: account, clientMessageID: cmid, senderAccount: me.account,
                                              senderDevice: me.deviceID, now: config.clock(), configuration: config)
        let store = relay.store, callbacks = relay.callbacks, router = relay.router
        let started = DispatchTime.now()
        storeWork({ () async throws(RelayStoreError) -> MultiSendOutcome in
            let recipient = [(account: account, devices: payloads.map(\.deviceID))]
            if let refused = try await Self.missingRecipient(recipient, allDevices: [allDevices], sender: me, in: store) {
                return .refused(refused, stored: 0, failure: nil)
            }
            let results = await Self.enqueueAll(requests, store: store, callbacks: callbacks, committed: { router.push($0) })
            return Self.multiSendOutcome(requests, results)
        }) { [self] result in
            answerPerDevice(result, clientMessageID: cmid, account: account, sealed: false, started: started)
        }
    }

    /// The answer to a per-device `Send` or `SealedSend` from its store work's outcome.
    func answerPerDevice(_ result: Result<MultiSendOutcome, RelayStoreError>, clientMessageID cmid: UInt64, account: String,
                         sealed: Bool, started: DispatchTime) {
        switch result {
        case .success(.accepted(let time, let stored, let duplicates)):
            relay.metrics.messagesStored.increment(by: stored)
            if sealed { relay.metrics.sealedStored.increment(by: stored) }
            if duplicates > 0 { relay.metrics.duplicates.increment(by: duplicates) }
            relay.metrics.commitLatency.recordInterval(since: started)
            var s = RelayStanza()
            s.serverAck.clientMessageID = cmid
            s.serverAck.serverTime = time
            send(s)
        case .success(.refused(let r, let stored, let failure)):
            relay.metrics.messagesStored.increment(by: stored)
            if sealed { relay.metrics.sealedStored.increment(by: stored) }
            if let failure { log(.error, "per-device enqueue failed", ["error": "\(failure)", "copies_stored": "\(stored)"]) }
            if let mismatch = r.mismatch { return sendMismatch(mismatch, clientMessageID: cmid, account: account) }
            // A sealed send's unknown account is its access answer (§20.3): the channel does not
            // tell which names exist.
            if sealed && r.code == .unknownAccount { return sendError(.accessDenied, clientMessageID: cmid) }
            sendError(r.code, clientMessageID: cmid, deviceID: r.deviceID)
        case .failure(let error):
            log(.error, "per-device send failed before its enqueue", ["error": "\(error)"])
            sendError(.internalError, clientMessageID: cmid)
        }
    }
}
