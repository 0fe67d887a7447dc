/// One Double Ratchet session with a peer (Double Ratchet §3.2 "state variables"), in
/// libsignal v3's shape.
///
/// A value type whose secrets live in copy-on-write ``SecureBytes``: copying a state is cheap
/// and shares the key storage, and mutating a copy never changes the original. Decryption runs
/// on a copy and commits it only on success.
struct SessionState: Sendable {
    /// A receiving chain (Double Ratchet `DHr`, `CKr`, `Nr`) with the keys skipped on it
    /// (`MKSKIPPED` for this `DHr`), oldest first.
    struct ReceiverChain: Sendable {
        var ratchetKey: Curve25519.KeyAgreement.PublicKey
        var chainKey: ChainKey
        var skippedKeys: SkippedMessageKeys
    }

    /// What Alice must repeat in every message until Bob answers (X3DH §3.3's "initial
    /// message" header): while set, ``SessionCipher`` wraps messages in PreKeySignalMessages.
    struct PendingPreKey: Sendable, Equatable {
        var preKeyID: UInt32?
        var signedPreKeyID: UInt32
        var baseKey: Curve25519.KeyAgreement.PublicKey
        /// PQXDH only: the Kyber prekey used and the KEM ciphertext, repeated like the rest.
        var kem: PendingKEM? = nil
    }

    /// The PQXDH part of the initial message header.
    struct PendingKEM: Sendable, Equatable {
        var kyberPreKeyID: UInt32
        var ciphertext: [UInt8]
    }

    /// How the session was set up: X3DH for session version 3, PQXDH for version 4.
    var establishment: SessionEstablishment { version == SignalConstants.postQuantumMessageVersion ? .pqxdh : .x3dh }

    /// The session's cipher suite; a session never mixes suites.
    var suite: CipherSuite
    /// The session's message version (3; only meaningful for Signal v3).
    var version: UInt8 = SignalConstants.messageVersion
    var localIdentity: IdentityKey
    var remoteIdentity: IdentityKey
    var localRegistrationID: UInt32
    var remoteRegistrationID: UInt32
    /// Alice's X3DH base key (`EK_A`): on both sides, it names the session so that a repeated
    /// PreKeySignalMessage finds it (FORMAT §6.5 step 3).
    var aliceBaseKey: Curve25519.KeyAgreement.PublicKey
    /// `RK`.
    var rootKey: RootKey
    /// `DHs` and `CKs`/`Ns`.
    var sendingRatchetKey: Curve25519.KeyAgreement.PrivateKey
    var sendingChainKey: ChainKey
    /// `PN`.
    var previousCounter: UInt32
    /// Receiving chains, oldest first, at most ``SignalConstants/maximumReceiverChains``.
    var receiverChains: [ReceiverChain]
    var pendingPreKey: PendingPreKey?

    func receiverChainIndex(for ratchetKey: Curve25519.KeyAgreement.PublicKey) -> Int? {
        receiverChains.firstIndex { $0.ratchetKey == ratchetKey }
    }

    func receiverChainIndex(for message: some RatchetWireMessage) -> Int? {
        receiverChains.firstIndex { message.hasRatchetKey($0.ratchetKey) }
    }

    mutating func addReceiverChain(_ ratchetKey: Curve25519.KeyAgreement.PublicKey, _ chainKey: ChainKey) {
        receiverChains.append(ReceiverChain(
            ratchetKey: ratchetKey, chainKey: chainKey, skippedKeys: SkippedMessageKeys(materialByteCount: suite.messageKeyMaterialByteCount)))
        if receiverChains.count > SignalConstants.maximumReceiverChains {
            receiverChains.removeFirst(receiverChains.count - SignalConstants.maximumReceiverChains)
        }
    }
}

// MARK: - Creating states (X3DH §3.3, §3.4 and the first ratchet steps)

extension SessionState {
    /// Alice's state after processing Bob's bundle (FORMAT §6.1).
    static func initiating(
        identity: IdentityKeyPair, localRegistrationID: UInt32,
        baseKey: Curve25519.KeyAgreement.PrivateKey, ratchetKey: Curve25519.KeyAgreement.PrivateKey,
        bundle: PreKeyBundle, signedPreKey: PreKeyBundle.SignedPreKey, suite: CipherSuite,
        kem: (secret: SecureBytes, header: PendingKEM)? = nil
    ) throws(SignalProtocolError) -> SessionState {
        let (rootKey0, chainKey0) = try X3DH.initiator(
            identity: identity, baseKey: baseKey, theirIdentity: bundle.identityKey,
            theirSignedPreKey: signedPreKey.publicKey, theirOneTimePreKey: bundle.oneTimePreKey?.publicKey, suite: suite,
            kemSecret: kem?.secret)
        // Alice's first sending chain: a DH ratchet step from her ratchet key to Bob's signed
        // prekey, which acts as his first ratchet key (Double Ratchet §3.3 RatchetInitAlice).
        let (rootKey1, sendingChain) = try rootKey0.step(ours: ratchetKey, theirs: signedPreKey.publicKey, suite: suite)
        return SessionState(
            suite: suite, version: kem == nil ? SignalConstants.messageVersion : SignalConstants.postQuantumMessageVersion,
            localIdentity: identity.identityKey, remoteIdentity: bundle.identityKey,
            localRegistrationID: localRegistrationID, remoteRegistrationID: bundle.registrationID,
            aliceBaseKey: baseKey.publicKey, rootKey: rootKey1,
            sendingRatchetKey: ratchetKey, sendingChainKey: sendingChain, previousCounter: 0,
            // libsignal also keeps CK0 as a receiving chain for Bob's signed prekey.
            receiverChains: [ReceiverChain(ratchetKey: signedPreKey.publicKey, chainKey: chainKey0,
                                           skippedKeys: SkippedMessageKeys(materialByteCount: suite.messageKeyMaterialByteCount))],
            pendingPreKey: PendingPreKey(preKeyID: bundle.oneTimePreKey?.id, signedPreKeyID: signedPreKey.id,
                                         baseKey: baseKey.publicKey, kem: kem?.header))
    }

    /// Bob's state on receiving Alice's first PreKeySignalMessage (FORMAT §6.1, last part):
    /// his sending ratchet key is his signed prekey; the message itself then triggers the
    /// first DH ratchet step.
    static func responding(
        identity: IdentityKeyPair, localRegistrationID: UInt32,
        signedPreKey: Curve25519.KeyAgreement.PrivateKey, oneTimePreKey: Curve25519.KeyAgreement.PrivateKey?,
        message: some PreKeyWireMessage, kemSecret: SecureBytes? = nil
    ) throws(SignalProtocolError) -> SessionState {
        let (rootKey0, chainKey0) = try X3DH.responder(
            identity: identity, signedPreKey: signedPreKey, oneTimePreKey: oneTimePreKey,
            theirIdentity: message.identityKey, theirBaseKey: message.baseKey, suite: message.suite, kemSecret: kemSecret)
        return SessionState(
            suite: message.suite,
            version: kemSecret == nil ? SignalConstants.messageVersion : SignalConstants.postQuantumMessageVersion,
            localIdentity: identity.identityKey, remoteIdentity: message.identityKey,
            localRegistrationID: localRegistrationID, remoteRegistrationID: message.registrationID,
            aliceBaseKey: message.baseKey, rootKey: rootKey0,
            sendingRatchetKey: signedPreKey, sendingChainKey: chainKey0, previousCounter: 0,
            receiverChains: [], pendingPreKey: nil)
    }
}

// MARK: - Encrypting and decrypting (Double Ratchet §3.4, §3.5)

extension SessionState {
    /// Encrypts with the sending chain and advances it (FORMAT §6.3 for v3, hush-1 spec §4).
    mutating func encrypt(_ plaintext: some ContiguousByteBuffer) throws(SignalProtocolError) -> CiphertextMessage {
        let counter = sendingChainKey.index
        // A message numbered UInt32.max would leave no chain key after it (FORMAT's counters are 32 bits).
        guard counter < UInt32.max else { throw .chainExhausted(counter: counter) }
        let message: CiphertextMessage
        switch suite {
        case .signalV3:
            let inner = try sendingChainKey.withMessageKeys(suite: suite) { (m) throws(SignalProtocolError) -> SignalMessage in
                try plaintext.withUnsafeBytes { (p: UnsafeRawBufferPointer) throws(SignalProtocolError) -> SignalMessage in
                    try SignalMessage(
                        version: version, ratchetKey: sendingRatchetKey.publicKey, counter: counter, previousCounter: previousCounter, plaintext: p,
                        cipherKey: UnsafeRawBufferPointer(rebasing: m[0..<32]), macKey: UnsafeRawBufferPointer(rebasing: m[32..<64]),
                        iv: UnsafeRawBufferPointer(rebasing: m[64..<80]), sender: localIdentity, receiver: remoteIdentity)
                }
            }
            if let pending = pendingPreKey {
                message = .preKeySignal(PreKeySignalMessage(
                    registrationID: localRegistrationID, preKeyID: pending.preKeyID, signedPreKeyID: pending.signedPreKeyID,
                    baseKey: pending.baseKey, identityKey: localIdentity, message: inner,
                    kyberPreKeyID: pending.kem?.kyberPreKeyID, kyberCiphertext: pending.kem?.ciphertext))
            } else {
                message = .signal(inner)
            }
        case .hush1:
            let header = pendingPreKey.map { pending in
                HushPreKeyMessage.header(preKeyID: pending.preKeyID, signedPreKeyID: pending.signedPreKeyID,
                                         registrationID: localRegistrationID, baseKey: pending.baseKey, identityKey: localIdentity,
                                         kyberPreKeyID: pending.kem?.kyberPreKeyID, kyberCiphertext: pending.kem?.ciphertext)
            } ?? []
            let inner = sendingChainKey.withMessageKeys(suite: suite) { m in
                plaintext.withUnsafeBytes { p in
                    HushMessage(ratchetKey: sendingRatchetKey.publicKey, counter: counter, previousCounter: previousCounter,
                                plaintext: p, material: m, sender: localIdentity, receiver: remoteIdentity, preKeyHeader: header)
                }
            }
            if let pending = pendingPreKey {
                message = .hushPreKey(HushPreKeyMessage(
                    preKeyID: pending.preKeyID, signedPreKeyID: pending.signedPreKeyID, registrationID: localRegistrationID,
                    baseKey: pending.baseKey, identityKey: localIdentity, message: inner,
                    kyberPreKeyID: pending.kem?.kyberPreKeyID, kyberCiphertext: pending.kem?.ciphertext))
            } else {
                message = .hush(inner)
            }
        }
        sendingChainKey.advance()
        return message
    }

    /// The error for a message this state cannot even try: another suite, another version.
    func mismatch(_ message: some RatchetWireMessage) -> SignalProtocolError? {
        guard message.suite == suite else { return .suiteMismatch(expected: suite, received: message.suite) }
        return message.versionError(forSessionVersion: version)
    }

    /// The common case, in place and without copying the state: an in-order message on an
    /// existing receiving chain. The keys come straight from the chain key; only after the
    /// message authenticated and decrypted is the chain advanced. Returns `nil` (having
    /// changed nothing) whenever the general path is needed: a new ratchet key, a skipped or
    /// out-of-order counter, a suite or version mismatch, or any failure — the general path
    /// then reports the error after trying the archived states.
    mutating func decryptInOrder(_ message: some RatchetWireMessage) -> [UInt8]? {
        guard mismatch(message) == nil, let chain = receiverChainIndex(for: message) else { return nil }
        guard message.counter == receiverChains[chain].chainKey.index, message.counter < UInt32.max else { return nil }
        let (sender, receiver) = (remoteIdentity, localIdentity)
        let plaintext = receiverChains[chain].chainKey.withMessageKeys(suite: suite) { m -> [UInt8]? in
            try? message.open(material: m, sender: sender, receiver: receiver)
        }
        guard let plaintext else { return nil }
        receiverChains[chain].chainKey.advance()
        pendingPreKey = nil
        return plaintext
    }

    /// Decrypts on this state (FORMAT §6.4 steps 1–4). Called on a copy: on error the copy is
    /// discarded, so a failure changes nothing.
    ///
    /// Work before the message authenticates is bounded per state (``SignalConstants``, "Work
    /// per received message"): at most one X25519 (the receiving half of a DH ratchet step),
    /// at most ``SignalConstants/maximumSkippedMessages`` chain-key steps (one HMAC each) and
    /// one message-key derivation. The sending half of the DH step and the skipped message
    /// keys are derived only after the message authenticated, which changes no outcome: the
    /// same checks fail in the same order, and `context` draws the new ratchet key at the same
    /// point as before (the first state that needs a DH step), so transcripts replay unchanged.
    mutating func decrypt<Random: RandomSource>(
        _ message: some RatchetWireMessage, context: DecryptionContext<Random>
    ) throws(SignalProtocolError) -> [UInt8] {
        if let error = mismatch(message) { throw error }
        context.work?.statesTried += 1
        // 1. The receiving chain for the sender's ratchet key, or a DH ratchet step (§3.5).
        let chain: Int
        var pendingStep: (rootKey: RootKey, ours: Curve25519.KeyAgreement.PrivateKey, theirs: Curve25519.KeyAgreement.PublicKey)?
        if let existing = receiverChainIndex(for: message) {
            chain = existing
        } else {
            let theirs = message.ratchetKey
            context.work?.agreements += 1
            let (rootKey1, receivingChain) = try rootKey.step(ours: sendingRatchetKey, theirs: theirs, suite: suite)
            let ours = try context.key()
            addReceiverChain(theirs, receivingChain)
            chain = receiverChains.count - 1
            pendingStep = (rootKey1, ours, theirs)
        }
        // 2. The message key for the counter (§3.5 TrySkippedMessageKeys / SkipMessageKeys),
        // 3. authentication, 4. decryption. Keys derived straight from the chain live on the stack.
        let source = try messageKeySource(chain: chain, counter: message.counter, work: context.work)
        let (sender, receiver) = (remoteIdentity, localIdentity)
        let plaintext: [UInt8]
        switch source {
        case .stored(let keys):
            plaintext = try keys.material.withUnsafeBytes { (m) throws(SignalProtocolError) -> [UInt8] in
                try message.open(material: m, sender: sender, receiver: receiver)
            }
        case .chain(let chainKey, let walked):
            context.work?.messageKeyDerivations += 1
            plaintext = try chainKey.withMessageKeys(suite: suite) { (m) throws(SignalProtocolError) -> [UInt8] in
                try message.open(material: m, sender: sender, receiver: receiver)
            }
            // Authenticated: now store the keys of the messages skipped on the way.
            if let walked { storeSkippedKeys(chain: chain, walked, work: context.work) }
            context.work?.chainSteps += 1
            receiverChains[chain].chainKey = chainKey.next()
        }
        // 5. The sending half of the DH ratchet step, once the message is known to be genuine.
        // A new ratchet key must be a prime-order point. Checked only now, after the message
        // authenticated (a v3 MAC and a hush-1 AEAD cover the key): a forged message does not
        // pay for the check, and every message an unmodified libsignal would reject gets
        // libsignal's error; only a torsioned key that authenticated (its sender made it) is
        // refused, as ``SignalProtocolError/invalidRatchetKey``.
        if let step = pendingStep {
            try context.checkRatchetKey(message)
            context.work?.agreements += 1
            let (rootKey2, sendingChain) = try step.rootKey.step(ours: step.ours, theirs: step.theirs, suite: suite)
            rootKey = rootKey2
            previousCounter = sendingChainKey.index > 0 ? sendingChainKey.index - 1 : 0
            sendingRatchetKey = step.ours
            sendingChainKey = sendingChain
        }
        return plaintext
    }

    /// Where the message key for a counter comes from.
    private enum MessageKeySource {
        /// A key stored when its message was skipped (now removed from the state).
        case stored(MessageKeys)
        /// Derived from this chain key; `walked` holds the chain keys of the skipped counters
        /// before it (32 bytes each, oldest first), whose message keys are stored only once
        /// the message authenticated.
        case chain(ChainKey, walked: WalkedChainKeys?)
    }

    /// The chain keys passed over while walking a chain to a later counter.
    struct WalkedChainKeys {
        let keys: SecureBytes
        let firstIndex: UInt32
        var count: Int { keys.count / SignalConstants.keyByteCount }
    }

    private mutating func messageKeySource(chain: Int, counter: UInt32, work: DecryptionWork?) throws(SignalProtocolError) -> MessageKeySource {
        let chainKey = receiverChains[chain].chainKey
        if counter < chainKey.index {
            guard let stored = receiverChains[chain].skippedKeys.remove(counter: counter) else {
                throw .duplicateMessage(counter: counter)
            }
            return .stored(stored)
        }
        guard counter - chainKey.index <= SignalConstants.maximumSkippedMessages else {
            throw .tooFarInFuture(counter: counter, chainIndex: chainKey.index, limit: SignalConstants.maximumSkippedMessages)
        }
        // The chain key after `counter` would be number 2^32: the chain is used up.
        guard counter < UInt32.max else { throw .chainExhausted(counter: counter) }
        guard chainKey.index < counter else { return .chain(chainKey, walked: nil) }
        var current = chainKey
        let steps = Int(counter - chainKey.index)
        let size = SignalConstants.keyByteCount
        let walked = SecureBytes(count: steps * size) { out in
            for j in 0..<steps {
                current.key.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: out[(j * size)..<((j + 1) * size)]).copyMemory(from: $0) }
                current.advance()
            }
        }
        work?.chainSteps += steps
        return .chain(current, walked: WalkedChainKeys(keys: walked, firstIndex: chainKey.index))
    }

    /// Derives and stores the message keys of the walked counters (oldest dropped beyond
    /// ``SignalConstants/maximumStoredMessageKeys``).
    private mutating func storeSkippedKeys(chain: Int, _ walked: WalkedChainKeys, work: DecryptionWork?) {
        // Keys that would be evicted at once are not derived at all (SkippedMessageKeys.append
        // passes `nil` for them); the rest go straight into the chain's one key buffer.
        let firstKept = Swift.max(0, walked.count - SignalConstants.maximumStoredMessageKeys)
        let size = SignalConstants.keyByteCount
        let suite = self.suite
        var j = 0
        walked.keys.withUnsafeBytes { raw in
            receiverChains[chain].skippedKeys.append(
                count: walked.count, firstCounter: walked.firstIndex, limit: SignalConstants.maximumStoredMessageKeys
            ) { out in
                defer { j += 1 }
                guard let out else { return }
                ChainKey.deriveMessageKeys(chainKey: UnsafeRawBufferPointer(rebasing: raw[(j * size)..<((j + 1) * size)]),
                                           suite: suite, into: out)
            }
        }
        work?.messageKeyDerivations += walked.count - firstKept
    }
}
