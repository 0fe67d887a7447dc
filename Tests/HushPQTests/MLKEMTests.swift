import HushPQ
import Testing

@Suite struct MLKEMTests {
    @Test func seededKeysAreDeterministicAndRoundTrip() throws {
        let seed = [UInt8](repeating: 7, count: 64)
        let a = try MLKEM1024.PrivateKey(seed: seed)
        let b = try MLKEM1024.PrivateKey(seed: seed)
        #expect(a.publicKey == b.publicKey)
        #expect(a.publicKey.rawRepresentation.count == 1568)
        let encapsulation = try SystemEncapsulator().encapsulate(to: a.publicKey)
        #expect(encapsulation.ciphertext.count == 1568)
        #expect(try a.decapsulate(encapsulation.ciphertext) == encapsulation.sharedSecret)
        // Implicit rejection: another key yields another secret, not an error.
        let other = try MLKEM1024.PrivateKey(seed: [UInt8](repeating: 8, count: 64))
        #expect(try other.decapsulate(encapsulation.ciphertext) != encapsulation.sharedSecret)
    }

    @Test func typedErrors() throws {
        #expect(throws: KEMError.invalidSeed) { try MLKEM1024.PrivateKey(seed: [UInt8](repeating: 1, count: 63)) }
        #expect(throws: KEMError.invalidPublicKey) { try MLKEM1024.PublicKey(rawRepresentation: [UInt8](repeating: 0, count: 1567)) }
        // Every coefficient 0xFFF ≥ q: the modulus check fails.
        #expect(throws: KEMError.invalidPublicKey) { try MLKEM1024.PublicKey(rawRepresentation: [UInt8](repeating: 0xFF, count: 1568)) }
        let key = try MLKEM1024.PrivateKey(seed: [UInt8](repeating: 7, count: 64))
        #expect(throws: KEMError.invalidCiphertext) { try key.decapsulate([UInt8](repeating: 0, count: 1567)) }
        #expect(throws: KEMError.randomness(.randomSourceExhausted(requested: 32, remaining: 0))) {
            try RecordedEncapsulator([]).encapsulate(to: key.publicKey)
        }
        let other = try MLKEM1024.PrivateKey(seed: [UInt8](repeating: 8, count: 64)).publicKey
        let recorded = try SystemEncapsulator().encapsulate(to: other)
        #expect(throws: KEMError.encapsulationFailed) {
            try RecordedEncapsulator([(other.rawRepresentation, recorded)]).encapsulate(to: key.publicKey)
        }
    }

    @Test func secretsAreRedacted() throws {
        let key = try MLKEM1024.PrivateKey(seed: [UInt8](repeating: 7, count: 64))
        #expect(!key.description.contains("0707"))
        #expect(String(describing: try key.decapsulate([UInt8](repeating: 0, count: 1568))).contains("redacted"))
    }

    @Test func kyberPreKeySignatureCoversTheEncodedKey() throws {
        let random = SeededRandom(seed: 1)
        let identity = try IdentityKeyPair.generate(using: random)
        let record = try KyberPreKeyRecord.generate(id: 5, kind: .oneTime, signedBy: identity, using: random)
        let published = record.publicKyberPreKey
        #expect(published.encoded.count == 1569 && published.encoded[0] == 0x08)
        #expect(published.isSigned(by: identity.identityKey))
        #expect(try KyberPreKey.decodePublicKey(published.encoded) == record.keyPair.publicKey)
        let stranger = try IdentityKeyPair.generate(using: random)
        #expect(!published.isSigned(by: stranger.identityKey))
    }
}
