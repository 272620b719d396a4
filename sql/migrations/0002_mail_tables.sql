-- The live mail store: mail.emails (range-partitioned by month on created_at, UTC),
-- mail.accounts, mail.sessions, and the two immutable helpers their columns and
-- indexes use. Shapes: docs/contracts.md.
SET LOCAL ROLE mail_owner;

-- ASCII-only case folding: SQLite's NOCASE folds A-Z and nothing else, so legacy
-- addresses differing only in non-ASCII case are distinct and must stay loadable.
CREATE FUNCTION mail.ascii_lower(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN translate(p_text, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');

-- The weighted full-text vector of an email: subject (A) above body (B).
-- 'simple': mail is multilingual, and one language's stemmer and stop words would
-- mangle every other language; 'simple' only lower-cases.
-- Only the leading part is indexed so that no insert can fail on tsvector's 1 MB
-- limit: a character is at most 4 bytes in UTF-8 and a one-character word costs at
-- most ~5 bytes more of tsvector overhead, so 128 Ki characters of body plus 8 Ki of
-- subject stay below 1 MB whatever the text; the whole body is still stored.
CREATE FUNCTION mail.email_search_vector(p_subject text, p_body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN setweight(to_tsvector('simple'::regconfig, coalesce(left(p_subject, 8192), '')), 'A')
    || setweight(to_tsvector('simple'::regconfig, coalesce(left(p_body, 131072), '')), 'B');

GRANT EXECUTE ON FUNCTION mail.ascii_lower(text), mail.email_search_vector(text, text) TO PUBLIC;

CREATE SEQUENCE mail.emails_id_seq AS bigint;
CREATE SEQUENCE mail.accounts_id_seq AS bigint;

CREATE TABLE mail.emails (
  id            bigint NOT NULL DEFAULT nextval('mail.emails_id_seq'),
  message_id    text NOT NULL,
  from_address  text NOT NULL,
  to_address    text NOT NULL,
  subject       text,
  body          text,
  html          text,
  headers       jsonb,
  raw_email     text,
  size          bigint,
  starred       boolean DEFAULT false,
  is_read       boolean DEFAULT false,
  -- SQLite REAL is an 8-byte double: real would round (contracts)
  spam_score    double precision DEFAULT 0,
  created_at    timestamptz NOT NULL,
  search_vector tsvector GENERATED ALWAYS AS (mail.email_search_vector(subject, body)) STORED,
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE mail.emails_id_seq OWNED BY mail.emails.id;

-- lz4 compresses and decompresses several times faster than pglz at a similar ratio;
-- set on the parent, every partition created afterwards inherits it.
DO $$
BEGIN
  /* Use lz4 for the big text columns when the server was built with it. */
  IF EXISTS (SELECT 1 FROM pg_settings
             WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
    ALTER TABLE mail.emails
      ALTER COLUMN subject SET COMPRESSION lz4,
      ALTER COLUMN body SET COMPRESSION lz4,
      ALTER COLUMN html SET COMPRESSION lz4,
      ALTER COLUMN headers SET COMPRESSION lz4,
      ALTER COLUMN raw_email SET COMPRESSION lz4;
  END IF;
END
$$;

-- Rows of a month with no partition land here; normal operation keeps it empty
-- (mail.default_partition_report shows what is in it).
CREATE TABLE mail.emails_default PARTITION OF mail.emails DEFAULT;

CREATE TABLE mail.accounts (
  id            bigint PRIMARY KEY DEFAULT nextval('mail.accounts_id_seq'),
  email         text NOT NULL,
  password_hash text,
  token         text UNIQUE,
  created_at    timestamptz DEFAULT now(),
  expires_at    timestamptz,
  last_login_at timestamptz,
  is_active     boolean DEFAULT true
);
ALTER SEQUENCE mail.accounts_id_seq OWNED BY mail.accounts.id;
-- Exactly the legacy uniqueness (COLLATE NOCASE: ASCII letters folded, nothing else).
CREATE UNIQUE INDEX accounts_email_ascii_lower_key ON mail.accounts (mail.ascii_lower(email));
CREATE INDEX accounts_expires_at_idx ON mail.accounts (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE mail.sessions (
  id          text PRIMARY KEY,
  account_id  bigint NOT NULL REFERENCES mail.accounts (id) ON DELETE CASCADE,
  created_at  timestamptz DEFAULT now(),
  expires_at  timestamptz,
  ip          text,
  user_agent  text
);
CREATE INDEX sessions_account_id_idx ON mail.sessions (account_id);
CREATE INDEX sessions_expires_at_idx ON mail.sessions (expires_at) WHERE expires_at IS NOT NULL;

-- The stored search vector is compressed too when it is long (a body of a few KB gives
-- a vector of a few KB); pglz on it was 3% of the load's merge CPU, lz4 a fraction of
-- that.
DO $$
BEGIN
  /* lz4 for the search vector when the server was built with it. */
  IF EXISTS (SELECT 1 FROM pg_settings
             WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
    ALTER TABLE mail.emails ALTER COLUMN search_vector SET COMPRESSION lz4;
  END IF;
END
$$;
