import Dispatch
import Foundation
import Hush
import HushTransport

/// Handlers of the logged-in request stanzas (§7, §8), called from ``RelayConnection``'s
/// dispatch switch on the event loop.
extension RelayConnection {
    /// Why a send is refused before it reaches the store, if it is.
    func sendRejection(_ m: RelaySend) -> RelayErrorCode? {
        Self.deliveryRejection(devices: m.devices, payload: m.payload.count) ?? (DeviceBinding.isValidAccountName(m.account) ? nil : .unknownAccount)
    }

    /// The §7.1 limits a `Send` and a `SealedSend` share: 1–16 distinct valid device ids
    /// (`MALFORMED_STANZA`), a payload of at most 64,000 bytes (`PAYLOAD_TOO_LARGE`).
    static func deliveryRejection(devices: [UInt32], payload: Int) -> RelayErrorCode? {
        guard isValidDeviceList(devices) else { return .malformedStanza }
        guard payload <= RelayProtocol.Limits.maxPayload else { return .payloadTooLarge }
        return nil
    }

    /// §7.1's device list, shared by `Send`, `SealedSend` and each recipient of a `MultiSend`
    /// (§21.2): 1–16 ids, no repeats, each 1 … 2^31−1.
    static func isValidDeviceList(_ devices: [UInt32]) -> Bool {
        let limits = RelayProtocol.Limits.self
        return (1...limits.maxDevicesPerRequest).contains(devices.count) && Set(devices).count == devices.count
            && devices.allSatisfy { limits.deviceIDs.contains($0) }
    }

    /// The `ServerAck` of a committed (or recognised) send, counted in the metrics.
    func sendServerAck(_ outcome: EnqueueOutcome, clientMessageID cmid: UInt64, sealed: Bool = false) {
        var ack = RelayServerAck()
        ack.clientMessageID = cmid
        switch outcome {
        case .stored(let time, let messages):
            relay.metrics.messagesStored.increment(by: messages.count)
            if sealed { relay.metrics.sealedStored.increment(by: messages.count) }
            ack.serverTime = time
        case .duplicate(let time):
            relay.metrics.duplicates.increment()
            ack.serverTime = time
        }
        var s = RelayStanza()
        s.serverAck = ack
        send(s)
    }

    func handleSend(_ m: RelaySend, from me: DeviceAddress) {
        if !m.payloads.isEmpty { return handlePerDeviceSend(m, from: me) }
        let cmid = m.clientMessageID
        if let rejection = sendRejection(m) { return sendError(rejection, clientMessageID: cmid) }
        let config = relay.configuration
        let request = EnqueueRequest(senderAccount: me.account, senderDevice: me.deviceID, clientMessageID: cmid, recipient: m.account,
                                     devices: m.devices, payload: m.payload, now: config.clock(),
                                     ttlMilliseconds: config.ttlMilliseconds, queueCap: config.queueCap)
        let router = relay.router
        let started = DispatchTime.now()
        let then: (Result<EnqueueOutcome, RelayStoreError>) -> Void = { [self] result in
            let outcome: EnqueueOutcome
            switch result {
            case .success(let o): outcome = o
            case .failure(.unknownAccount): return sendError(.unknownAccount, clientMessageID: cmid)
            case .failure(.unknownDevice(let d)): return sendError(.unknownDevice, clientMessageID: cmid, deviceID: d)
            case .failure(.queueFull(let d, _)): return sendError(.queueFull, clientMessageID: cmid, deviceID: d)
            case .failure(let error):
                log(.error, "enqueue failed", ["error": "\(error)"])
                return sendError(.internalError, clientMessageID: cmid)
            }
            relay.metrics.commitLatency.recordInterval(since: started)
            sendServerAck(outcome, clientMessageID: cmid)
        }
        if m.allDevices {
            // §7.6: after the account check (step 2), the listed devices against the account's,
            // then the enqueue (whose own checks stay, for a device removed in between).
            let store = relay.store, account = m.account
            storeWork({ () async throws(RelayStoreError) -> Result<EnqueueOutcome, DeviceMismatch> in
                if let mismatch = try await Self.allDevicesMismatch(account: account, listed: request.devices, sender: me, in: store) {
                    return .failure(mismatch)
                }
                return .success(try await store.enqueue(request, committed: { router.push($0) }))
            }) { [self] result in
                switch result {
                case .success(.failure(let mismatch)): sendMismatch(mismatch, clientMessageID: cmid, account: account)
                case .success(.success(let outcome)): then(.success(outcome))
                case .failure(let error): then(.failure(error))
                }
            }
        } else if let direct = relay.callbacks {
            direct.enqueue(request, committed: { router.push($0) }, completion: storeCompletion(then))
        } else {
            let store = relay.store
            storeWork({ () async throws(RelayStoreError) -> EnqueueOutcome in
                try await store.enqueue(request, committed: { router.push($0) })
            }, then: then)
        }
    }

    func handleAck(_ a: RelayAck, _ me: DeviceAddress) {
        guard (1...RelayProtocol.Limits.maxAckIDs).contains(a.serverIds.count) else { return sendError(.malformedStanza) }
        let ids = a.serverIds
        let then: (Result<Int, RelayStoreError>) -> Void = { [self] result in
            switch result {
            case .success(let n):
                relay.metrics.acks.increment(by: n)
                acknowledged(ids)
            case .failure(let error):
                log(.error, "ack failed", ["error": "\(error)"])
                sendError(.internalError)
            }
        }
        if let direct = relay.callbacks {
            direct.acknowledge(account: me.account, deviceID: me.deviceID, serverIDs: ids, completion: storeCompletion(then))
        } else {
            let store = relay.store
            storeWork({ () async throws(RelayStoreError) -> Int in
                try await store.acknowledge(account: me.account, deviceID: me.deviceID, serverIDs: ids)
            }, then: then)
        }
    }

    func handleUpload(_ u: RelayUploadPrekeys, _ me: DeviceAddress) {
        let rid = u.requestID
        guard u.oneTime.count <= RelayProtocol.Limits.maxPrekeysPerUpload,
              u.kyberOneTime.count <= RelayProtocol.Limits.maxKyberPrekeysPerUpload else { return sendError(.tooManyPrekeys, requestID: rid) }
        let store = relay.store, identity = identityKey
        // The key checks (up to 137 point validations and 38 XEdDSA verifications) run with the
        // store work, off the event loop.
        storeWork({ () async throws(RelayStoreError) -> Result<PrekeyCounts, UploadRejection> in
            switch Self.validatedUpload(u, identity: identity) {
            case .failure(let code): return .failure(code)
            case .success(let upload): return .success(try await store.storePrekeys(account: me.account, deviceID: me.deviceID, upload))
            }
        }) { [self] result in
            switch result {
            case .success(.success):
                var s = RelayStanza()
                s.ok.requestID = rid
                send(s)
            case .success(.failure(let r)): sendError(r.code, requestID: rid)
            case .failure(.tooManyPrekeys): sendError(.tooManyPrekeys, requestID: rid)
            case .failure: sendError(.internalError, requestID: rid)
            }
        }
    }

    /// Why an upload is refused before the store (§8.1, §8.3).
    struct UploadRejection: Error, Sendable {
        let code: RelayErrorCode
    }

    /// §8.1 and §8.3's checks of an upload, in order (every key before anything is stored):
    /// one-time keys valid X25519 keys (`INVALID_KEY`), the signed prekey valid and signed by
    /// `identity` (`INVALID_KEY`, `INVALID_SIGNATURE`), then each Kyber prekey (one-time ones,
    /// then the last-resort one).
    static func validatedUpload(_ u: RelayUploadPrekeys, identity: Curve25519.KeyAgreement.PublicKey?) -> Result<PrekeyUpload, UploadRejection> {
        var oneTime: [OneTimePrekeyRecord] = []
        oneTime.reserveCapacity(u.oneTime.count)
        for p in u.oneTime {
            guard (try? Curve25519.KeyAgreement.PublicKey(validatingRawRepresentation: p.publicKey)) != nil else { return .failure(UploadRejection(code: .invalidKey)) }
            oneTime.append(OneTimePrekeyRecord(id: p.id, publicKey: p.publicKey))
        }
        var signed: SignedPrekeyRecord?
        if u.hasSignedPrekey {
            let sp = u.signedPrekey
            guard let key = try? Curve25519.KeyAgreement.PublicKey(validatingRawRepresentation: sp.publicKey) else { return .failure(UploadRejection(code: .invalidKey)) }
            guard let identity, XEdDSA.isValidSignature(sp.signature, for: key.signalRepresentation, publicKey: identity) else {
                return .failure(UploadRejection(code: .invalidSignature))
            }
            signed = SignedPrekeyRecord(id: sp.id, publicKey: sp.publicKey, signature: sp.signature)
        }
        var kyberLastResort: KyberPrekeyRecord?
        var kyberOneTime: [KyberPrekeyRecord] = []
        kyberOneTime.reserveCapacity(u.kyberOneTime.count)
        for (k, isLastResort) in u.kyberOneTime.map({ ($0, false) }) + (u.hasKyberLastResort ? [(u.kyberLastResort, true)] : []) {
            if let problem = checkKyber(k, identity: identity) { return .failure(UploadRejection(code: problem)) }
            let record = KyberPrekeyRecord(id: k.id, publicKey: k.publicKey, signature: k.signature)
            if isLastResort { kyberLastResort = record } else { kyberOneTime.append(record) }
        }
        return .success(PrekeyUpload(registrationID: u.registrationID, signed: signed, oneTime: oneTime,
                                     kyberLastResort: kyberLastResort, kyberOneTime: kyberOneTime,
                                     maxStored: RelayProtocol.Limits.maxStoredPrekeys,
                                     maxStoredKyber: RelayProtocol.Limits.maxStoredKyberPrekeys,
                                     replaceOneTime: u.replaceOneTime))
    }

    /// A Kyber prekey's problem, if any (§8.3): `public_key` must be 1,568 bytes (`INVALID_KEY`),
    /// `signature` 64 bytes and a valid XEdDSA signature by the account's identity key over
    /// `0x08 || public_key` (`INVALID_SIGNATURE`).
    private static func checkKyber(_ k: RelayKyberPrekey, identity: Curve25519.KeyAgreement.PublicKey?) -> RelayErrorCode? {
        guard k.publicKey.count == RelayProtocol.Limits.kyberPublicKeyLength else { return .invalidKey }
        guard k.signature.count == RelayProtocol.Limits.signatureLength, let identity else { return .invalidSignature }
        var message = [SignalConstants.kyberKeyType]
        message += k.publicKey
        return XEdDSA.isValidSignature(k.signature, for: message, publicKey: identity, policy: .libsignalCompatible) ? nil : .invalidSignature
    }

    func handleFetch(_ f: RelayFetchPrekeys, _ me: DeviceAddress) {
        let rid = f.requestID
        guard f.devices.count <= RelayProtocol.Limits.maxDevicesPerRequest else { return sendError(.malformedStanza, requestID: rid) }
        guard relay.fetchLimiter.take(me.description, now: relay.configuration.clock()) else {
            return sendError(.rateLimited, requestID: rid)
        }
        guard DeviceBinding.isValidAccountName(f.account) else { return sendError(.unknownAccount, requestID: rid) }
        let store = relay.store
        let account = f.account
        let devices = f.devices.isEmpty ? nil : f.devices
        storeWork({ () async throws(RelayStoreError) -> (AccountRecord, [PrekeyBundleRecord])? in
            guard let record = try await store.account(named: account) else { return nil }
            return (record, try await store.claimBundles(account: account, devices: devices))
        }) { [self] result in
            let record: AccountRecord
            let bundles: [PrekeyBundleRecord]
            switch result {
            case .success(let found?): (record, bundles) = found
            case .success(nil), .failure(.unknownAccount): return sendError(.unknownAccount, requestID: rid)
            case .failure(.unknownDevice(let d)): return sendError(.unknownDevice, requestID: rid, deviceID: d)
            case .failure: return sendError(.internalError, requestID: rid)
            }
            var out = RelayPrekeyBundles()
            out.requestID = rid
            out.identityKey = record.identityKey
            out.bundles = bundles.map { b in
                var pb = RelayPrekeyBundle()
                pb.deviceID = b.deviceID
                pb.registrationID = b.registrationID
                if let sp = b.signedPrekey {
                    pb.signedPrekey.id = sp.id
                    pb.signedPrekey.publicKey = sp.publicKey
                    pb.signedPrekey.signature = sp.signature
                }
                if let ot = b.oneTime {
                    pb.oneTime.id = ot.id
                    pb.oneTime.publicKey = ot.publicKey
                }
                if let k = b.kyber {
                    pb.kyber.id = k.id
                    pb.kyber.publicKey = k.publicKey
                    pb.kyber.signature = k.signature
                    pb.kyberLastResort = b.kyberIsLastResort
                }
                return pb
            }
            var s = RelayStanza()
            s.prekeyBundles = out
            send(s)
            // §8.2: the owner hears when this fetch took a one-time key of a kind now below 10.
            let low = RelayProtocol.Limits.prekeysLowThreshold
            for b in bundles where (b.oneTime != nil && b.remaining < low)
                || (b.kyber != nil && !b.kyberIsLastResort && b.kyberRemaining < low) {
                relay.router.connection(DeviceAddress(account: account, deviceID: b.deviceID))?
                    .notifyPrekeysLow(b.remaining, kyberRemaining: b.kyberRemaining)
            }
        }
    }
}
