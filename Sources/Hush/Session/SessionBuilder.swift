/// Starts sessions from prekey bundles: Alice's half of X3DH (X3DH §3.3).
///
/// Bob's half happens inside ``SessionCipher/decrypt(_:from:store:random:)`` when the first
/// PreKeySignalMessage arrives.
public enum SessionBuilder {
    /// Builds a session of `suite` (Signal v3 unless told otherwise) with `address` from its
    /// `bundle` and stores it. The next
    /// ``SessionCipher/encrypt(_:for:store:)`` to that address produces a PreKeySignalMessage.
    ///
    /// Checks, in order (FORMAT §6.1): the bundle's identity is trusted for `address`; the
    /// bundle has a signed prekey whose signature verifies; its identity, signed prekey and
    /// one-time prekey are prime-order points (``SignalProtocolError/invalidRatchetKey``
    /// otherwise). Only then does it draw Alice's
    /// base key and first ratchet key from `random` (in that order). If a session with
    /// `address` exists, it is archived and the new one becomes current.
    ///
    /// - Throws: ``SignalProtocolError/untrustedIdentity(_:identity:)``,
    ///   ``SignalProtocolError/invalidBundle(_:)``, ``SignalProtocolError/invalidRatchetKey``
    ///   (a low-order or torsioned key in the bundle), ``SignalProtocolError/storeFailure(operation:message:)``,
    ///   ``SignalProtocolError/crypto(_:)`` (randomness). Nothing is stored on failure.
    public static func process(
        _ bundle: PreKeyBundle, for address: ProtocolAddress,
        sessionStore: some SessionStore, identityStore: some IdentityKeyStore,
        suite: CipherSuite = .signalV3, random: some RandomSource = SystemRandom()
    ) throws(SignalProtocolError) {
        try processBundle(bundle, for: address, sessionStore: sessionStore, identityStore: identityStore,
                          suite: suite, random: random, postQuantum: nil)
    }

    static func processBundle(
        _ bundle: PreKeyBundle, for address: ProtocolAddress,
        sessionStore: some SessionStore, identityStore: some IdentityKeyStore,
        suite: CipherSuite, random: some RandomSource, postQuantum: PostQuantumInitiator?
    ) throws(SignalProtocolError) {
        let trusted = try SignalProtocolError.store("isTrustedIdentity") {
            try identityStore.isTrustedIdentity(bundle.identityKey, for: address, direction: .sending)
        }
        guard trusted else { throw .untrustedIdentity(address, identity: bundle.identityKey) }
        let signedPreKey = try bundle.verifiedSignedPreKey()
        // PQXDH: the Kyber prekey's signature next, as libsignal's process_prekey_bundle
        // orders it (Docs/spec/pqxdh.md §4 step 4).
        try postQuantum?.verify()
        // Every key of the bundle must be a prime-order point (no low-order or torsioned keys).
        guard bundle.identityKey.publicKey.isInPrimeOrderSubgroup, signedPreKey.publicKey.isInPrimeOrderSubgroup,
              bundle.oneTimePreKey?.publicKey.isInPrimeOrderSubgroup ?? true else {
            throw .invalidRatchetKey
        }
        // PQXDH §3.3: (CT, SS) = Encaps(PQPK_B), only once every check passed (pqxdh.md §4 step 6).
        let kem = try postQuantum?.encapsulate()

        let identity = try SignalProtocolError.store("identityKeyPair") { try identityStore.identityKeyPair() }
        let registrationID = try SignalProtocolError.store("localRegistrationID") { try identityStore.localRegistrationID() }
        let baseKey = try SignalProtocolError.crypto { () throws(CryptoError) in try Curve25519.KeyAgreement.PrivateKey(using: random) }
        let ratchetKey = try SignalProtocolError.crypto { () throws(CryptoError) in try Curve25519.KeyAgreement.PrivateKey(using: random) }
        let state = try SessionState.initiating(
            identity: identity, localRegistrationID: registrationID, baseKey: baseKey, ratchetKey: ratchetKey,
            bundle: bundle, signedPreKey: signedPreKey, suite: suite,
            kem: kem.map { ($0.sharedSecret, SessionState.PendingKEM(kyberPreKeyID: $0.kyberPreKeyID, ciphertext: $0.wireCiphertext)) })

        var record = try SignalProtocolError.store("loadSession") { try sessionStore.loadSession(for: address) }
        if record == nil {
            record = SessionRecord(current: state)
        } else {
            record!.promote(state)
        }
        try SignalProtocolError.store("storeSession") { try sessionStore.storeSession(record!, for: address) }
        _ = try SignalProtocolError.store("saveIdentity") { try identityStore.saveIdentity(bundle.identityKey, for: address) }
    }

    /// ``process(_:for:sessionStore:identityStore:suite:random:)`` with one combined store.
    public static func process(
        _ bundle: PreKeyBundle, for address: ProtocolAddress,
        store: some IdentityKeyStore & SessionStore, suite: CipherSuite = .signalV3,
        random: some RandomSource = SystemRandom()
    ) throws(SignalProtocolError) {
        try process(bundle, for: address, sessionStore: store, identityStore: store, suite: suite, random: random)
    }
}
