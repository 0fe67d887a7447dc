import Foundation
import Hush
import HushTransport
import Testing
@testable import HushRelay

/// Kyber prekeys in the prekey directory over the wire (`Docs/spec/relay.md` §8.3): upload,
/// fetch, consumption with the X25519 one-time prekey, the last-resort key, the counts in
/// `PrekeysLow` and `Welcome`, and every refusal as a typed `Error` stanza. The relay checks
/// lengths and signatures only, so the keys here are random 1,568-byte strings signed like
/// real ones (`0x08 || key`).
@Suite(.serialized, .timeLimit(.minutes(2))) struct RelayKyberPrekeyTests {
    /// A Kyber prekey signed by `identity` (or with the given signature).
    static func kyber(_ id: UInt32, length: Int = RelayProtocol.Limits.kyberPublicKeyLength, by identity: Curve25519.KeyAgreement.PrivateKey,
                      signature: Data? = nil) throws -> RelayKyberPrekey {
        var k = RelayKyberPrekey()
        k.id = id
        k.publicKey = Data((0..<length).map { _ in UInt8.random(in: 0...255) })
        k.signature = try signature ?? Data(XEdDSA.signature(for: [SignalConstants.kyberKeyType] + Array(k.publicKey), using: identity))
        return k
    }

    static func upload(_ rid: UInt32, _ build: (inout RelayUploadPrekeys) throws -> Void) rethrows -> RelayStanza {
        var up = RelayUploadPrekeys()
        up.requestID = rid
        up.registrationID = 77
        try build(&up)
        var s = RelayStanza()
        s.uploadPrekeys = up
        return s
    }

    static func fetch(_ rid: UInt32, _ account: String) -> RelayStanza {
        var s = RelayStanza()
        s.fetchPrekeys.requestID = rid
        s.fetchPrekeys.account = account
        return s
    }

    static func answer(_ c: RelayTestClient, _ rid: UInt32) async throws -> RelayStanza {
        try await c.wait { s in
            switch s.body {
            case .ok(let o)? where o.requestID == rid: s
            case .error(let e)? where e.requestID == rid: s
            case .prekeyBundles(let b)? where b.requestID == rid: s
            default: nil
            }
        }
    }

    @Test func uploadFetchConsumeLastResortAndCounts() async throws {
        let relay = try await TestRelay.start { $0.fetchBurst = 100 }
        let bob = TestDevice("bob")
        var b = try await RelayTestClient.register(relay, bob)
        #expect(b.welcome?.kyberPrekeysRemaining == 0)
        let a = try await RelayTestClient.register(relay, TestDevice("alice"))
        let spk = try Curve25519.KeyAgreement.PrivateKey()
        let last = try Self.kyber(500, by: bob.identity)
        let oneTime = try (1...11).map { try Self.kyber(UInt32($0), by: bob.identity) }
        try await b.send(try Self.upload(1) { up in
            up.signedPrekey.id = 1
            up.signedPrekey.publicKey = Data(spk.publicKey.rawRepresentation)
            up.signedPrekey.signature = Data(try XEdDSA.signature(for: spk.publicKey.signalRepresentation, using: bob.identity))
            var p = RelayPrekey()
            p.id = 1
            p.publicKey = Data(try Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation)
            up.oneTime = [p]
            up.kyberLastResort = last
            up.kyberOneTime = oneTime.reversed()
        })
        guard case .ok? = try await Self.answer(b, 1).body else { Issue.record("upload refused"); return }

        // First fetch: the lowest one-time Kyber prekey, consumed with the X25519 one.
        try await a.send(Self.fetch(10, "bob"))
        guard case .prekeyBundles(let first)? = try await Self.answer(a, 10).body else { Issue.record("no bundles"); return }
        #expect(first.bundles.count == 1)
        #expect(first.bundles[0].hasOneTime && first.bundles[0].oneTime.id == 1)
        #expect(first.bundles[0].hasKyber && !first.bundles[0].kyberLastResort)
        #expect(first.bundles[0].kyber == oneTime[0])
        let low1 = try await b.wait { if case .prekeysLow(let l)? = $0.body { l } else { nil } }
        #expect(low1.remaining == 0 && low1.kyberRemaining == 10)

        // Only a Kyber prekey consumed (no X25519 one-time left): the owner still hears at 9.
        try await a.send(Self.fetch(11, "bob"))
        guard case .prekeyBundles(let second)? = try await Self.answer(a, 11).body else { Issue.record("no bundles"); return }
        #expect(!second.bundles[0].hasOneTime && second.bundles[0].kyber == oneTime[1] && !second.bundles[0].kyberLastResort)
        let low2 = try await b.wait { if case .prekeysLow(let l)? = $0.body { l } else { nil } }
        #expect(low2.remaining == 0 && low2.kyberRemaining == 9)

        // The other nine, each once, in id order; then the last-resort key, never consumed.
        for (i, rid) in (UInt32(12)...20).enumerated() {
            try await a.send(Self.fetch(rid, "bob"))
            guard case .prekeyBundles(let got)? = try await Self.answer(a, rid).body else { Issue.record("no bundles"); return }
            #expect(got.bundles[0].kyber == oneTime[i + 2] && !got.bundles[0].kyberLastResort)
        }
        for rid in UInt32(21)...23 {
            try await a.send(Self.fetch(rid, "bob"))
            guard case .prekeyBundles(let got)? = try await Self.answer(a, rid).body else { Issue.record("no bundles"); return }
            #expect(got.bundles[0].kyber == last && got.bundles[0].kyberLastResort)
            #expect(got.bundles[0].signedPrekey.id == 1)
        }
        #expect(try await relay.relay.store.kyberPrekeyCount(account: "bob", deviceID: 1) == 0)

        // Welcome reports the unclaimed one-time Kyber prekeys at login.
        try await b.send(try Self.upload(2) { up in up.kyberOneTime = try (30...32).map { try Self.kyber(UInt32($0), by: bob.identity) } })
        guard case .ok? = try await Self.answer(b, 2).body else { Issue.record("upload refused"); return }
        await b.close()
        b = try await RelayTestClient.login(relay, bob)
        #expect(b.welcome?.kyberPrekeysRemaining == 3)
        #expect(b.welcome?.prekeysRemaining == 0)
        await a.close(); await b.close(); await relay.stop()
    }

    @Test func refusedUploadsAreTypedAndStoreNothing() async throws {
        let relay = try await TestRelay.start { $0.fetchBurst = 100 }
        let bob = TestDevice("bob")
        let b = try await RelayTestClient.register(relay, bob)
        let other = try Curve25519.KeyAgreement.PrivateKey()
        var rid: UInt32 = 0
        func refused(_ code: RelayErrorCode, _ build: (inout RelayUploadPrekeys) throws -> Void,
                     sourceLocation: SourceLocation = #_sourceLocation) async throws {
            rid += 1
            try await b.send(try Self.upload(rid, build))
            expectError(try await Self.answer(b, rid), code, sourceLocation: sourceLocation)
        }
        // Lengths: one byte short or long, one-time or last-resort.
        try await refused(.invalidKey) { $0.kyberOneTime = [try Self.kyber(1, length: 1_567, by: bob.identity)] }
        try await refused(.invalidKey) { $0.kyberOneTime = [try Self.kyber(1, length: 1_569, by: bob.identity)] }
        try await refused(.invalidKey) { $0.kyberLastResort = try Self.kyber(1, length: 0, by: bob.identity) }
        try await refused(.invalidKey) { $0.kyberLastResort = try Self.kyber(1, length: 1_569, by: bob.identity) }
        // Signatures: wrong length, altered, by another key.
        try await refused(.invalidSignature) { $0.kyberOneTime = [try Self.kyber(1, by: bob.identity, signature: Data(count: 63))] }
        try await refused(.invalidSignature) {
            var k = try Self.kyber(1, by: bob.identity)
            k.signature[5] ^= 1
            $0.kyberLastResort = k
        }
        try await refused(.invalidSignature) { $0.kyberOneTime = [try Self.kyber(1, by: other)] }
        // Over the per-upload count (checked before the keys): 101 entries.
        try await refused(.tooManyPrekeys) { $0.kyberOneTime = Array(repeating: RelayKyberPrekey(), count: 101) }
        // A valid X25519 prekey and Kyber prekeys with one bad one: nothing of it is stored.
        try await refused(.invalidSignature) { up in
            var p = RelayPrekey()
            p.id = 1
            p.publicKey = Data(try Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation)
            up.oneTime = [p]
            up.kyberLastResort = try Self.kyber(9, by: bob.identity)
            up.kyberOneTime = [try Self.kyber(1, by: bob.identity), try Self.kyber(2, by: other)]
        }
        #expect(try await relay.relay.store.prekeyCount(account: "bob", deviceID: 1) == 0)
        #expect(try await relay.relay.store.kyberPrekeyCount(account: "bob", deviceID: 1) == 0)
        try await b.send(Self.fetch(100, "bob"))
        guard case .prekeyBundles(let got)? = try await Self.answer(b, 100).body else { Issue.record("no bundles"); return }
        #expect(!got.bundles[0].hasKyber && !got.bundles[0].hasOneTime && !got.bundles[0].kyberLastResort)

        // The most that fit in one stanza beside nothing else (39) are accepted in one upload.
        rid += 1
        try await b.send(try Self.upload(rid) { $0.kyberOneTime = try (1...39).map { try Self.kyber(UInt32($0), by: bob.identity) } })
        guard case .ok? = try await Self.answer(b, rid).body else { Issue.record("39 refused"); return }
        #expect(try await relay.relay.store.kyberPrekeyCount(account: "bob", deviceID: 1) == 39)
        await b.close(); await relay.stop()
    }
}
