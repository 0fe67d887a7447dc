import CFloor

/// The floor: for each operation, only the primitive calls it cannot avoid, made directly on
/// libcrypto and libsodium with preallocated buffers and reused contexts — no protocol logic,
/// no stores, no allocation. `Hush / floor` says how much Hush adds on top.
///
/// Per operation (see Docs/performance.md):
/// - a message (encrypt or decrypt): HMAC(CK,1), HKDF to 80 bytes (extract + 3 expand
///   HMACs), HMAC(CK,2), AES-256-CBC of the payload, the MAC HMAC over both identities and
///   the message;
/// - a DH ratchet step adds X25519(R,T), a key generation and X25519(R',T), 2 HKDFs to 64;
/// - X3DH adds 4 X25519 and an HKDF (and, for the initiator, the signed prekey's signature
///   verification and 2 key generations);
/// - every X25519 key a peer sends is checked to be in the prime-order subgroup (the project's
///   rule since issue 14; one field inversion and libsodium's `crypto_core_ed25519_is_valid_point`):
///   3 per X3DH (initiator: identity, signed and one-time prekeys; responder: base key,
///   identity, and the first message's ratchet key) and 1 per received DH ratchet step;
/// - a group message: HMAC, HKDF to 48, HMAC, AES, and an XEdDSA signature or verification.
public enum FloorOperations {
    public static let all: [BenchOperation] = [
        BenchOperation("encrypt_100") { n in { for _ in 0..<n { Floor.shared.message(payload: 100) } } },
        BenchOperation("decrypt_100") { n in { for _ in 0..<n { Floor.shared.message(payload: 100, decrypt: true) } } },
        BenchOperation("roundtrip_1k") { n in { for _ in 0..<n { Floor.shared.message(payload: 1024); Floor.shared.message(payload: 1024, decrypt: true) } } },
        BenchOperation("roundtrip_64k") { n in { for _ in 0..<n { Floor.shared.message(payload: 65536); Floor.shared.message(payload: 65536, decrypt: true) } } },
        BenchOperation("ping_pong") { n in
            { for _ in 0..<n { Floor.shared.message(payload: 100); Floor.shared.message(payload: 100, decrypt: true); Floor.shared.ratchetStep() } }
        },
        BenchOperation("x3dh_initiator") { n in
            { for _ in 0..<n { Floor.shared.subgroupChecks(3); Floor.shared.verify(); Floor.shared.keygen(); Floor.shared.keygen(); Floor.shared.x3dh(); Floor.shared.dh(); Floor.shared.hkdf(64); Floor.shared.message(payload: 100) } }
        },
        BenchOperation("x3dh_responder") { n in
            { for _ in 0..<n { Floor.shared.subgroupChecks(2); Floor.shared.x3dh(); Floor.shared.ratchetStep(); Floor.shared.message(payload: 100, decrypt: true) } }
        },
        BenchOperation("xeddsa_sign") { n in { for _ in 0..<n { Floor.shared.sign() } } },
        BenchOperation("xeddsa_verify") { n in { for _ in 0..<n { Floor.shared.verify() } } },
        BenchOperation("senderkey_encrypt_100") { n in { for _ in 0..<n { Floor.shared.groupMessage(); Floor.shared.sign() } } },
        BenchOperation("senderkey_decrypt_100") { n in { for _ in 0..<n { Floor.shared.verify(); Floor.shared.groupMessage() } } },
        // hush-1: the same chains, XChaCha20-Poly1305 instead of AES-CBC + HMAC.
        BenchOperation("encrypt_100_hush1") { n in { for _ in 0..<n { Floor.shared.hushMessage(payload: 100) } } },
        BenchOperation("decrypt_100_hush1") { n in { for _ in 0..<n { Floor.shared.hushMessage(payload: 100) } } },
        BenchOperation("roundtrip_1k_hush1") { n in { for _ in 0..<n { Floor.shared.hushMessage(payload: 1024); Floor.shared.hushMessage(payload: 1024) } } },
        BenchOperation("roundtrip_64k_hush1") { n in { for _ in 0..<n { Floor.shared.hushMessage(payload: 65536); Floor.shared.hushMessage(payload: 65536) } } },
        BenchOperation("ping_pong_hush1") { n in
            { for _ in 0..<n { Floor.shared.hushMessage(payload: 100); Floor.shared.hushMessage(payload: 100); Floor.shared.ratchetStep() } }
        },
        BenchOperation("x3dh_initiator_hush1") { n in
            { for _ in 0..<n { Floor.shared.subgroupChecks(3); Floor.shared.verify(); Floor.shared.keygen(); Floor.shared.keygen(); Floor.shared.x3dh(); Floor.shared.dh(); Floor.shared.hkdf(64); Floor.shared.hushMessage(payload: 100) } }
        },
        // PQXDH: X3DH's floor, plus the Kyber prekey's signature check and one encapsulation
        // (initiator), or one decapsulation (responder).
        BenchOperation("pqxdh_initiator") { n in
            { for _ in 0..<n { Floor.shared.subgroupChecks(3); Floor.shared.verify(); Floor.shared.verify(); KEMFloor.shared.encapsulate(); Floor.shared.keygen(); Floor.shared.keygen(); Floor.shared.x3dh(); Floor.shared.dh(); Floor.shared.hkdf(64); Floor.shared.message(payload: 100) } }
        },
        BenchOperation("pqxdh_responder") { n in
            { for _ in 0..<n { Floor.shared.subgroupChecks(2); KEMFloor.shared.decapsulate(); Floor.shared.x3dh(); Floor.shared.ratchetStep(); Floor.shared.message(payload: 100, decrypt: true) } }
        },
        BenchOperation("pqxdh_initiator_hush1") { n in
            { for _ in 0..<n { Floor.shared.subgroupChecks(3); Floor.shared.verify(); Floor.shared.verify(); KEMFloor.shared.encapsulate(); Floor.shared.keygen(); Floor.shared.keygen(); Floor.shared.x3dh(); Floor.shared.dh(); Floor.shared.hkdf(64); Floor.shared.hushMessage(payload: 100) } }
        },
        BenchOperation("pqxdh_responder_hush1") { n in
            { for _ in 0..<n { Floor.shared.subgroupChecks(2); KEMFloor.shared.decapsulate(); Floor.shared.x3dh(); Floor.shared.ratchetStep(); Floor.shared.hushMessage(payload: 100) } }
        },
        BenchOperation("x3dh_responder_hush1") { n in
            { for _ in 0..<n { Floor.shared.subgroupChecks(2); Floor.shared.x3dh(); Floor.shared.ratchetStep(); Floor.shared.hushMessage(payload: 100) } }
        },
        // Envelopes: keygen + 2 DH + 2 HKDF + 2 AEAD to seal; 2 DH + 2 HKDF + 2 AEAD + two
        // certificate signature verifications to open.
        BenchOperation("envelope_seal") { n in
            { for _ in 0..<n { Floor.shared.keygen(); Floor.shared.dh(); Floor.shared.dh(); Floor.shared.hkdf(64); Floor.shared.hkdf(32); Floor.shared.aead(32); Floor.shared.aead(480) } }
        },
        BenchOperation("envelope_open") { n in
            { for _ in 0..<n { Floor.shared.dh(); Floor.shared.dh(); Floor.shared.hkdf(64); Floor.shared.hkdf(32); Floor.shared.aead(32); Floor.shared.aead(480); Floor.shared.verify(); Floor.shared.verify() } }
        },
        BenchOperation("record_serialize_fresh") { n in { for _ in 0..<n { Floor.shared.copy(400) } } },
        BenchOperation("record_deserialize_fresh") { n in { for _ in 0..<n { Floor.shared.copy(400) } } },
        BenchOperation("record_serialize_2000") { n in { for _ in 0..<n { Floor.shared.copy(2000 * 84 + 400) } } },
        BenchOperation("record_deserialize_2000") { n in { for _ in 0..<n { Floor.shared.copy(2000 * 84 + 400) } } },
    ]
}

/// Buffers and contexts made once; single-threaded use only (each harness runs one thread).
final class Floor: @unchecked Sendable {
    static let shared = Floor()

    private let buffer: UnsafeMutableRawPointer
    private let capacity = 1 << 18
    private let sha = UnsafeMutablePointer<SHA256_CTX>.allocate(capacity: 2)
    private let cipher: OpaquePointer
    private let aes: OpaquePointer
    private let bnContext: OpaquePointer
    private let p: OpaquePointer
    private let u: OpaquePointer
    private let r: OpaquePointer
    private var scalar = [UInt8](repeating: 0x41, count: 32)
    private var point = [UInt8](repeating: 0, count: 32)
    private var edPublic = [UInt8](repeating: 0, count: 32)
    private var edSecret = [UInt8](repeating: 0, count: 64)
    private var signature = [UInt8](repeating: 0, count: 64)
    private let message = [UInt8](repeating: 7, count: 32)

    private init() {
        _ = sodium_init()
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        buffer.initializeMemory(as: UInt8.self, repeating: 1, count: capacity)
        cipher = EVP_CIPHER_fetch(nil, "AES-256-CBC", nil)!
        aes = EVP_CIPHER_CTX_new()!
        bnContext = BN_CTX_new()!
        p = BN_new()!; u = BN_new()!; r = BN_new()!
        var prime = [UInt8](repeating: 0xFF, count: 32)
        prime[0] = 0x7F; prime[31] = 0xED
        BN_bin2bn(prime, 32, p)
        scalar[0] &= 248; scalar[31] &= 127; scalar[31] |= 64
        crypto_scalarmult_curve25519_base(&point, scalar)
        crypto_sign_keypair(&edPublic, &edSecret)
        // Real ciphertext at `input` for the decrypting floor: 65,536 + 16 bytes of AES-CBC.
        var written: Int32 = 0, tail: Int32 = 0
        EVP_CipherInit_ex2(aes, cipher, buffer.assumingMemoryBound(to: UInt8.self), (buffer + 32).assumingMemoryBound(to: UInt8.self), 1, nil)
        EVP_CipherUpdate(aes, (buffer + 4096 + 65600).assumingMemoryBound(to: UInt8.self), &written, (buffer + 4096).assumingMemoryBound(to: UInt8.self), 65536)
        EVP_CipherFinal_ex(aes, (buffer + 4096 + 65600 + Int(written)).assumingMemoryBound(to: UInt8.self), &tail)
        (buffer + 140_000).copyMemory(from: buffer + 4096 + 65600, byteCount: Int(written + tail))
        crypto_sign_detached(&signature, nil, message, 32, edSecret)
    }

    func hmac(_ key: UnsafeRawPointer, _ keyCount: Int, _ data: UnsafeRawPointer, _ count: Int, into out: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(byteCount: 96, alignment: 16) { scratch in
            let pad = scratch.baseAddress!.assumingMemoryBound(to: UInt8.self)
            pad.initialize(repeating: 0, count: 64)
            pad.update(from: key.assumingMemoryBound(to: UInt8.self), count: min(keyCount, 64))
            for i in 0..<64 { pad[i] ^= 0x36 }
            SHA256_Init(sha); SHA256_Update(sha, pad, 64); SHA256_Update(sha, data, count); SHA256_Final(pad + 64, sha)
            for i in 0..<64 { pad[i] ^= 0x36 ^ 0x5C }
            SHA256_Init(sha + 1); SHA256_Update(sha + 1, pad, 64); SHA256_Update(sha + 1, pad + 64, 32)
            SHA256_Final(out.assumingMemoryBound(to: UInt8.self), sha + 1)
        }
    }

    func hkdf(_ length: Int) {
        let prk = buffer + 1024, out = buffer + 1100
        hmac(buffer, 32, buffer + 64, 32, into: prk)
        var produced = 0
        while produced < length {
            hmac(prk, 32, buffer + 200, 32 + 18 + 1, into: out + produced)
            produced += 32
        }
    }

    /// One steady-state message of `payload` bytes: AES-CBC encryption, or decryption (which
    /// AES-NI pipelines, so it is cheaper for long messages).
    func message(payload: Int, decrypt: Bool = false) {
        let key = buffer, iv = buffer + 32, output = buffer + 4096 + 65600
        // Decrypting starts from real ciphertext (the CBC chain of its first blocks is valid,
        // and only the final block's padding is checked), so the padding check passes.
        let input = decrypt ? buffer + 140_000 + 65536 - (payload / 16) * 16 : buffer + 4096
        hmac(key, 32, buffer + 300, 1, into: buffer + 400)   // message key seed
        hkdf(80)                                              // cipher key, MAC key, IV
        hmac(key, 32, buffer + 300, 1, into: buffer + 440)   // next chain key
        var written: Int32 = 0, tail: Int32 = 0
        let blocks = (payload / 16 + 1) * 16
        EVP_CipherInit_ex2(aes, cipher, key.assumingMemoryBound(to: UInt8.self), iv.assumingMemoryBound(to: UInt8.self), decrypt ? 0 : 1, nil)
        EVP_CipherUpdate(aes, output.assumingMemoryBound(to: UInt8.self), &written, input.assumingMemoryBound(to: UInt8.self), Int32(decrypt ? blocks : payload))
        EVP_CipherFinal_ex(aes, output.assumingMemoryBound(to: UInt8.self) + Int(written), &tail)
        hmac(key, 32, output, 66 + 44 + blocks, into: buffer + 480)  // MAC over identities + message
    }

    /// One hush-1 message: HMAC, HKDF to 56 (extract + 2 expands), HMAC, XChaCha20-Poly1305.
    func hushMessage(payload: Int) {
        hmac(buffer, 32, buffer + 300, 1, into: buffer + 400)
        hkdf(56)
        hmac(buffer, 32, buffer + 300, 1, into: buffer + 440)
        aead(payload)
    }

    /// XChaCha20-Poly1305 of `count` bytes with ~100 bytes of associated data.
    func aead(_ count: Int) {
        let out = (buffer + 4096 + 65600).assumingMemoryBound(to: UInt8.self)
        _ = crypto_aead_xchacha20poly1305_ietf_encrypt(out, nil, (buffer + 4096).assumingMemoryBound(to: UInt8.self), UInt64(count),
                                                       (buffer + 200).assumingMemoryBound(to: UInt8.self), 100, nil,
                                                       (buffer + 32).assumingMemoryBound(to: UInt8.self), buffer.assumingMemoryBound(to: UInt8.self))
    }

    func groupMessage() {
        let key = buffer, iv = buffer + 32, input = buffer + 4096, output = buffer + 4096 + 65600
        hmac(key, 32, buffer + 300, 1, into: buffer + 400)
        hkdf(48)
        hmac(key, 32, buffer + 300, 1, into: buffer + 440)
        var written: Int32 = 0, tail: Int32 = 0
        EVP_CipherInit_ex2(aes, cipher, key.assumingMemoryBound(to: UInt8.self), iv.assumingMemoryBound(to: UInt8.self), 1, nil)
        EVP_CipherUpdate(aes, output.assumingMemoryBound(to: UInt8.self), &written, input.assumingMemoryBound(to: UInt8.self), 100)
        EVP_CipherFinal_ex(aes, output.assumingMemoryBound(to: UInt8.self) + Int(written), &tail)
    }

    func dh() {
        _ = crypto_scalarmult_curve25519(buffer + 512, scalar, point)
    }

    func keygen() {
        _ = crypto_scalarmult_curve25519_base(buffer + 544, scalar)
    }

    func x3dh() {
        for _ in 0..<4 { dh() }
        hkdf(64)
    }

    /// A DH ratchet step on receipt: the new ratchet key's subgroup check, two DHs, a new key
    /// pair, two root-key HKDFs.
    func ratchetStep() {
        subgroupChecks(1)
        dh(); keygen(); dh()
        hkdf(64); hkdf(64)
    }

    /// `count` prime-order-subgroup checks of a peer's X25519 key: the Montgomery→Edwards map's
    /// field inversion (libcrypto, its faster Euclidean path) and libsodium's point validation
    /// (canonical, on the curve, not of small order, `[ℓ]P = O`).
    func subgroupChecks(_ count: Int) {
        for _ in 0..<count {
            BN_bin2bn(point, 32, u)
            BN_set_flags(u, BN_FLG_CONSTTIME)
            BN_mod_inverse(r, u, p, bnContext)
            precondition(crypto_core_ed25519_is_valid_point(edPublic) == 1)
        }
    }

    /// XEdDSA verification: the Montgomery→Edwards conversion (one field inversion) and an
    /// Ed25519 verification.
    func verify() {
        BN_bin2bn(point, 32, u)
        BN_set_flags(u, BN_FLG_CONSTTIME)  // libcrypto's faster (Euclidean) inversion, as Hush's FieldInversion
        BN_mod_inverse(r, u, p, bnContext)
        precondition(crypto_sign_verify_detached(signature, message, 32, edPublic) == 0)
    }

    /// XEdDSA signing with the key's Edwards form `A = k·B` known (a long-term signing key
    /// computes it once, as Hush's IdentityKeyPair and sender keys do): one base-point
    /// multiplication (`R`), two SHA-512s and the scalar arithmetic.
    func sign() {
        let out = (buffer + 600).assumingMemoryBound(to: UInt8.self)
        let wide = (buffer + 700).assumingMemoryBound(to: UInt8.self)
        crypto_hash_sha512(wide, message, 32)
        crypto_core_ed25519_scalar_reduce(out + 32, wide)
        _ = crypto_scalarmult_ed25519_base_noclamp(out, out + 32)
        crypto_hash_sha512(wide, message, 32)
        crypto_core_ed25519_scalar_reduce(out + 32, wide)
        crypto_core_ed25519_scalar_mul(out + 64, out + 32, scalar)
        crypto_core_ed25519_scalar_add(out + 96, out + 64, out + 32)
    }

    /// Record (de)serialization has no cryptography: its floor is copying the bytes.
    func copy(_ count: Int) {
        (buffer + 128 * 1024).copyMemory(from: buffer, byteCount: min(count, 128 * 1024))
        if count > 128 * 1024 { (buffer + 128 * 1024).copyMemory(from: buffer, byteCount: count - 128 * 1024) }
    }
}
