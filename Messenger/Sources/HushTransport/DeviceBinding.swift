import Hush

/// The statement an account's identity key signs to bind a device (`Docs/spec/relay.md` §5.1):
///
/// ```
/// "hush-relay/1 device" || u8(len(account)) || account (UTF-8) || device id (4 bytes, big-endian)
///   || device Noise static public key (32)
/// ```
/// signed with XEdDSA (specification form) by the account's X25519 identity key.
public enum DeviceBinding {
    /// Domain separation label.
    public static let label: [UInt8] = Array("hush-relay/1 device".utf8)

    /// The signed bytes.
    public static func message(account: String, deviceID: UInt32, deviceKey: Curve25519.KeyAgreement.PublicKey) -> [UInt8] {
        let name = Array(account.utf8)
        var out = label
        out.reserveCapacity(label.count + 1 + name.count + 4 + 32)
        out.append(UInt8(truncatingIfNeeded: name.count))
        out += name
        appendBigEndian(UInt64(deviceID), bytes: 4, to: &out)
        out += deviceKey.rawRepresentation
        return out
    }

    /// Signs the binding of `deviceKey` as device `deviceID` of `account`.
    public static func sign(account: String, deviceID: UInt32, deviceKey: Curve25519.KeyAgreement.PublicKey,
                            identity: Curve25519.KeyAgreement.PrivateKey,
                            random: some RandomSource = SystemRandom()) throws(CryptoError) -> [UInt8] {
        try XEdDSA.signature(for: message(account: account, deviceID: deviceID, deviceKey: deviceKey), using: identity,
                             variant: .specification, random: random)
    }

    /// `true` when `signature` binds `deviceKey` as device `deviceID` of `account` under `identityKey`.
    public static func verify(_ signature: [UInt8], account: String, deviceID: UInt32,
                              deviceKey: Curve25519.KeyAgreement.PublicKey, identityKey: Curve25519.KeyAgreement.PublicKey) -> Bool {
        XEdDSA.isValidSignature(signature, for: message(account: account, deviceID: deviceID, deviceKey: deviceKey),
                                publicKey: identityKey, policy: .specificationOnly)
    }

    /// `true` for a valid account name (§9): 1...32 bytes of `a-z 0-9 . _ -`.
    public static func isValidAccountName(_ name: String) -> Bool {
        let b = name.utf8
        guard RelayProtocol.Limits.accountNameLength.contains(b.count) else { return false }
        return b.allSatisfy { c in
            (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2E || c == 0x5F || c == 0x2D
        }
    }
}
