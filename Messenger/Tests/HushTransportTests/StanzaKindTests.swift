import HushTransport
import Testing

/// Every stanza body has a kind in `RelayStanza.kinds` (the relay counts stanzas per kind from
/// that list: a kind missing from it would silently not be counted).
@Suite struct StanzaKindTests {
    @Test func everyBodyHasAListedKind() {
        let bodies: [RelayStanza.OneOf_Body] = [
            .send(.init()), .ack(.init()), .uploadPrekeys(.init()), .fetchPrekeys(.init()), .ping(.init()), .deliver(.init()),
            .serverAck(.init()), .queueEmpty(.init()), .welcome(.init()), .error(.init()), .ok(.init()), .prekeyBundles(.init()),
            .prekeysLow(.init()), .pong(.init()), .getSenderCertificate(.init()), .senderCertificate(.init()),
            .setPresencePrivacy(.init()), .subscribePresence(.init()), .presence(.init()), .sendEphemeral(.init()),
            .deliverEphemeral(.init()), .requestMediaUpload(.init()), .mediaUploadGranted(.init()), .setSealedAccess(.init()),
            .sealedSend(.init()), .multiSend(.init()), .listDevices(.init()), .deviceList(.init()), .removeDevice(.init()),
            .openProvisioning(.init()), .provisioningAddress(.init()), .sendProvisioning(.init()), .provisioningMessage(.init()),
            .requestLinkToken(.init()), .linkToken(.init()),
        ]
        var seen = Set<String>()
        for body in bodies {
            var s = RelayStanza()
            s.body = body
            #expect(RelayStanza.kinds.contains(s.kind), "\(s.kind)")
            seen.insert(s.kind)
        }
        #expect(seen.count == bodies.count)  // distinct
        #expect(Set(RelayStanza.kinds) == seen.union(["none"]))
        #expect(RelayStanza().kind == "none")
    }
}
