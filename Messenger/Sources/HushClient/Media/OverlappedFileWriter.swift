import Foundation

/// Writes pieces to a file on another thread while the caller goes on with the next piece (the
/// media paths write one file while they encrypt or decrypt: the `Sent/` copy of an upload, the
/// partial blob of a download). At most one write is in flight, so at most one piece is held
/// beyond the caller's own; a failed write surfaces at the next ``write(_:wipe:)`` or at
/// ``finish()``. Not Sendable: one task drives it, in order.
final class OverlappedFileWriter {
    /// A piece handed to the writing task; it is the only holder of the bytes, so the wipe after
    /// the write clears them rather than a copy.
    private final class Piece: @unchecked Sendable {
        var bytes: [UInt8]
        let wipe: Bool
        init(_ bytes: consuming [UInt8], wipe: Bool) { self.bytes = bytes; self.wipe = wipe }
    }

    private let handle: FileHandle
    private var inFlight: Task<Void, any Error>?

    init(_ handle: FileHandle) { self.handle = handle }

    /// Waits for the previous write, then starts writing `bytes`. With `wipe`, the bytes are
    /// overwritten once written (plaintext).
    nonisolated(nonsending) func write(_ bytes: consuming [UInt8], wipe: Bool = false) async throws {
        try await finish()
        let piece = Piece(bytes, wipe: wipe)
        let handle = self.handle
        inFlight = Task.detached {
            defer { if piece.wipe { sodiumWipe(&piece.bytes) } }
            try handle.write(contentsOf: piece.bytes)
        }
    }

    /// Waits for the write in flight (if any); throws its error.
    nonisolated(nonsending) func finish() async throws {
        guard let task = inFlight else { return }
        inFlight = nil
        try await task.value
    }

    /// Waits for the write in flight and ignores its outcome (on a path that already failed).
    nonisolated(nonsending) func abandon() async {
        _ = try? await finish()
    }
}
