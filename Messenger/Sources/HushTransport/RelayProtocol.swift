import Hush
import HushNoise

/// Constants of the relay protocol, version 1 (`Docs/spec/relay.md`). Every limit the relay
/// enforces is here, next to the spec section that defines it.
public enum RelayProtocol {
    /// §2: the WebSocket path of the relay channel.
    public static let webSocketPath = "/v1/ws"
    /// §4.1: protocol version carried in `ClientHello.version` and `ServerHello.version`.
    public static let version: UInt32 = 1
    /// §4.1: the Noise prologue is this ASCII string followed by the pattern byte.
    public static let prologuePrefix: [UInt8] = Array("hush-relay/1".utf8)

    /// §4.1: the byte in front of the client's first handshake message that selects the pattern.
    public enum Pattern: UInt8, Sendable, CaseIterable {
        /// `Noise_XX_25519_ChaChaPoly_SHA256`: first contact (relay key not yet known).
        case xx = 0x01
        /// `Noise_IK_25519_ChaChaPoly_SHA256`: the client knows the relay key; login in message 1.
        case ik = 0x02
        /// `Noise_NK_25519_ChaChaPoly_SHA256`: anonymous channel.
        case nk = 0x03

        var noise: NoisePattern {
            switch self {
            case .xx: .xx
            case .ik: .ik
            case .nk: .nk
            }
        }

        /// The Noise prologue for this pattern (§4.1): `"hush-relay/1" || pattern byte`.
        public var prologue: [UInt8] { RelayProtocol.prologuePrefix + [rawValue] }
    }

    /// §9 limits.
    public enum Limits {
        /// Largest WebSocket message: one Noise message (Noise §3).
        public static let maxWebSocketMessage = 65_535
        /// Largest stanza (a Noise transport plaintext).
        public static let maxStanza = 65_535 - 16
        /// Largest `Send.payload` (also `SealedSend.payload` and each delivered copy of a
        /// `MultiSend`, §21.2).
        public static let maxPayload = 64_000
        /// Account names: 1...32 bytes of `a-z 0-9 . _ -`.
        public static let accountNameLength = 1...32
        /// Device ids.
        public static let deviceIDs: ClosedRange<UInt32> = 1...UInt32(Int32.max)
        /// Devices per account.
        public static let maxDevicesPerAccount = 16
        /// Recipient devices per `Send`, device ids per `FetchPrekeys`.
        public static let maxDevicesPerRequest = 16
        /// Recipient accounts per `MultiSend` (§21.2).
        public static let maxMultiSendAccounts = 256
        /// Recipient devices per `MultiSend`, all accounts together (§21.2): the envelope's
        /// header count. (Each account's list is also held to `maxDevicesPerRequest`.)
        public static let maxMultiSendDevices = 256
        /// `SendProvisioning.body` (§22.3).
        public static let maxProvisioningBody = 4_096
        /// Length of a provisioning address (§22.3).
        public static let provisioningAddressLength = 16
        /// How long a provisioning address stays open, ms (§22.3).
        public static let provisioningLifetimeMilliseconds: UInt64 = 600_000
        /// Length of a link token (§22.4).
        public static let linkTokenLength = 16
        /// How long a link token stays valid, ms (§22.4).
        public static let linkTokenLifetimeMilliseconds: UInt64 = 600_000
        /// Open (unexpired, unused) link tokens per account (§22.4).
        public static let maxOpenLinkTokens = 4
        /// Provisioning addresses open at once on one relay node (§22.3).
        public static let maxOpenProvisioningAddresses = 10_000
        /// One-time prekeys per `UploadPrekeys`.
        public static let maxPrekeysPerUpload = 100
        /// One-time prekeys stored per device.
        public static let maxStoredPrekeys = 1_000
        /// The owner is sent `PrekeysLow` when fewer than this many remain (of either kind).
        public static let prekeysLowThreshold = 10
        /// One-time Kyber prekeys per `UploadPrekeys` (§8.3; the stanza size allows at most 39).
        public static let maxKyberPrekeysPerUpload = 100
        /// One-time Kyber prekeys stored per device (§8.3).
        public static let maxStoredKyberPrekeys = 1_000
        /// Length of a Kyber prekey's `public_key`: a raw ML-KEM-1024 encapsulation key.
        public static let kyberPublicKeyLength = 1_568
        /// One-time Kyber prekeys a client puts in one `UploadPrekeys`: 36 fit in a stanza beside
        /// 100 X25519 one-time prekeys, a signed and a last-resort prekey (spec §8.3).
        public static let kyberPrekeysPerStanza = 32
        /// Length of an XEdDSA signature.
        public static let signatureLength = 64
        /// Ids per `Ack`.
        public static let maxAckIDs = 64
        /// `ClientHello.timestamp` must be within this many seconds of the relay's clock (§4.4).
        public static let clockSkewSeconds: UInt64 = 120
    }

    /// §8: WebSocket close codes the relay uses.
    public enum CloseCode: UInt16, Sendable, CaseIterable {
        /// Normal closure (the client asked).
        case normal = 1000
        /// The relay is shutting down; reconnect later.
        case goingAway = 1001
        /// A text frame, or a WebSocket protocol error.
        case unsupportedData = 1003
        /// A WebSocket message larger than `Limits.maxWebSocketMessage`.
        case messageTooBig = 1009
        /// The Noise handshake failed (bad message, wrong relay key, bad certificate); no stanza possible.
        case handshakeFailed = 4000
        /// The handshake did not complete within the handshake timeout.
        case handshakeTimeout = 4001
        /// Login or registration rejected; an `Error` stanza preceded the close.
        case loginRejected = 4002
        /// The same device logged in on a newer connection.
        case replaced = 4003
        /// A malformed or out-of-order stanza; an `Error` stanza preceded the close.
        case protocolViolation = 4004
        /// A transport message failed to decrypt (tampering or a lost message).
        case decryptFailed = 4005
        /// Internal error in the relay; retry later.
        case internalError = 4006
        /// The same device logged in later on another relay node sharing this relay's database.
        case connectedElsewhere = 4007
        /// The device was removed from its account (spec §22.2): do not reconnect.
        case deviceRemoved = 4008
        /// The provisioning address expired (spec §22.3).
        case provisioningExpired = 4009
    }
}
