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
///
/// Spawned with `posix_spawn` and reaped with `waitpid`, output through files: Foundation's
/// `Process` does not see a tmux client exit while the tmux server it forked is alive (the
/// server inherits what Process watches), and a pipe would stay open the same way.
func run(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil,
         timeout: Duration = .seconds(60)) async throws -> Finished {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("hush-run-\(UUID().uuidString)")
    let outPath = base.path + ".out", errPath = base.path + ".err"
    defer {
        unlink(outPath)
        unlink(errPath)
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
    var pid: pid_t = 0
    let args = [executable.path] + arguments
    let argv = args.map { strdup($0) } + [nil]
    let envp = env.map { strdup($0) } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    let rc = posix_spawn(&pid, executable.path, &actions, nil, argv, envp)
    guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO) }
    let deadline = ContinuousClock.now + timeout
    var status: Int32 = -1
    while true {
        var raw: Int32 = 0
        let r = waitpid(pid, &raw, WNOHANG)
        if r == pid {
            status = (raw & 0x7F) == 0 ? (raw >> 8) & 0xFF : -1
            break
        }
        if r < 0 && errno != EINTR { break }
        if ContinuousClock.now >= deadline {
            kill(pid, SIGKILL)
            _ = waitpid(pid, &raw, 0)
            break
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    return Finished(status: status, stdout: stdout, stderr: stderr)
}

/// `hush-relay serve` on a free loopback port, as a child process.
final class RelayChild: @unchecked Sendable {
    let process = Process()
    let output = Output()
    private(set) var port = 0

    /// Serves `dataDir` on `port` (0: a free one).
    init(dataDir: URL, port: Int = 0) throws {
        process.executableURL = Binaries.relay
        process.arguments = ["serve", "--port", String(port), "--data-dir", dataDir.path, "--log-level", "error"]
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

/// `hush` screens in detached tmux sessions on a private server socket: start them, type, poll
/// what they show (bounded), and end them all.
struct TmuxScreens {
    let tmux: URL
    let socket: String

    /// Runs a tmux command on this server and returns its stdout (a failure is recorded).
    @discardableResult
    func run(_ args: [String]) async throws -> String {
        let r = try await HushCLITests.run(tmux, ["-S", socket] + args, timeout: .seconds(20))
        #expect(r.status == 0, "tmux \(args): \(r.stderr)")
        return r.stdout
    }

    /// A 90×16 session named `name` running `command`.
    func start(_ name: String, _ command: String) async throws {
        try await run(["new-session", "-d", "-s", name, "-x", "90", "-y", "16", command])
    }

    /// Types `text` into `session` and presses Enter.
    func type(_ session: String, _ text: String) async throws {
        try await run(["send-keys", "-t", session, "-l", text])
        try await run(["send-keys", "-t", session, "Enter"])
    }

    /// Polls the pane (every 100 ms, for 30 s at most) until `text` shows; returns the screen.
    /// Records an issue and throws when it never does.
    @discardableResult
    func waitFor(_ session: String, _ text: String, escapes: Bool = false) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(30)
        var screen = ""
        while ContinuousClock.now < deadline {
            screen = try await run(["capture-pane", "-p", "-t", session] + (escapes ? ["-e"] : []))
            if screen.contains(text) { return screen }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("\(session)'s screen never showed \(text.debugDescription); it shows:\n\(screen)")
        throw CancellationError()
    }

    /// Ends the server and, by pid, every pane process (under the test runner a pane could
    /// outlive kill-server).
    func killAll() async {
        let pids = try? await HushCLITests.run(tmux, ["-S", socket, "list-panes", "-a", "-F", "#{pane_pid}"], timeout: .seconds(10))
        let server = try? await HushCLITests.run(tmux, ["-S", socket, "display-message", "-p", "#{pid}"], timeout: .seconds(10))
        _ = try? await HushCLITests.run(tmux, ["-S", socket, "kill-server"], timeout: .seconds(10))
        for line in ((pids?.stdout ?? "") + "\n" + (server?.stdout ?? "")).split(separator: "\n") {
            if let pid = Int32(line.trimmingCharacters(in: .whitespaces)), pid > 1 { kill(pid, SIGTERM) }
        }
    }
}
