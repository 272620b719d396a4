-- Roles and schemas. Roles are cluster-wide, so each is created only when missing
-- (several databases of one cluster apply this file). NOLOGIN and no password:
-- login users are granted membership by whoever runs the server.
--   mail_owner     owns every object of mail, staging and migration
--   mail_app       the application: DML on mail, EXECUTE on its functions, no DDL
--   mail_readonly  SELECT on mail except the secret columns
DO $$
DECLARE
  v_role text;
BEGIN
  /* Create each project role once per cluster. */
  FOREACH v_role IN ARRAY ARRAY['mail_owner', 'mail_app', 'mail_readonly'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
    END IF;
  END LOOP;
END
$$;

CREATE SCHEMA IF NOT EXISTS mail AUTHORIZATION mail_owner;
CREATE SCHEMA IF NOT EXISTS staging AUTHORIZATION mail_owner;
-- migration exists already: the runner creates it for its ledger before any file.
CREATE SCHEMA IF NOT EXISTS migration;
ALTER SCHEMA mail OWNER TO mail_owner;
ALTER SCHEMA staging OWNER TO mail_owner;
ALTER SCHEMA migration OWNER TO mail_owner;

-- Nobody but the owner (and superusers) may run a function of the owner's unless
-- granted: maintenance functions are DDL and must not be callable by the app.
ALTER DEFAULT PRIVILEGES FOR ROLE mail_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

GRANT USAGE ON SCHEMA mail TO mail_app, mail_readonly;
