import Foundation
import Synchronization
import Testing

/// The `hush` and `hush-relay` executables of this checkout's debug build (build them first:
/// `swift build --package-path Messenger --product hush`, `--product hush-relay`).
enum Binaries {
    static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../.build/debug").standardized
    }
    static var hush: URL { directory.appendingPathComponent("hush") }
    static var relay: URL { directory.appendingPathComponent("hush-relay") }

    /// `tmux` on PATH, if any.
    static var tmux: URL? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let url = URL(fileURLWithPath: String(dir)).appendingPathComponent("tmux")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }
}

/// Collected output of a child process.
final class Output: Sendable {
    private let text = Mutex("")
    func append(_ s: String) { text.withLock { $0 += s } }
    var value: String { text.withLock { $0 } }
}

/// A finished child process.
struct Finished {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `executable` with `arguments` to its end, killing it after `timeout` (then status is -1).
func run(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil,
         timeout: Duration = .seconds(60)) async throws -> Finished {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Output(), err = Output()
    let outPipe = Pipe(), errPipe = Pipe()
    process.standardOutput = outPipe
    process.standardError = errPipe
    process.standardInput = FileHandle.nullDevice
    outPipe.fileHandleForReading.readabilityHandler = { out.append(String(decoding: $0.availableData, as: UTF8.self)) }
    errPipe.fileHandleForReading.readabilityHandler = { err.append(String(decoding: $0.availableData, as: UTF8.self)) }
    try process.run()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    var status = Int32(-1)
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
    } else {
        process.waitUntilExit()
        status = process.terminationStatus
    }
    outPipe.fileHandleForReading.readabilityHandler = nil
    errPipe.fileHandleForReading.readabilityHandler = nil
    out.append(String(decoding: outPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    err.append(String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    return Finished(status: status, stdout: out.value, stderr: err.value)
}

/// `hush-relay serve` on a free loopback port, as a child process.
final class RelayChild: @unchecked Sendable {
    let process = Process()
    let output = Output()
    private(set) var port = 0

    init(dataDir: URL) throws {
        process.executableURL = Binaries.relay
        process.arguments = ["serve", "--port", "0", "--data-dir", dataDir.path, "--log-level", "error"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [output] h in output.append(String(decoding: h.availableData, as: UTF8.self)) }
        try process.run()
    }

    /// Waits (bounded) for "listening on 127.0.0.1:PORT".
    func ready(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = output.value.split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }),
               let p = Int(line.split(separator: ":").last ?? "") {
                port = p
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("hush-relay did not start: \(output.value)")
        throw CancellationError()
    }

    /// SIGTERM, then wait for the exit (bounded; SIGKILL after 15 s).
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(15)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }
}
