"""Groups of `smsdesk` sub-commands, each in its own module; `smsdesk.cli` assembles them."""
