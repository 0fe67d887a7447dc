import Foundation
import Hush
import Testing
@testable import HushTransport

struct Fixture {
    let root = try! Curve25519.KeyAgreement.PrivateKey()
    let relay = try! Curve25519.KeyAgreement.PrivateKey()
    let device = try! Curve25519.KeyAgreement.PrivateKey()
    let now: UInt64 = 1_800_000_000
    var certificate: RelayCertificate {
        try! RelayCertificate.issue(keyID: 7, relayKey: relay.publicKey, notBefore: now - 10, notAfter: now + 10, trustRoot: root)
    }

    func login() -> RelayClientHello {
        var login = RelayLogin()
        login.account = "alice"
        login.deviceID = 1
        var hello = RelayClientHello()
        hello.action = .login(login)
        return hello
    }
}

@Suite struct HandshakeTests {
    func run(_ pattern: RelayProtocol.Pattern, _ f: Fixture, clientHello: RelayClientHello) throws
        -> (client: StanzaChannel, server: StanzaChannel, hello: RelayClientHello) {
        let clock: @Sendable () -> UInt64 = { [now = f.now] in now }
        var client = try ClientHandshake(pattern: pattern, deviceKey: pattern == .nk ? nil : f.device,
                                         relayKey: pattern == .xx ? nil : f.relay.publicKey, trustRoot: f.root.publicKey,
                                         hello: clientHello, now: clock)
        var server = ServerHandshake(relayKey: f.relay, certificate: f.certificate, serverTime: f.now)
        let m1 = try client.start()
        #expect(m1.first == pattern.rawValue)
        switch try server.receive(m1) {
        case .reply(let m2):
            #expect(pattern == .xx)
            let m3 = try #require(try client.receive(m2))
            guard case .finished(let reply, let hello, let channel) = try server.receive(m3) else { Issue.record("not finished"); throw TransportError.outOfOrder }
            #expect(reply == nil)
            return (try client.channel(), channel, hello)
        case .finished(let reply, let hello, let channel):
            #expect(pattern != .xx)
            #expect(try client.receive(reply!) == nil)
            return (try client.channel(), channel, hello)
        }
    }

    @Test(arguments: RelayProtocol.Pattern.allCases)
    func handshakeEstablishesChannel(pattern: RelayProtocol.Pattern) throws {
        let f = Fixture()
        var (client, server, hello) = try run(pattern, f, clientHello: pattern == .nk ? RelayClientHello() : f.login())
        #expect(hello.version == 1)
        #expect(hello.timestamp == f.now)
        if pattern == .nk {
            #expect(hello.action == nil)
            #expect(server.remoteStaticKey == nil)
        } else {
            #expect(hello.login.account == "alice")
            #expect(server.remoteStaticKey == f.device.publicKey)
        }
        #expect(client.remoteStaticKey == f.relay.publicKey)
        #expect(client.handshakeHash == server.handshakeHash)
        var ping = RelayStanza()
        ping.ping.requestID = 9
        let wire = try client.sender.seal(ping)
        #expect(wire.count == 4 + 16)   // 2A 02 08 09, then the Noise tag
        #expect(try server.receiver.open(wire) == ping)
        let back = try server.sender.seal(.error(.queueFull, deviceID: 3))
        #expect(try client.receiver.open(back) == .error(.queueFull, deviceID: 3))
    }

    @Test func wrongTrustRootIsRejected() throws {
        let f = Fixture()
        let other = try Curve25519.KeyAgreement.PrivateKey()
        var client = try ClientHandshake(pattern: .xx, deviceKey: f.device, relayKey: nil, trustRoot: other.publicKey,
                                         hello: f.login(), now: { 1_800_000_000 })
        var server = ServerHandshake(relayKey: f.relay, certificate: f.certificate, serverTime: f.now)
        guard case .reply(let m2) = try server.receive(try client.start()) else { Issue.record("expected reply"); return }
        #expect(throws: TransportError.certificate(.badSignature)) { _ = try client.receive(m2) }
    }

    @Test func expiredCertificateIsRejected() throws {
        let f = Fixture()
        var client = try ClientHandshake(pattern: .ik, deviceKey: f.device, relayKey: f.relay.publicKey, trustRoot: f.root.publicKey,
                                         hello: f.login(), now: { 1_800_000_011 })
        var server = ServerHandshake(relayKey: f.relay, certificate: f.certificate, serverTime: f.now)
        guard case .finished(let reply?, _, _) = try server.receive(try client.start()) else { Issue.record("expected finish"); return }
        #expect(throws: TransportError.certificate(.expired(now: 1_800_000_011, notBefore: f.now - 10, notAfter: f.now + 10))) {
            _ = try client.receive(reply)
        }
    }

    @Test func certificateForAnotherKeyIsRejected() throws {
        let f = Fixture()
        let impostor = try Curve25519.KeyAgreement.PrivateKey()
        var client = try ClientHandshake(pattern: .xx, deviceKey: f.device, relayKey: nil, trustRoot: f.root.publicKey,
                                         hello: f.login(), now: { 1_800_000_000 })
        // The impostor relay presents the genuine certificate of another key.
        var server = ServerHandshake(relayKey: impostor, certificate: f.certificate, serverTime: f.now)
        guard case .reply(let m2) = try server.receive(try client.start()) else { Issue.record("expected reply"); return }
        #expect(throws: TransportError.certificate(.keyMismatch)) { _ = try client.receive(m2) }
    }

    @Test func ikWithWrongRelayKeyFailsAtTheRelay() throws {
        let f = Fixture()
        let stale = try Curve25519.KeyAgreement.PrivateKey()
        var client = try ClientHandshake(pattern: .ik, deviceKey: f.device, relayKey: stale.publicKey, trustRoot: f.root.publicKey,
                                         hello: f.login())
        var server = ServerHandshake(relayKey: f.relay, certificate: f.certificate, serverTime: f.now)
        #expect(throws: TransportError.decryptFailed) { _ = try server.receive(try client.start()) }
    }

    @Test func unknownPatternByte() {
        let f = Fixture()
        var server = ServerHandshake(relayKey: f.relay, certificate: f.certificate, serverTime: f.now)
        #expect(throws: TransportError.unknownPattern(0x09)) { _ = try server.receive([0x09, 1, 2]) }
        var empty = ServerHandshake(relayKey: f.relay, certificate: f.certificate, serverTime: f.now)
        #expect(throws: TransportError.unknownPattern(nil)) { _ = try empty.receive([]) }
    }

    @Test func truncatedFirstMessage() {
        let f = Fixture()
        var server = ServerHandshake(relayKey: f.relay, certificate: f.certificate, serverTime: f.now)
        #expect(throws: TransportError.handshakeFailed(reason: "messageTooShort(length: 10, minimum: 96)")) {
            _ = try server.receive([0x02] + [UInt8](repeating: 1, count: 10))
        }
    }

    @Test func tamperedTransportMessageFailsWithoutAdvancing() throws {
        let f = Fixture()
        var (client, server, _) = try run(.ik, f, clientHello: f.login())
        var s = RelayStanza()
        s.ping.requestID = 1
        var wire = try client.sender.seal(s)
        wire[0] ^= 1
        #expect(throws: TransportError.decryptFailed) { _ = try server.receiver.open(wire) }
        wire[0] ^= 1
        #expect(try server.receiver.open(wire) == s)
    }
}

@Suite struct CertificateTests {
    @Test func layout() throws {
        let f = Fixture()
        let c = f.certificate
        #expect(c.serialized.count == 117)
        #expect(c.serialized[0] == 1)
        #expect(Array(c.serialized[1..<5]) == [0, 0, 0, 7])
        #expect(Array(c.serialized[21..<53]) == f.relay.publicKey.rawRepresentation)
        let parsed = try RelayCertificate(serialized: c.serialized)
        #expect(parsed == c)
        #expect(parsed.notBefore == f.now - 10)
        try parsed.validate(trustRoot: f.root.publicKey, now: f.now, handshakeKey: f.relay.publicKey)
        #expect(XEdDSA.isValidSignature(c.signature, for: Array("hush-relay/1 certificate".utf8) + c.serialized[0..<53],
                                        publicKey: f.root.publicKey, policy: .specificationOnly))
    }

    @Test func malformed() {
        #expect(throws: RelayCertificate.Error.wrongLength(3)) { try RelayCertificate(serialized: [1, 2, 3]) }
        #expect(throws: RelayCertificate.Error.unsupportedVersion(2)) { try RelayCertificate(serialized: [2] + [UInt8](repeating: 0, count: 116)) }
        var bytes = Fixture().certificate.serialized
        bytes[30] ^= 0x01
        #expect(throws: RelayCertificate.Error.badSignature) {
            try RelayCertificate(serialized: bytes).validate(trustRoot: Fixture().root.publicKey, now: 0)
        }
    }
}

@Suite struct DeviceBindingTests {
    @Test func messageLayoutAndSignature() throws {
        let id = try Curve25519.KeyAgreement.PrivateKey()
        let dev = try Curve25519.KeyAgreement.PrivateKey()
        let m = DeviceBinding.message(account: "bob", deviceID: 258, deviceKey: dev.publicKey)
        #expect(m == Array("hush-relay/1 device".utf8) + [3] + Array("bob".utf8) + [0, 0, 1, 2] + dev.publicKey.rawRepresentation)
        let sig = try DeviceBinding.sign(account: "bob", deviceID: 258, deviceKey: dev.publicKey, identity: id)
        #expect(DeviceBinding.verify(sig, account: "bob", deviceID: 258, deviceKey: dev.publicKey, identityKey: id.publicKey))
        #expect(!DeviceBinding.verify(sig, account: "bob", deviceID: 259, deviceKey: dev.publicKey, identityKey: id.publicKey))
        #expect(!DeviceBinding.verify(sig, account: "bobb", deviceID: 258, deviceKey: dev.publicKey, identityKey: id.publicKey))
    }

    @Test func accountNames() {
        #expect(DeviceBinding.isValidAccountName("alice.b_c-9"))
        #expect(!DeviceBinding.isValidAccountName(""))
        #expect(!DeviceBinding.isValidAccountName("Alice"))
        #expect(!DeviceBinding.isValidAccountName(String(repeating: "a", count: 33)))
        #expect(DeviceBinding.isValidAccountName(String(repeating: "a", count: 32)))
        #expect(!DeviceBinding.isValidAccountName("al ice"))
    }
}

@Suite struct StanzaCodecTests {
    @Test func roundTripAndBytes() throws {
        var send = RelaySend()
        send.clientMessageID = 1
        send.account = "bob"
        send.devices = [1]
        send.payload = Data("hello".utf8)
        var s = RelayStanza()
        s.send = send
        let bytes = try StanzaCodec.encode(s)
        // field 1 (send), len 17: 08 01 | 12 03 "bob" | 1a 01 01 | 22 05 "hello"
        #expect(bytes == [0x0A, 17, 0x08, 0x01, 0x12, 3] + Array("bob".utf8) + [0x1A, 1, 1, 0x22, 5] + Array("hello".utf8))
        #expect(try StanzaCodec.decode(bytes) == s)
    }

    @Test func malformedInputsAreTypedErrors() {
        #expect(throws: TransportError.malformedStanza(reason: "no body")) { try StanzaCodec.decode([]) }
        #expect(throws: TransportError.malformedStanza(reason: "no body")) { try StanzaCodec.decode([0x78, 0x01]) } // unknown field 15
        #expect(throws: (any Error).self) { try StanzaCodec.decode([0x0A, 0x05, 0x08]) }  // truncated
        #expect(throws: TransportError.tooLarge(length: 65_520, limit: 65_519)) { try StanzaCodec.decode([UInt8](repeating: 0, count: 65_520)) }
        do {
            _ = try StanzaCodec.decode([0x0A, 0x05, 0x08])
        } catch {
            guard case .malformedStanza = error else { Issue.record("wrong error \(error)"); return }
        }
    }
}
