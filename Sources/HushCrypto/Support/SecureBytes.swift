import CSodium

/// Bytes of secret material: private keys, shared secrets, chain and message keys.
///
/// - The bytes live in their own heap allocation, which is overwritten with zeros
///   (`sodium_memzero`, which the compiler may not elide) when the last copy is released.
/// - Copies share one allocation. The public API never mutates it; the library updates a
///   value in place only when it is the storage's sole owner (copy-on-write otherwise), so
///   no stale copy of a secret is left behind either way.
/// - `description`, `debugDescription` and `dump` show only the length.
/// - `==` runs in constant time for equal lengths.
///
/// Not for: bulk plaintext (use `[UInt8]`), or values that must survive a process crash
/// unreadable — the memory is not `mlock`ed and may reach swap or a core dump.
public struct SecureBytes: Sendable {
    @usableFromInline
    final class Storage: @unchecked Sendable {
        // The pointer and count never change. The bytes change only through
        // `SecureBytes.withUnsafeMutableBytes`, which first makes sure that this storage has a
        // single owner (copy-on-write), so storage shared between values or threads is never
        // written: sharing it across threads is safe.
        @usableFromInline let pointer: UnsafeMutableRawPointer
        @usableFromInline let count: Int

        @inlinable
        init(count: Int) {
            self.count = count
            // Allocate at least one byte so that the pointer is never dangling for count 0.
            self.pointer = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(count, 1), alignment: 16)
        }

        /// Test hook of this one storage (``SecureBytes/inspectRelease(_:)``): called with the
        /// buffer after it was wiped and before it is freed. Per storage, so tests running in
        /// parallel cannot see each other's buffers; present in release builds too.
        var releaseInspector: ((UnsafeRawBufferPointer) -> Void)?

        deinit {
            sodium_memzero(pointer, Swift.max(count, 1))
            releaseInspector?(UnsafeRawBufferPointer(start: pointer, count: count))
            pointer.deallocate()
        }
    }

    /// For tests that prove the wipe: `inspector` is called with this value's bytes when their
    /// storage is released (after the wipe, before the memory is freed). Not thread-safe: set
    /// it before sharing the value.
    package func inspectRelease(_ inspector: @escaping (UnsafeRawBufferPointer) -> Void) {
        storage.releaseInspector = inspector
    }

    @usableFromInline
    var storage: Storage

    /// Makes `count` bytes initialised by `body`. If `body` throws, the partial buffer is wiped.
    @inlinable
    public init<E: Error>(
        count: Int,
        initializingWith body: (UnsafeMutableRawBufferPointer) throws(E) -> Void
    ) throws(E) {
        precondition(count >= 0, "negative byte count")
        let storage = Storage(count: count)
        storage.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: Swift.max(count, 1))
        try body(UnsafeMutableRawBufferPointer(start: storage.pointer, count: count))
        self.storage = storage
    }

    /// `count` zero bytes.
    public init(zeroes count: Int) {
        self.init(count: count) { (_: UnsafeMutableRawBufferPointer) in }
    }

    /// A copy of `bytes`. The source is not wiped: prefer initialisers that write secrets
    /// directly into ``SecureBytes``.
    public init(copying bytes: some ContiguousByteBuffer) {
        self = bytes.withUnsafeBytes { raw in
            SecureBytes(count: raw.count) { (out: UnsafeMutableRawBufferPointer) in
                if raw.count > 0 { out.copyMemory(from: raw) }
            }
        }
    }

    /// `count` bytes from `random` (the operating system's CSPRNG by default).
    public init(randomCount count: Int, using random: some RandomSource = SystemRandom()) throws(CryptoError) {
        try self.init(count: count) { (out: UnsafeMutableRawBufferPointer) throws(CryptoError) in
            try random.fill(out)
        }
    }

    /// The number of bytes.
    @inlinable
    public var count: Int { storage.count }

    /// Calls `body` with the bytes. Do not let the pointer escape or copy the bytes into
    /// storage that is not wiped.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// Overwrites the bytes in place, for keys that are replaced at every step (ratchet chain
    /// keys): when this value is the only owner of its storage, no allocation happens; when
    /// the storage is shared, this value first gets a private copy (copy-on-write), so other
    /// copies never see the change.
    package mutating func withUnsafeMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        if !isKnownUniquelyReferenced(&storage) {
            self = SecureBytes(copying: self)
        }
        return try body(UnsafeMutableRawBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// A new value holding `self[range]`.
    public func slice(_ range: Range<Int>) -> SecureBytes {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "slice out of bounds")
        return withUnsafeBytes { raw in
            SecureBytes(copying: UnsafeRawBufferPointer(rebasing: raw[range]))
        }
    }
}

extension SecureBytes: ContiguousByteBuffer {}

extension SecureBytes: Equatable {
    /// Constant-time for equal lengths (the length itself is not secret).
    public static func == (lhs: SecureBytes, rhs: SecureBytes) -> Bool {
        ConstantTime.equals(lhs, rhs)
    }
}

extension SecureBytes: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "SecureBytes(\(count) bytes, redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
