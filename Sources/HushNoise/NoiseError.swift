/// Why a Noise operation failed. Cases carry lengths and limits, never key material or
/// plaintext, so an error may be logged.
public enum NoiseError: Error, Equatable, Hashable, Sendable {
    /// A message, payload or plaintext is longer than allowed (§3). `length` is the length of
    /// what was given (a received message, a payload to send, a plaintext to encrypt) and
    /// `limit` the largest allowed for it; for the `into:` variants of ``NoiseTransport``,
    /// `length` is the space needed and `limit` the space the caller's buffer has.
    case messageTooLarge(length: Int, limit: Int)
    /// A received message is shorter than its pattern requires (a truncated handshake message),
    /// or a transport message is shorter than its 16-byte tag.
    case messageTooShort(length: Int, minimum: Int)
    /// An AEAD tag did not verify (handshake or transport): the message was forged, corrupted,
    /// out of order, or the parties disagree on keys or prologue. Nothing was decrypted.
    case decryptionFailed
    /// The CipherState's nonce reached 2^64-1, which §5.1 reserves: the session must end.
    case nonceExhausted
    /// A public key is unusable: not 32 bytes, not canonically encoded, of small order, or it
    /// made a DH output all zeros (§12.1).
    case invalidPublicKey
    /// The pattern needs a local static key pair that was not given.
    case missingLocalStaticKey
    /// The pattern needs the peer's static public key up front (a pre-message, §7.1) and it
    /// was not given.
    case missingRemoteStaticKey
    /// A write when it is the peer's turn, or a read when it is ours (§7.1: the parties
    /// alternate, the initiator first).
    case outOfTurn
    /// A write or read after the last handshake message.
    case handshakeFinished
    /// `split()` before the last handshake message.
    case handshakeNotFinished
}
