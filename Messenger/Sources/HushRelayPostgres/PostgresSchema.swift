import Foundation

/// The relay's PostgreSQL schema, as numbered migrations (`Docs/architecture.md` §"PostgreSQL").
///
/// `hush_schema_version` records each applied version. Migrations run in one transaction under a
/// transaction-level advisory lock, so that several relay nodes starting at once apply each
/// version exactly once. Every mutating store operation is one PL/pgSQL function: one round trip,
/// all checks before the first change (so a rejected call changes nothing even inside a group
/// commit), and typed outcomes as status codes instead of exceptions.
enum PostgresSchema {
    /// Status codes returned by the functions.
    enum Status {
        static let ok: Int64 = 0
        static let duplicate: Int64 = 1
        static let unknownAccount: Int64 = 2
        static let unknownDevice: Int64 = 3
        static let queueFull: Int64 = 4
        static let tooManyPrekeys: Int64 = 5
        static let tooManyKyberPrekeys: Int64 = 7
        static let createdAccount: Int64 = 0
        static let addedDevice: Int64 = 1
        static let alreadyRegistered: Int64 = 6
        static let accountTaken: Int64 = 10
        static let deviceTaken: Int64 = 11
        static let tooManyDevices: Int64 = 12
        static let invalidLinkToken: Int64 = 13
    }

    /// The advisory lock key that serialises migrations across nodes.
    static let migrationLock: Int64 = 0x4855_5348_5245_4C59 // "HUSHRELY"

    /// Version → SQL. Never edit an applied version: add a new one.
    static let migrations: [(Int64, String)] = [(1, v1), (2, v2), (3, v3), (4, v4), (5, v5), (6, v6), (7, v7)]

    /// `sql` split into statements at `;` outside `$$` bodies and `--` comments (the extended
    /// query protocol takes one statement at a time).
    static func statements(_ sql: String) -> [String] {
        var out: [String] = []
        var current = ""
        var inBody = false
        var inComment = false
        var previous: Character = " "
        for ch in sql {
            if inComment {
                if ch == "\n" { inComment = false }
                current.append(ch)
                previous = ch
                continue
            }
            if !inBody, ch == "-", previous == "-" { inComment = true }
            if ch == "$", previous == "$" { inBody.toggle() }
            if ch == ";", !inBody {
                let statement = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !statement.isEmpty { out.append(statement) }
                current = ""
                previous = " "
                continue
            }
            current.append(ch)
            previous = ch
        }
        let rest = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !rest.split(separator: "\n").allSatisfy({ $0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }) { out.append(rest) }
        return out
    }

    static let v1 = """
        CREATE TABLE accounts (
            name text PRIMARY KEY,
            identity_key bytea NOT NULL
        );
        CREATE TABLE devices (
            id bigserial PRIMARY KEY,
            account text NOT NULL REFERENCES accounts(name),
            device_id bigint NOT NULL,
            static_key bytea NOT NULL UNIQUE,
            registration_id bigint NOT NULL DEFAULT 0,
            queue_depth bigint NOT NULL DEFAULT 0,
            session bigint NOT NULL DEFAULT 0,
            signed_prekey_id bigint,
            signed_prekey bytea,
            signed_prekey_signature bytea,
            UNIQUE (account, device_id)
        );
        CREATE TABLE prekeys (
            device_ref bigint NOT NULL REFERENCES devices(id),
            prekey_id bigint NOT NULL,
            public_key bytea NOT NULL,
            PRIMARY KEY (device_ref, prekey_id)
        );
        CREATE TABLE messages (
            id bigserial PRIMARY KEY,
            device_ref bigint NOT NULL REFERENCES devices(id),
            sender_account text NOT NULL,
            sender_device bigint NOT NULL,
            server_time bigint NOT NULL,
            expires_at bigint NOT NULL,
            payload bytea NOT NULL
        );
        CREATE INDEX messages_by_device ON messages (device_ref, id);
        CREATE INDEX messages_by_expiry ON messages (expires_at);
        CREATE TABLE dedupe (
            sender_account text NOT NULL,
            sender_device bigint NOT NULL,
            client_message_id bigint NOT NULL,
            server_time bigint NOT NULL,
            expires_at bigint NOT NULL,
            server_ids bigint[] NOT NULL,
            PRIMARY KEY (sender_account, sender_device, client_message_id)
        );
        CREATE INDEX dedupe_by_expiry ON dedupe (expires_at);

        -- register: 0 created account, 1 added device, 6 already registered,
        -- 10 account taken, 11 device taken, 12 too many devices.
        CREATE FUNCTION hush_register(p_account text, p_identity bytea, p_device bigint, p_static bytea, p_max bigint)
        RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
            v_identity bytea;
            v_key bytea;
            v_created boolean := false;
        BEGIN
            INSERT INTO accounts (name, identity_key) VALUES (p_account, p_identity) ON CONFLICT (name) DO NOTHING;
            IF FOUND THEN v_created := true; END IF;
            -- The account row lock serialises registrations of one account (device count).
            SELECT identity_key INTO v_identity FROM accounts WHERE name = p_account FOR UPDATE;
            IF v_identity <> p_identity THEN RETURN 10; END IF;
            SELECT static_key INTO v_key FROM devices WHERE account = p_account AND device_id = p_device;
            IF FOUND THEN
                IF v_key = p_static THEN RETURN 6; END IF;
                RETURN 11;
            END IF;
            IF EXISTS (SELECT 1 FROM devices WHERE static_key = p_static) THEN
                IF v_created THEN DELETE FROM accounts WHERE name = p_account; END IF;
                RETURN 11;
            END IF;
            IF (SELECT count(*) FROM devices WHERE account = p_account) >= p_max THEN RETURN 12; END IF;
            BEGIN
                INSERT INTO devices (account, device_id, static_key) VALUES (p_account, p_device, p_static);
            EXCEPTION WHEN unique_violation THEN
                -- Another node registered this static key between the check and the insert.
                IF v_created THEN DELETE FROM accounts WHERE name = p_account; END IF;
                RETURN 11;
            END;
            IF v_created THEN RETURN 0; END IF;
            RETURN 1;
        END $$;

        -- enqueue: (0, server_time, ids) stored; (1, server_time, ids) duplicate;
        -- (2, 0, null) unknown account; (3, device, null) unknown device; (4, device, null) queue full.
        -- Device rows are locked before the message ids are drawn, so one device's ids increase in
        -- commit order across all nodes. With p_channel, one NOTIFY per recipient device is sent
        -- at commit (and only if it commits): "origin account device".
        CREATE FUNCTION hush_enqueue(p_sender text, p_sender_device bigint, p_cmid bigint, p_recipient text,
                                     p_devices bigint[], p_payload bytea, p_now bigint, p_expires bigint,
                                     p_cap bigint, p_origin text, p_channel text)
        RETURNS TABLE (r_status bigint, r_detail bigint, r_ids bigint[]) LANGUAGE plpgsql AS $$
        DECLARE
            v_time bigint;
            v_ids bigint[];
            v_refs bigint[] := '{}';
            v_ref bigint;
            v_depth bigint;
            v_device bigint;
            v_id bigint;
        BEGIN
            SELECT server_time, server_ids INTO v_time, v_ids FROM dedupe
                WHERE sender_account = p_sender AND sender_device = p_sender_device AND client_message_id = p_cmid;
            IF FOUND THEN RETURN QUERY SELECT 1::bigint, v_time, v_ids; RETURN; END IF;
            IF NOT EXISTS (SELECT 1 FROM accounts WHERE name = p_recipient) THEN
                RETURN QUERY SELECT 2::bigint, 0::bigint, NULL::bigint[]; RETURN;
            END IF;
            FOREACH v_device IN ARRAY p_devices LOOP
                SELECT id, queue_depth INTO v_ref, v_depth FROM devices
                    WHERE account = p_recipient AND device_id = v_device FOR UPDATE;
                IF NOT FOUND THEN RETURN QUERY SELECT 3::bigint, v_device, NULL::bigint[]; RETURN; END IF;
                IF v_depth >= p_cap THEN RETURN QUERY SELECT 4::bigint, v_device, NULL::bigint[]; RETURN; END IF;
                v_refs := v_refs || v_ref;
            END LOOP;
            v_ids := '{}';
            FOR i IN 1 .. coalesce(array_length(v_refs, 1), 0) LOOP
                INSERT INTO messages (device_ref, sender_account, sender_device, server_time, expires_at, payload)
                    VALUES (v_refs[i], p_sender, p_sender_device, p_now, p_expires, p_payload) RETURNING id INTO v_id;
                UPDATE devices SET queue_depth = queue_depth + 1 WHERE id = v_refs[i];
                v_ids := v_ids || v_id;
                IF p_channel IS NOT NULL THEN
                    PERFORM pg_notify(p_channel, p_origin || ' ' || p_recipient || ' ' || p_devices[i]::text);
                END IF;
            END LOOP;
            INSERT INTO dedupe (sender_account, sender_device, client_message_id, server_time, expires_at, server_ids)
                VALUES (p_sender, p_sender_device, p_cmid, p_now, p_expires, v_ids);
            RETURN QUERY SELECT 0::bigint, p_now, v_ids;
        END $$;

        -- store prekeys: (0, count) stored; (2, 0) unknown account; (3, 0) unknown device;
        -- (5, 0) too many (nothing changed).
        CREATE FUNCTION hush_store_prekeys(p_account text, p_device bigint, p_registration bigint,
                                           p_signed_id bigint, p_signed_key bytea, p_signed_sig bytea,
                                           p_ids bigint[], p_keys bytea[], p_max bigint)
        RETURNS TABLE (r_status bigint, r_count bigint) LANGUAGE plpgsql AS $$
        DECLARE
            v_ref bigint;
            v_count bigint;
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM accounts WHERE name = p_account) THEN RETURN QUERY SELECT 2::bigint, 0::bigint; RETURN; END IF;
            SELECT id INTO v_ref FROM devices WHERE account = p_account AND device_id = p_device FOR UPDATE;
            IF NOT FOUND THEN RETURN QUERY SELECT 3::bigint, 0::bigint; RETURN; END IF;
            SELECT count(*) INTO v_count FROM (
                SELECT prekey_id FROM prekeys WHERE device_ref = v_ref UNION SELECT unnest(p_ids)) u;
            IF v_count > p_max THEN RETURN QUERY SELECT 5::bigint, 0::bigint; RETURN; END IF;
            UPDATE devices SET registration_id = p_registration WHERE id = v_ref;
            IF p_signed_id IS NOT NULL THEN
                UPDATE devices SET signed_prekey_id = p_signed_id, signed_prekey = p_signed_key,
                                   signed_prekey_signature = p_signed_sig WHERE id = v_ref;
            END IF;
            FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
                INSERT INTO prekeys (device_ref, prekey_id, public_key) VALUES (v_ref, p_ids[i], p_keys[i])
                    ON CONFLICT (device_ref, prekey_id) DO UPDATE SET public_key = EXCLUDED.public_key;
            END LOOP;
            RETURN QUERY SELECT 0::bigint, v_count;
        END $$;

        -- claim bundles: one row per device (status 0), or a single row with status 2 (unknown
        -- account) or 3 (unknown device, in r_device) and nothing consumed. The lowest free
        -- one-time prekey is deleted and returned; SKIP LOCKED lets concurrent claims on other
        -- nodes take the next key instead of waiting and then finding none.
        CREATE FUNCTION hush_claim(p_account text, p_devices bigint[])
        RETURNS TABLE (r_status bigint, r_device bigint, r_registration bigint, r_signed_id bigint, r_signed_key bytea,
                       r_signed_sig bytea, r_ot_id bigint, r_ot_key bytea, r_remaining bigint)
        LANGUAGE plpgsql AS $$
        DECLARE
            v_device bigint;
            v_devices bigint[];
            d record;
            v_ot_id bigint;
            v_ot_key bytea;
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM accounts WHERE name = p_account) THEN
                RETURN QUERY SELECT 2::bigint, 0::bigint, 0::bigint, NULL::bigint, NULL::bytea, NULL::bytea, NULL::bigint, NULL::bytea, 0::bigint;
                RETURN;
            END IF;
            IF p_devices IS NULL THEN
                SELECT coalesce(array_agg(device_id ORDER BY device_id), '{}') INTO v_devices FROM devices WHERE account = p_account;
            ELSE
                FOREACH v_device IN ARRAY p_devices LOOP
                    IF NOT EXISTS (SELECT 1 FROM devices WHERE account = p_account AND device_id = v_device) THEN
                        RETURN QUERY SELECT 3::bigint, v_device, 0::bigint, NULL::bigint, NULL::bytea, NULL::bytea, NULL::bigint, NULL::bytea, 0::bigint;
                        RETURN;
                    END IF;
                END LOOP;
                v_devices := p_devices;
            END IF;
            FOREACH v_device IN ARRAY v_devices LOOP
                SELECT * INTO d FROM devices WHERE account = p_account AND device_id = v_device;
                v_ot_id := NULL; v_ot_key := NULL;
                DELETE FROM prekeys p WHERE (p.device_ref, p.prekey_id) = (
                    SELECT q.device_ref, q.prekey_id FROM prekeys q WHERE q.device_ref = d.id
                    ORDER BY q.prekey_id LIMIT 1 FOR UPDATE SKIP LOCKED)
                    RETURNING p.prekey_id, p.public_key INTO v_ot_id, v_ot_key;
                RETURN QUERY SELECT 0::bigint, v_device, d.registration_id, d.signed_prekey_id, d.signed_prekey,
                    d.signed_prekey_signature, v_ot_id, v_ot_key, (SELECT count(*) FROM prekeys WHERE device_ref = d.id);
            END LOOP;
        END $$;

        -- acknowledge: (0, deleted) or (3, 0) unknown device.
        CREATE FUNCTION hush_acknowledge(p_account text, p_device bigint, p_ids bigint[])
        RETURNS TABLE (r_status bigint, r_deleted bigint) LANGUAGE plpgsql AS $$
        DECLARE
            v_ref bigint;
            v_deleted bigint;
        BEGIN
            SELECT id INTO v_ref FROM devices WHERE account = p_account AND device_id = p_device;
            IF NOT FOUND THEN RETURN QUERY SELECT 3::bigint, 0::bigint; RETURN; END IF;
            WITH gone AS (DELETE FROM messages WHERE device_ref = v_ref AND id = ANY(p_ids) RETURNING 1)
                SELECT count(*) INTO v_deleted FROM gone;
            IF v_deleted > 0 THEN UPDATE devices SET queue_depth = queue_depth - v_deleted WHERE id = v_ref; END IF;
            RETURN QUERY SELECT 0::bigint, v_deleted;
        END $$;

        -- purge: messages deleted; the depth counters drop by exactly the rows deleted.
        CREATE FUNCTION hush_purge(p_now bigint)
        RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
            v_deleted bigint;
        BEGIN
            WITH gone AS (DELETE FROM messages WHERE expires_at <= p_now RETURNING device_ref),
                 per AS (SELECT device_ref, count(*) AS n FROM gone GROUP BY device_ref),
                 upd AS (UPDATE devices SET queue_depth = queue_depth - per.n FROM per WHERE devices.id = per.device_ref RETURNING per.n)
                SELECT coalesce(sum(n), 0) INTO v_deleted FROM upd;
            DELETE FROM dedupe WHERE expires_at <= p_now;
            RETURN v_deleted;
        END $$;

        -- announce: a device logged in on node p_origin; returns its new session number and tells
        -- the other nodes ("origin session account device") so that they close older connections.
        CREATE FUNCTION hush_announce(p_account text, p_device bigint, p_origin text, p_channel text)
        RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
            v_session bigint;
        BEGIN
            UPDATE devices SET session = session + 1 WHERE account = p_account AND device_id = p_device
                RETURNING session INTO v_session;
            IF NOT FOUND THEN RETURN 0; END IF;
            PERFORM pg_notify(p_channel, p_origin || ' ' || v_session::text || ' ' || p_account || ' ' || p_device::text);
            RETURN v_session;
        END $$;
        """

    /// Kyber prekeys (`Docs/spec/relay.md` §8.3): the last-resort one on the device row, one-time
    /// ones in their own table; upload and claim functions that handle both kinds in one call.
    static let v2 = """
        ALTER TABLE devices ADD COLUMN kyber_last_resort_id bigint;
        ALTER TABLE devices ADD COLUMN kyber_last_resort bytea;
        ALTER TABLE devices ADD COLUMN kyber_last_resort_signature bytea;
        CREATE TABLE kyber_prekeys (
            device_ref bigint NOT NULL REFERENCES devices(id),
            prekey_id bigint NOT NULL,
            public_key bytea NOT NULL,
            signature bytea NOT NULL,
            PRIMARY KEY (device_ref, prekey_id)
        );

        -- store prekeys of both kinds: (0, count, kyber count) stored; (2, 0, 0) unknown account;
        -- (3, 0, 0) unknown device; (5, 0, 0) too many X25519 ones, (7, 0, 0) too many Kyber ones
        -- (nothing changed).
        CREATE FUNCTION hush_store_prekeys_pq(p_account text, p_device bigint, p_registration bigint,
                                              p_signed_id bigint, p_signed_key bytea, p_signed_sig bytea,
                                              p_ids bigint[], p_keys bytea[], p_max bigint,
                                              p_lr_id bigint, p_lr_key bytea, p_lr_sig bytea,
                                              p_k_ids bigint[], p_k_keys bytea[], p_k_sigs bytea[], p_k_max bigint)
        RETURNS TABLE (r_status bigint, r_count bigint, r_kyber_count bigint) LANGUAGE plpgsql AS $$
        DECLARE
            v_ref bigint;
            v_count bigint;
            v_kyber bigint;
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM accounts WHERE name = p_account) THEN RETURN QUERY SELECT 2::bigint, 0::bigint, 0::bigint; RETURN; END IF;
            SELECT id INTO v_ref FROM devices WHERE account = p_account AND device_id = p_device FOR UPDATE;
            IF NOT FOUND THEN RETURN QUERY SELECT 3::bigint, 0::bigint, 0::bigint; RETURN; END IF;
            SELECT count(*) INTO v_count FROM (
                SELECT prekey_id FROM prekeys WHERE device_ref = v_ref UNION SELECT unnest(p_ids)) u;
            IF v_count > p_max THEN RETURN QUERY SELECT 5::bigint, 0::bigint, 0::bigint; RETURN; END IF;
            SELECT count(*) INTO v_kyber FROM (
                SELECT prekey_id FROM kyber_prekeys WHERE device_ref = v_ref UNION SELECT unnest(p_k_ids)) u;
            IF v_kyber > p_k_max THEN RETURN QUERY SELECT 7::bigint, 0::bigint, 0::bigint; RETURN; END IF;
            UPDATE devices SET registration_id = p_registration WHERE id = v_ref;
            IF p_signed_id IS NOT NULL THEN
                UPDATE devices SET signed_prekey_id = p_signed_id, signed_prekey = p_signed_key,
                                   signed_prekey_signature = p_signed_sig WHERE id = v_ref;
            END IF;
            FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
                INSERT INTO prekeys (device_ref, prekey_id, public_key) VALUES (v_ref, p_ids[i], p_keys[i])
                    ON CONFLICT (device_ref, prekey_id) DO UPDATE SET public_key = EXCLUDED.public_key;
            END LOOP;
            IF p_lr_id IS NOT NULL THEN
                UPDATE devices SET kyber_last_resort_id = p_lr_id, kyber_last_resort = p_lr_key,
                                   kyber_last_resort_signature = p_lr_sig WHERE id = v_ref;
            END IF;
            FOR i IN 1 .. coalesce(array_length(p_k_ids, 1), 0) LOOP
                INSERT INTO kyber_prekeys (device_ref, prekey_id, public_key, signature) VALUES (v_ref, p_k_ids[i], p_k_keys[i], p_k_sigs[i])
                    ON CONFLICT (device_ref, prekey_id) DO UPDATE SET public_key = EXCLUDED.public_key, signature = EXCLUDED.signature;
            END LOOP;
            RETURN QUERY SELECT 0::bigint, v_count, v_kyber;
        END $$;

        -- claim bundles with Kyber prekeys: hush_claim's rows plus the Kyber prekey (the lowest
        -- free one-time one, deleted, or else the last-resort one, kept; r_k_last_resort says
        -- which) and the one-time Kyber prekeys left. Same statuses as hush_claim.
        CREATE FUNCTION hush_claim_pq(p_account text, p_devices bigint[])
        RETURNS TABLE (r_status bigint, r_device bigint, r_registration bigint, r_signed_id bigint, r_signed_key bytea,
                       r_signed_sig bytea, r_ot_id bigint, r_ot_key bytea, r_remaining bigint,
                       r_k_id bigint, r_k_key bytea, r_k_sig bytea, r_k_last_resort boolean, r_k_remaining bigint)
        LANGUAGE plpgsql AS $$
        DECLARE
            v_device bigint;
            v_devices bigint[];
            d record;
            v_ot_id bigint;
            v_ot_key bytea;
            v_k_id bigint;
            v_k_key bytea;
            v_k_sig bytea;
            v_k_lr boolean;
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM accounts WHERE name = p_account) THEN
                RETURN QUERY SELECT 2::bigint, 0::bigint, 0::bigint, NULL::bigint, NULL::bytea, NULL::bytea, NULL::bigint, NULL::bytea, 0::bigint,
                    NULL::bigint, NULL::bytea, NULL::bytea, false, 0::bigint;
                RETURN;
            END IF;
            IF p_devices IS NULL THEN
                SELECT coalesce(array_agg(device_id ORDER BY device_id), '{}') INTO v_devices FROM devices WHERE account = p_account;
            ELSE
                FOREACH v_device IN ARRAY p_devices LOOP
                    IF NOT EXISTS (SELECT 1 FROM devices WHERE account = p_account AND device_id = v_device) THEN
                        RETURN QUERY SELECT 3::bigint, v_device, 0::bigint, NULL::bigint, NULL::bytea, NULL::bytea, NULL::bigint, NULL::bytea, 0::bigint,
                            NULL::bigint, NULL::bytea, NULL::bytea, false, 0::bigint;
                        RETURN;
                    END IF;
                END LOOP;
                v_devices := p_devices;
            END IF;
            FOREACH v_device IN ARRAY v_devices LOOP
                SELECT * INTO d FROM devices WHERE account = p_account AND device_id = v_device;
                v_ot_id := NULL; v_ot_key := NULL;
                DELETE FROM prekeys p WHERE (p.device_ref, p.prekey_id) = (
                    SELECT q.device_ref, q.prekey_id FROM prekeys q WHERE q.device_ref = d.id
                    ORDER BY q.prekey_id LIMIT 1 FOR UPDATE SKIP LOCKED)
                    RETURNING p.prekey_id, p.public_key INTO v_ot_id, v_ot_key;
                v_k_id := NULL; v_k_key := NULL; v_k_sig := NULL; v_k_lr := false;
                DELETE FROM kyber_prekeys p WHERE (p.device_ref, p.prekey_id) = (
                    SELECT q.device_ref, q.prekey_id FROM kyber_prekeys q WHERE q.device_ref = d.id
                    ORDER BY q.prekey_id LIMIT 1 FOR UPDATE SKIP LOCKED)
                    RETURNING p.prekey_id, p.public_key, p.signature INTO v_k_id, v_k_key, v_k_sig;
                IF v_k_id IS NULL AND d.kyber_last_resort_id IS NOT NULL THEN
                    v_k_id := d.kyber_last_resort_id; v_k_key := d.kyber_last_resort; v_k_sig := d.kyber_last_resort_signature;
                    v_k_lr := true;
                END IF;
                RETURN QUERY SELECT 0::bigint, v_device, d.registration_id, d.signed_prekey_id, d.signed_prekey,
                    d.signed_prekey_signature, v_ot_id, v_ot_key, (SELECT count(*) FROM prekeys WHERE device_ref = d.id),
                    v_k_id, v_k_key, v_k_sig, v_k_lr, (SELECT count(*) FROM kyber_prekeys WHERE device_ref = d.id);
            END LOOP;
        END $$;
        """

    /// Version 3: one statement for many writes of a batch (`PostgresGroupCommitter`), so a
    /// batch costs one round trip per run of enqueues or acks instead of one per write; and
    /// migration 1's prekey functions, unused since version 2, are dropped.
    ///
    /// `hush_enqueue_many` calls `hush_enqueue` for element i of its arrays, in order, in the
    /// caller's transaction: exactly what i separate calls would do (each checks before it
    /// changes anything), one result row per element with its 1-based ordinal. The device
    /// lists, of different lengths, are one flat array cut by `p_counts`.
    /// `hush_acknowledge_many` does the same for `hush_acknowledge`.
    static let v3 = """
        DROP FUNCTION hush_store_prekeys(text, bigint, bigint, bigint, bytea, bytea, bigint[], bytea[], bigint);
        DROP FUNCTION hush_claim(text, bigint[]);
        CREATE FUNCTION hush_enqueue_many(p_senders text[], p_sender_devices bigint[], p_cmids bigint[], p_recipients text[],
                                          p_counts bigint[], p_devices bigint[], p_payloads bytea[], p_now bigint[],
                                          p_expires bigint[], p_caps bigint[], p_origin text, p_channel text)
        RETURNS TABLE (r_ord bigint, r_status bigint, r_detail bigint, r_ids bigint[]) LANGUAGE plpgsql AS $$
        DECLARE
            v_offset bigint := 0;
        BEGIN
            FOR i IN 1 .. coalesce(array_length(p_senders, 1), 0) LOOP
                RETURN QUERY SELECT i::bigint, e.r_status, e.r_detail, e.r_ids FROM hush_enqueue(
                    p_senders[i], p_sender_devices[i], p_cmids[i], p_recipients[i],
                    coalesce(p_devices[v_offset + 1 : v_offset + p_counts[i]], '{}'::bigint[]), p_payloads[i], p_now[i],
                    p_expires[i], p_caps[i], p_origin, p_channel) e;
                v_offset := v_offset + p_counts[i];
            END LOOP;
        END $$;
        CREATE FUNCTION hush_acknowledge_many(p_accounts text[], p_devices bigint[], p_counts bigint[], p_ids bigint[])
        RETURNS TABLE (r_ord bigint, r_status bigint, r_deleted bigint) LANGUAGE plpgsql AS $$
        DECLARE
            v_offset bigint := 0;
        BEGIN
            FOR i IN 1 .. coalesce(array_length(p_accounts, 1), 0) LOOP
                RETURN QUERY SELECT i::bigint, a.r_status, a.r_deleted FROM hush_acknowledge(
                    p_accounts[i], p_devices[i], coalesce(p_ids[v_offset + 1 : v_offset + p_counts[i]], '{}'::bigint[])) a;
                v_offset := v_offset + p_counts[i];
            END LOOP;
        END $$;
        """

    /// Version 4: sealed sender (`Docs/spec/relay.md` §20.1), each account's access key and
    /// whether anyone may send it sealed messages. Plain statements (no function): it is read
    /// per sealed send and written when an account changes its setting.
    static let v4 = """
        CREATE TABLE sealed_access (
            account text PRIMARY KEY REFERENCES accounts(name),
            access_key bytea,
            allow_anyone boolean NOT NULL
        );
        """

    /// Version 5: removing a device (`Docs/spec/relay.md` §22.2). `hush_remove_device` locks the
    /// device row, deletes its queued messages, its prekeys of both kinds, the row and the dedupe
    /// entries of what it sent, and, when
    /// `p_channel` is given, tells the other nodes on the online channel with session number
    /// −1 ("origin -1 account device"), so that the node holding its connection closes it
    /// (4008). Returns (0, messages deleted), (2, 0) unknown account, (3, 0) unknown device.
    static let v5 = """
        CREATE FUNCTION hush_remove_device(p_account text, p_device bigint, p_origin text, p_channel text)
        RETURNS TABLE (r_status bigint, r_deleted bigint) LANGUAGE plpgsql AS $$
        DECLARE
            v_ref bigint;
            v_deleted bigint;
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM accounts WHERE name = p_account) THEN
                RETURN QUERY SELECT 2::bigint, 0::bigint; RETURN;
            END IF;
            SELECT id INTO v_ref FROM devices WHERE account = p_account AND device_id = p_device FOR UPDATE;
            IF NOT FOUND THEN RETURN QUERY SELECT 3::bigint, 0::bigint; RETURN; END IF;
            DELETE FROM messages WHERE device_ref = v_ref;
            GET DIAGNOSTICS v_deleted = ROW_COUNT;
            DELETE FROM prekeys WHERE device_ref = v_ref;
            DELETE FROM kyber_prekeys WHERE device_ref = v_ref;
            DELETE FROM devices WHERE id = v_ref;
            DELETE FROM dedupe WHERE sender_account = p_account AND sender_device = p_device;
            IF p_channel IS NOT NULL THEN
                PERFORM pg_notify(p_channel, p_origin || ' -1 ' || p_account || ' ' || p_device::text);
            END IF;
            RETURN QUERY SELECT 0::bigint, v_deleted;
        END $$;
        """

    /// Version 6: link tokens (`Docs/spec/relay.md` §5.1, §22.4). `link_tokens` holds SHA-256 of
    /// each open token with the device id it reserves (one per account and id). `hush_register`
    /// is replaced by a version that takes the presented token's hash and the time: an account
    /// that has devices adds one only with an open token for that id, deleted in the same
    /// transaction as the insert (13 invalid link token). The old five-argument function is
    /// dropped, so that a node of an older version cannot register a device without a token.
    /// `hush_issue_link_token` returns (0, device id), (2, 0) unknown account, (12, 0) too many
    /// registered devices; over the open-token limits it revokes the oldest open tokens first.
    /// It locks the account row, as `hush_register` does, so that issues and registrations of
    /// one account are serialised across nodes. `hush_purge` also deletes expired tokens.
    ///
    /// The token hashes are compared with `=`: the compared values are SHA-256 digests of a
    /// 16-byte random token, so an early exit reveals at most a prefix of the digest of the
    /// attacker's own guess, nothing about the stored token (the SQLite store compares in
    /// constant time in Swift).
    static let v6 = """
        CREATE TABLE link_tokens (
            account text NOT NULL REFERENCES accounts(name),
            device_id bigint NOT NULL,
            token_hash bytea NOT NULL,
            expires_at bigint NOT NULL,
            PRIMARY KEY (account, device_id)
        );
        CREATE INDEX link_tokens_by_expiry ON link_tokens (expires_at);
        DROP FUNCTION hush_register(text, bytea, bigint, bytea, bigint);

        -- register: 0 created account, 1 added device, 6 already registered,
        -- 10 account taken, 11 device taken, 12 too many devices, 13 invalid link token.
        CREATE FUNCTION hush_register(p_account text, p_identity bytea, p_device bigint, p_static bytea, p_max bigint,
                                      p_token_hash bytea, p_now bigint)
        RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
            v_identity bytea;
            v_key bytea;
            v_created boolean := false;
            v_count bigint;
            v_needs_token boolean := false;
            v_hash bytea;
            v_expires bigint;
        BEGIN
            INSERT INTO accounts (name, identity_key) VALUES (p_account, p_identity) ON CONFLICT (name) DO NOTHING;
            IF FOUND THEN v_created := true; END IF;
            -- The account row lock serialises registrations and link tokens of one account.
            SELECT identity_key INTO v_identity FROM accounts WHERE name = p_account FOR UPDATE;
            IF v_identity <> p_identity THEN RETURN 10; END IF;
            SELECT static_key INTO v_key FROM devices WHERE account = p_account AND device_id = p_device;
            IF FOUND THEN
                IF v_key = p_static THEN RETURN 6; END IF;
                RETURN 11;
            END IF;
            IF EXISTS (SELECT 1 FROM devices WHERE static_key = p_static) THEN
                IF v_created THEN DELETE FROM accounts WHERE name = p_account; END IF;
                RETURN 11;
            END IF;
            SELECT count(*) INTO v_count FROM devices WHERE account = p_account;
            IF NOT v_created AND v_count > 0 THEN
                v_needs_token := true;
                SELECT token_hash, expires_at INTO v_hash, v_expires FROM link_tokens
                    WHERE account = p_account AND device_id = p_device;
                IF NOT FOUND OR p_token_hash IS NULL OR v_expires <= p_now OR v_hash <> p_token_hash THEN RETURN 13; END IF;
            END IF;
            IF v_count >= p_max THEN RETURN 12; END IF;
            BEGIN
                INSERT INTO devices (account, device_id, static_key) VALUES (p_account, p_device, p_static);
            EXCEPTION WHEN unique_violation THEN
                -- Another node registered this static key between the check and the insert.
                IF v_created THEN DELETE FROM accounts WHERE name = p_account; END IF;
                RETURN 11;
            END;
            IF v_needs_token THEN
                DELETE FROM link_tokens WHERE account = p_account AND device_id = p_device;
            END IF;
            IF v_created THEN RETURN 0; END IF;
            RETURN 1;
        END $$;

        CREATE FUNCTION hush_issue_link_token(p_account text, p_hash bytea, p_now bigint, p_expires bigint,
                                              p_max bigint, p_max_open bigint)
        RETURNS TABLE (r_status bigint, r_device bigint) LANGUAGE plpgsql AS $$
        DECLARE
            v_open bigint;
            v_devices bigint;
            v_id bigint;
        BEGIN
            PERFORM 1 FROM accounts WHERE name = p_account FOR UPDATE;
            IF NOT FOUND THEN RETURN QUERY SELECT 2::bigint, 0::bigint; RETURN; END IF;
            SELECT count(*) INTO v_devices FROM devices WHERE account = p_account;
            IF v_devices >= p_max THEN RETURN QUERY SELECT 12::bigint, 0::bigint; RETURN; END IF;
            DELETE FROM link_tokens WHERE account = p_account AND expires_at <= p_now;
            SELECT count(*) INTO v_open FROM link_tokens WHERE account = p_account;
            -- Over either limit, the oldest open tokens are revoked (the newest request wins).
            WHILE v_open > 0 AND (v_open >= p_max_open OR v_devices + v_open >= p_max) LOOP
                DELETE FROM link_tokens WHERE account = p_account AND device_id =
                    (SELECT device_id FROM link_tokens WHERE account = p_account ORDER BY expires_at, device_id LIMIT 1);
                v_open := v_open - 1;
            END LOOP;
            SELECT min(c) INTO v_id FROM generate_series(2::bigint, p_max + 1) AS c
                WHERE NOT EXISTS (SELECT 1 FROM devices WHERE account = p_account AND device_id = c)
                  AND NOT EXISTS (SELECT 1 FROM link_tokens WHERE account = p_account AND device_id = c);
            INSERT INTO link_tokens (account, device_id, token_hash, expires_at) VALUES (p_account, v_id, p_hash, p_expires);
            RETURN QUERY SELECT 0::bigint, v_id;
        END $$;

        CREATE OR REPLACE FUNCTION hush_purge(p_now bigint)
        RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
            v_deleted bigint;
        BEGIN
            WITH gone AS (DELETE FROM messages WHERE expires_at <= p_now RETURNING device_ref),
                 per AS (SELECT device_ref, count(*) AS n FROM gone GROUP BY device_ref),
                 upd AS (UPDATE devices SET queue_depth = queue_depth - per.n FROM per WHERE devices.id = per.device_ref RETURNING per.n)
                SELECT coalesce(sum(n), 0) INTO v_deleted FROM upd;
            DELETE FROM dedupe WHERE expires_at <= p_now;
            DELETE FROM link_tokens WHERE expires_at <= p_now;
            RETURN v_deleted;
        END $$;
        """

    /// Media blobs in the database (``PostgresMediaStore``), so that several relay nodes on one
    /// database serve each other's media with nothing else shared: an upload's bytes in 1 MiB
    /// rows, visible once `media_blobs` names the upload (the first commit of an id wins); and the
    /// upload-capability key every node shares (§19.1: a grant from one node is honoured by all).
    static let v7 = """
        CREATE TABLE media_uploads (
            upload_id bigserial PRIMARY KEY,
            media_id bytea NOT NULL,
            size bigint NOT NULL,
            started_at bigint NOT NULL
        );
        CREATE TABLE media_chunks (
            upload_id bigint NOT NULL REFERENCES media_uploads(upload_id) ON DELETE CASCADE,
            seq integer NOT NULL,
            bytes bytea NOT NULL,
            PRIMARY KEY (upload_id, seq)
        );
        CREATE TABLE media_blobs (
            media_id bytea PRIMARY KEY,
            upload_id bigint NOT NULL UNIQUE REFERENCES media_uploads(upload_id) ON DELETE CASCADE,
            size bigint NOT NULL,
            created_at bigint NOT NULL
        );
        CREATE INDEX media_blobs_created_at ON media_blobs (created_at);
        CREATE INDEX media_uploads_started_at ON media_uploads (started_at);
        CREATE TABLE media_capability_key (
            one boolean PRIMARY KEY DEFAULT true CHECK (one),
            key bytea NOT NULL CHECK (length(key) = 32)
        );
        """
}
