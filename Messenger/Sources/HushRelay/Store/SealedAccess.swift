import Foundation
import HushCrypto
import HushTransport

/// Who may send an account sealed messages over an anonymous connection
/// (`Docs/spec/relay.md` §20.1), as the account last set it with `SetSealedAccess`.
///
/// The access key is a 16-byte value the account's own client derives from a secret it shares
/// only with its contacts, inside end-to-end encrypted messages; the relay stores it to compare
/// it, never learns the secret, and never learns which contact presented it.
public struct SealedAccess: Sendable, Equatable {
    /// The access key length (spec §20.1).
    public static let keyLength = 16

    /// The account's access key, `keyLength` bytes, or nil: none (only `allowAnyone` admits).
    public var accessKey: Data?
    /// Unrestricted: any presented access key is accepted.
    public var allowAnyone: Bool

    /// A setting; `accessKey`, when given, must be ``keyLength`` bytes.
    public init(accessKey: Data?, allowAnyone: Bool) {
        self.accessKey = accessKey
        self.allowAnyone = allowAnyone
    }

    /// Whether a sealed send presenting `presented` is admitted: always when unrestricted,
    /// otherwise when it equals the stored key, compared in constant time (the comparison's
    /// time does not depend on where the keys differ).
    public func admits(_ presented: Data) -> Bool {
        if allowAnyone { return true }
        guard let accessKey, accessKey.count == Self.keyLength, presented.count == Self.keyLength else { return false }
        return ConstantTime.equals(accessKey, presented)
    }
}

/// How the stores record a sealed (anonymous) send (`Docs/spec/relay.md` §14, §20.3).
///
/// A store keys dedupe by (sender account, sender device, client message id). A sealed send has
/// no sender the relay knows, so it is recorded under the reserved sender scope `*` + recipient
/// account with device 0: dedupe then works within one recipient (the sender's random 64-bit
/// ids collide only among the messages to that recipient), and a stored row names the
/// recipient twice and the sender never. `*` cannot begin an account name (`a-z 0-9 . _ -`).
public enum AnonymousSender {
    /// The sender scope recorded for a sealed send to `recipient`.
    public static func scope(recipient: String) -> String { "*" + recipient }

    /// Whether a stored sender account is a sealed send's scope (delivered with an empty sender).
    public static func isScope(_ senderAccount: String) -> Bool { senderAccount.utf8.first == UInt8(ascii: "*") }
}
