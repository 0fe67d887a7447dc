import CCrypto
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// OpenSSL 3 algorithms, fetched once per process.
///
/// OpenSSL 3's convenience calls (`HMAC()`, `EVP_Q_mac`, `EVP_KDF`, `EVP_sha256()` inside a
/// context) look the algorithm up in the provider on every call, which costs 1–2.5 µs on this
/// project's reference machine. HushCrypto fetches each algorithm once, here, and every call
/// reuses it. A fetched `EVP_MD`/`EVP_CIPHER`/`EVP_MAC` is immutable and may be shared between
/// threads; contexts are not, and are per call (or per owning object).
enum OpenSSL {
    nonisolated(unsafe) static let sha256: OpaquePointer = fetchDigest("SHA2-256")
    nonisolated(unsafe) static let sha512: OpaquePointer = fetchDigest("SHA2-512")
    nonisolated(unsafe) static let aes128CBC: OpaquePointer = fetchCipher("AES-128-CBC")
    nonisolated(unsafe) static let aes192CBC: OpaquePointer = fetchCipher("AES-192-CBC")
    nonisolated(unsafe) static let aes256CBC: OpaquePointer = fetchCipher("AES-256-CBC")
    nonisolated(unsafe) static let aes128CTR: OpaquePointer = fetchCipher("AES-128-CTR")
    nonisolated(unsafe) static let aes192CTR: OpaquePointer = fetchCipher("AES-192-CTR")
    nonisolated(unsafe) static let aes256CTR: OpaquePointer = fetchCipher("AES-256-CTR")

    /// An HMAC context with SHA-256 already selected, used only by `HMACSHA256.referenceEVP`
    /// (the reference the differential tests compare HushCrypto's allocation-free HMAC with).
    /// It is duplicated per use, never used directly; fetched lazily, so production code that
    /// never calls the reference never pays for it.
    nonisolated(unsafe) static let hmacSHA256Template: OpaquePointer = {
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil), let ctx = EVP_MAC_CTX_new(mac) else {
            fatalError("OpenSSL: HMAC is unavailable")
        }
        EVP_MAC_free(mac)  // the context keeps its own reference
        let ok = "digest".withCString { key in
            "SHA2-256".withCString { value in
                var params = [
                    hush_ossl_param_utf8(key, UnsafeMutablePointer(mutating: value)),
                    hush_ossl_param_end(),
                ]
                return EVP_MAC_CTX_set_params(ctx, &params)
            }
        }
        precondition(ok == 1, "OpenSSL: cannot select SHA2-256 for HMAC")
        return ctx
    }()

    private static func fetchDigest(_ name: String) -> OpaquePointer {
        guard let md = EVP_MD_fetch(nil, name, nil) else { fatalError("OpenSSL: digest \(name) is unavailable") }
        return md
    }

    private static func fetchCipher(_ name: String) -> OpaquePointer {
        guard let cipher = EVP_CIPHER_fetch(nil, name, nil) else { fatalError("OpenSSL: cipher \(name) is unavailable") }
        return cipher
    }

    /// This thread's digest context, made once per thread and freed when the thread exits;
    /// `EVP_DigestInit_ex2` resets it for each use. Safe because every use is synchronous: no
    /// caller suspends or re-enters while it holds the context.
    static func threadDigestContext() throws(CryptoError) -> OpaquePointer {
        if let existing = pthread_getspecific(digestContextKey) { return OpaquePointer(existing) }
        guard let ctx = EVP_MD_CTX_new() else { throw .libraryFailure(function: "EVP_MD_CTX_new") }
        pthread_setspecific(digestContextKey, UnsafeRawPointer(ctx))
        return ctx
    }

    /// This thread's cipher context, made once per thread and freed (which cleanses it) when
    /// the thread exits. Callers initialise it for each use and reset it afterwards (``AES``),
    /// which frees the key schedule with `OPENSSL_clear_free`: no key material stays behind.
    static func threadCipherContext() throws(CryptoError) -> OpaquePointer {
        if let existing = pthread_getspecific(cipherContextKey) { return OpaquePointer(existing) }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw .libraryFailure(function: "EVP_CIPHER_CTX_new") }
        pthread_setspecific(cipherContextKey, UnsafeRawPointer(ctx))
        return ctx
    }

    /// This thread's AES-256-CBC context (for the protocol's per-message AES), set to the
    /// cipher once: later uses re-key it with a NULL cipher, which skips OpenSSL's fetch and
    /// allocation. `AES` overwrites its key schedule with a zero key after each use.
    static func threadCBC256Context() throws(CryptoError) -> OpaquePointer {
        if let existing = pthread_getspecific(cbc256ContextKey) { return OpaquePointer(existing) }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw .libraryFailure(function: "EVP_CIPHER_CTX_new") }
        guard EVP_CipherInit_ex2(ctx, aes256CBC, nil, nil, 1, nil) == 1 else {
            EVP_CIPHER_CTX_free(ctx)
            throw .libraryFailure(function: "EVP_CipherInit_ex2")
        }
        pthread_setspecific(cbc256ContextKey, UnsafeRawPointer(ctx))
        return ctx
    }

    private static let cbc256ContextKey: pthread_key_t = makeKey { EVP_CIPHER_CTX_free(OpaquePointer($0)) }

    private static let cipherContextKey: pthread_key_t = makeKey { EVP_CIPHER_CTX_free(OpaquePointer($0)) }

    private static let digestContextKey: pthread_key_t = makeKey { EVP_MD_CTX_free(OpaquePointer($0)) }

    private static func makeKey(_ destructor: @convention(c) (UnsafeMutableRawPointer?) -> Void) -> pthread_key_t {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, destructor) == 0, "pthread_key_create failed")
        return key
    }
}
