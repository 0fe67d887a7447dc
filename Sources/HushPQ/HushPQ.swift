/// HushPQ: post-quantum session setup for Hush — ML-KEM-1024, Kyber prekeys and PQXDH
/// (Signal's PQXDH specification, revision 3) in both suites. See `Docs/spec/pqxdh.md`.
///
/// A separate product so that a package using only `Hush` never builds swift-crypto.
@_exported import Hush
