import Foundation
import HushRelay
import RelayStoreConformance
import Testing

/// A fresh SQLite database per check, in its own temporary directory.
final class SQLiteFactory: RelayStoreFactory, @unchecked Sendable {
    let directory: URL
    private var path: String { directory.appendingPathComponent("relay.sqlite").path }

    init() {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("hush-relay-store-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    func makeStore() async throws -> any RelayStore { try SQLiteRelayStore(path: path) }
    func reopen() async throws -> any RelayStore { try SQLiteRelayStore(path: path) }
}

@Suite struct SQLiteStoreConformanceTests {
    @Test(arguments: RelayStoreConformance.names)
    func conformance(check: String) async throws {
        try await RelayStoreConformance.run(check, SQLiteFactory())
    }
}
