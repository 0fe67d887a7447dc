import Foundation
import Hush
import HushCrypto
import HushTransport

/// A device of this account as the relay lists it (`DeviceList`, spec relay §22.1).
public struct LinkedDevice: Sendable, Equatable, CustomStringConvertible {
    /// The device id (1: the account's first, primary device).
    public var id: UInt32
    /// Its Noise static public key (32 bytes).
    public var staticKey: [UInt8]
    /// The registration id of its latest prekey upload (0 before one).
    public var registrationID: UInt32
    /// It is the device asking.
    public var isThisDevice: Bool

    public init(id: UInt32, staticKey: [UInt8], registrationID: UInt32, isThisDevice: Bool) {
        self.id = id
        self.staticKey = staticKey
        self.registrationID = registrationID
        self.isThisDevice = isThisDevice
    }

    /// Device 1, which alone may remove other devices (spec relay §22.2).
    public var isPrimary: Bool { id == 1 }

    public var description: String {
        "device \(id)\(isPrimary ? " (primary)" : "")\(isThisDevice ? " (this device)" : ""), key \(Hex.encode(staticKey).prefix(16))…"
    }
}

/// Setting keys of linked devices (beside ``SettingKey``, kept here to keep merges small).
enum DeviceSettingKey {
    /// This device was removed from its account: never connect again.
    static let removed = "device.removed"
    /// A linked device's link token (16 bytes, spec relay §22.4) until it has registered.
    static let linkToken = "device.link-token"
}

extension HushClient {
    /// WebSocket close code: the device was removed (spec relay §9.2).
    static let removedCloseCode: UInt16 = RelayProtocol.CloseCode.deviceRemoved.rawValue
    /// A linked device's message counter starts at `device id << 48` + 1, so that its sealed
    /// sends' client message ids (derived from the account's shared sealed-sender secret and the
    /// counter, Docs/spec/client.md §7.4) never repeat another device's.
    static func linkedCounterStart(_ deviceID: UInt32) -> UInt64 { UInt64(deviceID) << 48 | 1 }
    // MARK: the new device

    /// Creates a linked device in `store` from a provisioning message (``PendingLink/wait(timeout:)``):
    /// `store` must have been made with `message.identity` (and a fresh registration id). Like
    /// ``create(account:deviceID:store:configuration:)`` with `message.account` and
    /// `message.deviceID` (a new Noise static key, prekeys), plus the account's sealed-sender
    /// secret, its read-receipt and sealed-from-anyone settings, and the device's own counter
    /// range, and its link token, which ``start()`` sends in its registration (spec relay §5.1).
    public static func create(linking message: ProvisioningMessage, store: any ClientStore,
                              configuration: ClientConfiguration) throws(ClientError) -> HushClient {
        let matches = try storeStep { try store.identityKeyPair().identityKey == message.identity.identityKey }
        guard matches else { throw .invalidArgument("the store's identity is not the account's") }
        let client = try create(account: message.account, deviceID: message.deviceID, store: store, configuration: configuration)
        try storeStep {
            try store.atomically {
                if let secret = message.sealedSecret {
                    var bytes = secret.withUnsafeBytes { Array($0) }
                    defer { SecureBytes.wipe(&bytes) }
                    try store.setSetting(SettingKey.sealedSecret, bytes)
                }
                try store.setFlag(SettingKey.sealedFromAnyone, message.sealedFromAnyone)
                try store.setFlag(SettingKey.readReceipts, message.readReceipts)
                try store.setU64(SettingKey.nextID, linkedCounterStart(message.deviceID))
                var token = message.linkToken.withUnsafeBytes { Array($0) }
                defer { SecureBytes.wipe(&token) }
                try store.setSetting(DeviceSettingKey.linkToken, token)
                // Its first check of the account's devices greets them (OwnSync.swift).
                try store.setFlag(OwnSyncKey.helloDue, true)
            }
        }
        return client
    }

    // MARK: the existing device

    /// The account's devices, this one included, in ascending id (`ListDevices`). Needs the
    /// connection (``ClientError/offline`` otherwise).
    public func devices() async throws(ClientError) -> [LinkedDevice] {
        let reply = try await request { rid in
            var s = RelayStanza()
            s.listDevices.requestID = rid
            return s
        }
        guard case .deviceList(let list)? = reply.body else { throw .relay(.unexpectedStanza) }
        return list.devices.map {
            LinkedDevice(id: $0.deviceID, staticKey: Array($0.staticKey), registrationID: $0.registrationID,
                         isThisDevice: $0.deviceID == deviceID)
        }
    }

    /// Links the new device that shows `code` (``PendingLink/code``): asks the relay for a link
    /// token (`RequestLinkToken`, spec relay §22.4), which reserves the new device's id (the
    /// lowest free one ≥ 2) for 10 minutes, seals the provisioning message (account, that id,
    /// the token, the identity key pair, the sealed-sender secret, read receipts and
    /// sealed-from-anyone; Docs/spec/client.md §7) to the code's key and sends it to the code's
    /// address. Returns the id once the relay has handed the message to the waiting device (`Ok`).
    ///
    /// Errors: ``ClientError/invalidLinkCode(_:)`` for a code that does not decode (nothing
    /// sent, no token asked for); `.relay(.linkForbidden)` on a device other than 1 (only device
    /// 1 links devices); `.relay(.tooManyDevices)` when registered devices and open tokens fill
    /// the account's 16; `.relay(.rateLimited)` with 4 tokens open (they expire in 10 minutes)
    /// or over the provisioning rate; `.relay(.unknownProvisioningAddress)` when no new device
    /// waits at the address (expired, used, closed; the token then expires unused);
    /// ``ClientError/offline``.
    @discardableResult
    public func linkDevice(code: String) async throws(ClientError) -> UInt32 {
        let parsed: LinkCode
        do { parsed = try LinkCode(parsing: code) } catch { throw .invalidLinkCode(error) }
        let granted = try await requestLinkToken()
        let id = granted.deviceID
        // A sibling may appear until the token expires: while it may, a device that knows no
        // other device of its account keeps their contents aside and checks (OwnSync.swift).
        let until = max(granted.expiresAt, configuration.clock() &+ RelayProtocol.Limits.linkTokenLifetimeMilliseconds) &+ 60_000
        try step { try store.setU64(OwnSyncKey.linkPendingUntil, until) }
        let secret: SecureBytes? = try step {
            guard var s = try store.setting(SettingKey.sealedSecret), s.count == SealedSenderKeys.secretByteCount else { return nil }
            defer { SecureBytes.wipe(&s) }
            return SecureBytes(copying: s)
        }
        let body: [UInt8]
        do {
            var tokenBytes = Array(granted.token)
            defer { SecureBytes.wipe(&tokenBytes) }
            let message = try ProvisioningMessage(account: account, deviceID: id, linkToken: SecureBytes(copying: tokenBytes), identity: identity,
                                                  sealedSecret: secret, readReceipts: readReceiptsEnabled, sealedFromAnyone: sealedFromAnyone)
            body = try message.sealed(to: parsed.publicKey)
        } catch { throw .provisioning(error) }
        _ = try await request { rid in
            var s = RelayStanza()
            s.sendProvisioning.requestID = rid
            s.sendProvisioning.address = Data(parsed.address)
            s.sendProvisioning.body = Data(body)
            return s
        }
        return id
    }

    /// `RequestLinkToken` (spec relay §22.4): a one-time token, 16 bytes, that reserves the
    /// returned device id for a new device for 10 minutes. Device 1 only.
    func requestLinkToken() async throws(ClientError) -> RelayLinkToken {
        let reply = try await request { rid in
            var s = RelayStanza()
            s.requestLinkToken.requestID = rid
            return s
        }
        guard case .linkToken(let granted)? = reply.body, granted.token.count == RelayProtocol.Limits.linkTokenLength,
              ProvisioningMessage.deviceIDs.contains(granted.deviceID) else {
            throw .relay(.unexpectedStanza)
        }
        return granted
    }

    /// Removes a device from the account (`RemoveDevice`, spec relay §22.2): device 1 may remove
    /// any other device, any other device only itself (else
    /// `.relay(.deviceRemovalForbidden)`); `.relay(.unknownDevice)` when there is no such
    /// device. The removed device's queue and prekeys are deleted and its connection closed at
    /// once (4008). A device that removes itself ends in ``ConnectionState/removed``.
    public func removeDevice(_ id: UInt32) async throws(ClientError) {
        _ = try await request { rid in
            var s = RelayStanza()
            s.removeDevice.requestID = rid
            s.removeDevice.deviceID = id
            return s
        }
    }

    // MARK: removal

    /// This device was removed from its account (it will not connect again).
    public var isRemoved: Bool { removedByRelay || ((try? store.flag(DeviceSettingKey.removed)) ?? false) }

    /// Records the removal (the store keeps it across restarts) and ends every connection.
    func markRemoved() {
        removedByRelay = true
        _ = try? step { try store.setFlag(DeviceSettingKey.removed, true) }
        setState(.removed)
        Task { await self.closeAnonymousLink() }
    }
}
