import Hush

/// A hush-1 first message (a prekey message with counter 0) made by hand from
/// Docs/spec/hush-1.md §4–§6, so that a sender's own keys can be replaced in it *before* the
/// AEAD: a torsioned base, identity or ratchet key then authenticates (every DH result is the
/// same, and the associated data carries the replaced bytes), which only the receiver's subgroup
/// check can refuse. With no replacement it reproduces Hush's first message byte for byte.
struct HandMadeFirstMessage {
    let identity: IdentityKeyPair
    let registrationID: UInt32
    let baseKey: Curve25519.KeyAgreement.PrivateKey
    let ratchetKey: Curve25519.KeyAgreement.PrivateKey
    let bundle: PreKeyBundle
    var baseKeyBytes: [UInt8]? = nil, identityKeyBytes: [UInt8]? = nil, ratchetKeyBytes: [UInt8]? = nil

    private func dh(_ a: Curve25519.KeyAgreement.PrivateKey, _ b: Curve25519.KeyAgreement.PublicKey) -> [UInt8] {
        (try! a.sharedSecretFromKeyAgreement(with: b)).bytes
    }

    func message(_ plaintext: [UInt8]) -> [UInt8] {
        let spk = bundle.signedPreKey!
        // §4: X3DH, then Alice's first DH ratchet step.
        var secret = [UInt8](repeating: 0xFF, count: 32) + dh(identity.privateKey, spk.publicKey)
            + dh(baseKey, bundle.identityKey.publicKey) + dh(baseKey, spk.publicKey)
        if let otk = bundle.oneTimePreKey { secret += dh(baseKey, otk.publicKey) }
        let x3dh = try! HKDF.deriveKey(inputKeyMaterial: secret, salt: [UInt8](), info: Array("hush-1/x3dh".utf8), outputByteCount: 64).bytes
        let root = try! HKDF.deriveKey(inputKeyMaterial: dh(ratchetKey, spk.publicKey), salt: Array(x3dh[0..<32]),
                                       info: Array("hush-1/root".utf8), outputByteCount: 64).bytes
        // §5: the message key for index 0 of the sending chain.
        let seed = HMACSHA256.authenticationCode(for: [0x01], using: Array(root[32..<64]))
        let material = try! HKDF.deriveKey(inputKeyMaterial: seed, salt: [UInt8](), info: Array("hush-1/message-keys".utf8),
                                           outputByteCount: 56).bytes
        // §6, §6.1
        let identityBytes = identityKeyBytes ?? identity.identityKey.publicKey.rawRepresentation
        var prefix: [UInt8] = [0x12, bundle.oneTimePreKey == nil ? 0x00 : 0x01]
        if let otk = bundle.oneTimePreKey { prefix += varintBytes(otk.id) }
        prefix += varintBytes(spk.id) + varintBytes(registrationID)
        prefix += (baseKeyBytes ?? baseKey.publicKey.rawRepresentation) + identityBytes
        let header = [0x11] + (ratchetKeyBytes ?? ratchetKey.publicKey.rawRepresentation) + varintBytes(0) + varintBytes(0)
        let ad = Array("hush-1/message".utf8) + identityBytes + bundle.identityKey.publicKey.rawRepresentation + prefix + header
        let body = try! XChaChaPoly.encrypt(plaintext, key: Array(material[0..<32]), nonce: Array(material[32..<56]), associatedData: ad)
        return prefix + header + body
    }
}
