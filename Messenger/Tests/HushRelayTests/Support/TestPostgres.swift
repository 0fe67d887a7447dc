import Foundation
import HushRelay
import HushRelayPostgres
import Logging
import RelayStoreConformance
import Synchronization

/// The PostgreSQL the tests use: `HUSH_TEST_POSTGRES_URL` (`Messenger/Scripts/postgres.sh start`
/// prints one). Without it the PostgreSQL suites are skipped, with that reason printed, unless
/// `CI=true`: then they run and fail, so that a CI without its database cannot pass.
enum TestPostgres {
    static let url = ProcessInfo.processInfo.environment["HUSH_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static let required = ProcessInfo.processInfo.environment["CI"] == "true"
    /// Whether the PostgreSQL suites run.
    static let enabled = url != nil || required
    static let skipReason: Comment = "HUSH_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped (run Messenger/Scripts/postgres.sh start and export HUSH_TEST_POSTGRES_URL=$(Messenger/Scripts/postgres.sh url))"

    struct Unavailable: Error, CustomStringConvertible {
        var description: String { "CI=true but HUSH_TEST_POSTGRES_URL is not set: the PostgreSQL tests need a database" }
    }

    /// A configuration for a fresh schema of its own (tests share one database).
    static func configuration(schema: String = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20),
                              timeoutMilliseconds: Int = 10_000) throws -> PostgresStoreConfiguration {
        guard let url else { throw Unavailable() }
        var config = try PostgresStoreConfiguration(url: url)
        config.schema = schema
        config.operationTimeout = .milliseconds(timeoutMilliseconds)
        config.maxConnections = 4
        return config
    }

    /// Whether `url` is the private cluster of `Messenger/Scripts/postgres.sh` (the one its
    /// `url` command names under this process's `HUSH_PG_DIR`/`HUSH_PG_PORT`) and that cluster
    /// is running here: then the fault test may restart it with the same script.
    static let isPrivateCluster: Bool = {
        guard let url else { return false }
        guard let (status, printed) = runScript("url"), status == 0 else { return false }
        guard printed.trimmingCharacters(in: .whitespacesAndNewlines) == url else { return false }
        return runScript("status")?.0 == 0
    }()

    /// Runs `postgres.sh command`; its exit status and standard output (nil if it did not run).
    private static func runScript(_ command: String) -> (Int32, String)? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [postgresScript.path, command]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        // The script's output is one short line; reading to its end also waits for it to exit.
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static var logger: Logger {
        var logger = Logger(label: "test-postgres")
        logger.logLevel = ProcessInfo.processInfo.environment["RELAY_TEST_DEBUG"] != nil ? .debug : .error
        return logger
    }
}

import Testing

/// A fresh schema per check; `reopen` connects a second store instance to the same schema.
final class PostgresFactory: RelayStoreFactory, Sendable {
    let configuration: PostgresStoreConfiguration
    private let stores = Mutex<[PostgresRelayStore]>([])

    init() throws { configuration = try TestPostgres.configuration() }

    func makeStore() async throws -> any RelayStore { try await open() }
    func reopen() async throws -> any RelayStore { try await open() }

    private func open() async throws -> PostgresRelayStore {
        let store = try await PostgresRelayStore.connect(configuration, logger: TestPostgres.logger)
        stores.withLock { $0.append(store) }
        return store
    }

    /// Closes every store it opened.
    func close() async {
        for s in stores.withLock({ $0 }) { await s.shutdown() }
    }
}

/// Runs a task's synchronous work on a dispatch queue of its own instead of Swift's cooperative
/// pool, for tests that call blocking APIs (``PostgresMediaStore`` blocks its caller as the
/// relay's thread pool expects); the task's context (the current test) goes with it.
final class BlockingTestExecutor: TaskExecutor {
    static let shared = BlockingTestExecutor()
    private let queue = DispatchQueue(label: "hush-tests.blocking", attributes: .concurrent)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
