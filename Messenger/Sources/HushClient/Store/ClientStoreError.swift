/// Why an encrypted client store could not be opened or read (Docs/client.md §Store).
///
/// Cases carry table names, versions and SQLite result codes, never keys, passphrases or
/// contents: an error value may be logged.
public enum ClientStoreError: Error, Equatable, Hashable, Sendable {
    /// The passphrase or key file does not unwrap the database key.
    case wrongPassphrase
    /// A sealed value (or the wrapped key's digest) failed to authenticate or decode, or SQLite
    /// found the file malformed: the file was changed outside the store. `table` names where.
    case corrupted(table: String)
    /// The file is not a Hush client store (not SQLite, or another application's database).
    case notAHushStore
    /// The file was written by a newer version of the store than this one supports.
    case unsupportedSchema
    /// `create` found a store already there.
    case alreadyExists
    /// `open` found no store at the path.
    case notFound
    /// A key file must hold exactly 32 bytes.
    case invalidKeyFile(byteCount: Int)
    /// Argon2id could not run with the stored or requested limits (memory), or they are out of range.
    case keyDerivationFailed
    /// SQLite failed (disk full, I/O error, locked by another process, …).
    case storage(code: Int32, message: String)
}
