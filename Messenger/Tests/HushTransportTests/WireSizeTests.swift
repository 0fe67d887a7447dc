import Foundation
import Hush
import HushNoise
import Testing
@testable import HushTransport

/// The byte costs of Docs/spec/relay.md §13.
@Suite struct WireSizeTests {
    static func send(_ payload: Data) -> RelayStanza {
        var m = RelaySend()
        m.clientMessageID = 1
        m.account = "bob"
        m.devices = [1]
        m.payload = payload
        var s = RelayStanza()
        s.send = m
        return s
    }

    static func deliver(_ payload: Data) -> RelayStanza {
        var d = RelayDeliver()
        d.serverID = 1_000_000          // below 2^21: a 3-byte varint
        d.senderAccount = "alice"
        d.senderDevice = 1
        d.serverTime = 1_800_000_000_000
        d.payload = payload
        var s = RelayStanza()
        s.deliver = d
        return s
    }

    /// RFC 6455 §5.2 header: 2 bytes, +2 for 126...65535, +4 mask for client frames.
    static func webSocketHeader(_ length: Int, client: Bool) -> Int {
        (length < 126 ? 2 : 4) + (client ? 4 : 0)
    }

    @Test func hello() throws {
        let payload = Data("hello".utf8)
        let send = try StanzaCodec.encode(Self.send(payload)).count
        let deliver = try StanzaCodec.encode(Self.deliver(payload)).count
        #expect(send == 19)
        #expect(deliver == 29)
        let sendWire = send + NoiseLimits.tagLength + Self.webSocketHeader(send + 16, client: true)
        let deliverWire = deliver + NoiseLimits.tagLength + Self.webSocketHeader(deliver + 16, client: false)
        #expect(sendWire == 41)
        #expect(deliverWire == 47)
    }

    @Test func sealedHello() throws {
        // A hush-1 "hello" in a sealed envelope is 371 bytes (Docs/spec/envelope.md §9).
        let payload = Data(repeating: 0xE1, count: 371)
        let send = try StanzaCodec.encode(Self.send(payload)).count
        let deliver = try StanzaCodec.encode(Self.deliver(payload)).count
        let sendWire = send + NoiseLimits.tagLength + Self.webSocketHeader(send + 16, client: true)
        let deliverWire = deliver + NoiseLimits.tagLength + Self.webSocketHeader(deliver + 16, client: false)
        #expect(send == 387)
        #expect(deliver == 397)
        #expect(sendWire == 411)
        #expect(deliverWire == 417)
    }
}
