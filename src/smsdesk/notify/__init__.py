"""Notifications to agents: queued when a request's event concerns them (`events.py`), in their
language (`messages.py`), sent by e-mail or SMS in the background (`sender.py`)."""
