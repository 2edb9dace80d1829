"""`python -m smsdesk`: the same as the `smsdesk` command."""

from smsdesk.cli import main

main()
