"""A mailing's check summary and statistics for 100,000 recipients, in process.

For each database a fresh service (no server, no dispatcher) gets a draft with N recipients
pasted (default 100,000: each checked and estimated as it is added), then prints:

  add        seconds to check (and estimate) every recipient, 1,000 per writer job;
  summary    the first GET of the summary after adding, and the median of 5 more;
  changed    the first summary after the draft's text changed (every estimate made again);
  stats      the median of 5 statistics reads;
  export     the per-recipient CSV of every recipient, read to the end.

    python bench/mailing_summary.py                        # SQLite and PostgreSQL
    python bench/mailing_summary.py --database sqlite --recipients 10000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from _server import database

from smsdesk import mailings
from smsdesk.domain.mailings import MailingSpec
from smsdesk.mailings import prepare, stats
from smsdesk.process_config import AppConfig
from smsdesk.service import Service


def timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def run(name: str, url: str | None, recipients: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        database_url = ""
        if url is not None:
            from sqlalchemy import create_engine, text

            admin = create_engine(url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text("DROP DATABASE IF EXISTS bench_mailing"))
                conn.execute(text("CREATE DATABASE bench_mailing"))
            admin.dispose()
            database_url = url.rsplit("/", 1)[0] + "/bench_mailing"
        service = Service(AppConfig(data_dir=Path(tmp), database_url=database_url))
        service.upgrade()
        try:
            spec = MailingSpec(name="bench", text="Hello {customer.number}", override_consent=True)
            mailing = mailings.create_mailing(service, spec)
            numbers = "\n".join(f"+3162{i:07d}" for i in range(recipients))
            added = timed(lambda: mailings.add_pasted(service, mailing.id, numbers))
            first = timed(lambda: prepare.summarise(service, mailing.id))
            again = statistics.median(
                timed(lambda: prepare.summarise(service, mailing.id)) for _ in range(5)
            )
            changed_spec = MailingSpec(
                name="bench", text="Hi {customer.number}!", override_consent=True
            )
            mailings.update_mailing(service, mailing.id, changed_spec)
            changed = timed(lambda: prepare.summarise(service, mailing.id))
            read = statistics.median(
                timed(lambda: stats.statistics(service, mailing.id)) for _ in range(5)
            )
            exported = timed(lambda: sum(1 for _ in stats.export_csv(service, mailing.id)))
            summary = prepare.summarise(service, mailing.id).as_dict()
            print(
                f"{name:8} recipients {recipients}  add {added:6.1f} s  "
                f"summary first {first:6.2f} s, then {again:6.3f} s  "
                f"after a text change {changed:6.2f} s  statistics {read:6.3f} s  "
                f"export {exported:5.2f} s  "
                f"(messages {summary['messages']}, segments {summary['segments']})"
            )
        finally:
            service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--recipients", type=int, default=100_000)
    args = parser.parse_args()
    names = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    for name in names:
        with database(name) as url:
            run(name, url, args.recipients)


if __name__ == "__main__":
    main()
