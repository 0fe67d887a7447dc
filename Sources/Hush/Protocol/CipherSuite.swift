/// The message suites the session engine speaks. X3DH, the Double Ratchet, the stores, the
/// limits, the errors and the transactional decryption are the same for every suite; a suite
/// fixes the KDF labels, how a message key becomes an encryption, and the wire format.
///
/// A session is created with one suite and never mixes them: a message of another suite is
/// ``SignalProtocolError/suiteMismatch(expected:received:)``.
public enum CipherSuite: UInt8, Sendable, Equatable, Hashable, CaseIterable, CustomStringConvertible {
    /// Signal's v3 messages, byte-compatible with libsignal: AES-256-CBC + HMAC-SHA256
    /// truncated to 8 bytes, protobuf headers. See `Docs/protocol.md`.
    case signalV3 = 3
    /// Hush's native suite: XChaCha20-Poly1305 with full 16-byte tags, associated data that
    /// binds both identities and every header byte, a compact binary header, and its own KDF
    /// labels. Specified in `Docs/spec/hush-1.md`.
    case hush1 = 1

    /// `signal-v3` or `hush-1`.
    public var description: String {
        switch self {
        case .signalV3: "signal-v3"
        case .hush1: "hush-1"
        }
    }

    /// `info` of the X3DH KDF (X3DH §2.2).
    var x3dhInfo: [UInt8] {
        switch self {
        case .signalV3: SignalConstants.x3dhInfo
        case .hush1: HushSuiteConstants.x3dhInfo
        }
    }

    /// `info` of the root KDF (Double Ratchet §5.2 `KDF_RK`).
    var pqxdhInfo: [UInt8] {
        switch self {
        case .signalV3: SignalConstants.pqxdhInfo
        case .hush1: HushSuiteConstants.pqxdhInfo
        }
    }

    var ratchetInfo: [UInt8] {
        switch self {
        case .signalV3: SignalConstants.ratchetInfo
        case .hush1: HushSuiteConstants.ratchetInfo
        }
    }

    /// `info` of the message-key expansion.
    var messageKeysInfo: [UInt8] {
        switch self {
        case .signalV3: SignalConstants.messageKeysInfo
        case .hush1: HushSuiteConstants.messageKeysInfo
        }
    }

    /// Length of the expanded message key material: v3 cipher key, MAC key and IV (80);
    /// hush-1 XChaCha20-Poly1305 key and nonce (56).
    var messageKeyMaterialByteCount: Int {
        switch self {
        case .signalV3: SignalConstants.messageKeyMaterialByteCount
        case .hush1: HushSuiteConstants.messageKeyMaterialByteCount
        }
    }
}

/// Constants of the hush-1 suite (`Docs/spec/hush-1.md`).
public enum HushSuiteConstants {
    /// First byte of a hush-1 message: format 1, type 1.
    public static let messageType: UInt8 = 0x11
    /// First byte of a hush-1 prekey message: format 1, type 2.
    public static let preKeyMessageType: UInt8 = 0x12
    /// AEAD tag length (XChaCha20-Poly1305).
    public static let tagByteCount = 16
    /// A hush-1 PQXDH prekey message's raw ML-KEM-1024 ciphertext.
    public static let kyberCiphertextByteCount = 1568
    /// Key and nonce lengths of the message AEAD.
    static let keyByteCount = 32
    static let nonceByteCount = 24
    static let messageKeyMaterialByteCount = 56

    static let x3dhInfo = Array("hush-1/x3dh".utf8)
    static let pqxdhInfo = Array("hush-1/pqxdh".utf8)
    static let ratchetInfo = Array("hush-1/root".utf8)
    static let messageKeysInfo = Array("hush-1/message-keys".utf8)
    /// Prefix of every message's associated data.
    static let associatedDataLabel = Array("hush-1/message".utf8)
}
