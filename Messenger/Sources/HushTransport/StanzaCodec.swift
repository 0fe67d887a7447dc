import SwiftProtobuf

/// Encoding and decoding of ``RelayStanza`` (`Docs/spec/relay.md` §6). Any byte string
/// decodes to a stanza with a body or throws ``TransportError``.
public enum StanzaCodec {
    /// Encodes `stanza`; throws when it exceeds ``RelayProtocol/Limits/maxStanza``.
    public static func encode(_ stanza: RelayStanza) throws(TransportError) -> [UInt8] {
        let bytes: [UInt8]
        do { bytes = try stanza.serializedBytes() } catch { throw .malformedStanza(reason: "encode: \(error)") }
        guard bytes.count <= RelayProtocol.Limits.maxStanza else {
            throw .tooLarge(length: bytes.count, limit: RelayProtocol.Limits.maxStanza)
        }
        return bytes
    }

    /// Decodes one stanza. A stanza without a (known) body is malformed.
    public static func decode(_ bytes: [UInt8]) throws(TransportError) -> RelayStanza {
        guard bytes.count <= RelayProtocol.Limits.maxStanza else {
            throw .tooLarge(length: bytes.count, limit: RelayProtocol.Limits.maxStanza)
        }
        let stanza: RelayStanza
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 8
            options.discardUnknownFields = true
            stanza = try RelayStanza(serializedBytes: bytes, options: options)
        } catch {
            throw .malformedStanza(reason: "\(error)")
        }
        guard stanza.body != nil else { throw .malformedStanza(reason: "no body") }
        return stanza
    }
}

extension RelayStanza {
    /// Every value of ``kind``, "none" included (the relay makes its per-kind counters from it).
    public static let kinds = [
        "send", "ack", "upload_prekeys", "fetch_prekeys", "ping", "deliver", "server_ack", "queue_empty", "welcome", "error",
        "ok", "prekey_bundles", "prekeys_low", "pong", "get_sender_certificate", "sender_certificate", "set_presence_privacy",
        "subscribe_presence", "presence", "send_ephemeral", "deliver_ephemeral", "request_media_upload", "media_upload_granted",
        "set_sealed_access", "sealed_send", "multi_send", "list_devices", "device_list", "remove_device", "open_provisioning",
        "provisioning_address", "send_provisioning", "provisioning_message", "request_link_token", "link_token", "none",
    ]

    /// The stanza's kind, for metrics and logs (never its contents).
    public var kind: String {
        switch body {
        case .send: "send"
        case .ack: "ack"
        case .uploadPrekeys: "upload_prekeys"
        case .fetchPrekeys: "fetch_prekeys"
        case .ping: "ping"
        case .deliver: "deliver"
        case .serverAck: "server_ack"
        case .queueEmpty: "queue_empty"
        case .welcome: "welcome"
        case .error: "error"
        case .ok: "ok"
        case .prekeyBundles: "prekey_bundles"
        case .prekeysLow: "prekeys_low"
        case .pong: "pong"
        case .getSenderCertificate: "get_sender_certificate"
        case .senderCertificate: "sender_certificate"
        case .setPresencePrivacy: "set_presence_privacy"
        case .subscribePresence: "subscribe_presence"
        case .presence: "presence"
        case .sendEphemeral: "send_ephemeral"
        case .deliverEphemeral: "deliver_ephemeral"
        case .requestMediaUpload: "request_media_upload"
        case .mediaUploadGranted: "media_upload_granted"
        case .setSealedAccess: "set_sealed_access"
        case .sealedSend: "sealed_send"
        case .multiSend: "multi_send"
        case .listDevices: "list_devices"
        case .deviceList: "device_list"
        case .removeDevice: "remove_device"
        case .openProvisioning: "open_provisioning"
        case .provisioningAddress: "provisioning_address"
        case .sendProvisioning: "send_provisioning"
        case .provisioningMessage: "provisioning_message"
        case .requestLinkToken: "request_link_token"
        case .linkToken: "link_token"
        case nil: "none"
        }
    }

    /// An `Error` stanza.
    public static func error(_ code: RelayErrorCode, requestID: UInt32 = 0, clientMessageID: UInt64 = 0, deviceID: UInt32 = 0,
                             account: String = "", missing: [UInt32] = [], extra: [UInt32] = []) -> RelayStanza {
        var e = RelayError()
        e.code = code
        e.requestID = requestID
        e.clientMessageID = clientMessageID
        e.deviceID = deviceID
        e.account = account
        e.missing = missing
        e.extra = extra
        var s = RelayStanza()
        s.body = .error(e)
        return s
    }
}
