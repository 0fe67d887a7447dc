/// What the ML-KEM-1024 wrapper reports. Carries no secret material.
public enum KEMError: Error, Equatable, Hashable, Sendable {
    /// An encapsulation key of the wrong length, or failing FIPS 203's modulus check.
    case invalidPublicKey
    /// A seed that is not 64 bytes.
    case invalidSeed
    /// A ciphertext that is not 1,568 bytes.
    case invalidCiphertext
    /// A shared secret that is not 32 bytes.
    case invalidSharedSecret
    /// The encapsulator could not produce an encapsulation.
    case encapsulationFailed
    /// The random source failed.
    case randomness(CryptoError)
}
