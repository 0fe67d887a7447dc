import Foundation
import HushTransport

/// Mismatched devices (`Docs/spec/relay.md` §7.6): a `Send`, `SealedSend` or `MultiRecipient`
/// with `all_devices` set must list exactly the recipient account's registered devices (for the
/// sender's own account: all of them but the sending device), else the relay answers
/// `MISMATCHED_DEVICES{client_message_id, account, missing, extra}` and stores nothing, so that
/// a client learns at once which devices it must add (`missing`) or drop (`extra`).
extension RelayConnection {
    /// What differs between a listed device set and the expected one (§7.6); both ascending.
    struct DeviceMismatch: Error, Equatable, Sendable {
        /// Expected devices that are not listed.
        var missing: [UInt32]
        /// Listed devices that are not expected (not registered, or the sending device itself).
        var extra: [UInt32]
    }

    /// §7.6's comparison: `listed` against `registered` less `sender` (the sending device, when
    /// the recipient is its own account). nil when they are the same set.
    static func deviceMismatch(listed: [UInt32], registered: [UInt32], excluding sender: UInt32?) -> DeviceMismatch? {
        var expected = Set(registered)
        if let sender { expected.remove(sender) }
        let given = Set(listed)
        let missing = expected.subtracting(given).sorted()
        let extra = given.subtracting(expected).sorted()
        return missing.isEmpty && extra.isEmpty ? nil : DeviceMismatch(missing: missing, extra: extra)
    }

    /// §7.6 against the store: throws `.unknownAccount` when the account does not exist (the
    /// check before this one), else the mismatch of `listed` with its devices, nil when none.
    /// `sender` is the sending device (nil for a sealed send); its own id is expected to be left
    /// out when the recipient is its account.
    static func allDevicesMismatch(account: String, listed: [UInt32], sender: DeviceAddress?,
                                   in store: any RelayStore) async throws(RelayStoreError) -> DeviceMismatch? {
        guard try await store.account(named: account) != nil else { throw .unknownAccount }
        let registered = try await store.devices(account: account).map(\.deviceID)
        let own = sender.flatMap { $0.account == account ? $0.deviceID : nil }
        return deviceMismatch(listed: listed, registered: registered, excluding: own)
    }

    /// Sends `Error{MISMATCHED_DEVICES, client_message_id, account, missing, extra}` (§7.6, §9.1).
    func sendMismatch(_ m: DeviceMismatch, clientMessageID: UInt64, account: String) {
        relay.metrics.error(RelayErrorCodeName(name: "\(RelayErrorCode.mismatchedDevices)"))
        send(.error(.mismatchedDevices, clientMessageID: clientMessageID, account: account, missing: m.missing, extra: m.extra))
    }
}
