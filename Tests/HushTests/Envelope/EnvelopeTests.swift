import Hush
import Testing

/// A trust root, a server key, and certificates, all from a seed.
struct PKI {
    let root: Curve25519.KeyAgreement.PrivateKey
    let serverKey: Curve25519.KeyAgreement.PrivateKey
    let server: ServerCertificate
    let random: SeededRandom
    var validator: CertificateValidator { CertificateValidator(trustRoot: root.publicKey) }

    init(seed: UInt64, keyID: UInt32 = 7, serverExpiration: UInt64 = 3_000_000_000_000) throws {
        random = SeededRandom(seed: seed)
        root = try Curve25519.KeyAgreement.PrivateKey(using: random)
        serverKey = try Curve25519.KeyAgreement.PrivateKey(using: random)
        server = try ServerCertificate.issue(keyID: keyID, key: serverKey.publicKey, expiration: serverExpiration, signedBy: root, random: random)
    }

    func certificate(for device: Device, expiration: UInt64 = 2_000_000_000_000) throws -> SenderCertificate {
        try SenderCertificate.issue(senderID: device.address.name, deviceID: device.address.deviceID,
                                    identityKey: device.identity.identityKey, expiration: expiration,
                                    server: server, signedBy: serverKey, random: random)
    }
}

let now: UInt64 = 1_800_000_000_000

@Suite struct EnvelopeTests {
    @Test func sealAndOpen() throws {
        let pki = try PKI(seed: 700)
        let alice = Device("alice", seed: 701), bob = Device("bob", seed: 702)
        let certificate = try pki.certificate(for: alice)
        for type in [EnvelopeContentType.message, .preKeyMessage, .deliveryReceipt, .readReceipt, .typing, .senderKeyDistribution, .groupMessage, .other(200)] {
            let envelope = try SealedEnvelope.seal(Array("hi".utf8), contentType: type, certificate: certificate,
                                                   senderIdentity: alice.identity, to: bob.identity.identityKey, random: alice.random)
            #expect(envelope[0] == 0xE1)
            let opened = try SealedEnvelope.open(envelope, recipientIdentity: bob.identity, validator: pki.validator, now: now)
            #expect(opened.contentType == type && opened.message == Array("hi".utf8))
            #expect(opened.sender == certificate && opened.sender.senderID == "alice")
        }
        // The bytes do not contain the sender's identity or id in the clear.
        let envelope = try SealedEnvelope.seal([1, 2, 3], contentType: .message, certificate: certificate,
                                               senderIdentity: alice.identity, to: bob.identity.identityKey, random: alice.random)
        let identity = alice.identity.identityKey.publicKey.rawRepresentation
        #expect(!(0...(envelope.count - 32)).contains { Array(envelope[$0..<($0 + 32)]) == identity })
    }

    @Test func onlyTheRecipientCanOpen() throws {
        let pki = try PKI(seed: 710)
        let alice = Device("alice", seed: 711), bob = Device("bob", seed: 712), eve = Device("eve", seed: 713)
        let envelope = try SealedEnvelope.seal([1], contentType: .message, certificate: try pki.certificate(for: alice),
                                               senderIdentity: alice.identity, to: bob.identity.identityKey, random: alice.random)
        #expect(throws: EnvelopeError.authenticationFailed) {
            try SealedEnvelope.open(envelope, recipientIdentity: eve.identity, validator: pki.validator, now: now)
        }
    }

    @Test func certificateChecks() throws {
        let pki = try PKI(seed: 720)
        let alice = Device("alice", seed: 721), bob = Device("bob", seed: 722), mallory = Device("mallory", seed: 723)
        func open(_ envelope: [UInt8], validator: CertificateValidator? = nil) throws(EnvelopeError) -> OpenedEnvelope {
            try SealedEnvelope.open(envelope, recipientIdentity: bob.identity, validator: validator ?? pki.validator, now: now)
        }
        func seal(_ certificate: SenderCertificate, by sender: Device) throws -> [UInt8] {
            try SealedEnvelope.seal([9], contentType: .message, certificate: certificate, senderIdentity: sender.identity,
                                    to: bob.identity.identityKey, random: sender.random)
        }
        // Expired.
        let expired = try pki.certificate(for: alice, expiration: now)
        #expect(throws: EnvelopeError.certificate(.expired(expiration: now, now: now))) { try open(try seal(expired, by: alice)) }
        // A server key the trust root did not certify.
        let rogue = try PKI(seed: 729)
        #expect(throws: EnvelopeError.certificate(.badServerSignature)) { try open(try seal(try rogue.certificate(for: alice), by: alice)) }
        // A revoked server key id.
        var revoking = pki.validator
        revoking.revokedServerKeyIDs = [7]
        #expect(throws: EnvelopeError.certificate(.revokedServerKey(keyID: 7))) { try open(try seal(try pki.certificate(for: alice), by: alice), validator: revoking) }
        // A sender certificate signed by another key than the server's.
        let forgedSignature = try SenderCertificate.issue(senderID: "alice", deviceID: 1, identityKey: alice.identity.identityKey,
                                                          expiration: 2_000_000_000_000, server: pki.server, signedBy: mallory.identity.privateKey)
        #expect(throws: EnvelopeError.certificate(.badSenderSignature)) { try open(try seal(forgedSignature, by: alice)) }
        // Mallory cannot seal with Alice's certificate: Hush refuses, and an envelope made by
        // hand with her own identity but Alice's certificate fails the identity check.
        let alices = try pki.certificate(for: alice)
        #expect(throws: EnvelopeError.certificate(.identityMismatch)) { try seal(alices, by: mallory) }
        let handMade = try handSeal(certificate: alices, sender: mallory, recipient: bob)
        #expect(throws: EnvelopeError.certificate(.identityMismatch)) { try open(handMade) }
    }

    /// Tampering with any byte is detected; truncation, trailing bytes and versions are typed errors.
    @Test func tamperingAndFraming() throws {
        let pki = try PKI(seed: 730)
        let alice = Device("alice", seed: 731), bob = Device("bob", seed: 732)
        let envelope = try SealedEnvelope.seal(Array("abc".utf8), contentType: .message, certificate: try pki.certificate(for: alice),
                                               senderIdentity: alice.identity, to: bob.identity.identityKey, random: alice.random)
        for index in envelope.indices {
            var tampered = envelope
            tampered[index] ^= 0x01
            #expect(throws: EnvelopeError.self) { try SealedEnvelope.open(tampered, recipientIdentity: bob.identity, validator: pki.validator, now: now) }
        }
        for cut in 0..<envelope.count {
            #expect(throws: EnvelopeError.self) { try SealedEnvelope.open(Array(envelope.prefix(cut)), recipientIdentity: bob.identity, validator: pki.validator, now: now) }
        }
        #expect(throws: EnvelopeError.malformed("trailing bytes")) {
            try SealedEnvelope.open(envelope + [0], recipientIdentity: bob.identity, validator: pki.validator, now: now)
        }
        var version = envelope
        version[0] = 0xE7
        #expect(throws: EnvelopeError.unsupportedVersion(0xE7)) { try SealedEnvelope.open(version, recipientIdentity: bob.identity, validator: pki.validator, now: now) }
    }

    @Test func paddingFollowsPadme() throws {
        #expect(Padme.paddedLength(0) == 0 && Padme.paddedLength(1) == 1 && Padme.paddedLength(3) == 3)
        #expect(Padme.paddedLength(100) == 104 && Padme.paddedLength(257) == 272 && Padme.paddedLength(1000) == 1024)
        for length in 2..<100_000 {
            let padded = Padme.paddedLength(length)
            #expect(padded >= length && Double(padded - length) <= 0.12 * Double(length) + 1)
        }
    }

    /// A static-agreement cache changes the work, never the bytes: the same seeded randomness
    /// gives the same envelope with and without it, every member opens it, later sends hit the
    /// cache (one X25519 per header), another sender identity empties it, and it stays bounded.
    @Test func staticAgreementCacheGivesTheSameBytes() throws {
        let pki = try PKI(seed: 770)
        let alice = Device("alice", seed: 771), carol = Device("carol", seed: 772)
        let members = (0..<6).map { Device("m\($0)", seed: 780 + UInt64($0)) }
        let cache = StaticAgreementCache(capacity: 4)
        let certificate = try pki.certificate(for: alice)
        for round in 0..<3 {
            let message = Array("round \(round)".utf8)
            let plain = try MultiRecipientEnvelope.seal(message, contentType: .groupMessage, certificate: certificate, senderIdentity: alice.identity,
                                                        to: members.prefix(4).map(\.identity.identityKey), random: SeededRandom(seed: 900 + UInt64(round)))
            let cached = try MultiRecipientEnvelope.seal(message, contentType: .groupMessage, certificate: certificate, senderIdentity: alice.identity,
                                                         to: members.prefix(4).map(\.identity.identityKey), random: SeededRandom(seed: 900 + UInt64(round)),
                                                         staticAgreements: cache)
            #expect(cached.serialized == plain.serialized)
            for (i, member) in members.prefix(4).enumerated() {
                let opened = try MultiRecipientEnvelope.open(try cached.delivered(to: i), recipientIdentity: member.identity, validator: pki.validator, now: now)
                #expect(opened.message == message)
            }
        }
        #expect(cache.statistics.hits == 8 && cache.statistics.misses == 4 && cache.statistics.count == 4)
        // Two more members: the least recently used agreements make room (at most 4 kept).
        _ = try MultiRecipientEnvelope.seal([1], contentType: .groupMessage, certificate: certificate, senderIdentity: alice.identity,
                                            to: members.suffix(2).map(\.identity.identityKey), random: alice.random, staticAgreements: cache)
        #expect(cache.statistics.count == 4 && cache.statistics.misses == 6)
        // Sealing as another identity starts afresh (no agreement of alice's is used for carol).
        let carolCertificate = try pki.certificate(for: carol)
        let asCarol = try MultiRecipientEnvelope.seal([2], contentType: .groupMessage, certificate: carolCertificate, senderIdentity: carol.identity,
                                                      to: [members[0].identity.identityKey], random: carol.random, staticAgreements: cache)
        #expect(cache.statistics.count == 1 && cache.statistics.misses == 7)
        let opened = try MultiRecipientEnvelope.open(try asCarol.delivered(to: 0), recipientIdentity: members[0].identity, validator: pki.validator, now: now)
        #expect(opened.sender.senderID == "carol")
    }

    @Test func multiRecipient() throws {
        let pki = try PKI(seed: 740)
        let alice = Device("alice", seed: 741)
        let members = (0..<5).map { Device("m\($0)", seed: 742 + UInt64($0)) }
        let eve = Device("eve", seed: 760)
        let multi = try MultiRecipientEnvelope.seal(Array("group hello".utf8), contentType: .groupMessage,
                                                    certificate: try pki.certificate(for: alice), senderIdentity: alice.identity,
                                                    to: members.map(\.identity.identityKey), random: alice.random)
        // One payload plus 96 bytes per recipient.
        let single = try MultiRecipientEnvelope.seal(Array("group hello".utf8), contentType: .groupMessage,
                                                     certificate: try pki.certificate(for: alice), senderIdentity: alice.identity,
                                                     to: [members[0].identity.identityKey], random: alice.random)
        #expect(multi.serialized.count - single.serialized.count == 4 * 96)
        let parsed = try MultiRecipientEnvelope(serialized: multi.serialized)
        #expect(parsed == multi)
        for (i, member) in members.enumerated() {
            let delivered = try parsed.delivered(to: i)
            let opened = try MultiRecipientEnvelope.open(delivered, recipientIdentity: member.identity, validator: pki.validator, now: now)
            #expect(opened.message == Array("group hello".utf8) && opened.sender.senderID == "alice")
            // Nobody else can open this recipient's copy.
            #expect(throws: EnvelopeError.authenticationFailed) {
                try MultiRecipientEnvelope.open(delivered, recipientIdentity: members[(i + 1) % 5].identity, validator: pki.validator, now: now)
            }
            #expect(throws: EnvelopeError.authenticationFailed) {
                try MultiRecipientEnvelope.open(delivered, recipientIdentity: eve.identity, validator: pki.validator, now: now)
            }
        }
        // A recipient who knows K cannot swap the payload for another member: the header binds it.
        let other = try MultiRecipientEnvelope.seal(Array("forged".utf8), contentType: .groupMessage,
                                                    certificate: try pki.certificate(for: alice), senderIdentity: alice.identity,
                                                    to: [members[1].identity.identityKey], random: alice.random)
        func parts(_ delivered: [UInt8]) -> (head: [UInt8], payload: [UInt8]) {
            var offset = 1
            while delivered[offset] & 0x80 != 0 { offset += 1 }
            offset += 1
            return (Array(delivered[offset..<(offset + 32 + 96)]), Array(delivered[(offset + 32 + 96)...]))
        }
        let victim = parts(try parsed.delivered(to: 1))
        let forgedPayload = parts(try other.delivered(to: 0)).payload
        var spliced: [UInt8] = [0xE3]
        var length = UInt32(victim.head.count + forgedPayload.count)
        while length >= 0x80 { spliced.append(UInt8(length & 0x7F) | 0x80); length >>= 7 }
        spliced.append(UInt8(length))
        spliced += victim.head + forgedPayload
        #expect(throws: EnvelopeError.authenticationFailed) {
            try MultiRecipientEnvelope.open(spliced, recipientIdentity: members[1].identity, validator: pki.validator, now: now)
        }
        // Every byte of a delivered copy is authenticated.
        let delivered = try parsed.delivered(to: 2)
        for index in delivered.indices {
            var tampered = delivered
            tampered[index] ^= 0x80
            #expect(throws: EnvelopeError.self) { try MultiRecipientEnvelope.open(tampered, recipientIdentity: members[2].identity, validator: pki.validator, now: now) }
        }
    }

    /// Every envelope and certificate decoder gives a value or its typed error for any bytes:
    /// random strings with each decoder's type byte (and others) in front, plus truncations and
    /// bit flips of genuine envelopes and certificates.
    @Test func decodersAreTotal() throws {
        let pki = try PKI(seed: 770)
        let alice = Device("alice", seed: 773), bob = Device("bob", seed: 771)
        let random = SeededRandom(seed: 772)
        let certificate = try pki.certificate(for: alice)
        let sealed = try SealedEnvelope.seal([1, 2, 3], contentType: .message, certificate: certificate, senderIdentity: alice.identity,
                                             to: bob.identity.identityKey, random: random)
        let multi = try MultiRecipientEnvelope.seal([4], contentType: .groupMessage, certificate: certificate, senderIdentity: alice.identity,
                                                    to: [bob.identity.identityKey], random: random)
        var inputs: [[UInt8]] = []
        for genuine in [sealed, multi.serialized, try multi.delivered(to: 0), certificate.serialized, pki.server.serialized] {
            for n in 0...genuine.count { inputs.append(Array(genuine.prefix(n))) }
            for i in genuine.indices { var b = genuine; b[i] ^= 0x80; inputs.append(b) }
        }
        let firstBytes: [UInt8] = [0xE1, 0xE2, 0xE3, EnvelopeConstants.certificateVersion, 0x01, 0x00]
        var picked = Set<UInt8>()
        for _ in 0..<2000 {
            let draw = try random.secureBytes(count: 2).bytes
            var bytes = try random.secureBytes(count: Int(draw[0]) * 2).bytes
            if !bytes.isEmpty { bytes[0] = firstBytes[Int(draw[1]) % firstBytes.count]; picked.insert(bytes[0]) }
            inputs.append(bytes)
        }
        #expect(picked == Set(firstBytes), "the loop reaches every decoder's type byte")

        var opened = 0, parsedMulti = 0, parsedCertificates = 0
        for bytes in inputs {
            let first = bytes.first
            // Openers: the wrong type byte is unsupported_version; otherwise framing, a key, an
            // AEAD or (for a flipped genuine envelope that still opens) nothing.
            func checkOpen(_ type: UInt8, _ open: () throws(EnvelopeError) -> OpenedEnvelope) {
                do {
                    _ = try open()
                    opened += 1
                } catch {
                    switch error {
                    case .unsupportedVersion(let byte): #expect(first != nil && first != type && byte == first)
                    case .malformed, .authenticationFailed, .invalidKey: #expect(first == type || first == nil)
                    case .certificate: #expect(first == type)
                    case .tooLarge, .recipientIndexOutOfRange: Issue.record("an opener threw \(error)")
                    }
                }
            }
            checkOpen(0xE1) { () throws(EnvelopeError) in try SealedEnvelope.open(bytes, recipientIdentity: bob.identity, validator: pki.validator, now: now) }
            checkOpen(0xE3) { () throws(EnvelopeError) in try MultiRecipientEnvelope.open(bytes, recipientIdentity: bob.identity, validator: pki.validator, now: now) }
            do {
                let parsed = try MultiRecipientEnvelope(serialized: bytes)
                #expect(parsed.serialized == bytes && first == 0xE2)
                parsedMulti += 1
            } catch {
                switch error {
                case .unsupportedVersion(let byte): #expect(first != 0xE2 && byte == first)
                case .malformed: #expect(first == 0xE2 || first == nil)
                default: Issue.record("MultiRecipientEnvelope(serialized:) threw \(error)")
                }
            }
            // Certificate parsers: a value re-encodes to the same bytes; any failure is malformed.
            do {
                let parsed = try SenderCertificate(serialized: bytes)
                #expect(parsed.serialized == bytes)
                parsedCertificates += 1
            } catch {
                guard case .malformed = error else { Issue.record("SenderCertificate(serialized:) threw \(error)"); continue }
            }
            do {
                let parsed = try ServerCertificate(serialized: bytes)
                #expect(parsed.serialized == bytes)
                parsedCertificates += 1
            } catch {
                guard case .malformed = error else { Issue.record("ServerCertificate(serialized:) threw \(error)"); continue }
            }
        }
        // The genuine inputs (and the flips the AEADs do not cover, such as a length byte that
        // still matches) decode; random bytes never do.
        #expect(opened >= 2 && parsedMulti >= 1 && parsedCertificates >= 2)
    }

    @Test func serverCertificatesExpire() throws {
        let pki = try PKI(seed: 780, serverExpiration: now + 1)
        let alice = Device("alice", seed: 781), bob = Device("bob", seed: 782)
        #expect(pki.server.expiration == now + 1)
        #expect(try ServerCertificate(serialized: pki.server.serialized) == pki.server)
        let envelope = try SealedEnvelope.seal([1], contentType: .message, certificate: try pki.certificate(for: alice),
                                               senderIdentity: alice.identity, to: bob.identity.identityKey, random: alice.random)
        #expect(try SealedEnvelope.open(envelope, recipientIdentity: bob.identity, validator: pki.validator, now: now).message == [1])
        #expect(throws: EnvelopeError.certificate(.serverCertificateExpired(expiration: now + 1, now: now + 1))) {
            try SealedEnvelope.open(envelope, recipientIdentity: bob.identity, validator: pki.validator, now: now + 1)
        }
        // Format 1 (no expiry, version byte 0x01) is not read.
        var formatOne = pki.server.serialized
        formatOne[0] = 0x01
        do {
            _ = try ServerCertificate(serialized: formatOne)
            Issue.record("a format-1 server certificate parsed")
        } catch {
            guard case .malformed = error else { Issue.record("format 1: \(error)"); return }
        }
        #expect(pki.server.serialized[0] == 0x02 && pki.server.serialized.count == 106)
    }
}

/// An envelope sealed the way an attacker who ignores Hush's check would: `sender`'s identity
/// seals it, but the certificate inside is someone else's.
func handSeal(certificate: SenderCertificate, sender: Device, recipient: Device) throws -> [UInt8] {
    try SealedEnvelope.sealUnchecked([9], contentType: .message, certificate: certificate,
                                     senderIdentity: sender.identity, to: recipient.identity.identityKey, random: sender.random)
}
