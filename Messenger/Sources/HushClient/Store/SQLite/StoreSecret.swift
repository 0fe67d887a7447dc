import Hush

/// What unlocks an encrypted client store: a passphrase (through Argon2id) or a 32-byte key
/// file. The secret wraps the random database key; it never touches a column itself.
public struct ClientStoreSecret: Sendable, CustomStringConvertible {
    enum Kind: Sendable {
        case passphrase(SecureBytes, Argon2id.Limits)
        case keyFile(SecureBytes)
    }
    let kind: Kind

    /// A passphrase (its UTF-8 bytes, in wiped storage) and the Argon2id limits used when a store
    /// is created or rekeyed with it. Opening uses the limits stored in the file.
    public static func passphrase(_ bytes: SecureBytes, limits: Argon2id.Limits = .moderate) -> ClientStoreSecret {
        ClientStoreSecret(kind: .passphrase(bytes, limits))
    }

    /// A passphrase from a string. The string's own storage cannot be wiped: prefer
    /// ``passphrase(_:limits:)-(SecureBytes,_)`` when the bytes come from a terminal.
    public static func passphrase(_ text: String, limits: Argon2id.Limits = .moderate) -> ClientStoreSecret {
        .passphrase(SecureBytes(copying: Array(text.utf8)), limits: limits)
    }

    /// The 32 bytes of a key file (tests, or a key kept by the platform's keychain).
    public static func keyFile(_ bytes: SecureBytes) -> ClientStoreSecret {
        ClientStoreSecret(kind: .keyFile(bytes))
    }

    /// Never the secret.
    public var description: String {
        switch kind {
        case .passphrase: "ClientStoreSecret(passphrase, redacted)"
        case .keyFile: "ClientStoreSecret(key file, redacted)"
        }
    }

    var method: String {
        switch kind {
        case .passphrase: KeyWrap.argon2idMethod
        case .keyFile: KeyWrap.keyFileMethod
        }
    }
}

/// The `store_keys` row: how the database key is wrapped (Docs/client.md §Store, key hierarchy).
///
/// `wrapped_key = XChaCha20-Poly1305(wrapping key, nonce, database key, AD)` with
/// `AD = "hush-store-v1" || lp("store_keys") || lp("wrapped_key") || lp(method) || lp(salt) ||
/// u64be(operations) || u64be(memory_bytes)`, and `digest = SHA-256(AD || wrapped_key)` so that a
/// damaged row is told apart from a wrong passphrase.
struct KeyWrap {
    static let argon2idMethod = "argon2id"
    static let keyFileMethod = "key-file"
    /// The most a store may ask of Argon2id (libsodium's `sensitive` memory, 4× its passes):
    /// the limits are in the clear, so a file edited to demand more is refused, not obeyed.
    static let maximumOperations = 16
    static let maximumMemoryBytes = 1 << 30

    var method: String
    var salt: [UInt8]
    var operations: Int
    var memoryBytes: Int
    var wrappedKey: [UInt8]
    var digest: [UInt8]

    var associatedData: [UInt8] {
        var ad = ColumnSeal.prefix
        ColumnSeal.appendLengthPrefixed(&ad, Array("store_keys".utf8))
        ColumnSeal.appendLengthPrefixed(&ad, Array("wrapped_key".utf8))
        ColumnSeal.appendLengthPrefixed(&ad, Array(method.utf8))
        ColumnSeal.appendLengthPrefixed(&ad, salt)
        ColumnSeal.appendUInt64(&ad, UInt64(operations))
        ColumnSeal.appendUInt64(&ad, UInt64(memoryBytes))
        return ad
    }

    /// Wraps `databaseKey` under `secret`, drawing the salt and nonce from `random`.
    static func wrap(_ databaseKey: SymmetricKey, under secret: ClientStoreSecret, random: some RandomSource) throws(ClientStoreError) -> KeyWrap {
        var wrap: KeyWrap
        switch secret.kind {
        case .passphrase(_, let limits):
            guard limits.operations <= maximumOperations, limits.memoryBytes <= maximumMemoryBytes else { throw .keyDerivationFailed }
            let salt: [UInt8]
            do { salt = try random.secureBytes(count: Argon2id.saltByteCount).bytes } catch { throw .keyDerivationFailed }
            wrap = KeyWrap(method: argon2idMethod, salt: salt, operations: limits.operations, memoryBytes: limits.memoryBytes, wrappedKey: [], digest: [])
        case .keyFile:
            wrap = KeyWrap(method: keyFileMethod, salt: [], operations: 0, memoryBytes: 0, wrappedKey: [], digest: [])
        }
        let wrapping = try wrap.wrappingKey(secret)
        let ad = wrap.associatedData
        do {
            wrap.wrappedKey = try XChaChaPoly.seal(databaseKey, using: wrapping, authenticating: ad, random: random).combined
        } catch { throw .keyDerivationFailed }
        wrap.digest = SHA256.hash(ad + wrap.wrappedKey)
        return wrap
    }

    /// The wrapping key `secret` gives for this row's method and parameters.
    func wrappingKey(_ secret: ClientStoreSecret) throws(ClientStoreError) -> SymmetricKey {
        switch secret.kind {
        case .passphrase(let passphrase, _):
            guard method == Self.argon2idMethod else { throw .wrongPassphrase }
            guard operations <= Self.maximumOperations, memoryBytes <= Self.maximumMemoryBytes else {
                throw .corrupted(table: "store_keys")
            }
            do {
                return SymmetricKey(try Argon2id.deriveKey(
                    fromPassword: passphrase, salt: salt, outputByteCount: XChaChaPoly.keyByteCount,
                    limits: Argon2id.Limits(operations: operations, memoryBytes: memoryBytes)))
            } catch { throw .keyDerivationFailed }
        case .keyFile(let bytes):
            guard bytes.count == XChaChaPoly.keyByteCount else { throw .invalidKeyFile(byteCount: bytes.count) }
            guard method == Self.keyFileMethod else { throw .wrongPassphrase }
            return SymmetricKey(bytes)
        }
    }

    /// The database key, or `.corrupted` (the row changed) or `.wrongPassphrase`.
    func unwrap(with secret: ClientStoreSecret) throws(ClientStoreError) -> SymmetricKey {
        let ad = associatedData
        guard ConstantTime.equals(SHA256.hash(ad + wrappedKey), digest) else { throw .corrupted(table: "store_keys") }
        let wrapping = try wrappingKey(secret)
        let n = XChaChaPoly.nonceByteCount
        guard wrappedKey.count == n + XChaChaPoly.keyByteCount + XChaChaPoly.tagByteCount else { throw .corrupted(table: "store_keys") }
        do {
            let key = try XChaChaPoly.decrypt(wrappedKey[n...], key: wrapping, nonce: wrappedKey[..<n], associatedData: ad)
            return SymmetricKey(SecureBytes(copying: key))
        } catch {
            throw .wrongPassphrase
        }
    }
}
