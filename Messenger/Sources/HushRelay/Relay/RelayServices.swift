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

    init(presenceStore: any PresenceStore, certificates: SenderCertificateAuthority?,
         clock: @escaping @Sendable () -> UInt64, logger: Logger) {
        presence = PresenceHub(store: presenceStore, clock: clock, logger: logger)
        self.certificates = certificates
    }
}

extension RelayConnection {
    // MARK: sender certificates (§16)

    func handleGetSenderCertificate(_ g: RelayGetSenderCertificate, _ me: DeviceAddress) {
        let rid = g.requestID
        let services = relay.services
        guard let authority = services.certificates else { sendError(.unavailable, requestID: rid); return }
        let now = relay.configuration.clock()
        guard services.certificateLimiter.take(me.description, now: now) else { sendError(.rateLimited, requestID: rid); return }
        guard let identity = identityKey else { sendError(.internalError, requestID: rid); return }
        let certificate: SenderCertificate
        do { certificate = try authority.issue(account: me.account, deviceID: me.deviceID, identityKey: identity, now: now) } catch {
            log(.error, "sender certificate not issued", ["error": "\(error)"])
            sendError(.unavailable, requestID: rid)
            return
        }
        var s = RelayStanza()
        s.senderCertificate.requestID = rid
        s.senderCertificate.certificate = Data(certificate.serialized)
        s.senderCertificate.expiration = certificate.expiration
        send(s)
    }

    // MARK: presence (§17)

    private static func validList(_ names: [String], max: Int) -> RelayErrorCode? {
        guard names.count <= max else { return .listTooLong }
        guard Set(names).count == names.count else { return .malformedStanza }
        guard names.allSatisfy(DeviceBinding.isValidAccountName) else { return .invalidAccountName }
        return nil
    }

    func handleSetPresencePrivacy(_ p: RelaySetPresencePrivacy, _ me: DeviceAddress) {
        let rid = p.requestID
        let services = relay.services
        guard services.presenceLimiter.take(me.account, now: relay.configuration.clock()) else {
            sendError(.rateLimited, requestID: rid)
            return
        }
        let visibility: PresenceVisibility
        switch p.visibility {
        case .presenceEveryone: visibility = .everyone
        case .presenceContacts: visibility = .contacts
        case .presenceNobody: visibility = .nobody
        case .UNRECOGNIZED: sendError(.malformedStanza, requestID: rid); return
        }
        if let code = Self.validList(p.allowed, max: RelayProtocol.ServiceLimits.maxPresenceAllowList) {
            sendError(code, requestID: rid)
            return
        }
        let presence = services.presence, account = me.account
        let privacy = PresencePrivacy(visibility: visibility, allowed: Set(p.allowed))
        offLoop({ () async -> PresenceStoreError? in
            do throws(PresenceStoreError) { try await presence.setPrivacy(account, privacy); return nil } catch { return error }
        }) { [self] failure in
            if let failure {
                log(.error, "presence privacy write failed", ["error": "\(failure)"])
                sendError(.internalError, requestID: rid)
                return
            }
            var s = RelayStanza()
            s.ok.requestID = rid
            send(s)
        }
    }

    func handleSubscribePresence(_ p: RelaySubscribePresence, _ me: DeviceAddress) {
        let rid = p.requestID
        let services = relay.services
        guard services.presenceLimiter.take(me.account, now: relay.configuration.clock()) else {
            sendError(.rateLimited, requestID: rid)
            return
        }
        if let code = Self.validList(p.accounts, max: RelayProtocol.ServiceLimits.maxPresenceSubscriptions) {
            sendError(code, requestID: rid)
            return
        }
        // Ok first, then the current presence of each account (in request order).
        var s = RelayStanza()
        s.ok.requestID = rid
        send(s)
        let presence = services.presence, viewer = me.account, accounts = p.accounts
        offLoop({ [self] in await presence.subscribe(self, viewer: viewer, accounts: accounts) }) { _ in }
    }

    // MARK: ephemeral (§18)

    func handleSendEphemeral(_ e: RelaySendEphemeral, _ me: DeviceAddress) {
        let limits = RelayProtocol.ServiceLimits.self
        guard e.devices.count <= RelayProtocol.Limits.maxDevicesPerRequest, Set(e.devices).count == e.devices.count else {
            sendError(.malformedStanza)
            return
        }
        guard e.payload.count <= limits.maxEphemeralPayload else { sendError(.payloadTooLarge); return }
        guard DeviceBinding.isValidAccountName(e.account) else { sendError(.invalidAccountName); return }
        let services = relay.services
        let now = relay.configuration.clock()
        guard services.ephemeralLimiter.take(me.description, now: now) else { sendError(.rateLimited); return }
        let wanted = Set(e.devices)
        let targets = services.presence.connections(of: e.account).filter { wanted.isEmpty || wanted.contains($0.deviceID) }.map(\.connection)
        guard !targets.isEmpty else { return }  // nobody online: dropped, never queued
        var d = RelayDeliverEphemeral()
        d.senderAccount = me.account
        d.senderDevice = me.deviceID
        d.serverTime = now
        d.payload = e.payload
        var s = RelayStanza()
        s.deliverEphemeral = d
        let stanza = s
        for c in targets where c !== self {
            // A recipient whose socket is full (not reading) misses it: dropped, never queued.
            c.onLoopIfWritable { c, writable in if writable { c.send(stanza) } }
        }
    }
}
