"""`smsdesk secrets`: rotating the key that encrypts stored secrets.

Rotation has two steps so that no running process is ever left unable to read: `rotate` adds
a new key (kept first, the old ones after it) and re-encrypts every secret with it; `retire`
removes the old keys once every secret is checked to be under the new one. Secret values are
never printed; only the new key is, once, when it must go into SMSDESK_SECRET_KEY by hand.
"""

from __future__ import annotations

import typer

from smsdesk.commands.common import DatabaseUrl, DataDir, err, fail, open_service, out
from smsdesk.crypto import KEY_FILE, SecretKeyError, add_new_key, new_key, retire_old_keys
from smsdesk.domain.audit import Actor
from smsdesk.service import Service
from smsdesk.store.secrets import not_under_newest, reseal_all

app = typer.Typer(help="The key that encrypts stored secrets.", no_args_is_help=True)

ENV = "SMSDESK_SECRET_KEY"


@app.command("rotate")
def secrets_rotate(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Encrypt every stored secret with a new key; the old key keeps working until `retire`."""
    service = open_service(data_dir, database_url)
    try:
        if service.box.from_file:
            _rotate_key_file(service)
        elif service.box.key_count == 1:
            _propose_env_key()
        else:
            _reseal(service)
            err.print(
                f"Next: once no backup made before now is still needed, run `smsdesk secrets "
                f"retire`; then remove every key but the first from {ENV} and restart.",
                highlight=False,
            )
    except SecretKeyError as exc:
        fail(str(exc))
    finally:
        service.close()


@app.command("retire")
def secrets_retire(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Remove the old keys, after checking that the newest key alone reads every secret."""
    service = open_service(data_dir, database_url)
    try:
        newest = service.box.newest_key
        stale = not_under_newest(service.engine, service.box)
        if stale:
            fail(
                f"{len(stale)} stored secret(s) still need an older key: {', '.join(stale)}. "
                "Run `smsdesk secrets rotate` to re-encrypt them, then retire again."
            )
        if service.box.from_file:
            removed = retire_old_keys(service.config.data_dir, newest)
            service.audit(Actor.cli(), "secrets.retired", details={"keys_removed": removed})
            path = service.config.data_dir / KEY_FILE
            out.print(f"Removed {removed} old key(s) from {path}.", highlight=False)
            err.print(
                "Backups made before the rotation need the old key: keep a copy of the old "
                "key file with them if you may restore them.",
                highlight=False,
            )
        elif service.box.key_count > 1:
            out.print(
                f"Every stored secret reads with the first key of {ENV}: remove the other keys "
                "from it in every process's environment and restart them.",
                highlight=False,
            )
        else:
            out.print(f"{ENV} holds only one key; there is nothing to retire.", highlight=False)
    except SecretKeyError as exc:
        fail(str(exc))
    finally:
        service.close()


def _rotate_key_file(service: Service) -> None:
    add_new_key(service.config.data_dir)
    _reseal(service)
    path = service.config.data_dir / KEY_FILE
    err.print(
        f"A new key is first in {path}; the old key stays after it, so running processes read "
        "every secret and take up the new key by themselves.\n"
        "Next: back up the key file with your database backups; once no backup made before "
        "now is still needed, run `smsdesk secrets retire` to remove the old key.",
        highlight=False,
    )


def _propose_env_key() -> None:
    """The key comes from the environment, which this command cannot change: hand it over."""
    err.print(
        f"The key comes from {ENV}, which this command cannot change. A new key follows, shown "
        "only now. Put it first in the variable, before the current key, separated by a comma "
        f'({ENV}="<new key>,<current key>"), for every smsdesk process; restart them; then run '
        "`smsdesk secrets rotate` again to re-encrypt the stored secrets with it.",
        highlight=False,
    )
    out.print(new_key(), markup=False, highlight=False)


def _reseal(service: Service) -> None:
    counts = reseal_all(service.engine, service.box)
    for kind, count in counts.items():
        out.print(f"{kind}: {count} re-encrypted", highlight=False)
    service.audit(
        Actor.cli(),
        "secrets.rotated",
        details={
            "re_encrypted": {str(k): int(v) for k, v in counts.items()},
            "key_from": "file" if service.box.from_file else "environment",
        },
    )
