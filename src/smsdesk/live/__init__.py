"""Live updates of the screens: one poller per process turns new rows into small updates and
hands each browser connection those its page asked for (`feed.py`; the rows: `store.live`)."""
