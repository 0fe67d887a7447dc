import Foundation
import Hush

/// Protobuf `bytes` fields are `Data`; let HushCrypto read them without copying.
extension Data: @retroactive ContiguousByteBuffer {
    /// Calls `body` with the bytes.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        // Data is always contiguous; the fallback copies (never taken in practice).
        let result: Result<R, E>? = self.withContiguousStorageIfAvailable { (buffer: UnsafeBufferPointer<UInt8>) in
            do throws(E) { return .success(try body(UnsafeRawBufferPointer(buffer))) } catch { return .failure(error) }
        }
        if let result { return try result.get() }
        return try Array(self).withUnsafeBytes(body)
    }
}

/// A type-erased ``RandomSource`` (stored properties cannot be `some`).
struct AnyRandomSource: RandomSource {
    let base: any RandomSource
    init(_ base: any RandomSource) { self.base = base }
    func fill(_ buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) { try base.fill(buffer) }
}
