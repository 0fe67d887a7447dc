// A Signal party run by Debian's libsignal-protocol-c 2.3.3 (test support; see
// Tests/Peers/README.md). Bytes in, bytes out: libsignal objects never reach Swift.
import CSignalPeer

/// Errors of a ``LibSignalParty`` operation.
public enum LibSignalPeerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// libsignal rejected the operation. `canonical` is the error name of the transcript
    /// format (FORMAT.md §7: "bad_mac", "too_far_in_future", ...), derived from libsignal's
    /// code and log; `codeName` is libsignal's ("SG_ERR_INVALID_MESSAGE"); `log` holds the
    /// lines libsignal logged during the operation.
    case rejected(canonical: String, code: Int32, codeName: String, log: [String])
    /// An argument the C peer cannot take (a key of the wrong length, ...).
    case invalidArgument(String)

    /// The canonical error name ("invalid_argument" for ``invalidArgument(_:)``).
    public var canonical: String {
        switch self {
        case .rejected(let canonical, _, _, _): return canonical
        case .invalidArgument: return "invalid_argument"
        }
    }

    public var description: String {
        switch self {
        case .rejected(let canonical, let code, let codeName, let log):
            let lines = log.isEmpty ? "" : " [" + log.joined(separator: " | ") + "]"
            return "libsignal: \(canonical) (\(codeName) \(code))\(lines)"
        case .invalidArgument(let what):
            return "invalid argument: \(what)"
        }
    }
}

/// One Signal party (identity, prekeys, sessions, sender keys) living in libsignal-protocol-c
/// with in-memory stores. Not thread-safe; distinct parties may be used concurrently.
public final class LibSignalParty {
    /// Where libsignal's random bytes come from: called once per libsignal draw with the
    /// number of bytes wanted; return exactly that many, or nil to make the operation fail.
    public typealias RandomSource = (_ count: Int) -> [UInt8]?

    /// A store key: (name, device id). Never on the wire.
    public struct Address: Hashable, Sendable, CustomStringConvertible {
        public var name: String
        public var deviceID: Int32
        public init(name: String, deviceID: Int32) {
            self.name = name
            self.deviceID = deviceID
        }
        public var description: String { "\(name).\(deviceID)" }
    }

    /// A 32-byte private key (the clamped scalar as libsignal stores it) and its 33-byte
    /// public key (0x05 || u).
    public struct KeyPair: Equatable, Sendable {
        public var privateKey: [UInt8]
        public var publicKey: [UInt8]
        public init(privateKey: [UInt8], publicKey: [UInt8]) {
            self.privateKey = privateKey
            self.publicKey = publicKey
        }
        /// The key pair of a private key (public key computed by libsignal).
        public init(privateKey: [UInt8]) throws {
            self.privateKey = privateKey
            self.publicKey = try LibSignalParty.publicKey(privateKey: privateKey)
        }
    }

    public struct SignedPreKey: Equatable, Sendable {
        public var id: UInt32
        public var timestamp: UInt64
        public var keyPair: KeyPair
        public var signature: [UInt8]
        public init(id: UInt32, timestamp: UInt64, keyPair: KeyPair, signature: [UInt8]) {
            self.id = id
            self.timestamp = timestamp
            self.keyPair = keyPair
            self.signature = signature
        }
    }

    public struct OneTimePreKey: Equatable, Sendable {
        public var id: UInt32
        public var keyPair: KeyPair
        public init(id: UInt32, keyPair: KeyPair) {
            self.id = id
            self.keyPair = keyPair
        }
    }

    public struct PreKeyBundle: Equatable, Sendable {
        public var registrationID: UInt32
        public var deviceID: Int32
        public var identityKey: [UInt8]
        public var signedPreKeyID: UInt32
        public var signedPreKey: [UInt8]
        public var signedPreKeySignature: [UInt8]
        /// Both nil for a bundle without one-time prekey.
        public var oneTimePreKeyID: UInt32?
        public var oneTimePreKey: [UInt8]?
        public init(registrationID: UInt32, deviceID: Int32, identityKey: [UInt8],
                    signedPreKeyID: UInt32, signedPreKey: [UInt8], signedPreKeySignature: [UInt8],
                    oneTimePreKeyID: UInt32?, oneTimePreKey: [UInt8]?) {
            self.registrationID = registrationID
            self.deviceID = deviceID
            self.identityKey = identityKey
            self.signedPreKeyID = signedPreKeyID
            self.signedPreKey = signedPreKey
            self.signedPreKeySignature = signedPreKeySignature
            self.oneTimePreKeyID = oneTimePreKeyID
            self.oneTimePreKey = oneTimePreKey
        }
    }

    public enum MessageType: Int32, Sendable, CustomStringConvertible {
        /// SignalMessage.
        case whisper = 2
        /// PreKeySignalMessage.
        case preKey = 3
        public var description: String { self == .whisper ? "whisper" : "prekey" }
    }

    /// The current session state with an address.
    public struct SessionInfo: Equatable, Sendable {
        /// The sending ratchet key pair.
        public var ratchetKey: KeyPair
        /// Counter of the next message sent (the sending chain index).
        public var counter: UInt32
        public var previousCounter: UInt32
        /// Messages still go out as PreKeySignalMessages.
        public var unacknowledgedPreKey: Bool
        /// Archived (previous) states in the record.
        public var archivedStates: Int
    }

    /// A party's own sender key for a group.
    public struct SenderKeyState: Equatable, Sendable {
        public var keyID: UInt32
        public var iteration: UInt32
        public var chainKey: [UInt8]
        public var signingKey: KeyPair
    }

    /// The fields of a SenderKeyDistributionMessage.
    public struct DistributionMessage: Equatable, Sendable {
        public var keyID: UInt32
        public var iteration: UInt32
        public var chainKey: [UInt8]
        public var signingKey: [UInt8]
    }

    public struct LogLine: Equatable, Sendable {
        /// libsignal's level: 0 error, 1 warning, 2 notice, 3 info, 4 debug.
        public var level: Int32
        public var text: String
    }

    /// Holds the Swift random source for the C callback.
    private final class RandomBox {
        let source: RandomSource
        init(_ source: @escaping RandomSource) { self.source = source }
    }

    private let peer: OpaquePointer
    private let randomBox: RandomBox

    /// This party's address (what others key their stores on for it; also its sender
    /// address in groups).
    public let address: Address

    // MARK: - Creation

    /// A party with a fresh identity key pair and registration id (drawn in that order:
    /// 32 bytes, then 4), no prekeys yet.
    public init(address: Address, random: @escaping RandomSource = LibSignalParty.systemRandom) throws {
        let box = RandomBox(random)
        var created: OpaquePointer?
        let result = signal_peer_create_random(&created, address.name, address.deviceID,
                                               LibSignalParty.randomCallback,
                                               Unmanaged.passUnretained(box).toOpaque())
        guard result == 0, let created else { throw LibSignalParty.error(result, log: []) }
        self.peer = created
        self.randomBox = box
        self.address = address
    }

    /// A party with the given identity private key (32 bytes, used as is) and registration id.
    public init(address: Address, identityPrivateKey: [UInt8], registrationID: UInt32,
                random: @escaping RandomSource = LibSignalParty.systemRandom) throws {
        guard identityPrivateKey.count == 32 else {
            throw LibSignalPeerError.invalidArgument("identity private key must be 32 bytes")
        }
        let box = RandomBox(random)
        var created: OpaquePointer?
        let result = identityPrivateKey.withUnsafeBufferPointer { key in
            signal_peer_create_with_keys(&created, address.name, address.deviceID,
                                         key.baseAddress, key.count, registrationID,
                                         LibSignalParty.randomCallback,
                                         Unmanaged.passUnretained(box).toOpaque())
        }
        guard result == 0, let created else { throw LibSignalParty.error(result, log: []) }
        self.peer = created
        self.randomBox = box
        self.address = address
    }

    /// A ready-to-use party, all keys from `random` through libsignal's key helper: identity
    /// key pair, registration id, signed prekey `signedPreKeyID`, then `oneTimePreKeyCount`
    /// one-time prekeys with ids from `firstOneTimePreKeyID`.
    public convenience init(address: Address, signedPreKeyID: UInt32, firstOneTimePreKeyID: UInt32 = 1,
                            oneTimePreKeyCount: UInt32 = 0,
                            random: @escaping RandomSource = LibSignalParty.systemRandom) throws {
        try self.init(address: address, random: random)
        try generateSignedPreKey(id: signedPreKeyID)
        if oneTimePreKeyCount > 0 {
            try generateOneTimePreKeys(start: firstOneTimePreKeyID, count: oneTimePreKeyCount)
        }
    }

    deinit {
        signal_peer_free(peer)
    }

    /// A fresh signed prekey (key pair 32 bytes, then signature randomness 64 bytes).
    @discardableResult
    public func generateSignedPreKey(id: UInt32, timestamp: UInt64 = 0) throws -> SignedPreKey {
        try check(signal_peer_generate_signed_prekey(peer, id, timestamp))
        guard let key = try signedPreKeys().last(where: { $0.id == id }) else {
            throw LibSignalPeerError.invalidArgument("signed prekey \(id) not stored")
        }
        return key
    }

    /// `count` fresh one-time prekeys with ids `start`, `start + 1`, ... (32 bytes each).
    @discardableResult
    public func generateOneTimePreKeys(start: UInt32, count: UInt32) throws -> [OneTimePreKey] {
        try check(signal_peer_generate_one_time_prekeys(peer, start, count))
        let ids = Set((0..<count).map { start &+ $0 })
        return try oneTimePreKeys().filter { ids.contains($0.id) }
    }

    /// Adds a signed prekey with the given private key and signature (not verified).
    public func addSignedPreKey(id: UInt32, timestamp: UInt64 = 0, privateKey: [UInt8], signature: [UInt8]) throws {
        guard privateKey.count == 32 else { throw LibSignalPeerError.invalidArgument("private key must be 32 bytes") }
        guard !signature.isEmpty else { throw LibSignalPeerError.invalidArgument("empty signature") }
        let result = privateKey.withUnsafeBufferPointer { key in
            signature.withUnsafeBufferPointer { sig in
                signal_peer_add_signed_prekey(peer, id, timestamp, key.baseAddress, key.count, sig.baseAddress, sig.count)
            }
        }
        try check(result)
    }

    /// Adds a one-time prekey with the given private key.
    public func addOneTimePreKey(id: UInt32, privateKey: [UInt8]) throws {
        guard privateKey.count == 32 else { throw LibSignalPeerError.invalidArgument("private key must be 32 bytes") }
        let result = privateKey.withUnsafeBufferPointer { key in
            signal_peer_add_one_time_prekey(peer, id, key.baseAddress, key.count)
        }
        try check(result)
    }

    // MARK: - Keys

    public var registrationID: UInt32 { signal_peer_registration_id(peer) }

    public var identityKey: KeyPair {
        var priv = [UInt8](repeating: 0, count: 32)
        var pub = [UInt8](repeating: 0, count: 33)
        let result = signal_peer_identity_key(peer, &priv, &pub)
        precondition(result == 0, "signal_peer_identity_key failed: \(result)")
        return KeyPair(privateKey: priv, publicKey: pub)
    }

    /// The signed prekeys in the store, in insertion order.
    public func signedPreKeys() throws -> [SignedPreKey] {
        var keys: [SignedPreKey] = []
        for index in 0..<signal_peer_signed_prekey_count(peer) {
            var id: UInt32 = 0
            var timestamp: UInt64 = 0
            var priv = [UInt8](repeating: 0, count: 32)
            var pub = [UInt8](repeating: 0, count: 33)
            var signatureLength = 0
            try check(signal_peer_signed_prekey_at(peer, index, &id, &timestamp, &priv, &pub, nil, 0, &signatureLength))
            var signature = [UInt8](repeating: 0, count: signatureLength)
            try check(signal_peer_signed_prekey_at(peer, index, &id, &timestamp, &priv, &pub,
                                                   &signature, signature.count, &signatureLength))
            keys.append(SignedPreKey(id: id, timestamp: timestamp,
                                     keyPair: KeyPair(privateKey: priv, publicKey: pub), signature: signature))
        }
        return keys
    }

    /// The one-time prekeys still in the store (used ones are removed by libsignal).
    public func oneTimePreKeys() throws -> [OneTimePreKey] {
        var keys: [OneTimePreKey] = []
        for index in 0..<signal_peer_one_time_prekey_count(peer) {
            var id: UInt32 = 0
            var priv = [UInt8](repeating: 0, count: 32)
            var pub = [UInt8](repeating: 0, count: 33)
            try check(signal_peer_one_time_prekey_at(peer, index, &id, &priv, &pub))
            keys.append(OneTimePreKey(id: id, keyPair: KeyPair(privateKey: priv, publicKey: pub)))
        }
        return keys
    }

    public func hasOneTimePreKey(id: UInt32) -> Bool {
        signal_peer_has_one_time_prekey(peer, id) == 1
    }

    // MARK: - Pairwise sessions

    /// This party's bundle with signed prekey `signedPreKeyID` and, unless nil, one-time
    /// prekey `oneTimePreKeyID` (both must be in the store).
    public func bundle(signedPreKeyID: UInt32, oneTimePreKeyID: UInt32?) throws -> PreKeyBundle {
        var registrationID: UInt32 = 0
        var deviceID: Int32 = 0
        var identity = [UInt8](repeating: 0, count: 33)
        var signedPreKey = [UInt8](repeating: 0, count: 33)
        var signature = [UInt8](repeating: 0, count: 64)
        var oneTimePreKey = [UInt8](repeating: 0, count: 33)
        try check(signal_peer_bundle(peer, signedPreKeyID, oneTimePreKeyID == nil ? 0 : 1, oneTimePreKeyID ?? 0,
                                     &registrationID, &deviceID, &identity, &signedPreKey, &signature,
                                     &oneTimePreKey))
        return PreKeyBundle(registrationID: registrationID, deviceID: deviceID, identityKey: identity,
                            signedPreKeyID: signedPreKeyID, signedPreKey: signedPreKey,
                            signedPreKeySignature: signature, oneTimePreKeyID: oneTimePreKeyID,
                            oneTimePreKey: oneTimePreKeyID == nil ? nil : oneTimePreKey)
    }

    /// X3DH as the initiator with the bundle of the party at `remote` (draws the base key,
    /// then the first ratchet key, after the trust and signature checks).
    public func processBundle(_ bundle: PreKeyBundle, from remote: Address) throws {
        if (bundle.oneTimePreKeyID == nil) != (bundle.oneTimePreKey == nil) {
            throw LibSignalPeerError.invalidArgument("one-time prekey id and key must both be set or both be nil")
        }
        let otk = bundle.oneTimePreKey ?? []
        let result = bundle.identityKey.withUnsafeBufferPointer { identity in
            bundle.signedPreKey.withUnsafeBufferPointer { spk in
                bundle.signedPreKeySignature.withUnsafeBufferPointer { signature in
                    otk.withUnsafeBufferPointer { otkBytes in
                        signal_peer_process_bundle(peer, remote.name, remote.deviceID,
                                                   bundle.registrationID, bundle.deviceID,
                                                   identity.baseAddress, identity.count,
                                                   bundle.signedPreKeyID,
                                                   spk.baseAddress, spk.count,
                                                   signature.baseAddress, signature.count,
                                                   bundle.oneTimePreKeyID ?? 0,
                                                   bundle.oneTimePreKey == nil ? nil : otkBytes.baseAddress,
                                                   otkBytes.count)
                    }
                }
            }
        }
        try check(result)
    }

    /// Encrypts for `remote` with the current session.
    public func encrypt(_ plaintext: [UInt8], to remote: Address) throws -> (ciphertext: [UInt8], type: MessageType) {
        var type: Int32 = 0
        let ciphertext = try output { out, outLength in
            plaintext.withUnsafeBufferPointer { pt in
                signal_peer_encrypt(peer, remote.name, remote.deviceID, pt.baseAddress, pt.count, out, outLength, &type)
            }
        }
        guard let messageType = MessageType(rawValue: type) else {
            throw LibSignalPeerError.invalidArgument("libsignal produced message type \(type)")
        }
        return (ciphertext, messageType)
    }

    /// Decrypts a message of `type` from `remote`.
    public func decrypt(_ ciphertext: [UInt8], type: MessageType, from remote: Address) throws -> [UInt8] {
        try output { out, outLength in
            ciphertext.withUnsafeBufferPointer { ct in
                signal_peer_decrypt(peer, remote.name, remote.deviceID, type.rawValue, ct.baseAddress, ct.count, out, outLength)
            }
        }
    }

    public func hasSession(with remote: Address) -> Bool {
        signal_peer_has_session(peer, remote.name, remote.deviceID) == 1
    }

    /// Deletes the session record of `remote`; true if there was one.
    @discardableResult
    public func deleteSession(with remote: Address) throws -> Bool {
        let result = signal_peer_delete_session(peer, remote.name, remote.deviceID)
        if result < 0 { throw LibSignalParty.error(result, log: []) }
        return result == 1
    }

    /// The current session state with `remote`, nil without a session (or a sending chain).
    public func sessionInfo(with remote: Address) throws -> SessionInfo? {
        var priv = [UInt8](repeating: 0, count: 32)
        var pub = [UInt8](repeating: 0, count: 33)
        var counter: UInt32 = 0
        var previousCounter: UInt32 = 0
        var unacknowledged: Int32 = 0
        var archived = 0
        let result = signal_peer_session_info(peer, remote.name, remote.deviceID, &priv, &pub,
                                              &counter, &previousCounter, &unacknowledged, &archived)
        if result == SIGNAL_PEER_ERR_NO_SESSION { return nil }
        if result < 0 { throw LibSignalParty.error(result, log: []) }
        return SessionInfo(ratchetKey: KeyPair(privateKey: priv, publicKey: pub), counter: counter,
                           previousCounter: previousCounter, unacknowledgedPreKey: unacknowledged != 0,
                           archivedStates: archived)
    }

    /// The identity trusted for `remote` (33 bytes), nil if none is stored yet.
    public func trustedIdentity(for remote: Address) throws -> [UInt8]? {
        var key = [UInt8](repeating: 0, count: 33)
        let result = signal_peer_trusted_identity(peer, remote.name, remote.deviceID, &key)
        if result < 0 { throw LibSignalParty.error(result, log: []) }
        return result == 1 ? key : nil
    }

    /// Replaces the identity trusted for `remote` (to accept an identity change); nil
    /// forgets it, so the next identity is trusted on first use.
    public func setTrustedIdentity(_ key: [UInt8]?, for remote: Address) throws {
        if let key, key.isEmpty { throw LibSignalPeerError.invalidArgument("empty identity key") }
        let result: Int32
        if let key {
            result = key.withUnsafeBufferPointer {
                signal_peer_set_trusted_identity(peer, remote.name, remote.deviceID, $0.baseAddress, $0.count)
            }
        } else {
            result = signal_peer_set_trusted_identity(peer, remote.name, remote.deviceID, nil, 0)
        }
        if result < 0 { throw LibSignalParty.error(result, log: []) }
    }

    // MARK: - Groups

    /// This party's SenderKeyDistributionMessage for the group: created on first use (key
    /// id 4 bytes, chain key 32, signing key 32 drawn), re-exported at the current
    /// iteration afterwards.
    public func createDistributionMessage(groupID: [UInt8]) throws -> [UInt8] {
        try output { out, outLength in
            groupID.withUnsafeBufferPointer { group in
                signal_peer_group_create(peer, group.baseAddress, group.count, out, outLength)
            }
        }
    }

    public func processDistributionMessage(_ message: [UInt8], groupID: [UInt8], from sender: Address) throws {
        let result = groupID.withUnsafeBufferPointer { group in
            message.withUnsafeBufferPointer { dm in
                signal_peer_group_process(peer, group.baseAddress, group.count, sender.name, sender.deviceID,
                                          dm.baseAddress, dm.count)
            }
        }
        try check(result)
    }

    /// A SenderKeyMessage for the group (draws 64 bytes of signature randomness).
    public func groupEncrypt(_ plaintext: [UInt8], groupID: [UInt8]) throws -> [UInt8] {
        try output { out, outLength in
            groupID.withUnsafeBufferPointer { group in
                plaintext.withUnsafeBufferPointer { pt in
                    signal_peer_group_encrypt(peer, group.baseAddress, group.count, pt.baseAddress, pt.count,
                                              out, outLength)
                }
            }
        }
    }

    public func groupDecrypt(_ ciphertext: [UInt8], groupID: [UInt8], from sender: Address) throws -> [UInt8] {
        try output { out, outLength in
            groupID.withUnsafeBufferPointer { group in
                ciphertext.withUnsafeBufferPointer { ct in
                    signal_peer_group_decrypt(peer, group.baseAddress, group.count, sender.name, sender.deviceID,
                                              ct.baseAddress, ct.count, out, outLength)
                }
            }
        }
    }

    /// This party's own sender key for the group, nil if it has none yet.
    public func ownSenderKey(groupID: [UInt8]) throws -> SenderKeyState? {
        var keyID: UInt32 = 0
        var iteration: UInt32 = 0
        var chainKey = [UInt8](repeating: 0, count: 32)
        var priv = [UInt8](repeating: 0, count: 32)
        var pub = [UInt8](repeating: 0, count: 33)
        let result = groupID.withUnsafeBufferPointer { group in
            signal_peer_group_own_state(peer, group.baseAddress, group.count, &keyID, &iteration, &chainKey, &priv, &pub)
        }
        if result == SIGNAL_PEER_ERR_NO_SESSION { return nil }
        if result < 0 { throw LibSignalParty.error(result, log: []) }
        return SenderKeyState(keyID: keyID, iteration: iteration, chainKey: chainKey,
                              signingKey: KeyPair(privateKey: priv, publicKey: pub))
    }

    // MARK: - Convenience overloads with string group ids (UTF-8 bytes)

    public func createDistributionMessage(groupID: String) throws -> [UInt8] {
        try createDistributionMessage(groupID: Array(groupID.utf8))
    }

    public func processDistributionMessage(_ message: [UInt8], groupID: String, from sender: Address) throws {
        try processDistributionMessage(message, groupID: Array(groupID.utf8), from: sender)
    }

    public func groupEncrypt(_ plaintext: [UInt8], groupID: String) throws -> [UInt8] {
        try groupEncrypt(plaintext, groupID: Array(groupID.utf8))
    }

    public func groupDecrypt(_ ciphertext: [UInt8], groupID: String, from sender: Address) throws -> [UInt8] {
        try groupDecrypt(ciphertext, groupID: Array(groupID.utf8), from: sender)
    }

    public func ownSenderKey(groupID: String) throws -> SenderKeyState? {
        try ownSenderKey(groupID: Array(groupID.utf8))
    }

    // MARK: - Log

    /// What libsignal logged during this party's last protocol operation (process bundle,
    /// encrypt, decrypt, group operations), all levels.
    public var lastLog: [LogLine] {
        (0..<signal_peer_log_count(peer)).compactMap { index in
            guard let line = signal_peer_log_line(peer, index) else { return nil }
            return LogLine(level: signal_peer_log_level(peer, index), text: String(cString: line))
        }
    }

    // MARK: - Stateless helpers

    /// X25519 public key (33 bytes, 0x05 || u) of a 32-byte private key.
    public static func publicKey(privateKey: [UInt8]) throws -> [UInt8] {
        guard privateKey.count == 32 else { throw LibSignalPeerError.invalidArgument("private key must be 32 bytes") }
        var pub = [UInt8](repeating: 0, count: 33)
        let result = privateKey.withUnsafeBufferPointer { signal_peer_public_key($0.baseAddress, $0.count, &pub) }
        if result != 0 { throw error(result, log: []) }
        return pub
    }

    /// libsignal's clamping of 32 random bytes into a private key.
    public static func clamp(_ random: [UInt8]) -> [UInt8] {
        precondition(random.count == 32, "a private key is 32 bytes")
        var key = random
        key[0] &= 248
        key[31] &= 127
        key[31] |= 64
        return key
    }

    /// SHA-256 (OpenSSL).
    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        let result = data.withUnsafeBufferPointer { signal_peer_sha256($0.baseAddress, $0.count, &digest) }
        precondition(result == 0, "SHA-256 failed")
        return digest
    }

    public static func parseDistributionMessage(_ message: [UInt8]) throws -> DistributionMessage {
        var keyID: UInt32 = 0
        var iteration: UInt32 = 0
        var chainKey = [UInt8](repeating: 0, count: 32)
        var signingKey = [UInt8](repeating: 0, count: 33)
        let result = message.withUnsafeBufferPointer {
            signal_peer_parse_distribution_message($0.baseAddress, $0.count, &keyID, &iteration, &chainKey, &signingKey)
        }
        if result != 0 { throw error(result, log: []) }
        return DistributionMessage(keyID: keyID, iteration: iteration, chainKey: chainKey, signingKey: signingKey)
    }

    /// Key id and iteration of a SenderKeyMessage.
    public static func parseSenderKeyMessage(_ message: [UInt8]) throws -> (keyID: UInt32, iteration: UInt32) {
        var keyID: UInt32 = 0
        var iteration: UInt32 = 0
        let result = message.withUnsafeBufferPointer {
            signal_peer_parse_sender_key_message($0.baseAddress, $0.count, &keyID, &iteration)
        }
        if result != 0 { throw error(result, log: []) }
        return (keyID, iteration)
    }

    /// libsignal's name of an error code ("SG_ERR_INVALID_MESSAGE").
    public static func errorName(_ code: Int32) -> String {
        String(cString: signal_peer_error_name(code))
    }

    /// The canonical error name (FORMAT.md §7) of libsignal's code and log lines.
    public static func canonicalError(code: Int32, log: [String]) -> String {
        var cStrings = log.map { strdupBytes($0) }
        defer { cStrings.forEach { $0.deallocate() } }
        return cStrings.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { lines in
                String(cString: signal_peer_canonical_error(code, lines.baseAddress, lines.count))
            }
        }
    }

    /// Random bytes from the system generator.
    public static func systemRandom(_ count: Int) -> [UInt8]? {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    // MARK: - Private

    private static let randomCallback: signal_peer_random_fn = { context, out, length in
        guard let context, let out else { return -1 }
        let box = Unmanaged<RandomBox>.fromOpaque(context).takeUnretainedValue()
        guard let bytes = box.source(length), bytes.count == length else { return -1 }
        bytes.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { out.update(from: base, count: length) }
        }
        return 0
    }

    private static func strdupBytes(_ string: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(string.utf8CString)
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
        pointer.initialize(from: utf8, count: utf8.count)
        return pointer
    }

    private static func error(_ code: Int32, log: [String]) -> LibSignalPeerError {
        .rejected(canonical: canonicalError(code: code, log: log), code: code,
                  codeName: errorName(code), log: log)
    }

    private func check(_ result: Int32) throws {
        if result < 0 { throw lastError(result) }
    }

    private func lastError(_ code: Int32) -> LibSignalPeerError {
        .rejected(canonical: String(cString: signal_peer_last_canonical_error(peer, code)), code: code,
                  codeName: LibSignalParty.errorName(code), log: lastLog.map(\.text))
    }

    /// Runs a C call that allocates an output buffer and copies it into an array.
    private func output(_ call: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<Int>) -> Int32) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var length = 0
        let result = call(&out, &length)
        defer { signal_peer_bytes_free(out, length) }
        if result < 0 { throw lastError(result) }
        guard let out else { return [] }
        return Array(UnsafeBufferPointer(start: out, count: length))
    }
}
