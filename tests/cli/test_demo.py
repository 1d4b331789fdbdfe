"""``exposure-audit demo``: starts the lab, audits it, prints a graded report, stops the lab."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_demo_prints_a_graded_report_of_the_lab() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exposure_audit", "demo", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["summary"]["grade"] == "F"
    grades = {h["address"]: h["grade"] for h in doc["hosts"]}
    assert grades["127.77.0.10"] == "F"
    assert grades["127.77.0.70"] == "A"
    # The hung host's 5001 takes connections and never answers: unidentified, never A.
    hung = next(h for h in doc["hosts"] if h["address"] == "127.77.0.80")
    assert [(f["rule"], f["port"]) for f in hung["findings"]] == [("UNK001", 5001)]
    assert hung["grade"] == "C"
    # The catalog consoles: QNAP QTS over plain HTTP, Proxmox VE over TLS on 8006.
    qnap = next(h for h in doc["hosts"] if h["address"] == "127.77.0.90")
    assert [(f["rule"], f["port"]) for f in qnap["findings"]] == [("MGMT001", 8080)]
    proxmox = next(h for h in doc["hosts"] if h["address"] == "127.77.0.91")
    assert [(f["rule"], f["port"]) for f in proxmox["findings"]] == [("MGMT002", 8006)]
    # The lab is stopped afterwards: its ports are free again (TIME_WAIT aside).
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.77.0.10", 5000))
        s.listen(1)
