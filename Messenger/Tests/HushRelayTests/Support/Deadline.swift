import Foundation
import Synchronization

/// Runs `body`; true if it finished within `timeout` (otherwise it goes on detached and its
/// end is ignored). Every wait in the relay tests is bounded this way or by a client timeout.
func withDeadline(_ timeout: Duration, _ body: @escaping @Sendable () async -> Void) async -> Bool {
    await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
        let done = Mutex(false)
        let finish: @Sendable (Bool) -> Void = { value in
            let first = done.withLock { d -> Bool in
                defer { d = true }
                return !d
            }
            if first { continuation.resume(returning: value) }
        }
        let timer = Task {
            do { try await Task.sleep(for: timeout) } catch { return }
            finish(false)
        }
        Task {
            await body()
            timer.cancel()
            finish(true)
        }
    }
}

/// The first element of `stream`, or nil if none came within `timeout` (or it ended).
func firstElement<T: Sendable>(of stream: AsyncStream<T>, timeout: Duration = TestWebSocket.defaultTimeout) async -> T? {
    let box = Mutex<T?>(nil)
    _ = await withDeadline(timeout) {
        var it = stream.makeAsyncIterator()
        let value = await it.next()
        box.withLock { $0 = value }
    }
    return box.withLock { $0 }
}
