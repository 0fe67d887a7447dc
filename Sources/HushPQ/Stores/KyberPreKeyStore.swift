import Hush
import Synchronization

/// Where a device keeps its Kyber prekeys (PQXDH §4.3).
public protocol KyberPreKeyStore: AnyObject, Sendable {
    /// The record stored under `id`, or `nil`.
    func loadKyberPreKey(id: UInt32) throws -> KyberPreKeyRecord?
    /// Stores (or replaces) a record.
    func storeKyberPreKey(_ record: KyberPreKeyRecord) throws
    /// A session was built from the key: a one-time key is deleted, a last-resort key kept.
    func markKyberPreKeyUsed(id: UInt32) throws
}

/// A ``KyberPreKeyStore`` in memory, for tests, demos and apps that persist elsewhere.
public final class InMemoryKyberPreKeyStore: KyberPreKeyStore {
    private let records = Mutex<[UInt32: KyberPreKeyRecord]>([:])

    public init() {}

    public func loadKyberPreKey(id: UInt32) throws -> KyberPreKeyRecord? { records.withLock { $0[id] } }

    public func storeKyberPreKey(_ record: KyberPreKeyRecord) throws { records.withLock { $0[record.id] = record } }

    public func markKyberPreKeyUsed(id: UInt32) throws {
        records.withLock { all in
            if all[id]?.kind == .oneTime { all[id] = nil }
        }
    }

    /// The ids stored, ascending.
    public var ids: [UInt32] { records.withLock { $0.keys.sorted() } }
}
