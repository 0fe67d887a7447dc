import CSodium
import Synchronization

/// Where HushCrypto gets random bytes: key generation, nonces, signature randomness.
///
/// Production code uses ``SystemRandom``. Tests and transcript replay inject a deterministic
/// source (``ReplayRandom``, ``SeededRandom``) so that every output reproduces byte for byte.
public protocol RandomSource: Sendable {
    /// Fills `buffer` completely, or throws and leaves it unspecified.
    func fill(_ buffer: UnsafeMutableRawBufferPointer) throws(CryptoError)
}

extension RandomSource {
    /// `count` random bytes in wiped storage.
    public func secureBytes(count: Int) throws(CryptoError) -> SecureBytes {
        try SecureBytes(randomCount: count, using: self)
    }
}

/// The operating system's CSPRNG through libsodium's `randombytes_buf`. Never fails.
public struct SystemRandom: RandomSource {
    public init() {}

    public func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        Sodium.ensureInitialized()
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        randombytes_buf(base, buffer.count)
    }
}

/// Hands out exactly the bytes it was given, in order, then throws
/// ``CryptoError/randomSourceExhausted(requested:remaining:)``.
///
/// For replaying transcripts whose consumed randomness is listed. Never use it in production:
/// reused randomness breaks signatures and key agreement.
public final class ReplayRandom: RandomSource {
    private let state: Mutex<(bytes: [UInt8], offset: Int)>

    public init(_ bytes: some ContiguousByteBuffer) {
        state = Mutex((bytes.bytes, 0))
    }

    /// Bytes not yet handed out.
    public var remaining: Int { state.withLock { $0.bytes.count - $0.offset } }

    public func fill(_ buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) {
        let result: CryptoError? = state.withLock { state in
            let left = state.bytes.count - state.offset
            guard buffer.count <= left else {
                return .randomSourceExhausted(requested: buffer.count, remaining: left)
            }
            state.bytes.withUnsafeBytes { source in
                guard buffer.count > 0 else { return }
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[state.offset..<state.offset + buffer.count]))
            }
            state.offset += buffer.count
            return nil
        }
        if let result { throw result }
    }
}

/// A deterministic stream from a 32-byte seed: ChaCha20 (IETF) keystream under the seed,
/// one nonce per `fill` call. Reproducible test randomness; never use it in production.
public final class SeededRandom: RandomSource {
    private let seed: SecureBytes
    private let calls = Mutex<UInt64>(0)

    /// `seed` must be 32 bytes.
    public init(seed: some ContiguousByteBuffer) throws(CryptoError) {
        guard seed.byteCount == 32 else { throw .invalidKeySize(actual: seed.byteCount, allowed: [32]) }
        self.seed = SecureBytes(copying: seed)
    }

    /// A seed made from an integer, for tests: the little-endian integer then zeroes.
    public convenience init(seed: UInt64) {
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: seed >> (8 * UInt64(i))) }
        try! self.init(seed: bytes)
    }

    public func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        Sodium.ensureInitialized()
        guard buffer.count > 0 else { return }
        let call = calls.withLock { value -> UInt64 in defer { value += 1 }; return value }
        var nonce = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { nonce[i] = UInt8(truncatingIfNeeded: call >> (8 * UInt64(i))) }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        seed.withUnsafeBytes { key in
            _ = crypto_stream_chacha20_ietf(buffer.nonNullBase, UInt64(buffer.count), nonce, key.nonNullBase)
        }
    }
}
