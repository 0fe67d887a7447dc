import HushNoise
/// Errors of the relay transport: handshake, channel and stanza decoding. Never carries key
/// material or plaintext.
public enum TransportError: Error, Equatable, Sendable {
    /// The first handshake message is empty or names an unknown pattern byte.
    case unknownPattern(UInt8?)
    /// A Noise handshake message was malformed, out of turn or failed to authenticate.
    case handshakeFailed(reason: String)
    /// The relay's certificate was rejected.
    case certificate(RelayCertificate.Error)
    /// A handshake payload (`ClientHello` / `ServerHello`) did not decode or had a bad version.
    case malformedHello(reason: String)
    /// A transport message failed to authenticate.
    case decryptFailed
    /// The sending nonce is exhausted (Noise §5.1): the connection must be re-established.
    case nonceExhausted
    /// A message or stanza exceeds its limit.
    case tooLarge(length: Int, limit: Int)
    /// Stanza bytes did not decode as a `Stanza`, or had no body.
    case malformedStanza(reason: String)
    /// A handshake step was called in the wrong state.
    case outOfOrder
}

extension TransportError {
    init(_ error: NoiseError) {
        switch error {
        case .decryptionFailed: self = .decryptFailed
        case .nonceExhausted: self = .nonceExhausted
        case .messageTooLarge(let length, let limit): self = .tooLarge(length: length, limit: limit)
        default: self = .handshakeFailed(reason: "\(error)")
        }
    }
}
