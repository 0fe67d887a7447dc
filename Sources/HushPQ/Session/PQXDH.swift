@_spi(HushPQ) import Hush
import Synchronization

/// PQXDH (Signal's PQXDH specification, revision 3) in both suites: Alice's half from a
/// ``PostQuantumPreKeyBundle``, Bob's half when the first message arrives. The session then
/// runs the Double Ratchet of its suite through ``SessionCipher`` unchanged; a Signal-v3
/// session set up this way has version 4 (libsignal's), a hush-1 one has no version on the
/// wire. `Docs/spec/pqxdh.md` is the complete definition.
public enum PQXDH {
    /// Builds a session with `address` from `bundle` (PQXDH §3.3) and stores it.
    ///
    /// Checks, in order (`Docs/spec/pqxdh.md` §4, libsignal's order): a bundle without a Kyber
    /// prekey is refused under ``PostQuantumPolicy/requirePQXDH``
    /// (``BundleProblem/missingKyberPreKey``) and goes to X3DH otherwise; the identity is
    /// trusted for `address` (``SignalProtocolError/untrustedIdentity(_:identity:)``); the
    /// signed prekey's signature; the Kyber prekey's signature by the bundle's identity key
    /// (``BundleProblem/badKyberPreKeySignature``); prime-order keys. Only then does it
    /// encapsulate with `encapsulator` and draw the base key and the first ratchet key from
    /// `random` (in that order). Nothing is stored, and nothing is encapsulated, on a refusal.
    ///
    /// An encapsulator failure is ``SignalProtocolError/crypto(_:)``: a recorded encapsulator
    /// with none left is ``CryptoError/randomSourceExhausted(requested:remaining:)``, any other
    /// failure ``CryptoError/libraryFailure(function:)``.
    public static func process(
        _ bundle: PostQuantumPreKeyBundle, for address: ProtocolAddress,
        store: some IdentityKeyStore & SessionStore, suite: CipherSuite = .signalV3,
        policy: PostQuantumPolicy = .acceptEither,
        encapsulator: some MLKEMEncapsulator = SystemEncapsulator(), random: some RandomSource = SystemRandom()
    ) throws(SignalProtocolError) {
        guard let kyber = bundle.kyberPreKey else {
            if policy == .requirePQXDH { throw .invalidBundle(.missingKyberPreKey) }
            try SessionBuilder.process(bundle.bundle, for: address, store: store, suite: suite, random: random)
            return
        }
        let identityKey = bundle.bundle.identityKey
        let initiator = PostQuantumInitiator(
            verify: { () throws(SignalProtocolError) in
                guard kyber.isSigned(by: identityKey) else { throw .invalidBundle(.badKyberPreKeySignature) }
            },
            encapsulate: { () throws(SignalProtocolError) -> PostQuantumInitiation in
                let encapsulation: MLKEM1024.Encapsulation
                do throws(KEMError) { encapsulation = try encapsulator.encapsulate(to: kyber.publicKey) } catch { throw .crypto(error.cryptoError) }
                let wire = suite == .signalV3 ? [SignalConstants.kyberKeyType] + encapsulation.ciphertext : encapsulation.ciphertext
                return PostQuantumInitiation(kyberPreKeyID: kyber.id, wireCiphertext: wire, sharedSecret: encapsulation.sharedSecret.bytes)
            })
        try SessionBuilder.process(bundle.bundle, for: address, sessionStore: store, identityStore: store, suite: suite,
                                   random: random, postQuantum: initiator)
    }

    /// Parses a message of `kind`, including the PQXDH forms (a version-4 ``PreKeySignalMessage``
    /// or ``SignalMessage``, a ``HushPreKeyMessage`` with a KEM ciphertext). Any bytes give a
    /// message or a ``SignalProtocolError``.
    public static func message(kind: CiphertextMessage.Kind, serialized bytes: [UInt8]) throws(SignalProtocolError) -> CiphertextMessage {
        try CiphertextMessage(postQuantumKind: kind, serialized: bytes)
    }

    /// Decrypts any message from `address`; a prekey message builds the session with X3DH or
    /// PQXDH (Bob's half, PQXDH §3.4) as it says, subject to `policy`.
    ///
    /// On top of ``SessionCipher/decrypt(_:from:store:random:)``'s checks, for a message that
    /// builds a new state: under ``PostQuantumPolicy/requirePQXDH`` an X3DH message is
    /// ``SignalProtocolError/postQuantumRequired``; the Kyber prekey must be in `kyberStore`
    /// (``SignalProtocolError/unknownPreKey(_:)`` with ``PreKeyReference/kyber(_:)`` — also
    /// for a one-time Kyber prekey already used); a wrong KEM ciphertext decapsulates to an
    /// unrelated secret (ML-KEM's implicit rejection) and fails as ``SignalProtocolError/badMAC``.
    /// After success a one-time Kyber prekey is deleted with the X25519 one, in the same
    /// commit order; nothing changes on failure.
    public static func decrypt(
        _ message: CiphertextMessage, from address: ProtocolAddress,
        store: some SignalProtocolStore, kyberStore: some KyberPreKeyStore,
        policy: PostQuantumPolicy = .acceptEither, random: some RandomSource = SystemRandom()
    ) throws(SignalProtocolError) -> [UInt8] {
        let consumed = Mutex<KyberPreKeyRecord?>(nil)
        let receiver = PostQuantumReceiver(
            requirePostQuantum: policy == .requirePQXDH,
            decapsulate: { (id: UInt32, wire: [UInt8]) throws(SignalProtocolError) -> SecureBytes in
                guard let record = try SignalProtocolError.storeCall("loadKyberPreKey", { try kyberStore.loadKyberPreKey(id: id) }) else {
                    throw .unknownPreKey(.kyber(id))
                }
                // v3: 0x08 || ct (checked by the parser); hush-1: ct.
                let ciphertext = wire.count == SignalConstants.kyberCiphertextByteCount ? Array(wire.dropFirst()) : wire
                do { return try record.keyPair.decapsulate(ciphertext).bytes } catch { throw .malformed(.invalidKey(field: 8)) }
            },
            markUsed: { (id: UInt32) throws(SignalProtocolError) in
                let record = try SignalProtocolError.storeCall("loadKyberPreKey", { try kyberStore.loadKyberPreKey(id: id) })
                try SignalProtocolError.storeCall("markKyberPreKeyUsed", { try kyberStore.markKyberPreKeyUsed(id: id) })
                consumed.withLock { $0 = record }
            },
            restore: { _ in
                if let record = consumed.withLock({ $0 }), record.kind == .oneTime { try? kyberStore.storeKyberPreKey(record) }
            })
        return try SessionCipher.decrypt(message, from: address, store: store, random: random, postQuantum: receiver)
    }
}

extension SignalProtocolError {
    /// Runs a store call, turning any other error into ``storeFailure(operation:message:)``.
    static func storeCall<T>(_ operation: String, _ body: () throws -> T) throws(SignalProtocolError) -> T {
        do { return try body() } catch let error as SignalProtocolError { throw error } catch {
            throw .storeFailure(operation: operation, message: String(describing: error))
        }
    }
}

extension KEMError {
    /// The ``CryptoError`` an encapsulation failure is reported as (``PQXDH/process(_:for:store:suite:policy:encapsulator:random:)``).
    var cryptoError: CryptoError {
        switch self {
        case .randomness(let error): error
        default: .libraryFailure(function: "ML-KEM-1024 Encaps")
        }
    }
}
