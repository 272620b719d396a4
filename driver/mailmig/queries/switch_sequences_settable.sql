-- switch_sequences_settable: can this session set the id sequences (a primary, UPDATE on both)? and why not
SELECT NOT pg_is_in_recovery()
       AND has_sequence_privilege('mail.emails_id_seq', 'UPDATE')
       AND has_sequence_privilege('mail.accounts_id_seq', 'UPDATE'),
       CASE WHEN pg_is_in_recovery() THEN 'the server is a standby (in recovery): it cannot take writes'
            WHEN NOT has_sequence_privilege('mail.emails_id_seq', 'UPDATE')
              OR NOT has_sequence_privilege('mail.accounts_id_seq', 'UPDATE')
            THEN current_user || ' may not set mail.emails_id_seq / mail.accounts_id_seq (UPDATE privilege)'
            ELSE 'mail.emails_id_seq at ' || (SELECT last_value FROM mail.emails_id_seq)
                 || ', mail.accounts_id_seq at ' || (SELECT last_value FROM mail.accounts_id_seq) || ': settable'
       END
