import Foundation
import Hush
import HushCrypto
import HushTransport

/// What an existing device hands a new one through the relay's provisioning channel
/// (Docs/spec/client.md §7.2), sealed to the new device's provisioning key (§7.3): the account,
/// the device id the relay reserved for the new device with the link token it registers with
/// (spec relay §22.4), the account's identity key pair, the sealed-sender secret and the
/// account-wide settings.
///
/// ```
/// u8 0x02 ‖ u8 n ‖ account (n) ‖ be32 device_id ‖ link token (16) ‖ identity private (32)
///   ‖ identity public (32) ‖ u8 flags ‖ [sealed-sender secret (32), when flags bit 2]
/// ```
/// The token, the private key and the secret are held in wiped storage; ``description`` shows
/// none of them.
public struct ProvisioningMessage: Sendable, CustomStringConvertible {
    /// The version byte.
    public static let version: UInt8 = 0x02
    /// Length of the link token (spec relay §22.4).
    public static let linkTokenLength = RelayProtocol.Limits.linkTokenLength
    /// The most bytes a sealed message may have (`SendProvisioning.body`, spec relay §10).
    public static let maxSealedBytes = RelayProtocol.Limits.maxProvisioningBody

    /// Flag bits (byte 86 + n).
    static let readReceiptsFlag: UInt8 = 1 << 0
    static let sealedFromAnyoneFlag: UInt8 = 1 << 1
    static let sealedSecretFlag: UInt8 = 1 << 2

    /// The account the new device joins.
    public let account: String
    /// The device ids a provisioning message may hand out (§7.2): 2 … 65,535, so that the new
    /// device's counter range, `device id · 2⁴⁸ + 1` on (§7.4), stays inside 64 bits and apart
    /// from every other device's.
    public static let deviceIDs: ClosedRange<UInt32> = 2...0xFFFF
    /// The device id the new device registers as (the one its link token reserves).
    public let deviceID: UInt32
    /// The link token the relay issued for `deviceID` (16 bytes), sent in `Register.link_token`.
    public let linkToken: SecureBytes
    /// The account's identity key pair.
    public let identity: IdentityKeyPair
    /// The account's sealed-sender secret (32 bytes; Docs/client.md §Sealed sender), nil when the
    /// existing device has none yet.
    public let sealedSecret: SecureBytes?
    /// The account's read-receipt setting.
    public let readReceipts: Bool
    /// The account accepts sealed messages from anyone (spec relay §20.1).
    public let sealedFromAnyone: Bool

    /// A message; throws for an invalid account name, device id, token or secret length.
    public init(account: String, deviceID: UInt32, linkToken: SecureBytes, identity: IdentityKeyPair, sealedSecret: SecureBytes?,
                readReceipts: Bool, sealedFromAnyone: Bool) throws(ProvisioningError) {
        guard DeviceBinding.isValidAccountName(account) else { throw .badAccount }
        guard Self.deviceIDs.contains(deviceID) else { throw .badDeviceID(deviceID) }
        guard linkToken.count == Self.linkTokenLength else { throw .truncated }
        if let sealedSecret, sealedSecret.count != 32 { throw .truncated }
        self.account = account
        self.deviceID = deviceID
        self.linkToken = linkToken
        self.identity = identity
        self.sealedSecret = sealedSecret
        self.readReceipts = readReceipts
        self.sealedFromAnyone = sealedFromAnyone
    }

    public var description: String {
        "ProvisioningMessage(account: \(account), device: \(deviceID), link token: redacted, identity: \(Hex.encode(identity.identityKey.publicKey.rawRepresentation)), "
            + "sealed secret: \(sealedSecret == nil ? "none" : "32 bytes, redacted"), read receipts: \(readReceipts), from anyone: \(sealedFromAnyone))"
    }

    /// The canonical encoding (§7.2), in wiped storage.
    public var encoded: SecureBytes {
        let name = Array(account.utf8)
        let count = 1 + 1 + name.count + 4 + Self.linkTokenLength + 32 + 32 + 1 + (sealedSecret == nil ? 0 : 32)
        var flags: UInt8 = 0
        if readReceipts { flags |= Self.readReceiptsFlag }
        if sealedFromAnyone { flags |= Self.sealedFromAnyoneFlag }
        if sealedSecret != nil { flags |= Self.sealedSecretFlag }
        let identity = self.identity, secret = sealedSecret, device = deviceID, token = linkToken
        return SecureBytes(count: count) { (out: UnsafeMutableRawBufferPointer) in
            var i = 0
            func put(_ b: UInt8) { out[i] = b; i += 1 }
            func put(_ raw: UnsafeRawBufferPointer) { for b in raw { put(b) } }
            put(Self.version)
            put(UInt8(name.count))
            for b in name { put(b) }
            for shift in [24, 16, 8, 0] as [UInt32] { put(UInt8(truncatingIfNeeded: device >> shift)) }
            token.withUnsafeBytes { put($0) }
            identity.privateKey.rawRepresentation.withUnsafeBytes { put($0) }
            identity.identityKey.publicKey.rawRepresentation.withUnsafeBytes { put($0) }
            put(flags)
            secret?.withUnsafeBytes { put($0) }
        }
    }

    /// Decodes the canonical encoding (§7.2's order; any bytes give a message or an error).
    public init(decoding bytes: some ContiguousByteBuffer) throws(ProvisioningError) {
        let parsed = try bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(ProvisioningError) -> ProvisioningMessage in
            try Self.parse(raw)
        }
        self = parsed
    }

    private static func parse(_ b: UnsafeRawBufferPointer) throws(ProvisioningError) -> ProvisioningMessage {
        guard !b.isEmpty else { throw .empty }
        guard b[0] == version else { throw .unsupportedVersion(b[0]) }
        var i = 1
        func take(_ n: Int) throws(ProvisioningError) -> UnsafeRawBufferPointer {
            guard b.count - i >= n else { throw .truncated }
            defer { i += n }
            return UnsafeRawBufferPointer(rebasing: b[i..<(i + n)])
        }
        let n = Int(try take(1)[0])
        guard (1...32).contains(n) else { throw .badAccount }
        let nameBytes = try take(n)
        let account = String(decoding: nameBytes, as: UTF8.self)
        guard Array(account.utf8) == Array(nameBytes), DeviceBinding.isValidAccountName(account) else { throw .badAccount }
        let d = try take(4)
        let device = UInt32(d[0]) << 24 | UInt32(d[1]) << 16 | UInt32(d[2]) << 8 | UInt32(d[3])
        guard Self.deviceIDs.contains(device) else { throw .badDeviceID(device) }
        let token = SecureBytes(copying: try take(linkTokenLength))
        let scalar = try take(32)
        guard scalar[0] & 7 == 0, scalar[31] & 0x80 == 0, scalar[31] & 0x40 != 0 else { throw .badIdentityKey }
        guard let privateKey = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: scalar) else { throw .badIdentityKey }
        let publicBytes = try take(32)
        guard ConstantTime.equals(privateKey.publicKey.rawRepresentation, Array(publicBytes)) else { throw .identityKeyMismatch }
        let flags = try take(1)[0]
        guard flags & ~(readReceiptsFlag | sealedFromAnyoneFlag | sealedSecretFlag) == 0 else { throw .unknownFlags(flags) }
        var secret: SecureBytes?
        if flags & sealedSecretFlag != 0 { secret = SecureBytes(copying: try take(32)) }
        guard i == b.count else { throw .trailingBytes(b.count - i) }
        return try ProvisioningMessage(account: account, deviceID: device, linkToken: token, identity: IdentityKeyPair(privateKey: privateKey),
                                       sealedSecret: secret, readReceipts: flags & readReceiptsFlag != 0,
                                       sealedFromAnyone: flags & sealedFromAnyoneFlag != 0)
    }

    /// The encoding sealed to the new device's provisioning key (§7.3): `SendProvisioning.body`.
    public func sealed(to key: Curve25519.KeyAgreement.PublicKey) throws(ProvisioningError) -> [UInt8] {
        do { return try SealedBox.seal(encoded, to: key) } catch { throw .cannotSeal }
    }

    /// Opens a `ProvisioningMessage.body` with the provisioning key pair and decodes it.
    public static func open(_ body: some ContiguousByteBuffer, keyPair: Curve25519.KeyAgreement.PrivateKey) throws(ProvisioningError) -> ProvisioningMessage {
        guard body.byteCount <= maxSealedBytes else { throw .tooLarge(body.byteCount) }
        let plain: SecureBytes
        do { plain = try SealedBox.open(body, keyPair: keyPair) } catch { throw .cannotOpen }
        return try ProvisioningMessage(decoding: plain)
    }
}

/// Why a provisioning body is not a ``ProvisioningMessage`` (Docs/spec/client.md §7.2–§7.3), in
/// the order checked. Never carries key bytes.
public enum ProvisioningError: Error, Equatable, Hashable, Sendable {
    /// More than 4,096 sealed bytes.
    case tooLarge(Int)
    /// The sealed box did not open with this provisioning key (not for this device, or changed).
    case cannotOpen
    /// No bytes.
    case empty
    /// A version byte other than 0x02 (version 0x01, without a link token, is no longer accepted).
    case unsupportedVersion(UInt8)
    /// The bytes end inside a field.
    case truncated
    /// The account name's length is not 1–32, or it is not a valid account name.
    case badAccount
    /// A device id of 0, 1 or above 2^31 − 1.
    case badDeviceID(UInt32)
    /// The identity private key is not a clamped X25519 scalar.
    case badIdentityKey
    /// The identity public key is not the private key's.
    case identityKeyMismatch
    /// Flag bits 3–7 set (the byte).
    case unknownFlags(UInt8)
    /// Bytes after the last field (how many).
    case trailingBytes(Int)
    /// Sealing failed (a low-order provisioning key).
    case cannotSeal
}
