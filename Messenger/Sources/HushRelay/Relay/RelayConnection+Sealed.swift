import Dispatch
import Foundation
import HushTransport

/// Sealed sender (`Docs/spec/relay.md` §20): an account sets who may send it messages without
/// naming themselves (`SetSealedAccess`, logged in), and anyone holding its access key sends
/// over an anonymous (NK) connection (`SealedSend`). For such a message the relay's connection,
/// queue row, dedupe entry and logs hold the recipient only.
extension RelayConnection {
    /// The outcome of a sealed send's store work: refused by the access check or the
    /// all-devices check (§7.6), or enqueued.
    enum SealedOutcome: Sendable {
        case denied
        case mismatched(DeviceMismatch)
        case enqueued(EnqueueOutcome)
    }

    /// `SetSealedAccess` (§20.1): replaces the account's setting; `Ok{request_id}`.
    func handleSetSealedAccess(_ m: RelaySetSealedAccess, _ me: DeviceAddress) {
        let rid = m.requestID
        guard m.accessKey.isEmpty || m.accessKey.count == SealedAccess.keyLength else { return sendError(.malformedStanza, requestID: rid) }
        let access = SealedAccess(accessKey: m.accessKey.isEmpty ? nil : m.accessKey, allowAnyone: m.allowAnyone)
        let store = relay.store, account = me.account
        storeWork({ () async throws(RelayStoreError) in try await store.setSealedAccess(account: account, access) }) { [self] result in
            switch result {
            case .success:
                var s = RelayStanza()
                s.ok.requestID = rid
                send(s)
            case .failure(.unknownAccount): sendError(.unknownAccount, requestID: rid)
            case .failure(let error):
                log(.error, "sealed access update failed", ["error": "\(error)"])
                sendError(.internalError, requestID: rid)
            }
        }
    }

    /// `SealedSend` (§20.3), on an anonymous connection: the §7.1 checks, then the access check
    /// (an unknown account and a wrong key are one answer, `ACCESS_DENIED`, so that the channel
    /// does not tell which names exist), then the enqueue under the recipient's anonymous scope.
    func handleSealedSend(_ m: RelaySealedSend) {
        if !m.payloads.isEmpty { return handlePerDeviceSealedSend(m) }
        let cmid = m.clientMessageID
        // Step 1 (§20.3): the §7.1 limits, and a 16-byte key (a bad key is malformed before an
        // oversized payload is too large).
        let rejection = Self.deliveryRejection(devices: m.devices, payload: m.payload.count)
        if rejection == .malformedStanza || m.accessKey.count != SealedAccess.keyLength {
            return sendError(.malformedStanza, clientMessageID: cmid)
        }
        if let rejection { return sendError(rejection, clientMessageID: cmid) }
        guard DeviceBinding.isValidAccountName(m.account) else { return sendError(.accessDenied, clientMessageID: cmid) }
        let config = relay.configuration
        let request = EnqueueRequest(senderAccount: AnonymousSender.scope(recipient: m.account), senderDevice: 0, clientMessageID: cmid,
                                     recipient: m.account, devices: m.devices, payload: m.payload, now: config.clock(),
                                     ttlMilliseconds: config.ttlMilliseconds, queueCap: config.queueCap)
        let store = relay.store, router = relay.router, presented = m.accessKey, account = m.account, allDevices = m.allDevices
        let started = DispatchTime.now()
        storeWork({ () async throws(RelayStoreError) -> SealedOutcome in
            guard let access = try await store.sealedAccess(account: account), access.admits(presented) else {
                // A resend of a message stored before the recipient changed its key is still that
                // message (its first time), so that a sender whose ServerAck was lost does not
                // fall back to a logged-in copy. The 64-bit random id is the proof.
                if let time = try await store.acceptedTime(senderAccount: request.senderAccount, senderDevice: 0, clientMessageID: cmid) {
                    return .enqueued(.duplicate(serverTime: time))
                }
                return .denied
            }
            // Step 3 (§20.3, §7.6): with all_devices, the listed devices against the account's.
            if allDevices, let mismatch = try await Self.allDevicesMismatch(account: account, listed: request.devices, sender: nil, in: store) {
                return .mismatched(mismatch)
            }
            return .enqueued(try await store.enqueue(request, committed: { router.push($0) }))
        }) { [self] result in
            switch result {
            case .success(.denied), .failure(.unknownAccount):
                sendError(.accessDenied, clientMessageID: cmid)
            case .success(.mismatched(let mismatch)): sendMismatch(mismatch, clientMessageID: cmid, account: account)
            case .failure(.unknownDevice(let d)): sendError(.unknownDevice, clientMessageID: cmid, deviceID: d)
            case .failure(.queueFull(let d, _)): sendError(.queueFull, clientMessageID: cmid, deviceID: d)
            case .failure(let error):
                log(.error, "sealed enqueue failed", ["error": "\(error)"])
                sendError(.internalError, clientMessageID: cmid)
            case .success(.enqueued(let outcome)):
                relay.metrics.commitLatency.recordInterval(since: started)
                sendServerAck(outcome, clientMessageID: cmid, sealed: true)
            }
        }
    }

    /// `SealedSend` with `payloads` (§20.3, §7.1): step 1's limits on the `DevicePayload`s, the
    /// access check (a resend is recognised by the first device's copy id), then the devices
    /// (§7.6 with `all_devices`) and every copy enqueued under the anonymous scope.
    func handlePerDeviceSealedSend(_ m: RelaySealedSend) {
        let cmid = m.clientMessageID
        let rejection = Self.perDeviceRejection(m.payloads, devices: m.devices, payload: m.payload)
        if rejection == .malformedStanza || m.accessKey.count != SealedAccess.keyLength {
            return sendError(.malformedStanza, clientMessageID: cmid)
        }
        if let rejection { return sendError(rejection, clientMessageID: cmid) }
        guard DeviceBinding.isValidAccountName(m.account) else { return sendError(.accessDenied, clientMessageID: cmid) }
        let config = relay.configuration
        let account = m.account, payloads = m.payloads, allDevices = m.allDevices, presented = m.accessKey
        let scope = AnonymousSender.scope(recipient: account)
        let requests = Self.perDeviceRequests(payloads, to: account, clientMessageID: cmid, senderAccount: scope, senderDevice: 0,
                                              now: config.clock(), configuration: config)
        let store = relay.store, callbacks = relay.callbacks, router = relay.router
        let started = DispatchTime.now()
        storeWork({ () async throws(RelayStoreError) -> MultiSendOutcome? in
            guard let access = try await store.sealedAccess(account: account), access.admits(presented) else {
                if let time = try await store.acceptedTime(senderAccount: scope, senderDevice: 0,
                                                           clientMessageID: requests[0].clientMessageID) {
                    return .accepted(serverTime: time, stored: 0, duplicates: 1)
                }
                return nil
            }
            let recipient = [(account: account, devices: payloads.map(\.deviceID))]
            if let refused = try await Self.missingRecipient(recipient, allDevices: [allDevices], sender: nil, in: store) {
                return .refused(refused, stored: 0, failure: nil)
            }
            let results = await Self.enqueueAll(requests, store: store, callbacks: callbacks, committed: { router.push($0) })
            return Self.multiSendOutcome(requests, results)
        }) { [self] result in
            switch result {
            case .success(nil), .failure(.unknownAccount): sendError(.accessDenied, clientMessageID: cmid)
            case .success(let outcome?): answerPerDevice(.success(outcome), clientMessageID: cmid, account: account, sealed: true, started: started)
            case .failure(let error): answerPerDevice(.failure(error), clientMessageID: cmid, account: account, sealed: true, started: started)
            }
        }
    }
}
