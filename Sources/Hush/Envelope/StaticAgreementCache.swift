import Synchronization

/// Remembers the static-static agreements `DH(IK_sender, IK_recipient)` of envelope headers
/// (`Docs/spec/envelope.md` §6), so that a sender who seals to the same recipients again — every
/// message to a group — computes one X25519 per header instead of two. The header bytes are
/// exactly those of an envelope sealed without it; only the work changes.
///
/// Holds secrets: each agreement is a `Curve25519.KeyAgreement.SharedSecret` (zeroized
/// storage, wiped when evicted or when the cache is released). It keeps at most ``capacity``
/// agreements (the least recently used go first) and only those of one sender identity: sealing
/// as another identity empties it first. Thread-safe.
///
/// Use one per sending identity, held as long as that identity is. Do not share one between
/// processes or persist it; a cache never changes what a recipient can open.
public final class StaticAgreementCache: Sendable {
    /// Agreements kept at most.
    public let capacity: Int

    private struct State {
        var sender: [UInt8]?
        var entries: [[UInt8]: (secret: Curve25519.KeyAgreement.SharedSecret, used: UInt64)] = [:]
        var clock: UInt64 = 0
        var hits = 0
        var misses = 0
    }
    private let state = Mutex(State())

    /// A cache of at most `capacity` agreements (at least 1).
    public init(capacity: Int = 4_096) { self.capacity = max(1, capacity) }

    /// Agreements computed and found so far (tests, diagnostics).
    public var statistics: (hits: Int, misses: Int, count: Int) { state.withLock { ($0.hits, $0.misses, $0.entries.count) } }

    /// `DH(sender, recipient)`, from the cache or computed (and then kept).
    func agreement(_ sender: IdentityKeyPair, _ recipient: IdentityKey) throws(EnvelopeError) -> Curve25519.KeyAgreement.SharedSecret {
        let senderKey = sender.identityKey.publicKey.rawRepresentation
        let key = recipient.publicKey.rawRepresentation
        let found = state.withLock { s -> Curve25519.KeyAgreement.SharedSecret? in
            if s.sender != senderKey {
                s.entries.removeAll()
                s.sender = senderKey
            }
            s.clock += 1
            guard let entry = s.entries[key] else { return nil }
            s.entries[key] = (entry.secret, s.clock)
            s.hits += 1
            return entry.secret
        }
        if let found { return found }
        let secret = try SealedEnvelope.agree(sender.privateKey, recipient.publicKey)
        state.withLock { s in
            guard s.sender == senderKey else { return }
            s.misses += 1
            if s.entries[key] == nil, s.entries.count >= capacity,
               let oldest = s.entries.min(by: { $0.value.used < $1.value.used })?.key {
                s.entries[oldest] = nil
            }
            s.clock += 1
            s.entries[key] = (secret, s.clock)
        }
        return secret
    }

    /// Forgets every agreement.
    public func removeAll() { state.withLock { $0.entries.removeAll() } }
}
