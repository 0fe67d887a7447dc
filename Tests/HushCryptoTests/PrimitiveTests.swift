import Foundation
import HushCrypto
import Testing

@Suite struct X25519Tests {
    @Test func agreementIsSymmetricAndClampsLikeLibsignal() throws {
        let random = SeededRandom(seed: 11)
        let a = try Curve25519.KeyAgreement.PrivateKey(using: random)
        let b = try Curve25519.KeyAgreement.PrivateKey(using: random)
        let ab = try a.sharedSecretFromKeyAgreement(with: b.publicKey)
        let ba = try b.sharedSecretFromKeyAgreement(with: a.publicKey)
        #expect(ab == ba)
        let raw = a.rawRepresentation.bytes
        #expect(raw[0] & 7 == 0 && raw[31] & 0x80 == 0 && raw[31] & 0x40 != 0)
        // Unclamped input: the same key as its clamped form.
        let unclamped = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: [UInt8](repeating: 0xFF, count: 32))
        var clamped = [UInt8](repeating: 0xFF, count: 32)
        clamped[0] = 0xF8
        clamped[31] = 0x7F
        #expect(unclamped.rawRepresentation.bytes == clamped)
    }

    @Test(arguments: [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ])
    func lowOrderPointsAreRejected(u: String) throws {
        let key = try Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 3))
        let peer = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: hex(u))
        #expect(throws: CryptoError.allZeroSharedSecret) { try key.sharedSecretFromKeyAgreement(with: peer) }
    }

    @Test func signalEncoding() throws {
        let key = try Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 4)).publicKey
        let signal = key.signalRepresentation
        #expect(signal.count == 33 && signal[0] == 0x05)
        #expect(try Curve25519.KeyAgreement.PublicKey(signalRepresentation: signal) == key)
        var wrongType = signal
        wrongType[0] = 0x06
        #expect(throws: CryptoError.invalidKeyEncoding) { try Curve25519.KeyAgreement.PublicKey(signalRepresentation: wrongType) }
        #expect(throws: CryptoError.invalidKeyEncoding) { try Curve25519.KeyAgreement.PublicKey(signalRepresentation: Array(signal.dropLast())) }
        #expect(throws: CryptoError.invalidKeyEncoding) { try Curve25519.KeyAgreement.PublicKey(signalRepresentation: key.rawRepresentation) }
        #expect(throws: CryptoError.invalidKeySize(actual: 33, allowed: [32])) { try Curve25519.KeyAgreement.PublicKey(rawRepresentation: signal) }
        #expect(throws: CryptoError.invalidKeySize(actual: 31, allowed: [32])) { try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: [UInt8](repeating: 1, count: 31)) }
    }

    @Test func deterministicRandomnessReproducesKeys() throws {
        let a = try Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 99))
        let b = try Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 99))
        #expect(a.publicKey == b.publicKey)
        let replay = ReplayRandom(a.rawRepresentation)
        #expect(try Curve25519.KeyAgreement.PrivateKey(using: replay).publicKey == a.publicKey)
        #expect(throws: CryptoError.randomSourceExhausted(requested: 32, remaining: 0)) { try Curve25519.KeyAgreement.PrivateKey(using: replay) }
    }
}

@Suite struct Ed25519Tests {
    @Test func signVerifyAndRejectTampering() throws {
        let key = try Curve25519.Signing.PrivateKey(using: SeededRandom(seed: 5))
        let message = Array("hello".utf8)
        let sig = key.signature(for: message)
        #expect(key.publicKey.isValidSignature(sig, for: message))
        #expect(key.signature(for: message) == sig, "Ed25519 is deterministic")
        var bad = sig
        bad[10] ^= 1
        #expect(!key.publicKey.isValidSignature(bad, for: message))
        #expect(!key.publicKey.isValidSignature(sig, for: Array("hellp".utf8)))
        #expect(!key.publicKey.isValidSignature(sig.dropLast(), for: message))
        #expect(try Curve25519.Signing.PrivateKey(rawRepresentation: key.rawRepresentation).publicKey == key.publicKey)
        #expect(throws: CryptoError.invalidKeySize(actual: 64, allowed: [32])) { try Curve25519.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: 0, count: 64)) }
    }
}

@Suite struct HashAndMACTests {
    /// The streaming hasher gives the one-shot digest for any split of the input (FIPS 180-4's
    /// "abc" and a 1,000-byte message in uneven parts); `finalize()` leaves it usable, and a
    /// later `finalize()` covers the parts added since.
    @Test func sha256HasherMatchesOneShot() throws {
        let abc = try SHA256.Hasher()
        abc.update(Array("a".utf8))
        abc.update([UInt8]())
        abc.update(Array("bc".utf8))
        #expect(Hex.encode(abc.finalize()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Hex.encode(abc.finalize()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        abc.update(Array("d".utf8))
        #expect(abc.finalize() == SHA256.hash(Array("abcd".utf8)))
        let message = (0..<1_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let parts = try SHA256.Hasher()
        var at = 0
        for size in [1, 63, 64, 65, 0, 300, 507] {
            parts.update(Array(message[at..<at + size]))
            at += size
        }
        #expect(at == message.count)
        #expect(parts.finalize() == SHA256.hash(message))
        #expect(Hex.encode(try SHA256.Hasher().finalize()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func shaKnownAnswers() {
        #expect(Hex.encode(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Hex.encode(SHA256.hash([UInt8]())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Hex.encode(SHA512.hash(Array("abc".utf8))).hasPrefix("ddaf35a193617aba"))
    }

    @Test func hmacTruncationRules() {
        let key = [UInt8](repeating: 0x0b, count: 20)
        let message = Array("Hi There".utf8)
        let tag = HMACSHA256.authenticationCode(for: message, using: key)
        #expect(Hex.encode(tag) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")  // RFC 4231 case 1
        #expect(HMACSHA256.isValidAuthenticationCode(tag, for: message, using: key))
        #expect(HMACSHA256.isValidAuthenticationCode(tag.prefix(8), for: message, using: key))
        #expect(!HMACSHA256.isValidAuthenticationCode(tag.prefix(7), for: message, using: key), "below the minimum truncation")
        #expect(!HMACSHA256.isValidAuthenticationCode([UInt8](), for: message, using: key))
        #expect(!HMACSHA256.isValidAuthenticationCode(tag + [0], for: message, using: key))
        var bad = tag
        bad[31] ^= 0x80
        #expect(!HMACSHA256.isValidAuthenticationCode(bad, for: message, using: key))
        #expect(HMACSHA256.secureAuthenticationCode(for: message, using: key).bytes == tag)
    }

    @Test func hkdfLimits() throws {
        let ikm = [UInt8](repeating: 0x0b, count: 22)
        let max = try HKDF.deriveKey(inputKeyMaterial: ikm, salt: [UInt8](), info: [UInt8](), outputByteCount: 255 * 32)
        #expect(max.count == 8160)
        #expect(throws: CryptoError.outputLengthOutOfRange(requested: 8161, allowed: 0...8160)) {
            try HKDF.deriveKey(inputKeyMaterial: ikm, salt: [UInt8](), info: [UInt8](), outputByteCount: 8161)
        }
        #expect(throws: CryptoError.outputLengthOutOfRange(requested: -1, allowed: 0...8160)) {
            try HKDF.deriveKey(inputKeyMaterial: ikm, salt: [UInt8](), info: [UInt8](), outputByteCount: -1)
        }
        // A shorter output is a prefix of a longer one (RFC 5869 §2.3).
        let short = try HKDF.deriveKey(inputKeyMaterial: ikm, salt: [1], info: [2], outputByteCount: 40)
        let long = try HKDF.deriveKey(inputKeyMaterial: ikm, salt: [1], info: [2], outputByteCount: 80)
        #expect(long.bytes.prefix(40).elementsEqual(short.bytes))
        // An empty salt is 32 zero bytes (§2.2).
        #expect(HKDF.extract(inputKeyMaterial: ikm, salt: [UInt8]()) == HKDF.extract(inputKeyMaterial: ikm, salt: [UInt8](repeating: 0, count: 32)))
    }
}

@Suite struct AEADTests {
    @Test func sealOpenAndEveryTamperingFails() throws {
        let key = try SymmetricKey(using: SeededRandom(seed: 6))
        let aad = Array("header".utf8)
        for algorithm in [0, 1] {
            let box = algorithm == 0
                ? try ChaChaPoly.seal(Array("attack at dawn".utf8), using: key, authenticating: aad)
                : try XChaChaPoly.seal(Array("attack at dawn".utf8), using: key, authenticating: aad)
            let open: (AEADSealedBox, SymmetricKey, [UInt8]) throws(CryptoError) -> [UInt8] = algorithm == 0
                ? { (b, k, a) throws(CryptoError) in try ChaChaPoly.open(b, using: k, authenticating: a) }
                : { (b, k, a) throws(CryptoError) in try XChaChaPoly.open(b, using: k, authenticating: a) }
            #expect(try open(box, key, aad) == Array("attack at dawn".utf8))
            for i in 0..<(box.ciphertext.count + box.tag.count) {
                var ct = box.ciphertext, tag = box.tag
                if i < ct.count { ct[i] ^= 1 } else { tag[i - ct.count] ^= 1 }
                let forged = AEADSealedBox(nonce: box.nonce, ciphertext: ct, tag: tag)
                #expect(throws: CryptoError.authenticationFailure) { try open(forged, key, aad) }
            }
            #expect(throws: CryptoError.authenticationFailure) { try open(box, key, aad + [0]) }
            #expect(throws: CryptoError.authenticationFailure) { try open(box, try SymmetricKey(using: SeededRandom(seed: 7)), aad) }
            let truncated = AEADSealedBox(nonce: box.nonce, ciphertext: [], tag: Array(box.tag.prefix(15)))
            #expect(throws: CryptoError.invalidCiphertextLength(actual: 15)) { try open(truncated, key, aad) }
        }
    }

    @Test func wrongSizesAreTypedErrors() throws {
        #expect(throws: CryptoError.invalidKeySize(actual: 16, allowed: [32])) {
            try ChaChaPoly.encrypt([1], key: [UInt8](repeating: 0, count: 16), nonce: [UInt8](repeating: 0, count: 12), associatedData: [UInt8]())
        }
        #expect(throws: CryptoError.invalidNonceSize(actual: 12, expected: 24)) {
            try XChaChaPoly.encrypt([1], key: [UInt8](repeating: 0, count: 32), nonce: [UInt8](repeating: 0, count: 12), associatedData: [UInt8]())
        }
        #expect(throws: CryptoError.invalidNonceSize(actual: 8, expected: 12)) {
            try ChaChaPoly.decrypt([UInt8](repeating: 0, count: 32), key: [UInt8](repeating: 0, count: 32), nonce: [UInt8](repeating: 0, count: 8), associatedData: [UInt8]())
        }
    }

    @Test func emptyPlaintextAndExplicitNonce() throws {
        let key = SymmetricKey(copying: [UInt8](repeating: 1, count: 32))
        let box = try XChaChaPoly.seal([UInt8](), using: key, nonce: [UInt8](repeating: 2, count: 24))
        #expect(box.ciphertext.isEmpty && box.tag.count == 16 && box.combined.count == 40)
        #expect(try XChaChaPoly.open(box, using: key).isEmpty)
    }
}

@Suite struct AESTests {
    @Test func cbcRoundTripAndErrors() throws {
        let key = [UInt8](repeating: 7, count: 32), iv = [UInt8](repeating: 9, count: 16)
        for length in [0, 1, 15, 16, 17, 100] {
            let plaintext = [UInt8](repeating: 0x42, count: length)
            let ct = try AES.CBC.encrypt(plaintext, key: key, iv: iv)
            #expect(ct.count == (length / 16 + 1) * 16)
            #expect(try AES.CBC.decrypt(ct, key: key, iv: iv) == plaintext)
        }
        #expect(throws: CryptoError.invalidKeySize(actual: 31, allowed: [16, 24, 32])) { try AES.CBC.encrypt([1], key: [UInt8](repeating: 0, count: 31), iv: iv) }
        #expect(throws: CryptoError.invalidNonceSize(actual: 12, expected: 16)) { try AES.CBC.encrypt([1], key: key, iv: [UInt8](repeating: 0, count: 12)) }
        #expect(throws: CryptoError.invalidCiphertextLength(actual: 15)) { try AES.CBC.decrypt([UInt8](repeating: 0, count: 15), key: key, iv: iv) }
        #expect(throws: CryptoError.invalidCiphertextLength(actual: 0)) { try AES.CBC.decrypt([UInt8](), key: key, iv: iv) }
        #expect(throws: CryptoError.invalidCiphertextLength(actual: 5)) { try AES.CBC.encrypt([UInt8](repeating: 0, count: 5), key: key, iv: iv, padding: .none) }
        // Bad padding: a block whose last byte decrypts to 0 is never valid PKCS#7.
        let noPad = try AES.CBC.encrypt([UInt8](repeating: 0, count: 16), key: key, iv: iv, padding: .none)
        #expect(throws: CryptoError.invalidPadding) { try AES.CBC.decrypt(noPad, key: key, iv: iv) }
        #expect(try AES.CBC.decrypt(noPad, key: key, iv: iv, padding: .none) == [UInt8](repeating: 0, count: 16))
    }

    @Test func ctrIsItsOwnInverse() throws {
        let key = [UInt8](repeating: 3, count: 32)
        var counter = [UInt8](repeating: 0xFF, count: 16)  // wraps within the message
        counter[0] = 0
        let data = (0..<100).map { UInt8($0) }
        let ct = try AES.CTR.apply(data, key: key, counter: counter)
        #expect(ct != data && ct.count == 100)
        #expect(try AES.CTR.apply(ct, key: key, counter: counter) == data)
        #expect(try AES.CTR.apply([UInt8](), key: key, counter: counter).isEmpty)
    }
}

@Suite struct SecretStreamTests {
    @Test func chunksRoundTripAndDetectTampering() throws {
        let key = try SymmetricKey(using: SeededRandom(seed: 8))
        let writer = try SecretStream.Encryptor(key: key)
        let c1 = try writer.push(Array("one".utf8))
        let c2 = try writer.push(Array("two".utf8), tag: .final)
        #expect(throws: CryptoError.streamTruncated) { try writer.push([1]) }

        let reader = try SecretStream.Decryptor(key: key, header: writer.header)
        var tampered = c1
        tampered[4] ^= 1
        #expect(throws: CryptoError.authenticationFailure) { try reader.pull(tampered) }
        #expect(throws: CryptoError.authenticationFailure) { try reader.pull(c2) }  // out of order
        let (p1, t1) = try reader.pull(c1)  // state untouched by the failures
        #expect(p1 == Array("one".utf8) && t1 == .message && !reader.isFinished)
        let (p2, t2) = try reader.pull(c2)
        #expect(p2 == Array("two".utf8) && t2 == .final && reader.isFinished)
        #expect(throws: CryptoError.streamTruncated) { try reader.pull(c2) }
        #expect(throws: CryptoError.invalidNonceSize(actual: 3, expected: SecretStream.headerByteCount)) { try SecretStream.Decryptor(key: key, header: [1, 2, 3]) }
        let fresh = try SecretStream.Decryptor(key: key, header: writer.header)
        #expect(throws: CryptoError.invalidCiphertextLength(actual: 5)) { try fresh.pull([1, 2, 3, 4, 5]) }
    }
}

@Suite struct Argon2idTests {
    @Test func derivesDeterministicallyAndValidatesParameters() throws {
        let limits = Argon2id.Limits(operations: 1, memoryBytes: 8 * 1024)
        let salt = [UInt8](repeating: 1, count: 16)
        let a = try Argon2id.deriveKey(fromPassword: Array("correct horse".utf8), salt: salt, limits: limits)
        let b = try Argon2id.deriveKey(fromPassword: Array("correct horse".utf8), salt: salt, limits: limits)
        let c = try Argon2id.deriveKey(fromPassword: Array("correct horsf".utf8), salt: salt, limits: limits)
        #expect(a == b && a != c && a.count == 32)
        #expect(throws: CryptoError.invalidNonceSize(actual: 8, expected: 16)) {
            try Argon2id.deriveKey(fromPassword: [1], salt: [UInt8](repeating: 0, count: 8), limits: limits)
        }
        #expect(throws: CryptoError.self) { try Argon2id.deriveKey(fromPassword: [1], salt: salt, outputByteCount: 8, limits: limits) }
        #expect(throws: CryptoError.self) { try Argon2id.deriveKey(fromPassword: [1], salt: salt, limits: .init(operations: 0, memoryBytes: 8192)) }
    }
}

@Suite struct SupportTests {
    @Test func hexDecodingIsTotal() throws {
        #expect(try Hex.decode("00fFaA") == [0, 255, 170])
        #expect(throws: HexError.oddLength(3)) { try Hex.decode("abc") }
        #expect(throws: HexError.invalidCharacter(offset: 1)) { try Hex.decode("0g") }
        #expect(throws: HexError.invalidCharacter(offset: 0)) { try Hex.decode("é") }
        #expect(Hex.encode([0, 1, 0xab]) == "0001ab")
    }

    @Test func constantTimeEquality() {
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2]))
        #expect(ConstantTime.equals([UInt8](), [UInt8]()))
        #expect(ConstantTime.isZero([0, 0]) && !ConstantTime.isZero([0, 1]))
    }

    @Test func seededRandomIsReproducibleAndReplayIsExact() throws {
        let a = try SeededRandom(seed: 1).secureBytes(count: 100)
        let b = try SeededRandom(seed: 1).secureBytes(count: 100)
        let c = try SeededRandom(seed: 2).secureBytes(count: 100)
        #expect(a == b && a != c)
        let replay = ReplayRandom([1, 2, 3, 4])
        #expect(try replay.secureBytes(count: 3).bytes == [1, 2, 3])
        #expect(replay.remaining == 1)
        #expect(throws: CryptoError.randomSourceExhausted(requested: 2, remaining: 1)) { try replay.secureBytes(count: 2) }
        #expect(throws: CryptoError.invalidKeySize(actual: 5, allowed: [32])) { try SeededRandom(seed: [1, 2, 3, 4, 5]) }
    }
}

/// The per-thread AES context keeps its padding flag across calls: a call without padding
/// must not leak into the next PKCS#7 call (a bug the protocol tests caught once).
@Test func aesPaddingModeDoesNotLeakBetweenCalls() throws {
    let key = [UInt8](repeating: 1, count: 32), iv = [UInt8](repeating: 2, count: 16)
    let plaintext = Array("seven b".utf8)
    let padded = try AES.CBC.encrypt(plaintext, key: key, iv: iv)
    _ = try AES.CBC.encrypt([UInt8](repeating: 0, count: 16), key: key, iv: iv, padding: .none)
    _ = try AES.CTR.apply([1, 2, 3], key: key, counter: iv)
    #expect(try AES.CBC.encrypt(plaintext, key: key, iv: iv) == padded)
    _ = try AES.CBC.decrypt(padded, key: key, iv: iv, padding: .none)
    #expect(try AES.CBC.decrypt(padded, key: key, iv: iv) == plaintext)
}
