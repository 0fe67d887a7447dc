import Foundation
import Hush
import HushTransport
import Logging
import Synchronization

/// The relay's services beyond messaging — sender certificates (§16), presence (§17) and
/// ephemeral messages (§18) — with their rate limits. One per ``Relay``.
final class RelayServices: Sendable {
    let presence: PresenceHub
    let certificates: SenderCertificateAuthority?
    let certificateLimiter = KeyedRateLimiter(rate: RelayProtocol.ServiceLimits.senderCertificateRate,
                                              burst: RelayProtocol.ServiceLimits.senderCertificateBurst)
    let presenceLimiter = KeyedRateLimiter(rate: RelayProtocol.ServiceLimits.presenceRate,
                                           burst: RelayProtocol.ServiceLimits.presenceBurst)
    let ephemeralLimiter = KeyedRateLimiter(rate: RelayProtocol.ServiceLimits.ephemeralRate,
                                            burst: RelayProtocol.ServiceLimits.ephemeralBurst)
    /// Ephemeral writes in progress per recipient connection.
    private let ephemeralInFlight = Mutex<[UInt64: Int]>([:])

    init(presenceStore: any PresenceStore, certificates: SenderCertificateAuthority?,
         clock: @escaping @Sendable () -> UInt64, logger: Logger) {
        presence = PresenceHub(store: presenceStore, clock: clock, logger: logger)
        self.certificates = certificates
    }

    /// Reserves a write slot towards `connection`; false when it has too many in flight.
    func reserveEphemeral(_ connection: RelayConnection) -> Bool {
        ephemeralInFlight.withLock { m in
            let n = m[connection.id, default: 0]
            guard n < RelayProtocol.ServiceLimits.maxEphemeralInFlight else { return false }
            m[connection.id] = n + 1
            return true
        }
    }

    func releaseEphemeral(_ connection: RelayConnection) {
        ephemeralInFlight.withLock { m in
            let n = m[connection.id, default: 1] - 1
            m[connection.id] = n > 0 ? n : nil
        }
    }
}

extension RelayConnection {
    // MARK: sender certificates (§16)

    func handleGetSenderCertificate(_ g: RelayGetSenderCertificate, _ me: DeviceAddress) async {
        let rid = g.requestID
        let services = relay.services
        guard let authority = services.certificates else { await sendError(.unavailable, requestID: rid); return }
        let now = relay.configuration.clock()
        guard services.certificateLimiter.take(me.description, now: now) else { await sendError(.rateLimited, requestID: rid); return }
        guard let identity = state.withLock({ $0.identityKey }) else { await sendError(.internalError, requestID: rid); return }
        let certificate: SenderCertificate
        do { certificate = try authority.issue(account: me.account, deviceID: me.deviceID, identityKey: identity, now: now) } catch {
            logger.error("sender certificate not issued", metadata: ["error": "\(error)"])
            await sendError(.unavailable, requestID: rid)
            return
        }
        var s = RelayStanza()
        s.senderCertificate.requestID = rid
        s.senderCertificate.certificate = Data(certificate.serialized)
        s.senderCertificate.expiration = certificate.expiration
        await send(s)
    }

    // MARK: presence (§17)

    private static func validList(_ names: [String], max: Int) -> RelayErrorCode? {
        guard names.count <= max else { return .listTooLong }
        guard Set(names).count == names.count else { return .malformedStanza }
        guard names.allSatisfy(DeviceBinding.isValidAccountName) else { return .invalidAccountName }
        return nil
    }

    func handleSetPresencePrivacy(_ p: RelaySetPresencePrivacy, _ me: DeviceAddress) async {
        let rid = p.requestID
        let services = relay.services
        guard services.presenceLimiter.take(me.account, now: relay.configuration.clock()) else {
            await sendError(.rateLimited, requestID: rid)
            return
        }
        let visibility: PresenceVisibility
        switch p.visibility {
        case .presenceEveryone: visibility = .everyone
        case .presenceContacts: visibility = .contacts
        case .presenceNobody: visibility = .nobody
        case .UNRECOGNIZED: await sendError(.malformedStanza, requestID: rid); return
        }
        if let code = Self.validList(p.allowed, max: RelayProtocol.ServiceLimits.maxPresenceAllowList) {
            await sendError(code, requestID: rid)
            return
        }
        do {
            try await services.presence.setPrivacy(me.account, PresencePrivacy(visibility: visibility, allowed: Set(p.allowed)))
        } catch {
            logger.error("presence privacy write failed", metadata: ["error": "\(error)"])
            await sendError(.internalError, requestID: rid)
            return
        }
        var s = RelayStanza()
        s.ok.requestID = rid
        await send(s)
    }

    func handleSubscribePresence(_ p: RelaySubscribePresence, _ me: DeviceAddress) async {
        let rid = p.requestID
        let services = relay.services
        guard services.presenceLimiter.take(me.account, now: relay.configuration.clock()) else {
            await sendError(.rateLimited, requestID: rid)
            return
        }
        if let code = Self.validList(p.accounts, max: RelayProtocol.ServiceLimits.maxPresenceSubscriptions) {
            await sendError(code, requestID: rid)
            return
        }
        // Ok first, then the current presence of each account (in request order).
        var s = RelayStanza()
        s.ok.requestID = rid
        await send(s)
        await services.presence.subscribe(self, viewer: me.account, accounts: p.accounts)
    }

    // MARK: ephemeral (§18)

    func handleSendEphemeral(_ e: RelaySendEphemeral, _ me: DeviceAddress) async {
        let limits = RelayProtocol.ServiceLimits.self
        guard e.devices.count <= RelayProtocol.Limits.maxDevicesPerRequest, Set(e.devices).count == e.devices.count else {
            await sendError(.malformedStanza)
            return
        }
        guard e.payload.count <= limits.maxEphemeralPayload else { await sendError(.payloadTooLarge); return }
        guard DeviceBinding.isValidAccountName(e.account) else { await sendError(.invalidAccountName); return }
        let services = relay.services
        let now = relay.configuration.clock()
        guard services.ephemeralLimiter.take(me.description, now: now) else { await sendError(.rateLimited); return }
        let wanted = Set(e.devices)
        let targets = services.presence.connections(of: e.account).filter { c in
            guard case .device(let a) = c.phase else { return false }
            return wanted.isEmpty || wanted.contains(a.deviceID)
        }
        guard !targets.isEmpty else { return }  // nobody online: dropped, never queued
        var d = RelayDeliverEphemeral()
        d.senderAccount = me.account
        d.senderDevice = me.deviceID
        d.serverTime = now
        d.payload = e.payload
        var s = RelayStanza()
        s.deliverEphemeral = d
        for c in targets where c !== self {
            guard services.reserveEphemeral(c) else { continue }  // a slow recipient: dropped
            Task {
                await c.send(s)
                services.releaseEphemeral(c)
            }
        }
    }
}
