import GRDB

/// The encrypted store's schema, one migration per version (Docs/client.md §Store). Never edit
/// a registered migration: add the next one.
enum ClientStoreSchema {
    /// `PRAGMA application_id` of a Hush client store: "HshC".
    static let applicationID: Int32 = 0x4873_6843

    /// The tables the migrations create (and GRDB's own), for telling a half-created store from
    /// another application's database.
    static let knownTables: Set<String> = [
        "store_keys", "device", "identities", "prekeys", "signed_prekeys", "sessions", "sender_keys",
        "settings", "conversations", "messages", "outbox", "processed", "grdb_migrations", "sqlite_sequence",
        "kyber_prekeys",
    ]

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE store_keys (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    method TEXT NOT NULL,
                    salt BLOB NOT NULL,
                    operations INTEGER NOT NULL,
                    memory_bytes INTEGER NOT NULL,
                    wrapped_key BLOB NOT NULL,
                    digest BLOB NOT NULL
                );
                CREATE TABLE device (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    identity_key_pair BLOB NOT NULL,
                    registration_id BLOB NOT NULL
                );
                CREATE TABLE identities (
                    name TEXT NOT NULL,
                    device_id INTEGER NOT NULL,
                    identity_key BLOB NOT NULL,
                    PRIMARY KEY (name, device_id)
                ) WITHOUT ROWID;
                CREATE TABLE prekeys (
                    id INTEGER PRIMARY KEY,
                    record BLOB NOT NULL
                );
                CREATE TABLE signed_prekeys (
                    id INTEGER PRIMARY KEY,
                    record BLOB NOT NULL
                );
                CREATE TABLE sessions (
                    name TEXT NOT NULL,
                    device_id INTEGER NOT NULL,
                    record BLOB NOT NULL,
                    PRIMARY KEY (name, device_id)
                ) WITHOUT ROWID;
                CREATE TABLE sender_keys (
                    group_id TEXT NOT NULL,
                    sender_name TEXT NOT NULL,
                    sender_device INTEGER NOT NULL,
                    record BLOB NOT NULL,
                    PRIMARY KEY (group_id, sender_name, sender_device)
                ) WITHOUT ROWID;
                CREATE TABLE settings (
                    key TEXT PRIMARY KEY NOT NULL,
                    value BLOB NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE conversations (
                    account TEXT PRIMARY KEY NOT NULL,
                    last_sequence INTEGER NOT NULL,
                    unread INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX conversations_by_recency ON conversations (last_sequence);
                CREATE TABLE messages (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    sender_account TEXT NOT NULL,
                    sender_device INTEGER NOT NULL,
                    client_message_id INTEGER NOT NULL,
                    conversation TEXT NOT NULL,
                    direction INTEGER NOT NULL,
                    sent_at INTEGER NOT NULL,
                    server_time INTEGER NOT NULL,
                    state INTEGER NOT NULL,
                    body BLOB NOT NULL,
                    UNIQUE (sender_account, sender_device, client_message_id)
                );
                CREATE INDEX messages_by_conversation ON messages (conversation, sequence);
                CREATE INDEX messages_unread ON messages (conversation, sequence) WHERE direction = 0 AND state < 3;
                CREATE TABLE outbox (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    client_message_id INTEGER NOT NULL UNIQUE,
                    account TEXT NOT NULL,
                    devices BLOB NOT NULL,
                    payload BLOB NOT NULL,
                    message_account TEXT,
                    message_device INTEGER,
                    message_client_id INTEGER,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE processed (
                    server_id INTEGER PRIMARY KEY,
                    processed_at INTEGER NOT NULL
                );
                CREATE INDEX processed_by_time ON processed (processed_at);
                """)
        }
        // Kyber prekeys (PQXDH, Docs/client.md §Prekeys): `record` sealed, as
        // `KyberPreKeyRecordCoding` encodes it (the ML-KEM seed inside).
        m.registerMigration("v2") { db in
            try db.execute(sql: """
                CREATE TABLE kyber_prekeys (
                    id INTEGER PRIMARY KEY,
                    record BLOB NOT NULL
                );
                """)
        }
        // v3: the session message inside each outbox item's sealed envelope (sealed like the
        // payload, under the same row key, column "inner"), for re-sealing an envelope whose
        // sender certificate is about to expire (Docs/client.md §Sending). NULL for rows written before v3.
        m.registerMigration("v3") { db in
            try db.execute(sql: "ALTER TABLE outbox ADD COLUMN inner BLOB")
        }
        return m
    }
}
