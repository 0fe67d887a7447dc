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
    /// Device ids this device handed out with ``HushClient/linkDevice(code:)`` ("id time-ms"
    /// strings), kept out of the next choices for ``HushClient/handOutHold`` even before the new
    /// device registers.
    static let handedOut = "devices.handed-out"
}

extension HushClient {
    /// WebSocket close code: the device was removed (spec relay §9.2).
    static let removedCloseCode: UInt16 = RelayProtocol.CloseCode.deviceRemoved.rawValue
    /// The device ids ``linkDevice(code:)`` chooses from (an account has at most 16 devices).
    public static let linkableDeviceIDs: ClosedRange<UInt32> = 2...16
    /// A linked device's message counter starts at `device id << 48` + 1, so that its sealed
    /// sends' client message ids (derived from the account's shared sealed-sender secret and the
    /// counter, Docs/spec/client.md §7.4) never repeat another device's.
    static func linkedCounterStart(_ deviceID: UInt32) -> UInt64 { UInt64(deviceID) << 48 | 1 }
    /// How long (ms) an id handed to a new device stays reserved although the relay does not list
    /// it yet: the address lives 10 minutes and the new device registers right after; 15 minutes.
    static let handOutHold: UInt64 = 900_000

    // MARK: the new device

    /// Creates a linked device in `store` from a provisioning message (``PendingLink/wait(timeout:)``):
    /// `store` must have been made with `message.identity` (and a fresh registration id). Like
    /// ``create(account:deviceID:store:configuration:)`` with `message.account` and
    /// `message.deviceID` (a new Noise static key, prekeys), plus the account's sealed-sender
    /// secret, its read-receipt and sealed-from-anyone settings, and the device's own counter
    /// range. Registration happens on ``start()``.
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
        // A handed-out id the relay lists has registered: it needs no reservation any more.
        let ids = Set(list.devices.map(\.deviceID))
        _ = try? step {
            let held = try store.strings(DeviceSettingKey.handedOut)
            let kept = held.filter { line in line.split(separator: " ").first.flatMap { UInt32($0) }.map { !ids.contains($0) } ?? false }
            if kept != held { try store.setStrings(DeviceSettingKey.handedOut, kept) }
        }
        return list.devices.map {
            LinkedDevice(id: $0.deviceID, staticKey: Array($0.staticKey), registrationID: $0.registrationID,
                         isThisDevice: $0.deviceID == deviceID)
        }
    }

    /// Links the new device that shows `code` (``PendingLink/code``): chooses the lowest free
    /// device id in 2…16 (not listed by ``devices()``, nor handed out by this device in the last
    /// 15 minutes: ``handOutHold``), seals the provisioning message (account, that id,
    /// the identity key pair, the sealed-sender secret, read receipts and sealed-from-anyone;
    /// Docs/spec/client.md §7) to the code's key and sends it to the code's address. Returns the
    /// id once the relay has handed the message to the waiting device (`Ok`).
    ///
    /// Errors: ``ClientError/invalidLinkCode(_:)`` for a code that does not decode (nothing
    /// sent); ``ClientError/noFreeDeviceID``; `.relay(.unknownProvisioningAddress)` when no new
    /// device waits at the address (expired, used, closed, or on another relay node);
    /// `.relay(.rateLimited)`; ``ClientError/offline``.
    @discardableResult
    public func linkDevice(code: String) async throws(ClientError) -> UInt32 {
        let parsed: LinkCode
        do { parsed = try LinkCode(parsing: code) } catch { throw .invalidLinkCode(error) }
        let listed = try await devices().map(\.id)
        // Ids handed out recently are taken too: their devices may not have registered yet.
        let now = configuration.clock()
        let recent: [(id: UInt32, at: UInt64)] = try step { try store.strings(DeviceSettingKey.handedOut) }.compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let id = UInt32(parts[0]), let at = UInt64(parts[1]), now < at &+ Self.handOutHold else { return nil }
            return (id, at)
        }
        let taken = Set(listed).union(recent.map(\.id))
        guard let id = Self.linkableDeviceIDs.first(where: { !taken.contains($0) }) else { throw .noFreeDeviceID }
        let secret: SecureBytes? = try step {
            guard var s = try store.setting(SettingKey.sealedSecret), s.count == SealedSenderKeys.secretByteCount else { return nil }
            defer { SecureBytes.wipe(&s) }
            return SecureBytes(copying: s)
        }
        let body: [UInt8]
        do {
            let message = try ProvisioningMessage(account: account, deviceID: id, identity: identity, sealedSecret: secret,
                                                  readReceipts: readReceiptsEnabled, sealedFromAnyone: sealedFromAnyone)
            body = try message.sealed(to: parsed.publicKey)
        } catch { throw .provisioning(error) }
        _ = try await request { rid in
            var s = RelayStanza()
            s.sendProvisioning.requestID = rid
            s.sendProvisioning.address = Data(parsed.address)
            s.sendProvisioning.body = Data(body)
            return s
        }
        let kept = recent.map { "\($0.id) \($0.at)" } + ["\(id) \(now)"]
        try step { try store.setStrings(DeviceSettingKey.handedOut, kept) }
        return id
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
