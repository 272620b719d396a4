"""`mailmig rehearse` (make rehearse): the live migration end to end under real traffic.

  traffic   the SMTP sender (smtplib threads at a fixed rate) and the API reader
  timeline  the PNG: every message's reply time over time, stages and pauses marked
  run       the procedure, the per-stage store checks, the report
"""

from mailmig.rehearse.run import add_commands, cmd_rehearse

__all__ = ["add_commands", "cmd_rehearse"]
