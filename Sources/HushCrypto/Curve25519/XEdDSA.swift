import CCrypto
import CSodium
import Synchronization

/// XEdDSA: Ed25519-style signatures made with X25519 keys, as Signal's identity keys sign
/// their signed prekeys.
///
/// Two signature forms exist (see ``Variant``): the one in Signal's XEdDSA specification
/// (Perrin, 2016, §2.3 "calculate_key_pair" and §2.4 "xeddsa_sign"), and the older form that
/// libsignal-protocol-c 2.3.3 produces (`curve_calculate_signature`; FORMAT.md §5.2 of the
/// project's Signal vectors). ``isValidSignature(_:for:publicKey:policy:)`` accepts both by
/// default, as libsignal does.
///
/// Built from libsodium's Ed25519 group operations (`crypto_scalarmult_ed25519_base_noclamp`,
/// `crypto_core_ed25519_scalar_*`), libsodium's SHA-512 and Ed25519 verification, and one
/// field inversion in libcrypto's BIGNUM (``FieldInversion``); nothing here does curve
/// arithmetic by hand.
///
/// Not for: keys that are also used with plain Ed25519 — keep signing keys of one scheme.
public enum XEdDSA {
    /// The signature length.
    public static let signatureByteCount = 64
    /// The random input `Z` each signature needs (XEdDSA §2.4: 64 bytes).
    public static let randomByteCount = 64

    /// Which signature form to produce.
    public enum Variant: Sendable, Equatable {
        /// XEdDSA specification §2.3–2.4: the Edwards key's sign bit is forced to 0 (negating
        /// the scalar when needed), `a` is reduced mod q, and `s < 2^253`.
        case specification
        /// libsignal-protocol-c 2.3.3: `A = a·B` with its real sign bit, `a` the clamped scalar
        /// as is, and the sign bit of `A` carried in the top bit of signature byte 63.
        case libsignal
    }

    /// Which signature forms verification accepts.
    public enum VerificationPolicy: Sendable, Equatable {
        /// Only specification signatures (XEdDSA §2.6: `u < p`, `s < 2^253`, sign bit 0).
        case specificationOnly
        /// Both forms, as libsignal-protocol-c does: the top bit of `u` is ignored and the top
        /// bit of byte 63 selects the Edwards sign bit.
        case libsignalCompatible
    }

    /// Signs `message` with the X25519 `privateKey`, using the 64 bytes of `randomness` as `Z`.
    ///
    /// With ``Variant/libsignal`` and the randomness libsignal-protocol-c drew, the result is
    /// byte-identical to libsignal's. Never reuse randomness for different messages.
    public static func signature(
        for message: some ContiguousByteBuffer,
        using privateKey: Curve25519.KeyAgreement.PrivateKey,
        variant: Variant = .specification,
        randomness: some ContiguousByteBuffer
    ) throws(CryptoError) -> [UInt8] {
        try signature(for: message, using: privateKey, edwardsPublicKey: nil, variant: variant, randomness: randomness)
    }

    /// `E = k·B` for the X25519 private key `k`, with its real sign bit: the Edwards public key
    /// that signing derives first (§2.3). Signers that sign often with one long-term key compute
    /// it once (``signature(for:using:edwardsPublicKey:variant:randomness:)``), which saves one
    /// of a signature's two base-point multiplications.
    package static func edwardsPublicKey(of privateKey: Curve25519.KeyAgreement.PrivateKey) -> [UInt8] {
        Sodium.ensureInitialized()
        var E = [UInt8](repeating: 0, count: 32)
        privateKey.scalar.withUnsafeBytes { k in _ = crypto_scalarmult_ed25519_base_noclamp(&E, k.nonNullBase) }
        return E
    }

    /// ``signature(for:using:variant:randomness:)`` with `E = k·B` given (from
    /// ``edwardsPublicKey(of:)`` of the same key; `nil`: computed here). Byte-identical results.
    package static func signature(
        for message: some ContiguousByteBuffer,
        using privateKey: Curve25519.KeyAgreement.PrivateKey,
        edwardsPublicKey: [UInt8]?,
        variant: Variant,
        randomness: some ContiguousByteBuffer
    ) throws(CryptoError) -> [UInt8] {
        Sodium.ensureInitialized()
        precondition(edwardsPublicKey == nil || edwardsPublicKey!.count == 32, "an Edwards public key is 32 bytes")
        guard randomness.byteCount == randomByteCount else {
            throw .parameterOutOfRange(name: "randomness.count", value: randomness.byteCount, allowed: randomByteCount...randomByteCount)
        }
        var signature = [UInt8](repeating: 0, count: signatureByteCount)
        // All intermediate secrets (a, r, the nonce hash, the hash state) live in this scratch
        // buffer, which is wiped when it is released at the end of this function.
        let scratchSize = 32 + 64 + 32 + 64 + 32 + MemoryLayout<crypto_hash_sha512_state>.size
        _ = try SecureBytes(count: scratchSize) { (scratch: UnsafeMutableRawBufferPointer) throws(CryptoError) in
            let base = scratch.nonNullBase
            let a = base                       // 32: the signing scalar
            let wide = base + 32               // 64: hash outputs before reduction
            let r = base + 96                  // 32: the nonce scalar
            let k64 = base + 128               // 64: scalar reduction input
            let ha = base + 192                // 32: h·a
            let state = UnsafeMutableRawPointer(base + 224).bindMemory(to: crypto_hash_sha512_state.self, capacity: 1)
            var A = [UInt8](repeating: 0, count: 32)
            var R = [UInt8](repeating: 0, count: 32)
            var h = [UInt8](repeating: 0, count: 32)

            privateKey.scalar.withUnsafeBytes { k in
                // E = k·B (k is clamped, so below 2^255; libsodium masks bit 255 only).
                if let edwardsPublicKey {
                    A = edwardsPublicKey
                } else {
                    _ = crypto_scalarmult_ed25519_base_noclamp(&A, k.nonNullBase)
                }
                switch variant {
                case .libsignal:
                    a.update(from: k.nonNullBase, count: 32)
                case .specification:
                    // §2.3: a = k mod q, negated when E's sign bit is 1; A = E with sign bit 0.
                    k64.update(repeating: 0, count: 64)
                    k64.update(from: k.nonNullBase, count: 32)
                    crypto_core_ed25519_scalar_reduce(a, k64)
                    if A[31] & 0x80 != 0 {
                        crypto_core_ed25519_scalar_negate(a, a)
                        A[31] &= 0x7F
                    }
                }
            }
            // r = hash1(a || M || Z) mod q, hash1(X) = SHA-512((2^256 - 2) as 32 LE bytes || X).
            var prefix = [UInt8](repeating: 0xFF, count: 32)
            prefix[0] = 0xFE
            crypto_hash_sha512_init(state)
            crypto_hash_sha512_update(state, prefix, 32)
            crypto_hash_sha512_update(state, a, 32)
            message.withUnsafeBytes { m in _ = crypto_hash_sha512_update(state, m.nonNullBase, UInt64(m.count)) }
            randomness.withUnsafeBytes { z in _ = crypto_hash_sha512_update(state, z.nonNullBase, 64) }
            crypto_hash_sha512_final(state, wide)
            crypto_core_ed25519_scalar_reduce(r, wide)
            // R = r·B
            guard crypto_scalarmult_ed25519_base_noclamp(&R, r) == 0 else {
                throw .libraryFailure(function: "crypto_scalarmult_ed25519_base_noclamp")
            }
            // h = SHA-512(R || A || M) mod q
            crypto_hash_sha512_init(state)
            crypto_hash_sha512_update(state, R, 32)
            crypto_hash_sha512_update(state, A, 32)
            message.withUnsafeBytes { m in _ = crypto_hash_sha512_update(state, m.nonNullBase, UInt64(m.count)) }
            crypto_hash_sha512_final(state, wide)
            crypto_core_ed25519_scalar_reduce(&h, wide)
            // s = r + h·a mod q
            crypto_core_ed25519_scalar_mul(ha, h, a)
            signature.withUnsafeMutableBufferPointer { sig in
                let out = sig.baseAddress!
                out.update(from: R, count: 32)
                crypto_core_ed25519_scalar_add(out + 32, r, ha)
                if variant == .libsignal {
                    out[63] = (out[63] & 0x7F) | (A[31] & 0x80)
                }
            }
        }
        return signature
    }

    /// Signs `message`, drawing `Z` from `random` (the system CSPRNG by default).
    public static func signature(
        for message: some ContiguousByteBuffer,
        using privateKey: Curve25519.KeyAgreement.PrivateKey,
        variant: Variant = .specification,
        random: some RandomSource = SystemRandom()
    ) throws(CryptoError) -> [UInt8] {
        let z = try random.secureBytes(count: randomByteCount)
        return try signature(for: message, using: privateKey, variant: variant, randomness: z)
    }

    /// ``signature(for:using:variant:random:)`` with `E = k·B` precomputed (see
    /// ``edwardsPublicKey(of:)``).
    package static func signature(
        for message: some ContiguousByteBuffer,
        using privateKey: Curve25519.KeyAgreement.PrivateKey,
        edwardsPublicKey: [UInt8],
        variant: Variant,
        random: some RandomSource
    ) throws(CryptoError) -> [UInt8] {
        let z = try random.secureBytes(count: randomByteCount)
        return try signature(for: message, using: privateKey, edwardsPublicKey: edwardsPublicKey, variant: variant, randomness: z)
    }

    /// `true` when `signature` is a valid XEdDSA signature of `message` by the X25519
    /// `publicKey`, in a form `policy` accepts. Any input of the wrong length is `false`.
    public static func isValidSignature(
        _ signature: some ContiguousByteBuffer,
        for message: some ContiguousByteBuffer,
        publicKey: Curve25519.KeyAgreement.PublicKey,
        policy: VerificationPolicy = .libsignalCompatible
    ) -> Bool {
        Sodium.ensureInitialized()
        guard signature.byteCount == signatureByteCount else { return false }
        var sig = signature.bytes
        var u = publicKey.rawRepresentation
        let signBit = sig[63] & 0x80
        switch policy {
        case .specificationOnly:
            // §2.6: reject u >= p and s >= 2^|q| (|q| = 253 bits: the top three bits of s).
            guard !isAtLeastP(u), sig[63] & 0xE0 == 0 else { return false }
        case .libsignalCompatible:
            u[31] &= 0x7F
            sig[63] &= 0x7F
        }
        // §2.6 convert_mont: y = (u - 1) / (u + 1) mod p, with the chosen sign bit.
        guard var A = edwardsY(fromMontgomeryU: u) else { return false }
        A[31] |= signBit
        return message.withUnsafeBytes { m in
            crypto_sign_verify_detached(sig, m.nonNullBase, UInt64(m.count), A) == 0
        }
    }

    /// p = 2^255 - 19, little-endian.
    static let fieldPrime: [UInt8] = [0xED] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]

    static func isAtLeastP(_ u: [UInt8]) -> Bool {
        for i in stride(from: 31, through: 0, by: -1) where u[i] != fieldPrime[i] {
            return u[i] > fieldPrime[i]
        }
        return true
    }

    /// The birational map from Montgomery u to Edwards y (RFC 7748 §4.1), `y = (u−1)/(u+1)`,
    /// reduced mod p; u = −1 maps to y = 0 as in libsignal. Public values only: the inversion
    /// (``FieldInversion``) is not constant-time.
    static func edwardsY(fromMontgomeryU u: [UInt8]) -> [UInt8]? {
        guard u.count == 32 else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        let ok = u.withUnsafeBytes { input in
            out.withUnsafeMutableBytes { FieldInversion.edwardsY(fromMontgomeryU: input.baseAddress!, into: $0.baseAddress!) }
        }
        return ok ? out : nil
    }
}

extension Curve25519.KeyAgreement.PrivateKey {
    /// An XEdDSA signature of `message` (see ``XEdDSA``), with fresh randomness.
    public func signature(for message: some ContiguousByteBuffer, variant: XEdDSA.Variant = .specification) throws(CryptoError) -> [UInt8] {
        try XEdDSA.signature(for: message, using: self, variant: variant)
    }
}

extension Curve25519.KeyAgreement.PublicKey {
    /// `true` when `signature` is this key's XEdDSA signature of `message`; both forms are
    /// accepted unless `policy` says otherwise.
    public func isValidSignature(
        _ signature: some ContiguousByteBuffer, for message: some ContiguousByteBuffer,
        policy: XEdDSA.VerificationPolicy = .libsignalCompatible
    ) -> Bool {
        XEdDSA.isValidSignature(signature, for: message, publicKey: self, policy: policy)
    }
}

extension XEdDSA {
    /// `E = k·B` of one signing key, computed on first use and then reused (see
    /// ``XEdDSA/edwardsPublicKey(of:)``): for keys that sign many messages (a group's sender
    /// key signs every message). Copies share the cache; it remembers which key it was computed
    /// for (by public key) and recomputes for any other, so a stale value is never used.
    package final class EdwardsKeyCache: Sendable {
        private let entry = Mutex<(publicKey: [UInt8], edwards: [UInt8])?>(nil)

        package init() {}

        /// `E` for `privateKey`, computed at most once per key.
        package func edwardsPublicKey(of privateKey: Curve25519.KeyAgreement.PrivateKey) -> [UInt8] {
            let publicKey = privateKey.publicKey.rawRepresentation
            if let cached = entry.withLock({ $0 }), cached.publicKey == publicKey { return cached.edwards }
            let edwards = XEdDSA.edwardsPublicKey(of: privateKey)
            entry.withLock { $0 = (publicKey, edwards) }
            return edwards
        }
    }
}
