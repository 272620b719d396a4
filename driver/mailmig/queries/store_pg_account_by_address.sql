-- The account of an address, ASCII case folded
SELECT * FROM mail.find_account_by_address(%(email)s)
