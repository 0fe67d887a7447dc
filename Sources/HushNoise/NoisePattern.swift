/// The handshake patterns Hush uses (Noise revision 34, §7.5).
///
/// - ``xx``: both parties transmit their static keys, encrypted (first contact).
/// - ``ik``: the initiator knows the responder's static key and sends its own in the first
///   message (one round trip; the first payload is encrypted to the responder).
/// - ``nk``: the initiator knows the responder's static key and has none of its own (an
///   anonymous channel to a known server).
public enum NoisePattern: String, Sendable, CaseIterable {
    /// `XX`: `-> e`, `<- e, ee, s, es`, `-> s, se`.
    case xx = "XX"
    /// `IK`: `<- s`, `...`, `-> e, es, s, ss`, `<- e, ee, se`.
    case ik = "IK"
    /// `NK`: `<- s`, `...`, `-> e, es`, `<- e, ee`.
    case nk = "NK"

    var definition: NoiseHandshakePattern {
        switch self {
        case .xx: .xx
        case .ik: .ik
        case .nk: .nk
        }
    }
}

/// Which side of a handshake this party plays (§5.3 `initiator`). The initiator writes the first
/// message.
public enum NoiseRole: Sendable, Equatable, Hashable {
    /// Sends the first handshake message.
    case initiator
    /// Reads the first handshake message.
    case responder
}

/// A token of a message pattern (§7.1). `psk` (§9) is not supported.
enum NoiseToken: Sendable, Equatable {
    case e, s, ee, es, se, ss
}

/// A handshake pattern (§7.1): pre-message patterns for each side and the sequence of message
/// patterns, the initiator's first. The engine in ``NoiseHandshake`` runs any pattern given
/// in this form; the public API exposes only ``NoisePattern``'s three. The others are here
/// because they cost one table entry each and let the tests check the engine against every
/// fundamental pattern of the cacophony vectors.
struct NoiseHandshakePattern: Sendable, Equatable {
    /// The pattern's name in the protocol name (§8.1), e.g. `XX`.
    let name: String
    /// The initiator's pre-message (§7.1): `s` when the responder knows the initiator's static key.
    let initiatorPreMessage: [NoiseToken]
    /// The responder's pre-message: `s` when the initiator knows the responder's static key.
    let responderPreMessage: [NoiseToken]
    /// The message patterns, alternating from the initiator.
    let messages: [[NoiseToken]]

    /// A one-way pattern (§7.4): a single message, after which only the initiator sends.
    var isOneWay: Bool { messages.count == 1 }

    /// The full protocol name (§8): `Noise_XX_25519_ChaChaPoly_SHA256`.
    var protocolName: String { "Noise_\(name)_\(NoiseConstants.suiteName)" }

    /// Whether `role` needs its own static key pair: it is in its pre-message, it sends `s`,
    /// or a DH token uses it (§5.3: `es` and `ss` for the responder, `se` and `ss` for the initiator).
    func needsLocalStatic(_ role: NoiseRole) -> Bool {
        let pre = role == .initiator ? initiatorPreMessage : responderPreMessage
        if pre.contains(.s) { return true }
        for (index, message) in messages.enumerated() {
            let sentByInitiator = index % 2 == 0
            for token in message {
                switch token {
                case .s where sentByInitiator == (role == .initiator): return true
                case .ss: return true
                case .se where role == .initiator, .es where role == .responder: return true
                default: continue
                }
            }
        }
        return false
    }

    /// Whether `role` must be given the peer's static key at the start (the peer's pre-message).
    func needsRemoteStaticUpFront(_ role: NoiseRole) -> Bool {
        (role == .initiator ? responderPreMessage : initiatorPreMessage).contains(.s)
    }

    // §7.4, one-way patterns.
    static let n = Self(name: "N", initiatorPreMessage: [], responderPreMessage: [.s], messages: [[.e, .es]])
    static let k = Self(name: "K", initiatorPreMessage: [.s], responderPreMessage: [.s], messages: [[.e, .es, .ss]])
    static let x = Self(name: "X", initiatorPreMessage: [], responderPreMessage: [.s], messages: [[.e, .es, .s, .ss]])

    // §7.5, the twelve fundamental interactive patterns.
    static let nn = Self(name: "NN", initiatorPreMessage: [], responderPreMessage: [], messages: [[.e], [.e, .ee]])
    static let nk = Self(name: "NK", initiatorPreMessage: [], responderPreMessage: [.s], messages: [[.e, .es], [.e, .ee]])
    static let nx = Self(name: "NX", initiatorPreMessage: [], responderPreMessage: [], messages: [[.e], [.e, .ee, .s, .es]])
    static let xn = Self(name: "XN", initiatorPreMessage: [], responderPreMessage: [], messages: [[.e], [.e, .ee], [.s, .se]])
    static let xk = Self(name: "XK", initiatorPreMessage: [], responderPreMessage: [.s], messages: [[.e, .es], [.e, .ee], [.s, .se]])
    static let xx = Self(name: "XX", initiatorPreMessage: [], responderPreMessage: [], messages: [[.e], [.e, .ee, .s, .es], [.s, .se]])
    static let kn = Self(name: "KN", initiatorPreMessage: [.s], responderPreMessage: [], messages: [[.e], [.e, .ee, .se]])
    static let kk = Self(name: "KK", initiatorPreMessage: [.s], responderPreMessage: [.s], messages: [[.e, .es, .ss], [.e, .ee, .se]])
    static let kx = Self(name: "KX", initiatorPreMessage: [.s], responderPreMessage: [], messages: [[.e], [.e, .ee, .se, .s, .es]])
    static let `in` = Self(name: "IN", initiatorPreMessage: [], responderPreMessage: [], messages: [[.e, .s], [.e, .ee, .se]])
    static let ik = Self(name: "IK", initiatorPreMessage: [], responderPreMessage: [.s], messages: [[.e, .es, .s, .ss], [.e, .ee, .se]])
    static let ix = Self(name: "IX", initiatorPreMessage: [], responderPreMessage: [], messages: [[.e, .s], [.e, .ee, .se, .s, .es]])

    /// Every pattern the engine knows, by name.
    static let all: [String: Self] = Dictionary(uniqueKeysWithValues: [
        n, k, x, nn, nk, nx, xn, xk, xx, kn, kk, kx, `in`, ik, ix,
    ].map { ($0.name, $0) })
}
