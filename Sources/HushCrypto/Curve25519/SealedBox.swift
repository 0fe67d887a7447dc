import CSodium

/// Errors of ``SealedBox``. They carry lengths only, never key or message bytes.
public enum SealedBoxError: Error, Equatable, Hashable, Sendable {
    /// The sealed bytes are shorter than ``SealedBox/overhead`` (`actual` bytes).
    case tooShort(actual: Int)
    /// The box did not open: not sealed to this key pair, or changed on the way.
    case authenticationFailure
    /// Sealing failed: the recipient key is a low-order point (libsodium refuses it).
    case invalidRecipientKey
}

/// libsodium's anonymous sealed box (`crypto_box_seal` / `crypto_box_seal_open`): a message for
/// the holder of an X25519 key pair from an unauthenticated sender. The construction is
/// libsodium's: a fresh ephemeral X25519 key pair, the nonce BLAKE2b-192(ephemeral public ‖
/// recipient public), XSalsa20-Poly1305 under the X25519 shared key (`crypto_box`); the sealed
/// bytes are the ephemeral public key (32), the tag (16), then the ciphertext. NaCl's
/// `SealedBox` (pynacl) is the same construction.
///
/// Not for: anything the sender must be authenticated by (sign the plaintext, or use a session).
public enum SealedBox {
    /// Bytes sealing adds: the ephemeral public key and the Poly1305 tag (48).
    public static let overhead = Int(crypto_box_sealbytes())

    /// Seals `message` to `recipient` (an ephemeral key pair from libsodium's CSPRNG, wiped by
    /// libsodium after use).
    public static func seal(_ message: some ContiguousByteBuffer, to recipient: Curve25519.KeyAgreement.PublicKey) throws(SealedBoxError) -> [UInt8] {
        Sodium.ensureInitialized()
        var status: Int32 = 0
        let sealed = message.withUnsafeBytes { m in
            recipient.rawRepresentation.withUnsafeBytes { pk in
                makeBytes(count: m.count + overhead) { (c: UnsafeMutableRawBufferPointer) in
                    status = crypto_box_seal(c.nonNullBase, m.nonNullBase, UInt64(m.count), pk.nonNullBase)
                }
            }
        }
        guard status == 0 else { throw .invalidRecipientKey }
        return sealed
    }

    /// Opens `sealed` with `keyPair` (the recipient's private key; its public key is derived).
    /// The plaintext is returned in wiped storage; on failure nothing is returned (libsodium
    /// writes no plaintext before the tag is verified, and the scratch buffer is wiped).
    public static func open(_ sealed: some ContiguousByteBuffer, keyPair: Curve25519.KeyAgreement.PrivateKey) throws(SealedBoxError) -> SecureBytes {
        Sodium.ensureInitialized()
        guard sealed.byteCount >= overhead else { throw .tooShort(actual: sealed.byteCount) }
        let count = sealed.byteCount - overhead
        var status: Int32 = 0
        let plain = SecureBytes(count: count) { (out: UnsafeMutableRawBufferPointer) in
            sealed.withUnsafeBytes { c in
                keyPair.publicKey.rawRepresentation.withUnsafeBytes { pk in
                    keyPair.rawRepresentation.withUnsafeBytes { sk in
                        status = crypto_box_seal_open(out.nonNullBase, c.nonNullBase, UInt64(c.count), pk.nonNullBase, sk.nonNullBase)
                    }
                }
            }
        }
        guard status == 0 else { throw .authenticationFailure }
        return plain
    }
}
