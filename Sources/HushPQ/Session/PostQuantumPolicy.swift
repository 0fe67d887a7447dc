/// Whether a device accepts sessions without PQXDH (`Docs/spec/pqxdh.md` §6).
public enum PostQuantumPolicy: Sendable, Equatable {
    /// Start sessions only with PQXDH (a bundle without a Kyber prekey is
    /// ``SignalProtocolError/invalidBundle(_:)`` ``BundleProblem/missingKyberPreKey``) and
    /// accept only PQXDH prekey messages for new sessions
    /// (``SignalProtocolError/postQuantumRequired`` otherwise). Detects a server that strips
    /// Kyber prekeys from bundles: on the sending side at once, on the receiving side when the
    /// X3DH message arrives.
    case requirePQXDH
    /// PQXDH when the bundle has a Kyber prekey, X3DH otherwise; accept both.
    case acceptEither
}
