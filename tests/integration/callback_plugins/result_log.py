# Copyright: ucops.webex contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: append every task result as one JSON line to $RESULT_LOG."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: result_log
type: aggregate
short_description: Write each task result as a JSON line for the integration tests
description:
  - Appends one JSON object per task result to the file named by the C(RESULT_LOG)
    environment variable.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "result_log"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, result, status: str) -> None:
        path = os.environ.get("RESULT_LOG")
        if not path:
            return
        data = dict(result._result)
        record = {
            "task": result._task.get_name(),
            "host": result._host.get_name(),
            "status": status,
            "changed": bool(data.get("changed", False)),
            "failed": status in ("failed", "unreachable"),
            "result": data,
        }
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")

    def v2_runner_on_ok(self, result):
        self._write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._write(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._write(result, "unreachable")
