/// A secret key for a symmetric cipher or MAC, in wiped storage (``SecureBytes``).
///
/// The length is checked by the algorithm that uses the key, which reports
/// ``CryptoError/invalidKeySize(actual:allowed:)``.
public struct SymmetricKey: Sendable, Equatable, ContiguousByteBuffer,
    CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable
{
    /// The key bytes.
    public let secret: SecureBytes

    /// A fresh random key of `byteCount` bytes.
    public init(randomByteCount byteCount: Int = 32, using random: some RandomSource = SystemRandom()) throws(CryptoError) {
        secret = try SecureBytes(randomCount: byteCount, using: random)
    }

    /// A key holding a copy of `bytes`.
    public init(copying bytes: some ContiguousByteBuffer) {
        secret = SecureBytes(copying: bytes)
    }

    /// A key over existing secure storage (no copy).
    public init(_ secret: SecureBytes) {
        self.secret = secret
    }

    /// The key length in bytes.
    public var byteCount: Int { secret.count }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try secret.withUnsafeBytes(body)
    }

    public var description: String { "SymmetricKey(\(secret.count) bytes, redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
