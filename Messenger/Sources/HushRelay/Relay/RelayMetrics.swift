import CoreMetrics
import Metrics
import HushTransport

/// The relay's metrics (swift-metrics; exported by `/metrics` through swift-prometheus).
/// Names and labels are listed in `Docs/spec/relay.md` §10. No label carries an account,
/// key or payload.
struct RelayMetrics: Sendable {
    let connectionsOpened = Counter(label: "hush_relay_connections_total")
    let connectionsOpen = Meter(label: "hush_relay_connections_open")
    let devicesOnline = Meter(label: "hush_relay_devices_online")
    let messagesStored = Counter(label: "hush_relay_messages_stored_total")
    /// Of those, stored by sealed sends (spec §20): counted, never attributed.
    let sealedStored = Counter(label: "hush_relay_sealed_messages_stored_total")
    /// Of those, copies stored by multi-recipient sends (spec §21), one per device.
    let multiCopiesStored = Counter(label: "hush_relay_multi_copies_stored_total")
    let duplicates = Counter(label: "hush_relay_messages_duplicate_total")
    let acks = Counter(label: "hush_relay_acks_total")
    let delivered = Counter(label: "hush_relay_messages_delivered_total")
    let purged = Counter(label: "hush_relay_messages_purged_total")
    /// Devices removed from their accounts (spec §22.2).
    let devicesRemoved = Counter(label: "hush_relay_devices_removed_total")
    /// Provisioning addresses opened and messages forwarded to one (spec §22.3).
    let provisioningOpened = Counter(label: "hush_relay_provisioning_opened_total")
    let provisioningSent = Counter(label: "hush_relay_provisioning_sent_total")
    /// Link tokens issued (spec §22.4).
    let linkTokensIssued = Counter(label: "hush_relay_link_tokens_issued_total")
    let commitLatency = Timer(label: "hush_relay_commit_seconds")
    let handshakeLatency = Timer(label: "hush_relay_handshake_seconds")

    func handshake(_ pattern: String, _ result: String) {
        Counter(label: "hush_relay_handshakes_total", dimensions: [("pattern", pattern), ("result", result)]).increment()
    }

    /// Stanza kinds (``RelayStanza/kind``) and "malformed"; counters are made once, not per stanza.
    static let kinds = RelayStanza.kinds + ["malformed"]
    let inbound: [String: Counter] = Dictionary(uniqueKeysWithValues: kinds.map {
        ($0, Counter(label: "hush_relay_stanzas_in_total", dimensions: [("type", $0)]))
    })
    let outbound: [String: Counter] = Dictionary(uniqueKeysWithValues: kinds.map {
        ($0, Counter(label: "hush_relay_stanzas_out_total", dimensions: [("type", $0)]))
    })

    func stanzaIn(_ kind: String) { inbound[kind]?.increment() }
    func stanzaOut(_ kind: String) { outbound[kind]?.increment() }
    func error(_ code: RelayErrorCodeName) { Counter(label: "hush_relay_errors_total", dimensions: [("code", code.name)]).increment() }
    func closed(_ code: UInt16) { Counter(label: "hush_relay_closes_total", dimensions: [("code", String(code))]).increment() }
}

struct RelayErrorCodeName {
    let name: String
}
