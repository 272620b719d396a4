-- validate_emails_per_month: rows of mail.emails per month of created_at in UTC (the gate)
SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, count(*) AS rows
FROM mail.emails
GROUP BY 1
