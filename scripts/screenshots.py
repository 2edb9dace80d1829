"""Take the README's screenshots of the SMS configuration screen, in English and Dutch.

    python scripts/screenshots.py [--out docs]

Starts `smsdesk serve` on a fresh data directory, creates an administrator, chooses Original
Intelecom with example values, and photographs the screen with Debian's chromium.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
from tests.support.processes import Processes, smsdesk_command, smsdesk_env

PASSWORD = "correct horse battery staple"
EXAMPLE = {
    "module": "original_intelecom",
    "default_country_code": "+31",
    "sender": "Support",
    "module_settings": {
        "original_intelecom": {
            "sms_endpoint": "HELP",
            "use_web_service": True,
            "delivery_report": True,
            "service_id": "4242",
            "username": "acme",
            "password": "example-password",
            "sms_priority": 2,
        }
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="smsdesk-shots-"))
    env = smsdesk_env(data_dir=root / "data")
    subprocess.run(
        [*smsdesk_command(), "users", "create", "admin", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    processes = Processes(root)
    try:
        server = processes.server(env).wait_ready()
        key = server.first_key()
        httpx.put(
            f"{server.url}/api/v1/settings",
            json=EXAMPLE,
            headers={"Authorization": f"Bearer {key}"},
        ).raise_for_status()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(f"{server.url}/preferences/general/sms")
            page.fill("#username", "admin")
            page.fill("#password", PASSWORD)
            page.click("#login")
            page.wait_for_selector("#f-module")
            for language in ("en", "nl"):
                page.select_option("#language-choice", language)
                page.wait_for_selector(f'html[lang="{language}"]')
                page.fill("#test-to", "+31612345678")
                page.fill("#test-text", "Uw bestelling is onderweg")
                target = args.out / f"sms-configuration-{language}.png"
                page.screenshot(path=str(target), full_page=True)
                print(target)
            browser.close()
    finally:
        processes.stop_all()


if __name__ == "__main__":
    main()
