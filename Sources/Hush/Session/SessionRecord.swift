/// Everything stored about one address: the current session state and the states it replaced.
///
/// When a new X3DH session replaces the current one (the peer reinstalled, or both sides
/// initiated at once), the old state is archived, most recent first, so that messages still in
/// flight on it can be decrypted; at most ``SignalConstants/maximumArchivedStates`` are kept.
/// Decryption tries the current state, then each archived one; an archived state that
/// decrypts becomes current again ("promotion").
///
/// A record is a value with copy-on-write storage: copying one costs a reference count, and
/// ``SessionCipher`` mutates a record in place when the store hands it out uniquely
/// (``SessionStore/updateSession(for:_:)``), or works on a copy and stores it only after
/// success. Serialize it with ``serialized()`` and ``init(serialized:)``.
public struct SessionRecord: Sendable {
    /// The states, shared between copies until one of them changes.
    final class Storage: @unchecked Sendable {
        // Mutated only through SessionRecord's accessors, after a uniqueness check.
        var current: SessionState
        var archived: [SessionState]

        init(current: SessionState, archived: [SessionState]) {
            self.current = current
            self.archived = archived
        }
    }

    private var storage: Storage

    init(current: SessionState, archived: [SessionState] = []) {
        storage = Storage(current: current, archived: archived)
    }

    private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            storage = Storage(current: storage.current, archived: storage.archived)
        }
    }

    /// The current state.
    var current: SessionState {
        get { storage.current }
        _modify {
            makeUnique()
            yield &storage.current
        }
    }

    /// Archived states, most recently archived first.
    var archived: [SessionState] {
        get { storage.archived }
        _modify {
            makeUnique()
            yield &storage.archived
        }
    }

    /// Makes `state` current, archiving the previous current state.
    mutating func promote(_ state: SessionState) {
        archived.insert(current, at: 0)
        if archived.count > SignalConstants.maximumArchivedStates {
            archived.removeLast(archived.count - SignalConstants.maximumArchivedStates)
        }
        current = state
    }

    /// The current or archived state created from Alice's base key `baseKey` (the first
    /// match, current first), if any.
    func state(withBaseKey baseKey: Curve25519.KeyAgreement.PublicKey) -> SessionState? {
        if current.aliceBaseKey == baseKey { return current }
        return archived.first { $0.aliceBaseKey == baseKey }
    }

    /// The number of archived states.
    public var archivedStateCount: Int { archived.count }

    /// The peer's identity key in the current state.
    public var remoteIdentity: IdentityKey { current.remoteIdentity }

    /// The peer's registration id in the current state.
    public var remoteRegistrationID: UInt32 { current.remoteRegistrationID }

    /// Whether this side still wraps its messages in PreKeySignalMessages (it initiated and
    /// the peer has not answered yet).
    public var hasUnacknowledgedPreKeyMessage: Bool { current.pendingPreKey != nil }

    /// Decrypts `message` with the current state, then each archived state (FORMAT §6.4,
    /// "Which state decrypts"), committing into `self` only on success.
    /// If a state needs a DH ratchet step, one key pair is drawn from `random` (at most once:
    /// every state tried gets the same key pair), and the message's ratchet key is checked
    /// once to be in the prime-order subgroup (else that state fails with
    /// ``SignalProtocolError/invalidRatchetKey``). `work`, when given, counts what the
    /// decryption cost (see ``SignalConstants`` on the work bound).
    mutating func decrypt(
        _ message: some RatchetWireMessage, random: some RandomSource, work: DecryptionWork? = nil
    ) throws(SignalProtocolError) -> [UInt8] {
        if let plaintext = current.decryptInOrder(message) { return plaintext }
        let context = DecryptionContext(random: random, work: work)
        var failures: [SignalProtocolError] = []
        var attempt = current
        do {
            let plaintext = try attempt.decrypt(message, context: context)
            attempt.pendingPreKey = nil
            current = attempt
            return plaintext
        } catch {
            if case .duplicateMessage = error { throw error }
            if case .crypto = error { throw error }
            failures.append(error)
        }
        for index in archived.indices {
            var attempt = archived[index]
            do {
                let plaintext = try attempt.decrypt(message, context: context)
                attempt.pendingPreKey = nil
                archived.remove(at: index)
                promote(attempt)
                return plaintext
            } catch {
                if case .duplicateMessage = error { throw error }
                if case .crypto = error { throw error }
                failures.append(error)
            }
        }
        throw Self.summarize(failures)
    }

    /// The error reported when every state failed: a version (or suite) mismatch first, then
    /// a counter too far ahead, else the current state's error (normally ``SignalProtocolError/badMAC``).
    private static func summarize(_ failures: [SignalProtocolError]) -> SignalProtocolError {
        if let version = failures.first(where: {
            if case .legacyVersion = $0 { return true }
            if case .invalidVersion = $0 { return true }
            if case .suiteMismatch = $0 { return true }
            return false
        }) { return version }
        if let far = failures.first(where: { if case .tooFarInFuture = $0 { return true }; return false }) { return far }
        return failures.first ?? .badMAC
    }
}

/// What every session state tried for one message shares: the receiver's next ratchet key,
/// drawn at most once (the states that fail are discarded with it), and whether the message's
/// ratchet key is in the prime-order subgroup, checked at most once.
final class DecryptionContext<Random: RandomSource> {
    let random: Random
    let work: DecryptionWork?
    private var drawn: Curve25519.KeyAgreement.PrivateKey?
    private var ratchetKeyIsValid: Bool?

    init(random: Random, work: DecryptionWork?) {
        self.random = random
        self.work = work
    }

    func key() throws(SignalProtocolError) -> Curve25519.KeyAgreement.PrivateKey {
        if let drawn { return drawn }
        let key = try SignalProtocolError.crypto { () throws(CryptoError) in try Curve25519.KeyAgreement.PrivateKey(using: random) }
        drawn = key
        return key
    }

    /// A new ratchet key must be a prime-order point (``Curve25519/KeyAgreement/PublicKey/isInPrimeOrderSubgroup``):
    /// low-order and torsioned keys are ``SignalProtocolError/invalidRatchetKey`` for every
    /// state that would take a DH step with them.
    func checkRatchetKey(_ message: some RatchetWireMessage) throws(SignalProtocolError) {
        if ratchetKeyIsValid == nil {
            work?.subgroupChecks += 1
            ratchetKeyIsValid = message.ratchetKey.isInPrimeOrderSubgroup
        }
        guard ratchetKeyIsValid == true else { throw .invalidRatchetKey }
    }
}

/// Counts the expensive operations of one decryption, for the tests that check the bound
/// documented in ``SignalConstants`` ("Work per received message"). Counting is per call (the
/// caller passes its own counter), so tests running in parallel do not disturb each other.
package final class DecryptionWork {
    /// Session states a decryption was attempted on (after the suite/version check).
    package var statesTried = 0
    /// X25519 scalar multiplications with a peer's key.
    package var agreements = 0
    /// Chain-key steps `CK' = HMAC(CK, 0x02)`.
    package var chainSteps = 0
    /// Message-key derivations `HKDF(HMAC(CK, 0x01), …)`.
    package var messageKeyDerivations = 0
    /// Prime-order subgroup checks of the message's ratchet key.
    package var subgroupChecks = 0

    package init() {}
}

extension SessionRecord {
    /// The current state's sending ratchet public key (for transcript replay in this package).
    package var currentSendingRatchetKey: Curve25519.KeyAgreement.PublicKey { current.sendingRatchetKey.publicKey }
}

extension SignalProtocolError {
    /// The error's name in the shared Signal v3 transcripts (FORMAT §7), e.g. `bad_mac`.
    package var transcriptName: String {
        switch self {
        case .malformed, .invalidRatchetKey, .invalidCiphertext: "malformed"
        case .invalidVersion, .suiteMismatch: "invalid_version"
        case .legacyVersion: "legacy_version"
        case .badMAC: "bad_mac"
        case .duplicateMessage: "duplicate_message"
        case .tooFarInFuture: "too_far_in_future"
        case .chainExhausted: "chain_exhausted"
        case .noSession: "no_session"
        case .untrustedIdentity: "untrusted_identity"
        case .unknownPreKey: "unknown_prekey"
        case .noSenderKey: "no_session"
        case .badSignature: "bad_signature"
        case .invalidBundle(.badSignedPreKeySignature): "bad_signature"
        case .invalidBundle(.missingSignedPreKey): "malformed"
        case .invalidBundle(.missingKyberPreKey): "malformed"
        case .invalidBundle(.badKyberPreKeySignature): "bad_signature"
        case .postQuantumRequired: "invalid_version"
        case .storeFailure: "store_failure"
        case .crypto: "crypto_failure"
        }
    }
}

extension SessionRecord: CustomStringConvertible, CustomReflectable {
    /// Public facts only: the peer's identity, registration id and how many states are kept.
    public var description: String {
        "SessionRecord(remoteIdentity: \(Hex.encode(current.remoteIdentity.serialized)), remoteRegistrationID: \(current.remoteRegistrationID), archivedStates: \(archived.count), unacknowledgedPreKey: \(hasUnacknowledgedPreKeyMessage))"
    }

    /// Mirrors public facts only, so `dump` cannot print keys.
    public var customMirror: Mirror {
        Mirror(self, children: ["remoteIdentity": current.remoteIdentity, "remoteRegistrationID": current.remoteRegistrationID,
                                "archivedStates": archived.count], displayStyle: .struct)
    }
}
