// HushNoise: the Noise Protocol Framework (revision 34, noiseprotocol.org/noise.html) for
// Hush's relay connections — Noise_XX, Noise_IK and Noise_NK over 25519, ChaChaPoly and
// SHA256 — on the primitives of HushCrypto, which it re-exports (keys are
// `Curve25519.KeyAgreement` keys). It is a target of its own beside `Hush`: an app that imports
// only `Hush` does not build it.
@_exported import HushCrypto
