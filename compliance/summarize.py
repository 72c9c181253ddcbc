#!/usr/bin/env python3
"""Summarize an Autobahn|Testsuite fuzzingclient report.

    summarize.py REPORT_DIR [--log WSTEST_LOG] [--details N]

REPORT_DIR holds index.json and one JSON file per case. A case counts under
its "behavior" when that is OK, NON-STRICT, INFORMATIONAL or UNIMPLEMENTED and
as failed otherwise (FAILED, WRONG CODE, UNCLEAN, ...); a bad "behaviorClose"
on a passing case is listed but not counted. With --log, the cases
wstest announced ("Cases = [...]") but never reported, e.g. because the run
was killed, are counted as failed too. The details of up to N failed cases
(default 20) are printed from their JSON files.

The last line is always
    autobahn: N ok, N non-strict, N informational, N unimplemented, N failed
Exit status: 0 if nothing failed, 1 if something failed, 2 if there is no report.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from typing import Any

PASSING = {"OK": "ok", "NON-STRICT": "non-strict", "INFORMATIONAL": "informational", "UNIMPLEMENTED": "unimplemented"}


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split(".") if part.isdigit())


def announced_cases(log_path: str | None) -> list[str]:
    if not log_path or not os.path.exists(log_path):
        return []
    with open(log_path, errors="replace") as f:
        for line in f:
            if line.startswith("Cases = "):
                return list(ast.literal_eval(line[len("Cases = ") :].strip()))
    return []


def clip(value: object, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def final_line(counts: dict[str, int]) -> str:
    return (
        "autobahn: {ok} ok, {non-strict} non-strict, {informational} informational, "
        "{unimplemented} unimplemented, {failed} failed".format(**counts)
    )


def details(report_dir: str, case_id: str, result: dict[str, Any]) -> list[str]:
    lines = [f"  {case_id}: behavior={result.get('behavior')} behaviorClose={result.get('behaviorClose')}"]
    try:
        with open(os.path.join(report_dir, result["reportfile"])) as f:
            case = json.load(f)
    except (KeyError, OSError, ValueError) as error:
        return [*lines, f"    (no case file: {error})"]
    for name in ("description", "expectation", "result", "resultClose"):
        lines.append(f"    {name}: {clip(case.get(name, ''))}")
    lines.append(f"    expected: {clip(case.get('expected'))}")
    lines.append(f"    received: {clip(case.get('received'))}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report_dir")
    parser.add_argument("--log")
    parser.add_argument("--details", type=int, default=20)
    args = parser.parse_args()

    counts = {name: 0 for name in (*PASSING.values(), "failed")}
    expected = announced_cases(args.log)
    try:
        with open(os.path.join(args.report_dir, "index.json")) as f:
            index = json.load(f)
    except (OSError, ValueError) as error:
        print(f"no report in {args.report_dir}: {error}")
        counts["failed"] = len(expected)
        print(final_line(counts))
        return 2

    exit_status = 0
    for agent, results in sorted(index.items()) or [("(no agent)", {})]:
        by_behavior: dict[str, list[str]] = {}
        for case_id, result in results.items():
            by_behavior.setdefault(result.get("behavior", "MISSING"), []).append(case_id)
        failed = sorted((c for c, r in results.items() if r.get("behavior") not in PASSING), key=case_key)
        missing = sorted(set(expected) - set(results), key=case_key)
        print(f"agent {agent}: {len(results)} cases reported" + (f", {len(missing)} missing" if missing else ""))
        for behavior, ids in sorted(by_behavior.items()):
            print(f"  {behavior}: {len(ids)}")
            counts[PASSING.get(behavior, "failed")] += len(ids)
        counts["failed"] += len(missing)
        if failed:
            print("  failed cases: " + ", ".join(failed))
        bad_close = ("FAILED", "UNCLEAN", "WRONG CODE")
        close_issues = [
            c for c in sorted(results, key=case_key) if c not in failed and results[c].get("behaviorClose") in bad_close
        ]
        if close_issues:
            print("  closing-handshake problems on passing cases (not counted): " + ", ".join(close_issues))
        if missing:
            print("  missing cases (no result, counted as failed): " + ", ".join(missing))
        for case_id in failed[: args.details]:
            print("\n".join(details(args.report_dir, case_id, results[case_id])))
        if failed or missing:
            exit_status = 1

    print(final_line(counts))
    return exit_status


if __name__ == "__main__":
    sys.exit(main())
