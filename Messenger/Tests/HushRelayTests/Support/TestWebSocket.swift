import Foundation
@testable import HushClient
import NIOCore
import NIOWebSocket
import Synchronization

/// What a test WebSocket receives.
enum WSEvent: Sendable, Hashable {
    case binary([UInt8])
    case closed(UInt16?)
    /// Nothing arrived within the wait's timeout (the connection stays open).
    case timedOut
}

/// HushClient's WebSocket client (`WebSocketConnection`) with what relay tests need on top:
/// awaited writes, raw text frames, a client that stops reading, and waits that end: every
/// ``next(timeout:)`` returns ``WSEvent/timedOut`` after its timeout (``defaultTimeout``), so a
/// broken relay fails a test instead of hanging it. A pump task moves the connection's events
/// into a bounded mailbox; when the mailbox is full the pump stops taking events, the
/// connection's own buffer fills and the connection closes (`overflowed`): nothing is dropped
/// silently.
final class TestWebSocket: Sendable {
    /// How long a wait lasts unless told otherwise.
    static let defaultTimeout: Duration = .seconds(60)
    /// Most events waiting in the mailbox (and in the connection's buffer before it).
    static let mailboxLimit = 65_536

    let connection: WebSocketConnection
    private let mailbox = Mailbox(limit: TestWebSocket.mailboxLimit)
    private let pump: Task<Void, Never>
    var channel: Channel { connection.channel }

    private init(_ connection: WebSocketConnection) {
        self.connection = connection
        pump = Task { [mailbox] in
            for await event in connection.events {
                let e: WSEvent = switch event {
                case .binary(let bytes): .binary(bytes)
                case .closed(let code): .closed(code)
                }
                await mailbox.put(e)
            }
            mailbox.finish()
        }
    }

    deinit { pump.cancel() }

    /// Connects to the relay on loopback and upgrades `path`, within `timeout`.
    static func connect(port: Int, path: String = "/v1/ws", timeout: Duration = TestWebSocket.defaultTimeout) async throws -> TestWebSocket {
        let ms = max(1, Int64(timeout.components.seconds) * 1_000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return TestWebSocket(try await WebSocketConnection.connect(host: "127.0.0.1", port: port, path: path,
                                                                   timeout: .milliseconds(ms), bufferLimit: mailboxLimit))
    }

    /// One binary frame, written and flushed before this returns.
    func send(_ bytes: [UInt8]) async throws {
        try await write(.binary, ByteBuffer(bytes: bytes))
    }

    /// One text frame (the relay accepts only binary ones).
    func sendText(_ text: String) async throws {
        try await write(.text, ByteBuffer(string: text))
    }

    private func write(_ opcode: WebSocketOpcode, _ data: ByteBuffer) async throws {
        try await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: data)).get()
    }

    /// The next event (binary message or close), or ``WSEvent/timedOut`` once `timeout` passed.
    func next(timeout: Duration = TestWebSocket.defaultTimeout) async -> WSEvent {
        await mailbox.take(timeout: timeout)
    }

    /// Stops reading from the socket (the relay sees a client that never reads).
    func stopReading() async throws {
        try await channel.setOption(ChannelOptions.autoRead, value: false).get()
    }

    func close() async {
        try? await channel.close().get()
    }

    /// Drops the TCP connection without a close frame.
    func abort() async { await close() }
}

/// A bounded FIFO of events with one waiting reader at a time (a test client reads from one task).
private final class Mailbox: Sendable {
    private struct State {
        var events: [WSEvent] = []
        var head = 0
        var finished = false
        /// The reader waiting for an event, with its wait's number (a timeout resumes only its own wait).
        var reader: (id: UInt64, continuation: CheckedContinuation<WSEvent, Never>)?
        var nextID: UInt64 = 0
        /// The waiting reader's timer (cancelled when an event comes first).
        var timer: Task<Void, Never>?
        /// The pump waiting for room.
        var writer: CheckedContinuation<Void, Never>?
        var count: Int { events.count - head }
        mutating func pop() -> WSEvent {
            let e = events[head]
            head += 1
            if head > 1_024, head * 2 > events.count {
                events.removeFirst(head)
                head = 0
            }
            return e
        }
    }

    private let state = Mutex(State())
    private let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Adds an event; waits while the mailbox is full.
    func put(_ event: WSEvent) async {
        await withCheckedContinuation { (room: CheckedContinuation<Void, Never>) in
            let (reader, full) = state.withLock { s -> (CheckedContinuation<WSEvent, Never>?, Bool) in
                if let r = s.reader {
                    s.reader = nil
                    s.timer?.cancel()
                    s.timer = nil
                    return (r.continuation, false)
                }
                s.events.append(event)
                if s.count >= limit {
                    s.writer = room
                    return (nil, true)
                }
                return (nil, false)
            }
            reader?.resume(returning: event)
            if !full { room.resume() }
        }
    }

    /// No event follows: waits end with `.closed(nil)` once the mailbox is empty.
    func finish() {
        let reader = state.withLock { s -> CheckedContinuation<WSEvent, Never>? in
            s.finished = true
            s.timer?.cancel()
            s.timer = nil
            defer { s.reader = nil }
            return s.reader?.continuation
        }
        reader?.resume(returning: .closed(nil))
    }

    func take(timeout: Duration) async -> WSEvent {
        await withCheckedContinuation { (continuation: CheckedContinuation<WSEvent, Never>) in
            enum Now { case event(WSEvent, CheckedContinuation<Void, Never>?), wait(UInt64) }
            let now = state.withLock { s -> Now in
                if s.count > 0 {
                    let e = s.pop()
                    let w = s.writer
                    s.writer = nil
                    return .event(e, w)
                }
                if s.finished { return .event(.closed(nil), nil) }
                precondition(s.reader == nil, "one reader at a time")
                s.nextID += 1
                s.reader = (s.nextID, continuation)
                return .wait(s.nextID)
            }
            switch now {
            case .event(let e, let writer):
                writer?.resume()
                continuation.resume(returning: e)
            case .wait(let id):
                let timer = Task { [self] in
                    do { try await Task.sleep(for: timeout) } catch { return }  // an event came first
                    let expired = state.withLock { s -> CheckedContinuation<WSEvent, Never>? in
                        guard let r = s.reader, r.id == id else { return nil }
                        s.reader = nil
                        s.timer = nil
                        return r.continuation
                    }
                    expired?.resume(returning: .timedOut)
                }
                let stale = state.withLock { s -> Bool in
                    guard s.reader?.id == id else { return true }
                    s.timer = timer
                    return false
                }
                if stale { timer.cancel() }
            }
        }
    }
}
