import HushCrypto
@testable import HushNoise
import Testing

@Suite struct HandshakeTests {
    // MARK: Round trips

    @Test(arguments: NoisePattern.allCases)
    func roundTrip(_ pattern: NoisePattern) throws {
        let payloads = [Array("first".utf8), Array("second".utf8), Array("third".utf8)]
        var (i, r, received) = try handshake(pattern, payloads: payloads)
        #expect(received == Array(payloads.prefix(pattern == .xx ? 3 : 2)))
        #expect(i.handshakeHash == r.handshakeHash && i.handshakeHash.count == 32)
        // Each side knows the other's static key where the pattern transmits or pre-shares it.
        #expect(i.remoteStaticKey == staticKey(2).publicKey)
        #expect(r.remoteStaticKey == (pattern == .nk ? nil : staticKey(1).publicKey))
        for n in 0..<5 {
            let a = Array("to responder \(n)".utf8), b = Array("to initiator \(n)".utf8)
            #expect(try r.decrypt(i.encrypt(a)) == a)
            #expect(try i.decrypt(r.encrypt(b)) == b)
        }
        #expect(try r.decrypt(i.encrypt([UInt8]())) == [])
        #expect(i.sendingNonce == 6 && r.receivingNonce == 6 && r.sendingNonce == 5)
    }

    @Test(arguments: NoisePattern.allCases)
    func protocolNamesAndTurns(_ pattern: NoisePattern) throws {
        var i = try NoiseHandshake(pattern: pattern, role: .initiator, localStatic: staticKey(1), remoteStatic: staticKey(2).publicKey)
        var r = try NoiseHandshake(pattern: pattern, role: .responder, localStatic: staticKey(2))
        #expect(i.protocolName == "Noise_\(pattern.rawValue)_25519_ChaChaPoly_SHA256")
        #expect(i.isMyTurnToWrite && !r.isMyTurnToWrite && !i.isFinished)
        #expect(i.handshakeHash == r.handshakeHash, "same prologue and pre-messages give the same initial h")
        _ = try r.readMessage(try i.writeMessage(payload: [UInt8]()))
        #expect(!i.isMyTurnToWrite && r.isMyTurnToWrite)
        #expect(i.handshakeHash == r.handshakeHash)
    }

    @Test func twoHandshakesWithTheSameKeysDiffer() throws {
        let a = try handshake(.ik), b = try handshake(.ik)
        #expect(a.initiator.handshakeHash == b.initiator.handshakeHash, "seeded randomness reproduces")
        var i1 = try NoiseHandshake(pattern: .ik, role: .initiator, localStatic: staticKey(1), remoteStatic: staticKey(2).publicKey)
        var i2 = try NoiseHandshake(pattern: .ik, role: .initiator, localStatic: staticKey(1), remoteStatic: staticKey(2).publicKey)
        #expect(try i1.writeMessage(payload: [UInt8]()) != i2.writeMessage(payload: [UInt8]()), "fresh ephemeral keys from the system")
    }

    // MARK: Keys

    @Test func missingKeys() {
        #expect(throws: NoiseError.missingLocalStaticKey) { try NoiseHandshake(pattern: .xx, role: .initiator) }
        #expect(throws: NoiseError.missingLocalStaticKey) { try NoiseHandshake(pattern: .xx, role: .responder) }
        #expect(throws: NoiseError.missingLocalStaticKey) { try NoiseHandshake(pattern: .ik, role: .responder) }
        #expect(throws: NoiseError.missingLocalStaticKey) { try NoiseHandshake(pattern: .nk, role: .responder) }
        #expect(throws: NoiseError.missingLocalStaticKey) {
            try NoiseHandshake(pattern: .ik, role: .initiator, remoteStatic: staticKey(2).publicKey)
        }
        #expect(throws: NoiseError.missingRemoteStaticKey) { try NoiseHandshake(pattern: .ik, role: .initiator, localStatic: staticKey(1)) }
        #expect(throws: NoiseError.missingRemoteStaticKey) { try NoiseHandshake(pattern: .nk, role: .initiator) }
        // NK's initiator has no static key: one given is ignored, not sent.
        #expect(throws: Never.self) { try NoiseHandshake(pattern: .nk, role: .initiator, localStatic: staticKey(1), remoteStatic: staticKey(2).publicKey) }
    }

    /// Small-order points and non-canonical encodings, as a pre-known key and as received keys.
    static let badKeys: [[UInt8]] = NoiseConstants.smallOrderPoints + [
        hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  // p (≡ 0)
        hex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  // p + 1 (≡ 1)
        staticKey(2).publicKey.rawRepresentation.enumerated().map { $0.offset == 31 ? $0.element | 0x80 : $0.element },  // top bit set
    ]

    @Test(arguments: badKeys)
    func unusablePreKnownKeyIsRejected(_ raw: [UInt8]) throws {
        let key = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw)
        #expect(throws: NoiseError.invalidPublicKey) { try NoiseHandshake(pattern: .ik, role: .initiator, localStatic: staticKey(1), remoteStatic: key) }
        #expect(throws: NoiseError.invalidPublicKey) { try NoiseHandshake(pattern: .nk, role: .initiator, remoteStatic: key) }
    }

    @Test(arguments: badKeys)
    func unusableReceivedEphemeralIsRejected(_ raw: [UInt8]) throws {
        // XX's first message is just `e` and a clear payload: the key is checked on arrival.
        var r = try NoiseHandshake(pattern: .xx, role: .responder, localStatic: staticKey(2))
        let before = r.handshakeHash
        #expect(throws: NoiseError.invalidPublicKey) { try r.readMessage(raw) }
        #expect(r.handshakeHash == before && r.isMyTurnToWrite == false)
    }

    @Test(arguments: badKeys)
    func unusableReceivedStaticIsRejected(_ raw: [UInt8]) throws {
        // An initiator that sends a bad static key in IK (built by hand: encrypt it as the
        // initiator would) — the responder must refuse it after decrypting it.
        var i = try NoiseHandshake(pattern: .ik, role: .initiator, localStatic: staticKey(1), remoteStatic: staticKey(2).publicKey,
                                   random: SeededRandom(seed: 5))
        // Write `e, es` by hand through the engine's symmetric state, then the bad key for `s`.
        let e = NoiseHandshake.generateKeyPair(using: SeededRandom(seed: 6))
        var symmetric = i.symmetric
        e.publicKey.rawRepresentation.withUnsafeBytes { symmetric.mixHash($0) }
        try e.sharedSecretFromKeyAgreement(with: staticKey(2).publicKey).withUnsafeBytes { symmetric.mixKey($0) }
        var sField = [UInt8](repeating: 0, count: 48)
        try raw.withUnsafeBytes { k in try sField.withUnsafeMutableBytes { try symmetric.encryptAndHash(k, into: $0) } }
        let message = e.publicKey.rawRepresentation + sField + [UInt8](repeating: 0, count: 16)
        var r = try NoiseHandshake(pattern: .ik, role: .responder, localStatic: staticKey(2))
        #expect(throws: NoiseError.invalidPublicKey) { try r.readMessage(message) }
        _ = try i.writeMessage(payload: [UInt8]())  // the genuine initiator still works
    }

    // MARK: Wrong keys, tampering, prologue

    @Test(arguments: [NoisePattern.ik, .nk])
    func wrongResponderKeyFailsTheFirstMessage(_ pattern: NoisePattern) throws {
        var i = try NoiseHandshake(pattern: pattern, role: .initiator, localStatic: staticKey(1), remoteStatic: staticKey(3).publicKey)
        var r = try NoiseHandshake(pattern: pattern, role: .responder, localStatic: staticKey(2))
        #expect(throws: NoiseError.decryptionFailed) { try r.readMessage(i.writeMessage(payload: Array("login".utf8))) }
    }

    @Test func wrongInitiatorKeyInXXIsVisibleAndAuthenticated() throws {
        // XX transmits keys: the responder learns exactly the key the initiator holds.
        let (_, r, _) = try handshake(.xx, initiatorKey: staticKey(7))
        #expect(r.remoteStaticKey == staticKey(7).publicKey)
    }

    @Test(arguments: NoisePattern.allCases)
    func prologueMismatchFails(_ pattern: NoisePattern) throws {
        var i = try NoiseHandshake(pattern: pattern, role: .initiator, prologue: [1], localStatic: staticKey(1), remoteStatic: staticKey(2).publicKey)
        var r = try NoiseHandshake(pattern: pattern, role: .responder, prologue: [2], localStatic: staticKey(2))
        let first = try i.writeMessage(payload: [UInt8]())
        if pattern == .xx {
            // The first XX message is unencrypted; the mismatch shows at the second.
            _ = try r.readMessage(first)
            #expect(throws: NoiseError.decryptionFailed) { try i.readMessage(r.writeMessage(payload: [UInt8]())) }
        } else {
            #expect(throws: NoiseError.decryptionFailed) { try r.readMessage(first) }
        }
    }

    /// Every single-byte change of every handshake message is refused with a typed error, leaves
    /// the reader as it was, and the genuine message is accepted afterwards.
    @Test(arguments: NoisePattern.allCases)
    func everyTamperedByteIsRefused(_ pattern: NoisePattern) throws {
        var i = try NoiseHandshake(pattern: pattern, role: .initiator, localStatic: staticKey(1), remoteStatic: staticKey(2).publicKey,
                                   random: SeededRandom(seed: 1))
        var r = try NoiseHandshake(pattern: pattern, role: .responder, localStatic: staticKey(2), random: SeededRandom(seed: 2))
        var index = 0
        while !i.isFinished {
            let fromInitiator = index % 2 == 0
            let message = fromInitiator ? try i.writeMessage(payload: Array("payload".utf8)) : try r.writeMessage(payload: Array("payload".utf8))
            // XX's first message (e, clear payload) has nothing to authenticate yet.
            let authenticated = !(pattern == .xx && index == 0)
            if authenticated {
                for position in message.indices {
                    var tampered = message
                    tampered[position] ^= 0x01
                    var reader = fromInitiator ? r : i
                    let before = reader.handshakeHash
                    do {
                        _ = try reader.readMessage(tampered)
                        Issue.record("message \(index) with byte \(position) changed was accepted")
                    } catch {
                        #expect(error == .decryptionFailed || error == .invalidPublicKey, "message \(index) byte \(position): \(error)")
                    }
                    #expect(reader.handshakeHash == before)
                }
                // Truncated and extended copies.
                var reader = fromInitiator ? r : i
                #expect(throws: NoiseError.self) { try reader.readMessage(message.dropLast()) }
                #expect(throws: NoiseError.decryptionFailed) { try reader.readMessage(message + [0]) }
            }
            let payload = fromInitiator ? try r.readMessage(message) : try i.readMessage(message)
            #expect(payload == Array("payload".utf8))
            index += 1
        }
        var ti = try i.split(), tr = try r.split()
        #expect(try tr.decrypt(ti.encrypt([1, 2, 3])) == [1, 2, 3])
    }

    // MARK: Turns and phases

    @Test(arguments: NoisePattern.allCases)
    func outOfTurnAndFinished(_ pattern: NoisePattern) throws {
        var i = try NoiseHandshake(pattern: pattern, role: .initiator, localStatic: staticKey(1), remoteStatic: staticKey(2).publicKey)
        var r = try NoiseHandshake(pattern: pattern, role: .responder, localStatic: staticKey(2))
        #expect(throws: NoiseError.outOfTurn) { try i.readMessage([UInt8](repeating: 0, count: 100)) }
        #expect(throws: NoiseError.outOfTurn) { try r.writeMessage(payload: [UInt8]()) }
        #expect(throws: NoiseError.handshakeNotFinished) { try i.split() }
        let m1 = try i.writeMessage(payload: [UInt8]())
        #expect(throws: NoiseError.outOfTurn) { try i.writeMessage(payload: [UInt8]()) }
        _ = try r.readMessage(m1)
        #expect(throws: NoiseError.outOfTurn) { try r.readMessage(m1) }
        #expect(throws: NoiseError.handshakeNotFinished) { try r.split() }
        _ = try i.readMessage(try r.writeMessage(payload: [UInt8]()))
        if pattern == .xx { _ = try r.readMessage(try i.writeMessage(payload: [UInt8]())) }
        #expect(i.isFinished && r.isFinished && !i.isMyTurnToWrite && !r.isMyTurnToWrite)
        #expect(throws: NoiseError.handshakeFinished) { try i.writeMessage(payload: [UInt8]()) }
        #expect(throws: NoiseError.handshakeFinished) { try r.readMessage(m1) }
        #expect(throws: NoiseError.handshakeFinished) { try r.writeMessage(payload: [UInt8]()) }
        _ = try i.split()
    }

    // MARK: Sizes

    /// The bytes each message adds around its payload (keys and tags), from the patterns.
    static let overheads: [(NoisePattern, [Int])] = [
        (.xx, [32, 32 + 48 + 16, 48 + 16]),
        (.ik, [32 + 48 + 16, 32 + 16]),
        (.nk, [32 + 16, 32 + 16]),
    ]

    @Test(arguments: overheads.map(\.0))
    func messageSizesAndLimits(_ pattern: NoisePattern) throws {
        let overhead = Self.overheads.first { $0.0 == pattern }!.1
        var i = try NoiseHandshake(pattern: pattern, role: .initiator, localStatic: staticKey(1), remoteStatic: staticKey(2).publicKey)
        var r = try NoiseHandshake(pattern: pattern, role: .responder, localStatic: staticKey(2))
        for (index, extra) in overhead.enumerated() {
            let fromInitiator = index % 2 == 0
            let limit = NoiseLimits.maxMessageLength - extra
            let tooBig = [UInt8](repeating: 7, count: limit + 1)
            #expect(throws: NoiseError.messageTooLarge(length: limit + 1, limit: limit)) {
                fromInitiator ? try i.writeMessage(payload: tooBig) : try r.writeMessage(payload: tooBig)
            }
            var reader = fromInitiator ? r : i
            #expect(throws: NoiseError.messageTooLarge(length: 65_536, limit: 65_535)) { try reader.readMessage([UInt8](repeating: 0, count: 65_536)) }
            #expect(throws: NoiseError.messageTooShort(length: extra - 1, minimum: extra)) { try reader.readMessage([UInt8](repeating: 0, count: extra - 1)) }
            // The largest payload makes a message of exactly 65,535 bytes, which reads back.
            let largest = [UInt8](repeating: UInt8(index), count: limit)
            let message = fromInitiator ? try i.writeMessage(payload: largest) : try r.writeMessage(payload: largest)
            #expect(message.count == NoiseLimits.maxMessageLength)
            #expect(try (fromInitiator ? r.readMessage(message) : i.readMessage(message)) == largest)
        }
        #expect(i.isFinished && r.isFinished)
    }

    @Test(arguments: overheads.map(\.0))
    func emptyPayloadMessageSizes(_ pattern: NoisePattern) throws {
        let overhead = Self.overheads.first { $0.0 == pattern }!.1
        var i = try NoiseHandshake(pattern: pattern, role: .initiator, localStatic: staticKey(1), remoteStatic: staticKey(2).publicKey)
        var r = try NoiseHandshake(pattern: pattern, role: .responder, localStatic: staticKey(2))
        var sizes: [Int] = []
        while !i.isFinished {
            if i.isMyTurnToWrite {
                let m = try i.writeMessage(payload: [UInt8]()); sizes.append(m.count); _ = try r.readMessage(m)
            } else {
                let m = try r.writeMessage(payload: [UInt8]()); sizes.append(m.count); _ = try i.readMessage(m)
            }
        }
        #expect(sizes == overhead)
    }

    // MARK: Hygiene

    @Test func descriptionsShowNoKeys() throws {
        let hs = try NoiseHandshake(pattern: .ik, role: .initiator, localStatic: staticKey(1), remoteStatic: staticKey(2).publicKey)
        let (t, _, _) = try handshake(.ik)
        let secretHex = [staticKey(1).rawRepresentation.bytes, t.sending.key!.bytes].map { Hex.encode($0) }
        for text in [String(describing: hs), String(reflecting: hs), String(describing: t), String(reflecting: t),
                     { var s = ""; dump(hs, to: &s); dump(t, to: &s); return s }()] {
            for secret in secretHex { #expect(!text.contains(secret)) }
        }
        #expect(String(describing: hs) == "NoiseHandshake(Noise_IK_25519_ChaChaPoly_SHA256, initiator, message 0 of 2)")
        #expect(String(describing: t) == "NoiseTransport(sent: 0, received: 0)")
    }
}
