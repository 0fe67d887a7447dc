import Hush

/// One primitive run against one vector: did the implementation accept, and what it did.
struct Check {
    /// `true` when the operation succeeded and every output matched the vector.
    let accepted: Bool
    /// What was observed, for failure messages (public values only: these are test vectors).
    let detail: String
}

/// The checks shared by every vector format (Wycheproof and Hush KATs): one per primitive.
enum PrimitiveChecks {
    static func x25519(privateKey: [UInt8], publicKey: [UInt8], shared: [UInt8]) -> Check {
        do {
            let key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateKey)
            let peer = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: publicKey)
            let secret = try key.sharedSecretFromKeyAgreement(with: peer)
            let matches = secret.secret.bytes == shared
            return Check(accepted: matches, detail: matches ? "agreed" : "shared secret differs")
        } catch {
            return Check(accepted: false, detail: "rejected: \(error)")
        }
    }

    /// RFC 7748 §5.2: k = u = 9; repeat `iterations` times: (k, u) = (X25519(k, u), k).
    static func x25519Iterated(iterations: Int, expected: [UInt8]) -> Check {
        var k = [UInt8](repeating: 0, count: 32)
        k[0] = 9
        var u = k
        do {
            for _ in 0..<iterations {
                let key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: k)
                let next = try key.sharedSecretFromKeyAgreement(with: Curve25519.KeyAgreement.PublicKey(rawRepresentation: u))
                u = k
                k = next.secret.bytes
            }
        } catch {
            return Check(accepted: false, detail: "rejected: \(error)")
        }
        return Check(accepted: k == expected, detail: "k = \(Hex.encode(k))")
    }

    static func ed25519Verify(publicKey: [UInt8], message: [UInt8], signature: [UInt8]) -> Check {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else {
            return Check(accepted: false, detail: "public key rejected")
        }
        let ok = key.isValidSignature(signature, for: message)
        return Check(accepted: ok, detail: ok ? "signature verified" : "signature rejected")
    }

    /// Signing from the seed must reproduce `signature` exactly, and it must verify.
    static func ed25519Sign(seed: [UInt8], publicKey: [UInt8], message: [UInt8], signature: [UInt8]) -> Check {
        do {
            let key = try Curve25519.Signing.PrivateKey(rawRepresentation: seed)
            guard key.publicKey.rawRepresentation == publicKey else { return Check(accepted: false, detail: "public key differs") }
            let made = key.signature(for: message)
            guard made == signature else { return Check(accepted: false, detail: "signature differs: \(Hex.encode(made))") }
            return ed25519Verify(publicKey: publicKey, message: message, signature: signature)
        } catch {
            return Check(accepted: false, detail: "rejected: \(error)")
        }
    }

    enum AEADKind: String { case chacha = "ChaCha20-Poly1305", xchacha = "XChaCha20-Poly1305" }

    /// Valid: encryption reproduces `ciphertext || tag` and decryption returns `plaintext`.
    /// Invalid: decryption must fail (an invalid case counts as accepted if decryption succeeds
    /// at all, whatever it returns).
    static func aead(
        _ kind: AEADKind, key: [UInt8], nonce: [UInt8], aad: [UInt8],
        plaintext: [UInt8], ciphertext: [UInt8], tag: [UInt8], expectValid: Bool
    ) -> Check {
        let encrypt: ([UInt8], [UInt8], [UInt8], [UInt8]) throws -> [UInt8]
        let decrypt: ([UInt8], [UInt8], [UInt8], [UInt8]) throws -> [UInt8]
        switch kind {
        case .chacha:
            encrypt = { try ChaChaPoly.encrypt($0, key: $1, nonce: $2, associatedData: $3) }
            decrypt = { try ChaChaPoly.decrypt($0, key: $1, nonce: $2, associatedData: $3) }
        case .xchacha:
            encrypt = { try XChaChaPoly.encrypt($0, key: $1, nonce: $2, associatedData: $3) }
            decrypt = { try XChaChaPoly.decrypt($0, key: $1, nonce: $2, associatedData: $3) }
        }
        let opened: [UInt8]
        do { opened = try decrypt(ciphertext + tag, key, nonce, aad) } catch {
            return Check(accepted: false, detail: "decryption rejected: \(error)")
        }
        guard expectValid else { return Check(accepted: true, detail: "forged ciphertext decrypted") }
        guard opened == plaintext else { return Check(accepted: false, detail: "decrypted plaintext differs") }
        guard let sealed = try? encrypt(plaintext, key, nonce, aad), sealed == ciphertext + tag else {
            return Check(accepted: false, detail: "encryption does not reproduce the ciphertext")
        }
        return Check(accepted: true, detail: "sealed and opened")
    }

    /// Valid: the tag (possibly truncated) matches and verifies. Invalid: verification fails.
    static func hmacSHA256(key: [UInt8], message: [UInt8], tag: [UInt8]) -> Check {
        let verifies = HMACSHA256.isValidAuthenticationCode(tag, for: message, using: key)
        let computed = HMACSHA256.authenticationCode(for: message, using: key)
        let matches = computed.prefix(tag.count).elementsEqual(tag) && !tag.isEmpty
        return Check(accepted: verifies && matches, detail: verifies ? "tag verified" : "tag rejected")
    }

    static func hkdfSHA256(ikm: [UInt8], salt: [UInt8], info: [UInt8], length: Int, prk: [UInt8]?, okm: [UInt8]) -> Check {
        if let prk, HKDF.extract(inputKeyMaterial: ikm, salt: salt).bytes != prk {
            return Check(accepted: false, detail: "PRK differs")
        }
        do {
            let out = try HKDF.deriveKey(inputKeyMaterial: ikm, salt: salt, info: info, outputByteCount: length)
            return Check(accepted: out.bytes == okm, detail: out.bytes == okm ? "derived" : "output differs")
        } catch {
            return Check(accepted: false, detail: "rejected: \(error)")
        }
    }

    /// Valid: encryption reproduces `ciphertext` and decryption returns `plaintext`.
    /// Invalid: decryption must fail.
    static func aesCBC(key: [UInt8], iv: [UInt8], plaintext: [UInt8], ciphertext: [UInt8], padding: AES.Padding, expectValid: Bool) -> Check {
        let opened: [UInt8]
        do { opened = try AES.CBC.decrypt(ciphertext, key: key, iv: iv, padding: padding) } catch {
            return Check(accepted: false, detail: "decryption rejected: \(error)")
        }
        guard expectValid else { return Check(accepted: true, detail: "decryption succeeded") }
        guard opened == plaintext else { return Check(accepted: false, detail: "decrypted plaintext differs") }
        guard let sealed = try? AES.CBC.encrypt(plaintext, key: key, iv: iv, padding: padding), sealed == ciphertext else {
            return Check(accepted: false, detail: "encryption does not reproduce the ciphertext")
        }
        return Check(accepted: true, detail: "encrypted and decrypted")
    }

    static func aesCTR(key: [UInt8], counter: [UInt8], plaintext: [UInt8], ciphertext: [UInt8]) -> Check {
        do {
            let forward = try AES.CTR.apply(plaintext, key: key, counter: counter)
            let back = try AES.CTR.apply(ciphertext, key: key, counter: counter)
            let ok = forward == ciphertext && back == plaintext
            return Check(accepted: ok, detail: ok ? "matched" : "keystream differs")
        } catch {
            return Check(accepted: false, detail: "rejected: \(error)")
        }
    }

    static func digest(sha512: Bool, message: [UInt8], digest: [UInt8]) -> Check {
        let out = sha512 ? SHA512.hash(message) : SHA256.hash(message)
        return Check(accepted: out == digest, detail: out == digest ? "matched" : "digest differs")
    }

    /// Verification under `policy`; when the private key and randomness are given, signing
    /// must also reproduce the signature (in `variant`).
    static func xeddsa(
        privateKey: [UInt8]?, publicKey: [UInt8], message: [UInt8], signature: [UInt8],
        randomness: [UInt8]?, variant: XEdDSA.Variant, policy: XEdDSA.VerificationPolicy
    ) -> Check {
        let pub: Curve25519.KeyAgreement.PublicKey
        do {
            pub = publicKey.count == 33
                ? try Curve25519.KeyAgreement.PublicKey(signalRepresentation: publicKey)
                : try Curve25519.KeyAgreement.PublicKey(rawRepresentation: publicKey)
        } catch {
            return Check(accepted: false, detail: "public key rejected: \(error)")
        }
        if let privateKey, let randomness {
            do {
                let key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateKey)
                // The listed key may differ from the derived one only in bit 7 of byte 31 (which
                // libsignal's verification ignores), never in any other bit.
                let listed = pub.rawRepresentation, derived = key.publicKey.rawRepresentation
                guard listed == derived || publicKey.count == 32 && listed[0..<31] == derived[0..<31] && listed[31] & 0x7F == derived[31] & 0x7F else {
                    return Check(accepted: false, detail: "private key does not match the public key")
                }
                let made = try XEdDSA.signature(for: message, using: key, variant: variant, randomness: randomness)
                guard made == signature else { return Check(accepted: false, detail: "signature differs: \(Hex.encode(made))") }
            } catch {
                return Check(accepted: false, detail: "signing failed: \(error)")
            }
        }
        let ok = XEdDSA.isValidSignature(signature, for: message, publicKey: pub, policy: policy)
        return Check(accepted: ok, detail: ok ? "signature verified" : "signature rejected")
    }
}
