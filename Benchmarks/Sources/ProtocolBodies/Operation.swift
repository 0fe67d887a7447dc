/// One benchmarked operation: `prepare(n)` sets up everything `n` operations need (outside
/// the timing) and returns the closure that performs them all (timed). `batch` is how many
/// operations a measurement should group so that caches are warm and timer overhead small.
public struct BenchOperation: Sendable {
    public let name: String
    public let prepare: @Sendable (Int) throws -> () throws -> Void

    public init(_ name: String, prepare: @escaping @Sendable (Int) throws -> () throws -> Void) {
        self.name = name
        self.prepare = prepare
    }

    /// Operations per measured sample.
    public var batch: Int {
        switch name {
        case "x3dh_initiator", "x3dh_responder", "x3dh_initiator_hush1", "x3dh_responder_hush1",
             "pqxdh_initiator", "pqxdh_responder", "pqxdh_initiator_hush1", "pqxdh_responder_hush1": return 20
        case "ping_pong", "ping_pong_hush1", "record_serialize_2000", "record_deserialize_2000": return 50
        case "xeddsa_sign", "xeddsa_verify", "senderkey_encrypt_100", "senderkey_decrypt_100", "roundtrip_64k", "roundtrip_64k_hush1",
             "envelope_seal", "envelope_open": return 100
        case "group_send_100_devices", "group_send_100_devices_cached", "pairwise_send_100_devices": return 1
        default: return 1000
        }
    }
}

/// BenchOperation names shared by every harness (Hush, the floor, libsignal-protocol-c, libolm).
public enum OperationName {
    public static let all = [
        "x3dh_initiator", "x3dh_responder", "encrypt_100", "decrypt_100", "ping_pong",
        "roundtrip_1k", "roundtrip_64k", "record_serialize_fresh", "record_deserialize_fresh",
        "record_serialize_2000", "record_deserialize_2000", "xeddsa_sign", "xeddsa_verify",
        "senderkey_encrypt_100", "senderkey_decrypt_100",
        "x3dh_initiator_hush1", "x3dh_responder_hush1", "encrypt_100_hush1", "decrypt_100_hush1", "ping_pong_hush1",
        "roundtrip_1k_hush1", "roundtrip_64k_hush1", "envelope_seal", "envelope_open",
        "pqxdh_initiator", "pqxdh_responder", "pqxdh_initiator_hush1", "pqxdh_responder_hush1",
    ]
}
