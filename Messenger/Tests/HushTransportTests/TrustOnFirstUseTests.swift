import Foundation
import Hush
import Testing
@testable import HushTransport

/// `TrustOnFirstUseHandshake`: accepts the first certificate, then holds the relay to it.
@Suite struct TrustOnFirstUseTests {
    let f = Fixture()
    var clock: @Sendable () -> UInt64 { { [now = f.now] in now } }

    /// Runs one handshake against a relay with `key` and `certificate`; returns the client's view.
    func handshake(_ pattern: RelayProtocol.Pattern, pinned: RelayCertificate?, key: Curve25519.KeyAgreement.PrivateKey,
                   certificate: RelayCertificate) throws -> TrustOnFirstUseHandshake {
        var client = try TrustOnFirstUseHandshake(pattern: pattern, deviceKey: f.device, pinned: pinned, hello: f.login(), now: clock)
        var server = ServerHandshake(relayKey: key, certificate: certificate, serverTime: f.now)
        switch try server.receive(try client.start()) {
        case .reply(let m2):
            let m3 = try #require(try client.receive(m2))
            guard case .finished(_, let hello, _) = try server.receive(m3) else { throw TransportError.outOfOrder }
            #expect(hello.login.account == "alice")
        case .finished(let reply, let hello, _):
            #expect(try client.receive(try #require(reply)) == nil)
            #expect(hello.login.account == "alice")
        }
        return client
    }

    @Test func firstContactPinsTheCertificateThenIKUsesIt() throws {
        // `Fixture.certificate` issues a new signature each time: take one certificate.
        let certificate = f.certificate
        let first = try handshake(.xx, pinned: nil, key: f.relay, certificate: certificate)
        #expect(first.isFinished)
        let pinned = try #require(first.certificate)
        #expect(pinned == certificate)
        let again = try handshake(.ik, pinned: pinned, key: f.relay, certificate: certificate)
        #expect(again.isFinished)
        #expect(try again.channel().remoteStaticKey == f.relay.publicKey)
        let xx = try handshake(.xx, pinned: pinned, key: f.relay, certificate: certificate)
        #expect(try xx.channel().remoteStaticKey == f.relay.publicKey)
    }

    @Test func anotherCertificateAfterPinningIsRejected() throws {
        let pinned = f.certificate
        // Same relay key, but a different certificate (another key id): not the pinned one.
        let other = try RelayCertificate.issue(keyID: 8, relayKey: f.relay.publicKey, notBefore: f.now - 10, notAfter: f.now + 10,
                                               trustRoot: try Curve25519.KeyAgreement.PrivateKey())
        #expect(throws: TransportError.certificate(.keyMismatch)) {
            _ = try handshake(.xx, pinned: pinned, key: f.relay, certificate: other)
        }
    }

    @Test func certificateForAnotherKeyIsRejectedOnFirstContact() throws {
        // The relay handshakes with one key but presents a certificate for another.
        let impostor = try Curve25519.KeyAgreement.PrivateKey()
        #expect(throws: TransportError.certificate(.keyMismatch)) {
            _ = try handshake(.xx, pinned: nil, key: impostor, certificate: f.certificate)
        }
    }

    @Test func expiredCertificateIsRejected() throws {
        let old = try RelayCertificate.issue(keyID: 1, relayKey: f.relay.publicKey, notBefore: f.now - 100, notAfter: f.now - 1,
                                             trustRoot: f.root)
        #expect(throws: TransportError.certificate(.expired(now: f.now, notBefore: f.now - 100, notAfter: f.now - 1))) {
            _ = try handshake(.xx, pinned: nil, key: f.relay, certificate: old)
        }
    }

    @Test func ikWithoutAPinnedCertificateAndNKAreRefused() {
        #expect(throws: TransportError.outOfOrder) {
            _ = try TrustOnFirstUseHandshake(pattern: .ik, deviceKey: f.device, pinned: nil, hello: f.login())
        }
        #expect(throws: TransportError.outOfOrder) {
            _ = try TrustOnFirstUseHandshake(pattern: .nk, deviceKey: f.device, pinned: f.certificate, hello: f.login())
        }
    }
}
