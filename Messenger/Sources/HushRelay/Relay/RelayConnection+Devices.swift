import Foundation
import Hush
import HushTransport
import NIOCore
import Synchronization

/// Open provisioning addresses of this node (`Docs/spec/relay.md` §22.3): each names one
/// anonymous connection waiting for the one message an existing device sends it. Held in
/// memory only; bounded by ``RelayProtocol/Limits/maxOpenProvisioningAddresses``.
final class ProvisioningRegistry: Sendable {
    private struct Entry {
        let connection: RelayConnection
        let expiresAt: UInt64
    }

    private let open = Mutex<[Data: Entry]>([:])
    /// `SendProvisioning` per sending device (§22.3): 1/s sustained, burst 5.
    let limiter = KeyedRateLimiter(rate: 1, burst: 5)

    /// Registers `address` for `connection` until `expiresAt`; false when the node is full.
    func open(_ address: Data, for connection: RelayConnection, expiresAt: UInt64) -> Bool {
        open.withLock { map in
            guard map.count < RelayProtocol.Limits.maxOpenProvisioningAddresses else { return false }
            map[address] = Entry(connection: connection, expiresAt: expiresAt)
            return true
        }
    }

    /// Takes `address` (at most once) if it is open and not expired at `now`.
    func take(_ address: Data, now: UInt64) -> RelayConnection? {
        open.withLock { map in
            guard let entry = map.removeValue(forKey: address) else { return nil }
            return entry.expiresAt > now && !entry.connection.isClosed ? entry.connection : nil
        }
    }

    /// Forgets `address` if `connection` still holds it (its connection closed or expired).
    func close(_ address: Data, for connection: RelayConnection) {
        open.withLock { map in
            if map[address]?.connection === connection { map[address] = nil }
        }
    }

    /// Addresses open now (for tests).
    var count: Int { open.withLock { $0.count } }
}

/// Several devices per account (`Docs/spec/relay.md` §22): the device list, removal, and the
/// provisioning channel through which an existing device hands a new one an opaque,
/// end-to-end encrypted message. Handlers run on the connection's event loop.
extension RelayConnection {
    /// `ListDevices` (§22.1): the connection's own account's devices, ascending.
    func handleListDevices(_ m: RelayListDevices, _ me: DeviceAddress) {
        let rid = m.requestID
        let store = relay.store, account = me.account
        storeWork({ () async throws(RelayStoreError) -> [DeviceRecord] in try await store.devices(account: account) }) { [self] result in
            switch result {
            case .success(let devices):
                var s = RelayStanza()
                s.deviceList.requestID = rid
                s.deviceList.devices = devices.sorted { $0.deviceID < $1.deviceID }.map { d in
                    var info = RelayDeviceInfo()
                    info.deviceID = d.deviceID
                    info.staticKey = d.staticKey
                    info.registrationID = d.registrationID
                    return info
                }
                send(s)
            case .failure(let error):
                log(.error, "device list failed", ["error": "\(error)"])
                sendError(.internalError, requestID: rid)
            }
        }
    }

    /// Whether `requester` may remove `target` of its own account (§22.2 step 2): device 1
    /// removes any other device, any other device only itself.
    static func mayRemove(_ target: UInt32, requester: UInt32) -> Bool {
        requester == 1 ? target != 1 : target == requester
    }

    /// `RemoveDevice` (§22.2): the checks, the store's atomic removal, `Ok`, then the removed
    /// device's connection closed with 4008 here and (through the store's notice) on other nodes.
    func handleRemoveDevice(_ m: RelayRemoveDevice, _ me: DeviceAddress) {
        let rid = m.requestID, target = m.deviceID
        guard RelayProtocol.Limits.deviceIDs.contains(target) else { return sendError(.malformedStanza, requestID: rid) }
        guard Self.mayRemove(target, requester: me.deviceID) else { return sendError(.deviceRemovalForbidden, requestID: rid) }
        let store = relay.store, account = me.account
        storeWork({ () async throws(RelayStoreError) -> Int in try await store.removeDevice(account: account, deviceID: target) }) { [self] result in
            switch result {
            case .success(let deleted):
                relay.metrics.devicesRemoved.increment()
                log(.info, "device removed", ["device": "\(target)", "queued_deleted": "\(deleted)"])
                var s = RelayStanza()
                s.ok.requestID = rid
                send(s)
                let removed = DeviceAddress(account: account, deviceID: target)
                if removed == me {
                    flush()
                    close(.deviceRemoved)
                } else {
                    relay.deviceRemoved(removed)
                }
            case .failure(.unknownDevice), .failure(.unknownAccount):
                sendError(.unknownDevice, requestID: rid, deviceID: target)
                // No such device (any more: e.g. a retried removal that had applied): no
                // connection may stay logged in as it.
                relay.deviceRemoved(DeviceAddress(account: account, deviceID: target))
            case .failure(let error):
                log(.error, "device removal failed", ["error": "\(error)"])
                sendError(.internalError, requestID: rid)
            }
        }
    }

    /// `RequestLinkToken` (§22.4): device 1 only (`LINK_FORBIDDEN`); 16 random bytes whose
    /// SHA-256 the store keeps with the device id it reserves, for 10 minutes, single use (past
    /// 4 open tokens, or 16 devices with the open ones, the oldest is revoked).
    func handleRequestLinkToken(_ m: RelayRequestLinkToken, _ me: DeviceAddress) {
        let rid = m.requestID
        guard me.deviceID == 1 else { return sendError(.linkForbidden, requestID: rid) }
        var token = [UInt8](repeating: 0, count: RelayProtocol.Limits.linkTokenLength)
        let random = relay.configuration.random
        let filled = token.withUnsafeMutableBytes { buffer in (try? random.fill(buffer)) != nil }
        guard filled else {
            log(.error, "no randomness for a link token")
            return sendError(.internalError, requestID: rid)
        }
        let now = relay.configuration.clock()
        let expires = now + RelayProtocol.Limits.linkTokenLifetimeMilliseconds
        let hash = Data(SHA256.hash(token))
        // The relay keeps only the hash; its copy of the token lives until the answer is sent.
        let answer = Data(token)
        SecureBytes.wipe(&token)
        let issue = LinkTokenIssue(account: me.account, tokenHash: hash, now: now, expiresAt: expires,
                                   maxDevices: RelayProtocol.Limits.maxDevicesPerAccount,
                                   maxOpenTokens: RelayProtocol.Limits.maxOpenLinkTokens)
        let store = relay.store
        storeWork({ () async throws(RelayStoreError) -> UInt32 in try await store.issueLinkToken(issue) }) { [self] result in
            switch result {
            case .success(let deviceID):
                relay.metrics.linkTokensIssued.increment()
                log(.info, "link token issued", ["device": "\(deviceID)"])
                var s = RelayStanza()
                s.linkToken.requestID = rid
                s.linkToken.token = answer
                s.linkToken.deviceID = deviceID
                s.linkToken.expiresAt = expires
                send(s)
            case .failure(.tooManyDevices): sendError(.tooManyDevices, requestID: rid)
            case .failure(let error):
                log(.error, "link token failed", ["error": "\(error)"])
                sendError(.internalError, requestID: rid)
            }
        }
    }

    /// `OpenProvisioning` (§22.3 step 1), on an anonymous connection: a fresh 16-byte address
    /// for 10 minutes (the same one again while it is open), after which the connection is
    /// closed with 4009.
    func handleOpenProvisioning(_ m: RelayOpenProvisioning) {
        let rid = m.requestID
        let now = relay.configuration.clock()
        if provisioningAddress == nil {
            var bytes = [UInt8](repeating: 0, count: RelayProtocol.Limits.provisioningAddressLength)
            let random = relay.configuration.random
            let filled = bytes.withUnsafeMutableBytes { buffer in (try? random.fill(buffer)) != nil }
            guard filled else {
                log(.error, "no randomness for a provisioning address")
                return sendError(.internalError, requestID: rid)
            }
            let address = Data(bytes)
            let lifetime = relay.configuration.provisioningLifetimeMilliseconds
            let expires = now + lifetime
            guard relay.provisioning.open(address, for: self, expiresAt: expires) else { return sendError(.unavailable, requestID: rid) }
            provisioningAddress = address
            provisioningExpiresAt = expires
            relay.metrics.provisioningOpened.increment()
            if let context {
                provisioningTimer?.cancel()
                provisioningTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(lifetime))) { [self] in
                    close(.provisioningExpired)
                    flush()
                }
            }
        }
        var s = RelayStanza()
        s.provisioningAddress.requestID = rid
        s.provisioningAddress.address = provisioningAddress ?? Data()
        s.provisioningAddress.expiresAt = provisioningExpiresAt
        send(s)
    }

    /// `SendProvisioning` (§22.3 step 3): the checks in order, then the body handed once to the
    /// address's connection as `ProvisioningMessage`, the address closed, and `Ok`.
    func handleSendProvisioning(_ m: RelaySendProvisioning, _ me: DeviceAddress) {
        let rid = m.requestID
        guard m.address.count == RelayProtocol.Limits.provisioningAddressLength, !m.body.isEmpty else {
            return sendError(.malformedStanza, requestID: rid)
        }
        guard m.body.count <= RelayProtocol.Limits.maxProvisioningBody else { return sendError(.payloadTooLarge, requestID: rid) }
        let now = relay.configuration.clock()
        guard relay.provisioning.limiter.take(me.description, now: now) else { return sendError(.rateLimited, requestID: rid) }
        let body = m.body, address = m.address
        guard let target = relay.provisioning.take(address, now: now) else {
            // Several nodes: another may hold it; it is forwarded and answered Ok (§22.3).
            let cluster = relay.configuration.cluster
            guard cluster.deliversByStoreRead else { return sendError(.unknownProvisioningAddress, requestID: rid) }
            offLoop({ await cluster.forwardProvisioning(address: address, body: body) }) { [self] forwarded in
                guard forwarded else { return sendError(.unknownProvisioningAddress, requestID: rid) }
                answerOK(rid)
            }
            return
        }
        target.eventLoop.execute {
            target.deliverProvisioning(body)
        }
        relay.metrics.provisioningSent.increment()
        answerOK(rid)
    }

    private func answerOK(_ rid: UInt32) {
        var s = RelayStanza()
        s.ok.requestID = rid
        send(s)
    }

    /// On the provisioning connection's loop: sends its one `ProvisioningMessage`.
    func deliverProvisioning(_ body: Data) {
        guard phase == .anonymous else { return }
        // Its address is used: the connection is an ordinary anonymous one again (no 4009).
        provisioningAddress = nil
        provisioningTimer?.cancel()
        provisioningTimer = nil
        var s = RelayStanza()
        s.provisioningMessage.body = body
        send(s)
        flush()
    }

    /// The connection ends or closes: its address, if any, is no longer open.
    func endProvisioning() {
        provisioningTimer?.cancel()
        provisioningTimer = nil
        if let address = provisioningAddress {
            relay.provisioning.close(address, for: self)
            provisioningAddress = nil
        }
    }
}
