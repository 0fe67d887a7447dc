import Hush
import Testing

/// The README's example, verbatim, so that it keeps compiling and working.
@Test func readmeExample() throws {
    // X25519 with Signal's key encoding, and XEdDSA signatures from the same key.
    let identity = try Curve25519.KeyAgreement.PrivateKey()
    let signedPrekey = try Curve25519.KeyAgreement.PrivateKey()
    let signature = try XEdDSA.signature(for: signedPrekey.publicKey.signalRepresentation, using: identity)
    assert(identity.publicKey.isValidSignature(signature, for: signedPrekey.publicKey.signalRepresentation))
    let shared = try identity.sharedSecretFromKeyAgreement(with: signedPrekey.publicKey)  // throws on low-order keys

    // HKDF, then an AEAD.
    let key = SymmetricKey(try HKDF.deriveKey(inputKeyMaterial: shared, salt: [UInt8](), info: Array("example".utf8), outputByteCount: 32))
    let box = try XChaChaPoly.seal(Array("hello".utf8), using: key, authenticating: Array("header".utf8))
    let opened = try XChaChaPoly.open(box, using: key, authenticating: Array("header".utf8))

    #expect(opened == Array("hello".utf8))
    #expect(identity.publicKey.isValidSignature(signature, for: signedPrekey.publicKey.signalRepresentation))
}
