/// The errors every primitive in ``HushCrypto`` throws.
///
/// Cases carry the numbers a caller needs to act (sizes, limits), never secret material:
/// an error value may be logged.
public enum CryptoError: Error, Equatable, Hashable, Sendable {
    /// A key had the wrong length. `allowed` lists every accepted length.
    case invalidKeySize(actual: Int, allowed: [Int])
    /// A nonce or IV had the wrong length.
    case invalidNonceSize(actual: Int, expected: Int)
    /// A key's encoding is not valid (for example a Signal-form public key without the 0x05 prefix).
    case invalidKeyEncoding
    /// An AEAD tag, MAC or stream chunk failed to authenticate. Nothing was decrypted.
    case authenticationFailure
    /// A ciphertext is too short or not a whole number of blocks.
    case invalidCiphertextLength(actual: Int)
    /// CBC padding was malformed after decryption. CBC is not authenticated: only decrypt what
    /// a MAC has already authenticated, so that this error cannot become a padding oracle.
    case invalidPadding
    /// Diffie-Hellman produced the all-zero value: the peer's public key has low order.
    case allZeroSharedSecret
    /// A requested output length is outside what the construction allows.
    case outputLengthOutOfRange(requested: Int, allowed: ClosedRange<Int>)
    /// A parameter other than a key, nonce or length is outside its documented range.
    case parameterOutOfRange(name: String, value: Int, allowed: ClosedRange<Int>)
    /// A deterministic ``RandomSource`` had fewer bytes left than were requested.
    case randomSourceExhausted(requested: Int, remaining: Int)
    /// A secret-stream ciphertext ended before its final chunk, or continued after it.
    case streamTruncated
    /// Argon2id could not run with the given limits (usually: not enough memory).
    case passwordHashingFailed
    /// The underlying C library reported a failure that input validation should have made
    /// impossible (out of memory, or a library bug). `function` names the failing call.
    case libraryFailure(function: String)
}

/// Errors from ``Hex`` decoding.
public enum HexError: Error, Equatable, Hashable, Sendable {
    /// The string has an odd number of characters.
    case oddLength(Int)
    /// The character at `offset` is not a hexadecimal digit.
    case invalidCharacter(offset: Int)
}
