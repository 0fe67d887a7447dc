// Hush: the Signal protocol (X3DH, Double Ratchet, sender keys) and sealed envelopes, on the
// primitives of HushCrypto. This module re-exports HushCrypto so that `import Hush` is all an
// app needs. The protocol layers land here next (see Docs/architecture.md).
@_exported import HushCrypto

/// Facts about this build of Hush.
public enum HushLibrary {
    /// The library's semantic version.
    public static let version = "0.1.0"
}
