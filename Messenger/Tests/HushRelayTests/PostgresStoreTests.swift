import Foundation
import HushRelay
import HushRelayPostgres
import RelayStoreConformance
import Testing

/// Every PostgreSQL suite, one test at a time: the fault tests restart the shared server.
@Suite(.serialized, .enabled(if: TestPostgres.enabled, TestPostgres.skipReason))
struct PostgresTests {}

/// The store conformance suite against a real PostgreSQL (see ``TestPostgres``).
extension PostgresTests {
    @Test(arguments: RelayStoreConformance.names)
    func storeConformance(check: String) async throws {
        let factory = try PostgresFactory()
        do {
            try await RelayStoreConformance.run(check, factory)
        } catch {
            await factory.close()
            throw error
        }
        await factory.close()
    }

    /// Versioned migrations: applied once, recorded, and a second instance (another node
    /// starting) applies nothing again.
    @Test func migrationsAreRecordedOnce() async throws {
        let config = try TestPostgres.configuration()
        let a = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        let b = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        #expect(try await a.schemaVersions() == [1, 2])
        #expect(try await b.schemaVersions() == [1, 2])
        await a.shutdown()
        await b.shutdown()
    }

    /// Many concurrent claims over two store instances (two relay nodes) on one database hand
    /// out each one-time prekey exactly once.
    @Test func prekeyConsumptionAcrossTwoNodes() async throws {
        let config = try TestPostgres.configuration()
        let a = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        let b = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        let key = { (x: UInt8) in Data(repeating: x, count: 32) }
        _ = try await a.register(account: "bob", identityKey: key(0xB0), deviceID: 1, staticKey: key(0xB1), maxDevices: 16)
        let keys = (1...40).map { OneTimePrekeyRecord(id: UInt32($0), publicKey: key(UInt8($0))) }
        _ = try await a.storePrekeys(account: "bob", deviceID: 1, registrationID: 1, signed: nil, oneTime: keys, maxStored: 100)
        let handed = try await withThrowingTaskGroup(of: OneTimePrekeyRecord?.self) { group in
            for i in 0..<60 {
                let s = i % 2 == 0 ? a : b
                group.addTask { try await s.claimBundles(account: "bob", devices: [1])[0].oneTime }
            }
            var out: [OneTimePrekeyRecord] = []
            for try await r in group { if let r { out.append(r) } }
            return out
        }
        #expect(handed.count == 40)
        #expect(Set(handed.map(\.id)) == Set(1...40))
        #expect(try await b.prekeyCount(account: "bob", deviceID: 1) == 0)
        await a.shutdown()
        await b.shutdown()
    }

    /// An unreachable database: calls fail with the typed error after the timeout, none hangs.
    @Test func unreachableDatabaseIsTyped() async throws {
        var config = try PostgresStoreConfiguration(url: "postgres://postgres@127.0.0.1:1/postgres")
        config.operationTimeout = .milliseconds(300)
        await #expect(throws: RelayStoreError.unavailable) {
            _ = try await PostgresRelayStore.connect(config, logger: TestPostgres.logger)
        }
    }
}
