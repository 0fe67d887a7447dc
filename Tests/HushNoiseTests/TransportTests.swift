import HushCrypto
@testable import HushNoise
import Testing

@Suite struct TransportTests {
    @Test func failedDecryptChangesNothing() throws {
        var (i, r, _) = try handshake(.xx)
        let first = try i.encrypt(Array("one".utf8)), second = try i.encrypt(Array("two".utf8))
        var tampered = first
        tampered[0] ^= 0x80
        #expect(throws: NoiseError.decryptionFailed) { try r.decrypt(tampered) }
        #expect(throws: NoiseError.decryptionFailed) { try r.decrypt(second) }  // out of order
        #expect(throws: NoiseError.messageTooShort(length: 15, minimum: 16)) { try r.decrypt([UInt8](repeating: 0, count: 15)) }
        #expect(r.receivingNonce == 0)
        #expect(try r.decrypt(first) == Array("one".utf8))
        #expect(throws: NoiseError.decryptionFailed) { try r.decrypt(first) }  // replay
        #expect(try r.decrypt(second) == Array("two".utf8))
        #expect(r.receivingNonce == 2)
    }

    @Test func sizeLimits() throws {
        var (i, r, _) = try handshake(.nk)
        let largest = [UInt8](repeating: 0xab, count: NoiseLimits.maxPlaintextLength)
        let message = try i.encrypt(largest)
        #expect(message.count == 65_535)
        #expect(try r.decrypt(message) == largest)
        #expect(throws: NoiseError.messageTooLarge(length: 65_520, limit: 65_519)) { try i.encrypt([UInt8](repeating: 0, count: 65_520)) }
        #expect(throws: NoiseError.messageTooLarge(length: 65_536, limit: 65_535)) { try r.decrypt([UInt8](repeating: 0, count: 65_536)) }
        #expect(i.sendingNonce == 1 && r.receivingNonce == 1, "refused messages use no nonce")
        // Empty plaintext: a bare tag.
        #expect(try r.decrypt(i.encrypt([UInt8]())).isEmpty)
    }

    @Test func nonceExhaustion() throws {
        var (i, r, _) = try handshake(.ik)
        i.sendingNonce = UInt64.max - 1
        r.receivingNonce = UInt64.max - 1
        // n = 2^64-2 is the last usable nonce (§5.1); 2^64-1 is reserved.
        let last = try i.encrypt(Array("last".utf8))
        #expect(i.sendingNonce == UInt64.max)
        #expect(throws: NoiseError.nonceExhausted) { try i.encrypt(Array("one more".utf8)) }
        #expect(i.sendingNonce == UInt64.max)
        #expect(try r.decrypt(last) == Array("last".utf8))
        #expect(throws: NoiseError.nonceExhausted) { try r.decrypt(last) }
        var buffer = [UInt8](repeating: 0, count: 64)
        buffer.withUnsafeMutableBytes { out in
            #expect(throws: NoiseError.nonceExhausted) { try i.encrypt(UnsafeRawBufferPointer(rebasing: out[0..<4]), into: UnsafeMutableRawBufferPointer(rebasing: out[8...])) }
            #expect(throws: NoiseError.nonceExhausted) { try i.encryptInPlace(out, plaintextLength: 4) }
            #expect(throws: NoiseError.nonceExhausted) { try r.decryptInPlace(out) }
        }
        // The other direction is unaffected.
        #expect(try i.decrypt(r.encrypt([9])) == [9])
    }

    @Test func theNonceIsLittleEndianAfterFourZeroBytes() throws {
        // §12.3: the 96-bit nonce is 32 zero bits then n little-endian. Encrypt at a nonce with
        // distinct bytes and compare with ChaChaPoly directly.
        var (i, _, _) = try handshake(.nk)
        let key = try #require(i.sending.key)
        let n: UInt64 = 0x0102_0304_0506_0708
        i.sendingNonce = n
        let message = try i.encrypt(Array("nonce".utf8))
        let expected = try ChaChaPoly.encrypt(Array("nonce".utf8), key: key, nonce: [0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1], associatedData: [UInt8]())
        #expect(message == expected)
        #expect(i.sendingNonce == n + 1)
    }

    @Test func rekeyBothSidesAgree() throws {
        var (i, r, _) = try handshake(.xx)
        #expect(try r.decrypt(i.encrypt([1])) == [1])
        let oldKey = try #require(i.sending.key)
        i.rekeySending()
        r.rekeyReceiving()
        #expect(i.sending.key != oldKey)
        #expect(i.sending.key == r.receiving.key)
        #expect(i.sendingNonce == 1 && r.receivingNonce == 1, "rekey does not reset n (§11.3)")
        #expect(try r.decrypt(i.encrypt([2])) == [2])
        // The other direction still uses its old key until it is rekeyed too.
        #expect(try i.decrypt(r.encrypt([3])) == [3])
        r.rekeySending()
        i.rekeyReceiving()
        #expect(try i.decrypt(r.encrypt([4])) == [4])
    }

    @Test func rekeyOnOneSideOnlyFailsAndChangesNothing() throws {
        var (i, r, _) = try handshake(.ik)
        i.rekeySending()
        let message = try i.encrypt([5])
        #expect(throws: NoiseError.decryptionFailed) { try r.decrypt(message) }
        #expect(r.receivingNonce == 0)
        r.rekeyReceiving()
        #expect(try r.decrypt(message) == [5])
    }

    /// §4.2: REKEY(k) is the first 32 bytes of ENCRYPT(k, maxnonce, zerolen, zeros), with
    /// ChaChaPoly's nonce 0x00000000 ‖ LE64(2^64-1).
    @Test func rekeyMatchesItsDefinition() throws {
        let (i, _, _) = try handshake(.nk)
        let k = try #require(i.sending.key)
        let encrypted = try ChaChaPoly.encrypt([UInt8](repeating: 0, count: 32), key: k,
                                               nonce: [0, 0, 0, 0] + [UInt8](repeating: 0xff, count: 8), associatedData: [UInt8]())
        var cipher = i.sending
        cipher.rekey()
        #expect(cipher.key?.bytes == Array(encrypted.prefix(32)))
        #expect(CipherState.rekeyed(k).bytes == Array(encrypted.prefix(32)))
        #expect(cipher.nonce == i.sending.nonce)
        var empty = CipherState()
        empty.rekey()
        #expect(!empty.hasKey)
    }

    @Test func inPlaceAndIntoVariantsMatch() throws {
        var (i, r, _) = try handshake(.xx)
        var i2 = i, r2 = r, i3 = i, r3 = r
        let plaintext = Array("hello relay, 100 bytes or so".utf8)
        let expected = try i.encrypt(plaintext)
        // into:
        var out = [UInt8](repeating: 0, count: plaintext.count + 16 + 5)
        let written = try plaintext.withUnsafeBytes { p in try out.withUnsafeMutableBytes { try i2.encrypt(p, into: $0) } }
        #expect(written == plaintext.count + 16 && Array(out.prefix(written)) == expected)
        // in place:
        var buffer = plaintext + [UInt8](repeating: 0, count: 16)
        let length = try buffer.withUnsafeMutableBytes { try i3.encryptInPlace($0, plaintextLength: plaintext.count) }
        #expect(length == buffer.count && buffer == expected)
        // decrypt into / in place
        var plain = [UInt8](repeating: 0xee, count: plaintext.count)
        let read = try expected.withUnsafeBytes { m in try plain.withUnsafeMutableBytes { try r2.decrypt(m, into: $0) } }
        #expect(read == plaintext.count && plain == plaintext)
        let readInPlace = try buffer.withUnsafeMutableBytes { try r3.decryptInPlace($0) }
        #expect(readInPlace == plaintext.count && Array(buffer.prefix(readInPlace)) == plaintext)
        #expect(try r.decrypt(expected) == plaintext)
        #expect(i.sendingNonce == 1 && i2.sendingNonce == 1 && i3.sendingNonce == 1 && r2.receivingNonce == 1 && r3.receivingNonce == 1)
        // Buffers too small: typed errors, nothing used.
        var small = [UInt8](repeating: 0, count: plaintext.count + 15)
        #expect(throws: NoiseError.messageTooLarge(length: plaintext.count + 16, limit: plaintext.count + 15)) {
            try plaintext.withUnsafeBytes { p in try small.withUnsafeMutableBytes { try i2.encrypt(p, into: $0) } }
        }
        #expect(throws: NoiseError.messageTooLarge(length: plaintext.count + 16, limit: plaintext.count + 15)) {
            try small.withUnsafeMutableBytes { try i2.encryptInPlace($0, plaintextLength: plaintext.count) }
        }
        let next = try i2.encrypt(plaintext)
        var tiny = [UInt8](repeating: 0, count: plaintext.count - 1)
        #expect(throws: NoiseError.messageTooLarge(length: plaintext.count, limit: plaintext.count - 1)) {
            try next.withUnsafeBytes { m in try tiny.withUnsafeMutableBytes { try r2.decrypt(m, into: $0) } }
        }
        // A tampered in-place message: typed error, nonce unchanged, then the genuine one opens.
        var forged = next
        forged[3] ^= 1
        #expect(throws: NoiseError.decryptionFailed) { try forged.withUnsafeMutableBytes { try r2.decryptInPlace($0) } }
        #expect(r2.receivingNonce == 1)
        #expect(try r2.decrypt(next) == plaintext)
    }
}

@Suite struct PrimitiveTests {
    /// §4.3's HKDF is RFC 5869's with the chaining key as salt and an empty info.
    @Test(arguments: [0, 32, 100])
    func hkdfMatchesRFC5869(ikmLength: Int) throws {
        let ck = SecureBytes(copying: (0..<32).map { UInt8($0) })
        let ikm = (0..<ikmLength).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var out = [UInt8](repeating: 0, count: 96)
        ikm.withUnsafeBytes { m in
            out.withUnsafeMutableBytes { o in
                NoiseHKDF.derive(chainingKey: ck, inputKeyMaterial: m, output1: UnsafeMutableRawBufferPointer(rebasing: o[0..<32]),
                                 output2: UnsafeMutableRawBufferPointer(rebasing: o[32..<64]), output3: UnsafeMutableRawBufferPointer(rebasing: o[64..<96]))
            }
        }
        let reference = try HKDF.deriveKey(inputKeyMaterial: ikm, salt: ck, info: [UInt8](), outputByteCount: 96)
        #expect(out == reference.bytes)
        let (a, b) = ikm.withUnsafeBytes { NoiseHKDF.derive2(chainingKey: ck, inputKeyMaterial: $0) }
        #expect(a.bytes == Array(out[0..<32]) && b.bytes == Array(out[32..<64]))
    }

    /// §5.2 InitializeSymmetric: a name of at most 32 bytes is zero-padded, a longer one hashed.
    @Test func initializeSymmetric() {
        let short = SymmetricState(protocolName: "Noise_N_25519_ChaChaPoly_SHA256")
        #expect(short.hash == Array("Noise_N_25519_ChaChaPoly_SHA256".utf8) + [0])
        #expect(short.chainingKey.bytes == short.hash && !short.cipher.hasKey)
        let exact = SymmetricState(protocolName: "Noise_XX_25519_ChaChaPoly_SHA256")
        #expect(exact.hash == Array("Noise_XX_25519_ChaChaPoly_SHA256".utf8))
        let long = SymmetricState(protocolName: "Noise_XXfallback_25519_ChaChaPoly_SHA256")
        #expect(long.hash == SHA256.hash(Array("Noise_XXfallback_25519_ChaChaPoly_SHA256".utf8)))
    }

    @Test func mixHashIsHashOfHashAndData() {
        var state = SymmetricState(protocolName: "Noise_XX_25519_ChaChaPoly_SHA256")
        let before = state.hash
        [1, 2, 3].withUnsafeBytes { state.mixHash($0) }
        #expect(state.hash == SHA256.hash(before + [1, 2, 3]))
    }

    @Test func aCipherStateWithoutKeyPassesDataThrough() throws {
        var cipher = CipherState()
        var out = [UInt8](repeating: 0, count: 3)
        try [7, 8, 9].withUnsafeBytes { p in try out.withUnsafeMutableBytes { try cipher.encrypt(ad: p, plaintext: p, into: $0) } }
        #expect(out == [7, 8, 9] && cipher.nonce == 0)
    }
}
