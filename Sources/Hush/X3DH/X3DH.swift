/// Extended Triple Diffie-Hellman (X3DH specification, revision 1), as libsignal v3 realises
/// it: the shared secret becomes the Double Ratchet's first root key and chain key.
///
/// ```
/// DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)   DH4 = DH(EK_A, OPK_B)
/// SK input = 0xFF*32 || DH1 || DH2 || DH3 [|| DH4]                           (§2.2, §3.3)
/// RK0 || CK0 = HKDF(input, salt = 0*32, info = "WhisperText" (v3) | "hush-1/x3dh", 64)
/// ```
/// Every DH result is checked for the all-zero value (a low-order peer key).
///
/// PQXDH (PQXDH specification, revision 3, §3.3) is the same computation with the KEM shared
/// secret appended after the DHs and another info string (`kemSecret`, `info`; HushPQ):
/// `SK input = 0xFF*32 || DH1 || DH2 || DH3 [|| DH4] || SS`.
enum X3DH {
    /// Alice's side (§3.3): her identity and ephemeral keys against Bob's bundle keys.
    static func initiator(
        identity: IdentityKeyPair, baseKey: Curve25519.KeyAgreement.PrivateKey,
        theirIdentity: IdentityKey, theirSignedPreKey: Curve25519.KeyAgreement.PublicKey,
        theirOneTimePreKey: Curve25519.KeyAgreement.PublicKey?, suite: CipherSuite,
        kemSecret: SecureBytes? = nil
    ) throws(SignalProtocolError) -> (RootKey, ChainKey) {
        var secrets = [
            try agree(identity.privateKey, theirSignedPreKey),
            try agree(baseKey, theirIdentity.publicKey),
            try agree(baseKey, theirSignedPreKey),
        ]
        if let theirOneTimePreKey { secrets.append(try agree(baseKey, theirOneTimePreKey)) }
        return derive(secrets, kemSecret: kemSecret, info: kemSecret == nil ? suite.x3dhInfo : suite.pqxdhInfo)
    }

    /// Bob's side (§3.4): the same DHs with the roles swapped.
    static func responder(
        identity: IdentityKeyPair, signedPreKey: Curve25519.KeyAgreement.PrivateKey,
        oneTimePreKey: Curve25519.KeyAgreement.PrivateKey?,
        theirIdentity: IdentityKey, theirBaseKey: Curve25519.KeyAgreement.PublicKey, suite: CipherSuite,
        kemSecret: SecureBytes? = nil
    ) throws(SignalProtocolError) -> (RootKey, ChainKey) {
        var secrets = [
            try agree(signedPreKey, theirIdentity.publicKey),
            try agree(identity.privateKey, theirBaseKey),
            try agree(signedPreKey, theirBaseKey),
        ]
        if let oneTimePreKey { secrets.append(try agree(oneTimePreKey, theirBaseKey)) }
        return derive(secrets, kemSecret: kemSecret, info: kemSecret == nil ? suite.x3dhInfo : suite.pqxdhInfo)
    }

    private static func agree(
        _ ours: Curve25519.KeyAgreement.PrivateKey, _ theirs: Curve25519.KeyAgreement.PublicKey
    ) throws(SignalProtocolError) -> Curve25519.KeyAgreement.SharedSecret {
        do { return try ours.sharedSecretFromKeyAgreement(with: theirs) } catch { throw .invalidRatchetKey }
    }

    private static func derive(
        _ secrets: [Curve25519.KeyAgreement.SharedSecret], kemSecret: SecureBytes?, info: [UInt8]
    ) -> (RootKey, ChainKey) {
        let prefix = SignalConstants.x3dhDiscontinuity
        let dhEnd = prefix.count + 32 * secrets.count
        let input = SecureBytes(count: dhEnd + (kemSecret?.count ?? 0)) { out in
            out.copyBytes(from: prefix)
            for (i, secret) in secrets.enumerated() {
                secret.withUnsafeBytes { s in
                    UnsafeMutableRawBufferPointer(rebasing: out[(prefix.count + 32 * i)...]).copyMemory(from: s)
                }
            }
            kemSecret?.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: out[dhEnd...]).copyMemory(from: $0) }
        }
        let derived = try! HKDF.deriveKey(inputKeyMaterial: input, salt: [UInt8](), info: info, outputByteCount: 64)
        return (RootKey(key: derived.slice(0..<32)), ChainKey(key: derived.slice(32..<64), index: 0))
    }
}
