import Hush

/// What a prepared one-to-one outbox item carries (`Docs/client.md` §Several devices, §Store):
/// the encoded content, kept (sealed on disk like every payload) until the relay acks the item so
/// that a device the relay reports as missing can still be encrypted for, and one sealed envelope
/// per recipient device — the `Send.payloads` (relay spec §7.1) of one stanza.
///
/// ```
/// payload = 0xF1 || varint(len(content)) || content
///           || varint(n) || n × (varint(device) || varint(len(inner)) || inner || varint(len(envelope)) || envelope)
/// ```
/// `inner` is the copy's ``SessionCiphertext`` encoding (for re-sealing), `envelope` the sealed
/// envelope sent to that device; 1 ≤ n ≤ 16 distinct devices, each 1 … 2^31−1; content ≥ 1 byte.
/// The item's `devices` column lists the same devices in the same order, its `inner` is NULL.
/// The type byte 0xF1 is neither a sealed envelope (0xE1) nor a content type, so a deferred
/// item (devices empty, payload the content) and a receipt (payload an envelope) never decode as
/// one. Any input yields a value or nil.
public struct FanOutPayload: Equatable, Sendable {
    /// One device's copy.
    public struct Copy: Equatable, Sendable {
        /// The recipient device.
        public var device: UInt32
        /// The session message sealed in ``envelope`` and its certificate's expiration.
        public var inner: SessionCiphertext
        /// The sealed envelope (`DevicePayload.payload`).
        public var envelope: [UInt8]

        public init(device: UInt32, inner: SessionCiphertext, envelope: [UInt8]) {
            self.device = device
            self.inner = inner
            self.envelope = envelope
        }
    }

    /// The type byte.
    public static let type: UInt8 = 0xF1

    /// The encoded ``MessageContent`` every copy carries.
    public var content: [UInt8]
    /// The copies, in `payloads` order.
    public var copies: [Copy]

    public init(content: [UInt8], copies: [Copy]) {
        self.content = content
        self.copies = copies
    }

    /// The devices, in order.
    public var devices: [UInt32] { copies.map(\.device) }

    /// The earliest expiration of the certificates sealed into the copies.
    public var earliestExpiration: UInt64 { copies.map(\.inner.certificateExpiration).min() ?? 0 }

    /// The encoding (above).
    public var encoded: [UInt8] {
        var out: [UInt8] = [Self.type]
        Varint.append(UInt64(content.count), to: &out)
        out += content
        Varint.append(UInt64(copies.count), to: &out)
        for c in copies {
            Varint.append(UInt64(c.device), to: &out)
            let inner = c.inner.encoded
            Varint.append(UInt64(inner.count), to: &out)
            out += inner
            Varint.append(UInt64(c.envelope.count), to: &out)
            out += c.envelope
        }
        return out
    }

    /// Decodes the encoding; nil for anything else.
    public init?(decoding bytes: [UInt8]) {
        guard bytes.first == Self.type else { return nil }
        var r = Varint.Reader(bytes: bytes, offset: 1)
        func field() -> [UInt8]? {
            guard let length = try? r.read(), length <= UInt64(bytes.count - r.offset) else { return nil }
            defer { r.offset += Int(length) }
            return Array(bytes[r.offset..<r.offset + Int(length)])
        }
        guard let content = field(), !content.isEmpty else { return nil }
        guard let n = try? r.read(), (1...UInt64(RelayLimits.devices)).contains(n) else { return nil }
        var copies: [Copy] = []
        for _ in 0..<n {
            guard let d = try? r.read(), (1...UInt64(Int32.max)).contains(d), !copies.contains(where: { $0.device == UInt32(d) }),
                  let innerBytes = field(), let inner = try? SessionCiphertext(decoding: innerBytes),
                  let envelope = field(), !envelope.isEmpty else { return nil }
            copies.append(Copy(device: UInt32(d), inner: inner, envelope: envelope))
        }
        guard r.offset == bytes.count else { return nil }
        self.content = content
        self.copies = copies
    }

    enum RelayLimits { static let devices = 16 }
}
