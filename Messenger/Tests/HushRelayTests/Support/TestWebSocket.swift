import Foundation
@testable import HushClient
import NIOCore
import NIOWebSocket

/// What a test WebSocket receives.
enum WSEvent: Sendable, Equatable {
    case binary([UInt8])
    case closed(UInt16?)
}

/// HushClient's WebSocket client (`WebSocketConnection`) with what relay tests need on top:
/// awaited writes, raw text frames, a client that stops reading, and one iterator over what
/// arrives. Nothing is dropped: the event buffer is unbounded for tests that read late.
final class TestWebSocket: @unchecked Sendable {
    let connection: WebSocketConnection
    private var iterator: AsyncStream<WebSocketEvent>.AsyncIterator
    var channel: Channel { connection.channel }

    private init(_ connection: WebSocketConnection) {
        self.connection = connection
        iterator = connection.events.makeAsyncIterator()
    }

    /// Connects to the relay on loopback and upgrades `path`.
    static func connect(port: Int, path: String = "/v1/ws") async throws -> TestWebSocket {
        TestWebSocket(try await WebSocketConnection.connect(host: "127.0.0.1", port: port, path: path, bufferLimit: Int.max))
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

    /// The next event (binary message or close).
    func next() async -> WSEvent {
        switch await iterator.next() {
        case .binary(let bytes)?: .binary(bytes)
        case .closed(let code)?: .closed(code)
        case nil: .closed(nil)
        }
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
