/// Every constant of Signal's v3 session protocol in one place: version numbers, KDF labels,
/// lengths and the limits that bound what a session stores.
///
/// The values are those of libsignal-protocol-c 2.3.3 (the behaviour Hush is byte-compatible
/// with, documented in `Docs/protocol.md`); the section numbers refer to Signal's Double Ratchet
/// specification (revision 1, 2016) and X3DH specification (revision 1, 2016).
public enum SignalConstants {
    /// The message version Hush speaks: Signal's v3 ("ciphertext version 3").
    public static let messageVersion: UInt8 = 3
    /// The version byte that starts every v3 message: `(3 << 4) | 3`. The high nibble is the
    /// message's version, the low nibble the newest version the sender supports.
    public static let versionByte: UInt8 = (messageVersion << 4) | messageVersion

    /// Length of the truncated HMAC-SHA256 that ends a ``SignalMessage``.
    public static let macByteCount = 8

    // MARK: Limits (Double Ratchet §2.6, "MAX_SKIP", and §6.5 on storing skipped keys)

    /// The largest counter jump accepted inside one receiving chain: a message whose counter
    /// is more than this many ahead of the chain is rejected (``SignalProtocolError/tooFarInFuture(counter:chainIndex:limit:)``).
    /// Double Ratchet §2.6 asks for such a bound so that a malicious counter cannot make the
    /// receiver derive (and store) an unbounded number of keys.
    public static let maximumSkippedMessages: UInt32 = 2000
    /// Skipped message keys kept per receiving chain; beyond it the oldest are dropped
    /// (§6.5: "a reasonable limit on how many skipped message keys are stored").
    public static let maximumStoredMessageKeys = 2000
    /// Receiving chains kept per session state; beyond it the oldest is dropped, together
    /// with its skipped keys (messages still in flight on it can no longer be read).
    public static let maximumReceiverChains = 5
    /// Archived session states kept per address (older sessions replaced by a new X3DH);
    /// beyond it the oldest is dropped.
    public static let maximumArchivedStates = 40

    /// Sender key states kept per (group, sender) record, newest first; beyond it the oldest
    /// is dropped.
    public static let maximumSenderKeyStates = 5

    // MARK: Work per received message (Double Ratchet §2.6's reason for MAX_SKIP, applied to
    // every state a message is tried on)

    /// The most session states one message is tried on: the current one and every archived
    /// one (FORMAT §6.4, "Which state decrypts").
    public static let maximumStatesTriedPerMessage = 1 + maximumArchivedStates
    /// X25519 operations with the sender's key per state tried, before the message
    /// authenticated: the receiving half of a DH ratchet step. The sending half (the second
    /// X25519) runs only on the state that authenticated the message.
    public static let maximumAgreementsPerAttempt = 1
    /// Chain-key steps (one HMAC-SHA256 each) per state tried, before the message
    /// authenticated: walking a chain to the message's counter. The message keys of the
    /// skipped counters (an HMAC and an HKDF each) are derived only on the state that
    /// authenticated it.
    public static let maximumChainStepsPerAttempt = Int(maximumSkippedMessages)
    /// Message-key derivations per state tried before the message authenticated: the key of
    /// the message's own counter.
    public static let maximumMessageKeyDerivationsPerAttempt = 1

    /// So a message that authenticates with no state — forged, or for a session this device
    /// no longer has — costs at most, in total: one ratchet key pair drawn (a fixed-base
    /// scalar multiplication; the prime-order check of a new ratchet key runs only after the
    /// message authenticated),
    /// ``maximumStatesTriedPerMessage`` × (``maximumAgreementsPerAttempt`` X25519 +
    /// ``maximumChainStepsPerAttempt`` HMACs + ``maximumMessageKeyDerivationsPerAttempt``
    /// derivation + one MAC or AEAD check): 41 X25519 and about 82,000 short HMACs. The bound
    /// keeps libsignal's outcomes (every state is still tried, so the same messages decrypt
    /// and the same errors are reported), and only defers work that a failing state never
    /// needed; before, the same message cost 82 X25519 and about 492,000 HMACs (the skipped
    /// keys were derived on every state tried).
    public static let maximumChainStepsPerForgedMessage = maximumStatesTriedPerMessage * maximumChainStepsPerAttempt

    // MARK: KDF info strings (libsignal v3)

    /// X3DH output → first root key and chain key (X3DH §2.2's `info`).
    static let x3dhInfo = Array("WhisperText".utf8)
    /// PQXDH's KDF info for the Signal-v3 suite (PQXDH spec §2.2 "info", libsignal's label).
    static let pqxdhInfo = Array("WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024".utf8)
    /// The message version of sessions set up with PQXDH (libsignal's version 4).
    public static let postQuantumMessageVersion: UInt8 = 4
    /// libsignal's key-type byte of Kyber-1024 (ML-KEM-1024) keys and ciphertexts.
    public static let kyberKeyType: UInt8 = 0x08
    /// A serialized Kyber-1024 ciphertext: type byte and 1,568 bytes.
    public static let kyberCiphertextByteCount = 1 + 1568
    /// A serialized Kyber-1024 public key: type byte and 1,568 bytes.
    public static let kyberPublicKeyByteCount = 1 + 1568
    /// `KDF_RK` of the Double Ratchet (§5.2): root key and DH output → root key, chain key.
    static let ratchetInfo = Array("WhisperRatchet".utf8)
    /// Message key expansion (Double Ratchet §5.2, `KDF_CK` output → encryption keys).
    static let messageKeysInfo = Array("WhisperMessageKeys".utf8)

    /// Group message key expansion (sender keys): IV (16) || cipher key (32).
    static let groupMessageKeysInfo = Array("WhisperGroup".utf8)

    /// The constant input of `KDF_CK` for the message key (Double Ratchet §5.2: "HMAC-SHA256
    /// with chain key as key and 0x01 as input").
    static let messageKeySeed: UInt8 = 0x01
    /// The constant input of `KDF_CK` for the next chain key (0x02).
    static let chainKeySeed: UInt8 = 0x02

    /// X3DH §2.2: for X25519, 32 bytes of 0xFF prefix the DH outputs (domain separation from
    /// XEdDSA, whose first hash input starts the same way).
    static let x3dhDiscontinuity = [UInt8](repeating: 0xFF, count: 32)
    /// Root and chain key length.
    static let keyByteCount = 32
    /// Message key material: cipher key (32) || MAC key (32) || IV (16).
    static let messageKeyMaterialByteCount = 80

    /// Registration ids are drawn from 1...16380 (libsignal's key helper).
    public static let registrationIDRange: ClosedRange<UInt32> = 1...16380
}
