// TEMPORARY: a minimal Noise (revision 34) implementation with exactly the API of the root
// package's `HushNoise` target (Docs: helpers' noise-api contract), so that the relay can be
// written and tested before HushNoise lands. Delete this file and `import HushNoise` instead.
// Internal on purpose: nothing outside HushTransport sees Noise types.
import Hush

enum NoisePattern: String, Sendable, CaseIterable { case xx = "XX", ik = "IK", nk = "NK" }
enum NoiseRole: Sendable { case initiator, responder }

enum NoiseLimits {
    static let maxMessageLength = 65_535
    static let tagLength = 16
    static let maxPlaintextLength = 65_535 - 16
}

enum NoiseError: Error, Equatable, Sendable {
    case messageTooLarge(length: Int, limit: Int)
    case messageTooShort(length: Int, minimum: Int)
    case decryptionFailed
    case nonceExhausted
    case invalidPublicKey
    case missingLocalStaticKey, missingRemoteStaticKey
    case outOfTurn
    case handshakeFinished
    case handshakeNotFinished
}

/// §5.1 CipherState.
struct NoiseCipherState: Sendable {
    var k: SecureBytes?
    var n: UInt64 = 0

    static func nonce(_ n: UInt64) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { out[4 + i] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(i))) }
        return out
    }

    mutating func encrypt(ad: [UInt8], plaintext: some ContiguousByteBuffer) throws(NoiseError) -> [UInt8] {
        guard let k else { return plaintext.bytes }
        guard n != UInt64.max else { throw .nonceExhausted }
        let out: [UInt8]
        do { out = try ChaChaPoly.encrypt(plaintext, key: k, nonce: Self.nonce(n), associatedData: ad) } catch { throw .decryptionFailed }
        n += 1
        return out
    }

    mutating func decrypt(ad: [UInt8], ciphertext: some ContiguousByteBuffer) throws(NoiseError) -> [UInt8] {
        guard let k else { return ciphertext.bytes }
        guard n != UInt64.max else { throw .nonceExhausted }
        let out: [UInt8]
        do { out = try ChaChaPoly.decrypt(ciphertext, key: k, nonce: Self.nonce(n), associatedData: ad) } catch { throw .decryptionFailed }
        n += 1
        return out
    }

    /// §4.2 Rekey: k = first 32 bytes of ENCRYPT(k, 2^64-1, "", zeros).
    mutating func rekey() {
        guard let k else { return }
        let z = [UInt8](repeating: 0, count: 32)
        if let out = try? ChaChaPoly.encrypt(z, key: k, nonce: Self.nonce(UInt64.max), associatedData: [UInt8]()) {
            self.k = SecureBytes(copying: out[0..<32])
        }
    }
}

/// §5.2 SymmetricState with SHA-256.
struct NoiseSymmetricState {
    var ck: SecureBytes
    var h: [UInt8]
    var cipher = NoiseCipherState()

    init(protocolName: String) {
        let name = Array(protocolName.utf8)
        if name.count <= 32 { h = name + [UInt8](repeating: 0, count: 32 - name.count) } else { h = SHA256.hash(name) }
        ck = SecureBytes(copying: h)
    }

    /// §4.3 HKDF with two outputs.
    static func hkdf(_ ck: SecureBytes, _ ikm: some ContiguousByteBuffer) -> (SecureBytes, SecureBytes) {
        let temp = HMACSHA256.secureAuthenticationCode(for: ikm, using: ck)
        let o1 = HMACSHA256.secureAuthenticationCode(for: [UInt8(1)], using: temp)
        let o2 = HMACSHA256.secureAuthenticationCode(for: o1.bytes + [2], using: temp)
        return (o1, o2)
    }

    mutating func mixKey(_ ikm: some ContiguousByteBuffer) {
        let (a, b) = Self.hkdf(ck, ikm)
        ck = a
        cipher = NoiseCipherState(k: b, n: 0)
    }

    mutating func mixHash(_ data: some ContiguousByteBuffer) { h = SHA256.hash(h + data.bytes) }

    mutating func encryptAndHash(_ plaintext: some ContiguousByteBuffer) throws(NoiseError) -> [UInt8] {
        let c = try cipher.encrypt(ad: h, plaintext: plaintext)
        mixHash(c)
        return c
    }

    mutating func decryptAndHash(_ ciphertext: some ContiguousByteBuffer) throws(NoiseError) -> [UInt8] {
        let p = try cipher.decrypt(ad: h, ciphertext: ciphertext)
        mixHash(ciphertext)
        return p
    }

    func split() -> (NoiseCipherState, NoiseCipherState) {
        let (a, b) = Self.hkdf(ck, [UInt8]())
        return (NoiseCipherState(k: a), NoiseCipherState(k: b))
    }
}

struct NoiseHandshake {
    enum Token { case e, s, ee, es, se, ss }
    let pattern: NoisePattern
    let role: NoiseRole
    private var symmetric: NoiseSymmetricState
    private var s: Curve25519.KeyAgreement.PrivateKey?
    private var e: Curve25519.KeyAgreement.PrivateKey?
    private(set) var remoteStaticKey: Curve25519.KeyAgreement.PublicKey?
    private var re: Curve25519.KeyAgreement.PublicKey?
    private var messages: [[Token]]
    private var index = 0
    private let fixedEphemeral: Curve25519.KeyAgreement.PrivateKey?
    private let random: any RandomSource

    init(pattern: NoisePattern, role: NoiseRole, prologue: [UInt8] = [],
         localStatic: Curve25519.KeyAgreement.PrivateKey? = nil,
         remoteStatic: Curve25519.KeyAgreement.PublicKey? = nil,
         random: some RandomSource = SystemRandom()) throws(NoiseError) {
        try self.init(pattern: pattern, role: role, prologue: prologue, localStatic: localStatic,
                      remoteStatic: remoteStatic, fixed: nil, random: random)
    }

    init(pattern: NoisePattern, role: NoiseRole, prologue: [UInt8], localStatic: Curve25519.KeyAgreement.PrivateKey?,
         remoteStatic: Curve25519.KeyAgreement.PublicKey?, localEphemeral: Curve25519.KeyAgreement.PrivateKey) throws(NoiseError) {
        try self.init(pattern: pattern, role: role, prologue: prologue, localStatic: localStatic,
                      remoteStatic: remoteStatic, fixed: localEphemeral, random: SystemRandom())
    }

    private init(pattern: NoisePattern, role: NoiseRole, prologue: [UInt8], localStatic: Curve25519.KeyAgreement.PrivateKey?,
                 remoteStatic: Curve25519.KeyAgreement.PublicKey?, fixed: Curve25519.KeyAgreement.PrivateKey?,
                 random: any RandomSource) throws(NoiseError) {
        self.pattern = pattern
        self.role = role
        self.s = localStatic
        self.fixedEphemeral = fixed
        self.random = random
        symmetric = NoiseSymmetricState(protocolName: "Noise_\(pattern.rawValue)_25519_ChaChaPoly_SHA256")
        symmetric.mixHash(prologue)
        switch pattern {
        case .xx:
            messages = [[.e], [.e, .ee, .s, .es], [.s, .se]]
            if localStatic == nil { throw .missingLocalStaticKey }
        case .ik:
            messages = [[.e, .es, .s, .ss], [.e, .ee, .se]]
            if localStatic == nil { throw .missingLocalStaticKey }
        case .nk:
            messages = [[.e, .es], [.e, .ee]]
            if role == .responder, localStatic == nil { throw .missingLocalStaticKey }
        }
        if pattern == .ik || pattern == .nk {
            // Pre-message "<- s" (§7.1): both sides hash the responder's static key.
            if role == .initiator {
                guard let remoteStatic else { throw .missingRemoteStaticKey }
                remoteStaticKey = remoteStatic
                symmetric.mixHash(remoteStatic.rawRepresentation)
            } else {
                symmetric.mixHash(localStatic!.publicKey.rawRepresentation)
            }
        }
    }

    var protocolName: String { "Noise_\(pattern.rawValue)_25519_ChaChaPoly_SHA256" }
    var isFinished: Bool { index >= messages.count }
    var isMyTurnToWrite: Bool { !isFinished && ((index % 2 == 0) == (role == .initiator)) }
    var handshakeHash: [UInt8] { symmetric.h }

    private func dh(_ local: Curve25519.KeyAgreement.PrivateKey?, _ remote: Curve25519.KeyAgreement.PublicKey?) throws(NoiseError) -> SecureBytes {
        guard let local, let remote else { throw .missingRemoteStaticKey }
        do { return try local.sharedSecretFromKeyAgreement(with: remote).secret } catch { throw .invalidPublicKey }
    }

    private mutating func mix(_ token: Token) throws(NoiseError) {
        let initiator = role == .initiator
        switch token {
        case .ee: symmetric.mixKey(try dh(e, re))
        case .es: symmetric.mixKey(initiator ? try dh(e, remoteStaticKey) : try dh(s, re))
        case .se: symmetric.mixKey(initiator ? try dh(s, re) : try dh(e, remoteStaticKey))
        case .ss: symmetric.mixKey(try dh(s, remoteStaticKey))
        case .e, .s: break
        }
    }

    mutating func writeMessage(payload: some ContiguousByteBuffer) throws(NoiseError) -> [UInt8] {
        guard !isFinished else { throw .handshakeFinished }
        guard isMyTurnToWrite else { throw .outOfTurn }
        var out: [UInt8] = []
        for token in messages[index] {
            switch token {
            case .e:
                let key: Curve25519.KeyAgreement.PrivateKey
                if let fixedEphemeral { key = fixedEphemeral } else {
                    do { key = try Curve25519.KeyAgreement.PrivateKey(using: random) } catch { throw .invalidPublicKey }
                }
                e = key
                out += key.publicKey.rawRepresentation
                symmetric.mixHash(key.publicKey.rawRepresentation)
            case .s:
                guard let s else { throw .missingLocalStaticKey }
                out += try symmetric.encryptAndHash(s.publicKey.rawRepresentation)
            default:
                try mix(token)
            }
        }
        out += try symmetric.encryptAndHash(payload)
        guard out.count <= NoiseLimits.maxMessageLength else { throw .messageTooLarge(length: out.count, limit: NoiseLimits.maxMessageLength) }
        index += 1
        return out
    }

    mutating func readMessage(_ message: some ContiguousByteBuffer) throws(NoiseError) -> [UInt8] {
        guard !isFinished else { throw .handshakeFinished }
        guard !isMyTurnToWrite else { throw .outOfTurn }
        let bytes = message.bytes
        guard bytes.count <= NoiseLimits.maxMessageLength else { throw .messageTooLarge(length: bytes.count, limit: NoiseLimits.maxMessageLength) }
        var offset = 0
        for token in messages[index] {
            switch token {
            case .e:
                guard bytes.count - offset >= 32 else { throw .messageTooShort(length: bytes.count, minimum: offset + 32) }
                do { re = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: bytes[offset..<offset + 32]) } catch { throw .invalidPublicKey }
                symmetric.mixHash(bytes[offset..<offset + 32])
                offset += 32
            case .s:
                let n = symmetric.cipher.k == nil ? 32 : 48
                guard bytes.count - offset >= n else { throw .messageTooShort(length: bytes.count, minimum: offset + n) }
                let raw = try symmetric.decryptAndHash(bytes[offset..<offset + n])
                do { remoteStaticKey = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw) } catch { throw .invalidPublicKey }
                offset += n
            default:
                try mix(token)
            }
        }
        let rest = bytes[offset...]
        if symmetric.cipher.k != nil, rest.count < 16 { throw .messageTooShort(length: bytes.count, minimum: offset + 16) }
        let payload = try symmetric.decryptAndHash(rest)
        index += 1
        return payload
    }

    consuming func split() throws(NoiseError) -> NoiseTransport {
        guard isFinished else { throw .handshakeNotFinished }
        let (c1, c2) = symmetric.split()
        let initiator = role == .initiator
        return NoiseTransport(handshakeHash: symmetric.h, remoteStaticKey: remoteStaticKey,
                              sending: initiator ? c1 : c2, receiving: initiator ? c2 : c1)
    }
}

struct NoiseTransport: Sendable {
    var handshakeHash: [UInt8]
    var remoteStaticKey: Curve25519.KeyAgreement.PublicKey?
    var sending: NoiseCipherState
    var receiving: NoiseCipherState

    mutating func encrypt(_ plaintext: some ContiguousByteBuffer) throws(NoiseError) -> [UInt8] {
        guard plaintext.byteCount <= NoiseLimits.maxPlaintextLength else {
            throw .messageTooLarge(length: plaintext.byteCount, limit: NoiseLimits.maxPlaintextLength)
        }
        return try sending.encrypt(ad: [], plaintext: plaintext)
    }

    mutating func decrypt(_ message: some ContiguousByteBuffer) throws(NoiseError) -> [UInt8] {
        guard message.byteCount <= NoiseLimits.maxMessageLength else {
            throw .messageTooLarge(length: message.byteCount, limit: NoiseLimits.maxMessageLength)
        }
        guard message.byteCount >= NoiseLimits.tagLength else { throw .messageTooShort(length: message.byteCount, minimum: 16) }
        return try receiving.decrypt(ad: [], ciphertext: message)
    }

    mutating func rekeySending() { sending.rekey() }
    mutating func rekeyReceiving() { receiving.rekey() }
}
