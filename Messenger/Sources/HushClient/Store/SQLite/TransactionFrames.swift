import Foundation
import GRDB

/// Which store transactions the current thread is inside, so that a store call made from
/// within `atomically` (or from a Hush body run by `updateSession`) joins that transaction
/// instead of re-entering the database queue.
///
/// A per-thread linked list of frames (owner store, connection), kept under a pthread key: the
/// frame is pushed on the thread that runs the database closure, so the lookup is right whichever
/// thread GRDB runs it on, and other threads never see it (they queue behind the transaction).
final class TransactionFrame {
    let owner: ObjectIdentifier
    let db: Database
    let parent: TransactionFrame?

    init(owner: ObjectIdentifier, db: Database, parent: TransactionFrame?) {
        self.owner = owner
        self.db = db
        self.parent = parent
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        precondition(status == 0, "pthread_key_create failed")
        return key
    }()

    private static var top: TransactionFrame? {
        guard let pointer = pthread_getspecific(key) else { return nil }
        return Unmanaged<TransactionFrame>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// The connection of `owner`'s transaction this thread is inside, if any.
    static func current(for owner: ObjectIdentifier) -> Database? {
        var frame = top
        while let f = frame {
            if f.owner == owner { return f.db }
            frame = f.parent
        }
        return nil
    }

    /// Runs `body` with a frame for (`owner`, `db`) on this thread.
    static func with<R>(_ owner: ObjectIdentifier, _ db: Database, _ body: () throws -> R) rethrows -> R {
        let frame = TransactionFrame(owner: owner, db: db, parent: top)
        let retained = Unmanaged.passRetained(frame)
        pthread_setspecific(key, retained.toOpaque())
        defer {
            pthread_setspecific(key, frame.parent.map { Unmanaged.passUnretained($0).toOpaque() })
            retained.release()
        }
        return try body()
    }
}
