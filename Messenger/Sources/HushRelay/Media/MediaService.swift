import CoreMetrics
import Foundation
import Hush
import HushTransport

/// The relay's media part (Docs/spec/relay.md §17): the blob store, the key that MACs upload
/// capabilities, and the limits. Set ``RelayConfiguration/media`` to enable it; without it
/// `RequestMediaUpload` is answered UNAVAILABLE and `/v1/media/…` with 404.
public struct MediaService: Sendable {
    /// Where blobs live.
    public let store: any MediaStore
    /// The capability MAC key (HMAC-SHA256). Every relay node that serves the same store must
    /// share it; a fresh random key per process invalidates outstanding capabilities on restart
    /// (they are short-lived anyway).
    let capabilityKey: SecureBytes
    /// The largest blob (100 MiB).
    public var maxBlobSize: Int = 100 * 1_048_576
    /// How long an upload capability is valid.
    public var capabilityLifetime: Duration = .seconds(600)
    /// Blobs expire this long after their upload (as queued messages do).
    public var blobTTL: Duration = .seconds(30 * 86_400)
    /// Bytes a device may be granted per day (§19.4): a token bucket refilled continuously,
    /// holding at most a day's worth; 10 GiB by default.
    public var uploadBytesPerDay: Int = 10 * 1_073_741_824 {
        didSet { quota = KeyedRateLimiter(rate: Double(uploadBytesPerDay) / 86_400, burst: Double(uploadBytesPerDay)) }
    }
    /// The per-device grant volume buckets (in this node's memory).
    private(set) var quota = KeyedRateLimiter(rate: Double(10 * 1_073_741_824) / 86_400, burst: Double(10 * 1_073_741_824))

    /// A service over `store` with `capabilityKey` (32 random bytes by default).
    public init(store: any MediaStore, capabilityKey: SecureBytes? = nil) throws(CryptoError) {
        self.store = store
        if let capabilityKey { self.capabilityKey = capabilityKey } else { self.capabilityKey = try SecureBytes(randomCount: 32) }
    }

    var ttlMilliseconds: UInt64 { UInt64(blobTTL.components.seconds) * 1_000 }
    var lifetimeMilliseconds: UInt64 { UInt64(capabilityLifetime.components.seconds) * 1_000 }
}

/// An upload capability: the right to `PUT` one blob of exactly `size` bytes under `mediaID`
/// until `expiresAt`. Its token is `be64(expiresAt) || be64(size) || HMAC-SHA256(key,
/// "hush-media-upload-v1" || mediaID || be64(expiresAt) || be64(size))`, 48 bytes, sent as 96
/// lowercase hex digits in `Authorization: Hush-Upload <hex>`.
public struct MediaCapability: Sendable, Equatable {
    public let mediaID: [UInt8]
    public let size: Int
    public let expiresAt: UInt64
    public let token: [UInt8]

    static let label = Array("hush-media-upload-v1".utf8)
    public static let tokenByteCount = 48

    static func be64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * $0)) } }

    static func mac(key: SecureBytes, mediaID: [UInt8], expiresAt: UInt64, size: Int) -> [UInt8] {
        HMACSHA256.authenticationCode(for: label + mediaID + be64(expiresAt) + be64(UInt64(size)), using: key)
    }

    /// A new capability with a fresh random id.
    static func issue(service: MediaService, size: Int, now: UInt64, random: any RandomSource) throws(CryptoError) -> MediaCapability {
        let id = try random.secureBytes(count: 16).withUnsafeBytes { Array($0) }
        let expires = now + service.lifetimeMilliseconds
        let token = be64(expires) + be64(UInt64(size)) + mac(key: service.capabilityKey, mediaID: id, expiresAt: expires, size: size)
        return MediaCapability(mediaID: id, size: size, expiresAt: expires, token: token)
    }

    /// Why an upload's credentials are refused.
    public enum Refusal: Error, Equatable, Sendable {
        /// No `Authorization: Hush-Upload` header, or not 96 hex digits.
        case missing
        /// The MAC does not verify for this id (a forged or altered token, or one for another id).
        case invalid
        /// The token verified but its time has passed.
        case expired
        /// The body length is not the size the capability grants.
        case sizeMismatch(granted: Int)
    }

    /// Checks `token` for a `PUT` of `contentLength` bytes to `mediaID` at `now`; the granted size.
    static func verify(token: [UInt8], mediaID: [UInt8], contentLength: Int, now: UInt64,
                       service: MediaService) -> Result<Int, Refusal> {
        guard token.count == tokenByteCount, mediaID.count == 16 else { return .failure(.missing) }
        let expires = token[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let size64 = token[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard size64 <= UInt64(service.maxBlobSize) else { return .failure(.invalid) }
        let size = Int(size64)
        let expected = Array(token[16...])
        guard HMACSHA256.isValidAuthenticationCode(expected, for: label + mediaID + be64(expires) + be64(size64),
                                                   using: service.capabilityKey)
        else { return .failure(.invalid) }
        guard now < expires else { return .failure(.expired) }
        guard contentLength == size else { return .failure(.sizeMismatch(granted: size)) }
        return .success(size)
    }
}

extension RelayConnection {
    /// `RequestMediaUpload` (§19.1): a capability for one blob, or MEDIA_TOO_LARGE / UNAVAILABLE.
    func handleRequestMediaUpload(_ r: RelayRequestMediaUpload, _ me: DeviceAddress) {
        let rid = r.requestID
        guard let media = relay.configuration.media else { return sendError(.unavailable, requestID: rid) }
        guard r.size >= 1 else { return sendError(.malformedStanza, requestID: rid) }
        guard r.size <= UInt64(media.maxBlobSize) else { return sendError(.mediaTooLarge, requestID: rid) }
        guard media.quota.take(me.description, cost: Double(r.size), now: relay.configuration.clock()) else {
            MediaMetrics.refused("quota")
            return sendError(.mediaQuotaExceeded, requestID: rid)
        }
        let capability: MediaCapability
        do {
            capability = try MediaCapability.issue(service: media, size: Int(r.size), now: relay.configuration.clock(),
                                                   random: relay.configuration.random)
        } catch { return sendError(.internalError, requestID: rid) }
        var s = RelayStanza()
        s.mediaUploadGranted.requestID = rid
        s.mediaUploadGranted.mediaID = Data(capability.mediaID)
        s.mediaUploadGranted.token = Data(capability.token)
        s.mediaUploadGranted.expiresAt = capability.expiresAt
        s.mediaUploadGranted.size = UInt64(capability.size)
        MediaMetrics.granted.increment()
        send(s)
    }
}

/// The media part's metrics (`Docs/spec/relay.md` §12, §19): counts and bytes, never ids.
enum MediaMetrics {
    static let granted = Counter(label: "hush_relay_media_grants_total")
    static let uploads = Counter(label: "hush_relay_media_uploads_total")
    static let uploadBytes = Counter(label: "hush_relay_media_upload_bytes_total")
    static let downloads = Counter(label: "hush_relay_media_downloads_total")
    static let downloadBytes = Counter(label: "hush_relay_media_download_bytes_total")
    static func refused(_ reason: String) { Counter(label: "hush_relay_media_refusals_total", dimensions: [("reason", reason)]).increment() }
}
