import Foundation
import Hush
import HushTransport

/// The device a backup restores (record type 0x01, always first, exactly once). Holds the
/// account's identity private key and the device's Noise key: ``description`` shows neither.
public struct BackupProfile: Sendable, CustomStringConvertible {
    public var account: String
    public var deviceID: UInt32
    public var registrationID: UInt32
    /// The account's identity key pair (owning the account name on the relay needs it).
    public var identity: IdentityKeyPair
    /// The device's Noise static key (the relay knows the device by it).
    public var noiseKey: SecureBytes
    /// The device's counters when the backup was made.
    public var nextID: UInt64
    public var nextPreKeyID: UInt64
    public var signedPreKeyID: UInt64
    public var nextKyberPreKeyID: UInt64

    public var description: String { "BackupProfile(\(account).\(deviceID), keys redacted)" }
}

/// One record of the stream (Docs/spec/backup.md §4): `u8 type || be32 length || body`.
enum BackupRecord {
    case profile(BackupProfile)
    /// A client setting (only the keys of spec §5 are written and restored).
    case setting(key: String, value: [UInt8])
    /// A contact device's identity key (its 33-byte serialization).
    case identity(account: String, device: UInt32, key: IdentityKey)
    case message(StoredMessage)
    /// An entry of the application's own (e.g. the CLI's relay address).
    case app(key: String, value: [UInt8])

    enum Kind: UInt8 {
        case profile = 0x01, setting = 0x02, identity = 0x03, message = 0x04, app = 0x05
    }

    var kind: Kind {
        switch self {
        case .profile: .profile
        case .setting: .setting
        case .identity: .identity
        case .message: .message
        case .app: .app
        }
    }

    /// Appends the record to `out`. The caller wipes `out` (a profile holds private keys).
    func append(to out: inout [UInt8]) {
        var body: [UInt8] = []
        switch self {
        case .profile(let p):
            Self.lp8(p.account, &body)
            BackupBytes.append32(p.deviceID, to: &body)
            BackupBytes.append32(p.registrationID, to: &body)
            body += p.identity.identityKey.serialized
            p.identity.privateKey.rawRepresentation.withUnsafeBytes { body += $0 }
            p.noiseKey.withUnsafeBytes { body += $0 }
            for v in [p.nextID, p.nextPreKeyID, p.signedPreKeyID, p.nextKyberPreKeyID] { BackupBytes.append64(v, to: &body) }
        case .setting(let key, let value), .app(let key, let value):
            Self.lp16(key, &body)
            body += value
        case .identity(let account, let device, let key):
            Self.lp8(account, &body)
            BackupBytes.append32(device, to: &body)
            body += key.serialized
        case .message(let m):
            Self.lp8(m.id.account, &body)
            BackupBytes.append32(m.id.device, to: &body)
            BackupBytes.append64(m.id.clientMessageID, to: &body)
            Self.lp8(m.conversation, &body)
            body.append(UInt8(m.direction.rawValue))
            body.append(UInt8(m.state.rawValue))
            BackupBytes.append64(m.sentAt, to: &body)
            BackupBytes.append64(m.serverTime, to: &body)
            body += Array(m.body.utf8)
        }
        out.append(kind.rawValue)
        BackupBytes.append32(UInt32(body.count), to: &out)
        out += body
        SecureBytes.wipe(&body)
    }

    /// Decodes a body of type `type`; any bytes give a record or a typed problem.
    init(type: UInt8, body b: [UInt8]) throws(BackupRecordProblem) {
        guard let kind = Kind(rawValue: type) else { throw .unknownType(type) }
        var r = Reader(bytes: b)
        let bad = BackupRecordProblem.malformed(type: type)
        switch kind {
        case .profile:
            guard let account = r.lp8(), let device = r.u32(), let registration = r.u32(),
                  let publicKey = r.take(33), var secret = r.take(32), var noise = r.take(32),
                  let nextID = r.u64(), let nextPreKey = r.u64(), let signed = r.u64(), let nextKyber = r.u64(), r.atEnd
            else { throw bad }
            defer { SecureBytes.wipe(&secret); SecureBytes.wipe(&noise) }
            guard let privateKey = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: secret),
                  (try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: noise)) != nil
            else { throw bad }
            let identity = IdentityKeyPair(privateKey: privateKey)
            // The stored public key must be the private key's (a damaged writer, not an attack:
            // the record is authentic).
            guard identity.identityKey.serialized == publicKey, DeviceBinding.isValidAccountName(account) else { throw bad }
            self = .profile(BackupProfile(account: account, deviceID: device, registrationID: registration, identity: identity,
                                          noiseKey: SecureBytes(copying: noise), nextID: nextID, nextPreKeyID: nextPreKey,
                                          signedPreKeyID: signed, nextKyberPreKeyID: nextKyber))
        case .setting, .app:
            guard let key = r.lp16() else { throw bad }
            let value = r.rest()
            self = kind == .setting ? .setting(key: key, value: value) : .app(key: key, value: value)
        case .identity:
            guard let account = r.lp8(), let device = r.u32(), let raw = r.take(33), r.atEnd,
                  let key = try? IdentityKey(serialized: raw) else { throw bad }
            self = .identity(account: account, device: device, key: key)
        case .message:
            guard let account = r.lp8(), let device = r.u32(), let cid = r.u64(), let conversation = r.lp8(),
                  let dir = r.u8(), let direction = MessageDirection(rawValue: Int(dir)),
                  let st = r.u8(), let state = TickState(rawValue: Int(st)),
                  let sentAt = r.u64(), let serverTime = r.u64(),
                  let body = String(validating: r.rest(), as: UTF8.self)
            else { throw bad }
            self = .message(StoredMessage(id: MessageID(account: account, device: device, clientMessageID: cid),
                                          conversation: conversation, direction: direction, body: body, sentAt: sentAt,
                                          serverTime: serverTime, state: state))
        }
    }

    private static func lp8(_ s: String, _ out: inout [UInt8]) {
        let u = Array(s.utf8.prefix(255))
        out.append(UInt8(u.count))
        out += u
    }

    private static func lp16(_ s: String, _ out: inout [UInt8]) {
        let u = Array(s.utf8.prefix(65_535))
        out += [UInt8(u.count >> 8), UInt8(truncatingIfNeeded: u.count)]
        out += u
    }

    private struct Reader {
        let bytes: [UInt8]
        var at = 0
        var atEnd: Bool { at == bytes.count }

        mutating func take(_ n: Int) -> [UInt8]? {
            guard n >= 0, bytes.count - at >= n else { return nil }
            defer { at += n }
            return Array(bytes[at..<(at + n)])
        }

        mutating func u8() -> UInt8? { take(1)?[0] }
        mutating func u32() -> UInt32? { take(4).map { BackupBytes.read32($0, 0) } }
        mutating func u64() -> UInt64? { take(8).map { BackupBytes.read64($0, 0) } }

        mutating func lp8() -> String? {
            guard let n = u8(), let b = take(Int(n)) else { return nil }
            return String(validating: b, as: UTF8.self)
        }

        mutating func lp16() -> String? {
            guard let hi = u8(), let lo = u8(), let b = take(Int(hi) << 8 | Int(lo)) else { return nil }
            return String(validating: b, as: UTF8.self)
        }

        mutating func rest() -> [UInt8] {
            defer { at = bytes.count }
            return Array(bytes[at...])
        }
    }
}
