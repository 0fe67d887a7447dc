import Foundation
import Hush
import HushCrypto
import HushTransport

/// The keys of sealed sender (Docs/client.md §Sealed sender, Docs/spec/relay.md §20.1).
///
/// Each account holds a 32-byte random secret. From it:
/// - its **access key** = HKDF-SHA256(IKM = secret, salt = empty, info = "hush-access-key/1",
///   L = 16), stored on the relay with `SetSealedAccess` and shared with contacts inside
///   end-to-end encrypted messages (content 0x40);
/// - the **client message id** of each sealed send = the first 8 bytes, big-endian, of
///   HMAC-SHA256(K, be64(counter)) with K = HKDF-SHA256(IKM = secret, salt = empty,
///   info = "hush-sealed-send-id/1", L = 32): stable across retries (the relay dedupes), and
///   unlinkable to the device's counter, so that the relay cannot tell that two sealed
///   messages came from the same sender.
enum SealedSenderKeys {
    /// The secret's length.
    static let secretByteCount = 32
    static let accessKeyInfo = Array("hush-access-key/1".utf8)
    static let sendIDInfo = Array("hush-sealed-send-id/1".utf8)

    /// The access key of `secret`.
    static func accessKey(_ secret: [UInt8]) throws -> [UInt8] {
        let key = try HKDF.deriveKey(inputKeyMaterial: secret, salt: [UInt8](), info: accessKeyInfo,
                                     outputByteCount: MessageContent.accessKeyBytes)
        return key.withUnsafeBytes { Array($0) }
    }

    /// K, the key of the sealed sends' client message ids (derived once per client).
    static func sendIDKey(_ secret: [UInt8]) throws -> SecureBytes {
        try HKDF.deriveKey(inputKeyMaterial: secret, salt: [UInt8](), info: sendIDInfo, outputByteCount: 32)
    }

    /// The wire client message id of the sealed send of outbox item `counter`, under K.
    static func sendID(_ k: SecureBytes, counter: UInt64) -> UInt64 {
        var message = [UInt8](repeating: 0, count: 8)
        for i in 0..<8 { message[i] = UInt8(truncatingIfNeeded: counter >> (56 - 8 * i)) }
        let tag = HMACSHA256.authenticationCode(for: message, using: k)
        return tag.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
}

extension HushClient {
    // MARK: the account's own access setting

    /// Runs `body` with this account's sealed-sender secret (made and kept on first use); the
    /// copy in memory is wiped (`sodium_memzero`) when `body` returns.
    func withSealedSecret<R>(_ body: ([UInt8]) throws -> R) throws -> R {
        var secret: [UInt8]
        if let s = try store.setting(SettingKey.sealedSecret), s.count == SealedSenderKeys.secretByteCount {
            secret = s
        } else {
            secret = [UInt8](repeating: 0, count: SealedSenderKeys.secretByteCount)
            try secret.withUnsafeMutableBytes { try configuration.random.fill($0) }
            try store.setSetting(SettingKey.sealedSecret, secret)
        }
        defer { SecureBytes.wipe(&secret) }
        return try body(secret)
    }

    /// Whether anyone may send this account sealed messages (else only holders of its access key).
    public var sealedFromAnyone: Bool { (try? store.flag(SettingKey.sealedFromAnyone)) ?? false }

    /// Accept sealed messages from anyone (WhatsApp and Signal's "allow from anyone"), or only
    /// from contacts this account shared its access key with (the default). Stored at once, sent
    /// to the relay now when connected, else at the next login.
    public func setSealedFromAnyone(_ on: Bool) async throws(ClientError) {
        try step {
            try store.atomically {
                try store.setFlag(SettingKey.sealedFromAnyone, on)
                try store.setFlag(SettingKey.sealedUploaded, false)
            }
        }
        if link != nil { try await uploadSealedAccessIfNeeded() }
    }

    /// Stores this account's access setting on the relay unless it is there (`SetSealedAccess`).
    func uploadSealedAccessIfNeeded() async throws(ClientError) {
        guard try !step({ try store.flag(SettingKey.sealedUploaded) }) else { return }
        let key = try step { try withSealedSecret(SealedSenderKeys.accessKey) }
        let anyone = sealedFromAnyone
        _ = try await request { rid in
            var s = RelayStanza()
            s.setSealedAccess.requestID = rid
            s.setSealedAccess.accessKey = Data(key)
            s.setSealedAccess.allowAnyone = anyone
            return s
        }
        try step { try store.setFlag(SettingKey.sealedUploaded, true) }
    }

    /// Inside a send's transaction: queues this account's access key for `recipient` once (content
    /// 0x40), right before the message, encrypted now (`encryptNow`, to `devices` with `cert`) or
    /// deferred like the message. Not to oneself.
    func shareAccessKeyIfNeeded(with recipient: String, devices: [UInt32], certificate cert: SenderCertificate?,
                                encryptNow: Bool, now: UInt64) throws {
        guard configuration.sealedSender, recipient != account, try !store.flag(SettingKey.sealedShared(recipient)) else { return }
        let content = MessageContent.accessKey(try withSealedSecret(SealedSenderKeys.accessKey))
        if encryptNow, let cert {
            // One item for every device of the recipient (FanOut.swift).
            try enqueueFanOut(content.encoded, to: recipient, message: nil, certificate: cert, now: now)
        } else {
            try store.enqueue(OutboxItem(clientMessageID: try store.takeID(), account: recipient, devices: [], payload: content.encoded,
                                         message: nil, createdAt: now))
        }
        try store.setFlag(SettingKey.sealedShared(recipient), true)
    }

    // MARK: sending sealed

    /// The access key `contact` shared with us, if any (and if sealed sending is on). Read from
    /// the store once per contact, then from memory (``rememberAccessKey(_:of:)`` keeps both).
    func contactAccessKey(_ contact: String) -> [UInt8]? {
        guard configuration.sealedSender, contact != account else { return nil }
        if let cached = accessKeys[contact] { return cached }
        var k = (try? store.setting(SettingKey.sealedKey(contact))) ?? nil
        if k?.count != MessageContent.accessKeyBytes { k = nil }
        accessKeys[contact] = .some(k)
        return k
    }

    /// After `contact`'s key was stored (or, nil, forgotten): the memory copy follows.
    func rememberAccessKey(_ key: [UInt8]?, of contact: String) { accessKeys[contact] = .some(key) }

    /// Sends `item` as a `SealedSend` on the anonymous connection when its recipient's access key
    /// is known. Returns false when the item is not for sealed sending (the caller sends it
    /// logged in); true when it was sent or must wait for the anonymous connection.
    func sendSealedIfPossible(_ item: OutboxItem) -> Bool {
        guard let key = contactAccessKey(item.account) else { return false }
        guard let anon = anonymousLink else {
            Task { await self.openAnonymousLink() }
            return true
        }
        if sendIDKey == nil { sendIDKey = try? withSealedSecret(SealedSenderKeys.sendIDKey) }
        guard let k = sendIDKey else { return false }
        let wire = SealedSenderKeys.sendID(k, counter: item.clientMessageID)
        var s = RelayStanza()
        s.sealedSend.clientMessageID = wire
        s.sealedSend.account = item.account
        s.sealedSend.accessKey = Data(key)
        if let fan = fanOut(item) {
            // A payload per device, to all of them (relay spec §20.3, §7.6).
            s.sealedSend.allDevices = true
            s.sealedSend.payloads = Self.devicePayloads(fan)
        } else {
            s.sealedSend.devices = item.devices
            s.sealedSend.payload = Data(item.payload)
        }
        guard anon.send(s) else { return true }
        inFlight[item.clientMessageID] = item
        sealedInFlight[wire] = item.clientMessageID
        return true
    }

    /// Opens the anonymous (NK) connection to the pinned relay key, then pumps the outbox again.
    func openAnonymousLink() async {
        guard anonymousLink == nil, !anonymousOpening, !stopping, link != nil else { return }
        guard let pinned = ((try? store.setting(SettingKey.relayKey)) ?? nil).flatMap({ try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: $0) }) else {
            return
        }
        anonymousOpening = true
        defer { anonymousOpening = false }
        let clock = configuration.clock
        do {
            let anon = try await RelayLink.open(endpoint: configuration.endpoint, pattern: .nk, deviceKey: nil, relayKey: pinned,
                                                trustRoot: configuration.trustRoot, hello: RelayClientHello(),
                                                nowSeconds: { clock() / 1_000 }, random: configuration.random,
                                                timeout: configuration.requestTimeout)
            guard !stopping, link != nil else { anon.abort(); return }
            anonymousLink = anon
            Task { await self.anonymousSession(anon) }
            pump()
        } catch {
            retryPumpLater()
        }
    }

    /// Reads the anonymous connection until it ends; its unacknowledged sealed sends then go
    /// again (same wire ids: the relay answers a resend of a stored one with its first time).
    private func anonymousSession(_ anon: RelayLink) async {
        for await event in anon.events {
            guard case .binary(let bytes) = event else { break }
            guard let stanza = try? anon.open(bytes) else { anon.abort(); break }
            handleAnonymous(stanza)
        }
        guard anonymousLink === anon else { return }
        anonymousLink = nil
        for cmid in sealedInFlight.values { inFlight[cmid] = nil }
        sealedInFlight = [:]
        pump()
    }

    private func handleAnonymous(_ stanza: RelayStanza) {
        switch stanza.body {
        case .serverAck(var a)?:
            guard let cmid = sealedInFlight.removeValue(forKey: a.clientMessageID) else { return }
            a.clientMessageID = cmid
            handleServerAck(a)
        case .error(var e)?:
            guard let cmid = sealedInFlight.removeValue(forKey: e.clientMessageID) else { return }
            if e.code == .accessDenied, let item = inFlight.removeValue(forKey: cmid) {
                // The contact changed or withdrew its access key: forget it; the item goes again,
                // logged in (the refused send stored nothing, so this is no duplicate).
                _ = try? store.setSetting(SettingKey.sealedKey(item.account), nil)
                rememberAccessKey(nil, of: item.account)
                pump()
                return
            }
            e.clientMessageID = cmid
            handleSendError(e)
        default:
            break
        }
    }

    /// Closes the anonymous connection (stop).
    func closeAnonymousLink() async {
        let anon = anonymousLink
        anonymousLink = nil
        sealedInFlight = [:]
        await anon?.close()
    }
}
