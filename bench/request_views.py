"""How fast the requests overviews answer: every view of GET /requests (the page with its five
counts and unread marks), searches, a conversation, and GET /api/v1/requests?view=…

Usage: python bench/request_views.py [--database sqlite] [--rounds 15] [--requests 10000]

The requests part of bench/list_pages.py: the same data (10,000 requests with conversations
among 100,000 messages, on SQLite and PostgreSQL), the same real `smsdesk serve` asked over
HTTP, and the same table of medians and 95th percentiles; only the pages about requests.
Any option of bench/list_pages.py may be given.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import list_pages


def main() -> None:
    if "--only" not in sys.argv:
        sys.argv[1:1] = ["--only", "request"]  # requests lists, a conversation, the API's
    list_pages.main()


if __name__ == "__main__":
    main()
