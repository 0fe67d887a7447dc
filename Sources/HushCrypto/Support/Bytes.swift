/// Contiguous bytes that HushCrypto can read without copying.
///
/// `[UInt8]`, `ArraySlice<UInt8>`, ``SecureBytes`` and `UnsafeRawBufferPointer` conform.
/// To pass Foundation's `Data`, conform it in your app (its own `withUnsafeBytes` is
/// `rethrows`, not typed-throws, so it needs this forwarding method):
/// ```swift
/// extension Data: ContiguousByteBuffer {
///     public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
///         let result: Result<R, E> = self.withUnsafeBytes { raw in Result { () throws(E) -> R in try body(raw) } }
///         return try result.get()
///     }
/// }
/// ```
public protocol ContiguousByteBuffer {
    /// Calls `body` with a pointer to the bytes; the pointer is valid only inside `body`.
    func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R
}

extension Array: ContiguousByteBuffer where Element == UInt8 {
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try self.withUnsafeBufferPointer { (b: UnsafeBufferPointer<UInt8>) throws(E) -> R in try body(UnsafeRawBufferPointer(b)) }
    }
}

extension ArraySlice: ContiguousByteBuffer where Element == UInt8 {
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try self.withUnsafeBufferPointer { (b: UnsafeBufferPointer<UInt8>) throws(E) -> R in try body(UnsafeRawBufferPointer(b)) }
    }
}

extension UnsafeRawBufferPointer: ContiguousByteBuffer {
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(self)
    }
}

extension ContiguousByteBuffer {
    /// The number of bytes.
    @inlinable
    public var byteCount: Int { withUnsafeBytes { $0.count } }

    /// A copy of the bytes in a plain array. Do not use on secrets: the copy is not wiped.
    @inlinable
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}

extension UnsafeRawBufferPointer {
    /// A non-null base pointer, also for an empty buffer: libsodium's parameters are declared
    /// `nonnull` even where the length is 0.
    @usableFromInline
    var nonNullBase: UnsafePointer<UInt8> {
        if let base = baseAddress { return base.assumingMemoryBound(to: UInt8.self) }
        return emptyByteBuffer
    }
}

extension UnsafeMutableRawBufferPointer {
    @usableFromInline
    var nonNullBase: UnsafeMutablePointer<UInt8> {
        if let base = baseAddress { return base.assumingMemoryBound(to: UInt8.self) }
        return emptyMutableByteBuffer
    }
}

@usableFromInline
nonisolated(unsafe) let emptyMutableByteBuffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
@usableFromInline
nonisolated(unsafe) let emptyByteBuffer = UnsafePointer(emptyMutableByteBuffer)

/// Makes an array of exactly `count` bytes, initialised by `body`.
@inlinable
func makeBytes<E: Error>(count: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) -> [UInt8] {
    try [UInt8](unsafeUninitializedCapacity: count) { (buffer: inout UnsafeMutableBufferPointer<UInt8>, initialized: inout Int) throws(E) in
        try body(UnsafeMutableRawBufferPointer(buffer))
        initialized = count
    }
}
