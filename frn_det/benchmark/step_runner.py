"""Runs a report's steps, each a command in a process of its own with a time limit inside an overall
budget, so that one that fails or hangs is recorded and the rest still run. report.json and report.md
are rewritten after each step, so a run cut short still says what it did. The device check
(tools/device/check.py) is built on it."""
import os
import signal
import subprocess
import time
from pathlib import Path

from frn_det.utils.file_io import json_text, write_atomic

MIN_STEP_S = 20  # kept back for each later step, so that a slow step can't starve the rest


def tail(text, n=15):
    return "\n".join(text.strip().splitlines()[-n:])


class StepRunner:
    """out: the report's folder (logs/ holds each step's output); budget: seconds for all steps; env:
    the steps' environment; cwd: where they run; title: the report's heading."""

    def __init__(self, out, budget, env=None, cwd=None, title="Steps", info=None):
        self.out, self.budget, self.title = Path(out), budget, title
        self.env, self.cwd = dict(os.environ if env is None else env), cwd
        self.info = dict(info or {})  # more top-level fields of report.json
        self.start = time.monotonic()
        self.steps = {}
        for d in ("logs", "steps"):
            (self.out / d).mkdir(parents=True, exist_ok=True)

    def run(self, name, cmd, limit, later_steps, env=None):
        """Runs cmd (in its own process group, killed whole on timeout); returns (rc, output), rc None
        after a timeout, or None when the budget has no time left for it. env: variables on top."""
        left = self.budget - (time.monotonic() - self.start) - MIN_STEP_S * later_steps
        timeout = min(limit, left)
        step = self.steps[name] = {"status": "running", "command": " ".join(map(str, cmd)), "limit_s": round(timeout)}
        if timeout < 5:
            step.update(status="skipped", error=f"no time left in the {self.budget} s budget")
            return None
        self.write()
        log = self.out / "logs" / f"{name}.log"
        t0 = time.monotonic()
        with open(log, "w") as f:
            proc = subprocess.Popen([str(c) for c in cmd], cwd=self.cwd, env={**self.env, **(env or {})}, stdout=f,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the step and its workers (dataloader, inductor)
                proc.wait()
                rc = None
        step["seconds"] = round(time.monotonic() - t0, 1)
        output = log.read_text(errors="replace")
        if rc is None:
            step.update(status="timeout", error=f"killed after {timeout:.0f} s", log_tail=tail(output))
        elif rc:
            step.update(status="failed", error=f"exit status {rc}", log_tail=tail(output))
        else:
            step["status"] = "ok"
        return rc, output

    def record(self, name, fn):
        """Adds fn()'s result to the step; a failure to read it fails the step, not the run."""
        try:
            self.steps[name]["result"] = fn()
        except Exception as e:  # noqa: BLE001
            self.steps[name].update(status="failed", error=f"reading the result: {type(e).__name__}: {e}")

    def report(self):
        return {**self.info, "elapsed_s": round(time.monotonic() - self.start, 1), "budget_s": self.budget,
                "steps": self.steps}

    def result_lines(self, name, result):
        """The markdown of a step's result; subclasses render the results they know."""
        return ["```", json_text(result, indent=1, default=str), "```", ""]

    def markdown(self, report):
        lines = [f"# {self.title}", "",
                 f"{report['elapsed_s']} s of a {report['budget_s']} s budget. Steps: "
                 + ", ".join(f"{n} {s['status']}" for n, s in report["steps"].items()), ""]
        for name, step in report["steps"].items():
            lines += [f"## {name}: {step['status']}" + (f" ({step['seconds']} s)" if "seconds" in step else ""), ""]
            if step.get("command"):
                lines += [f"`{step['command']}`", ""]
            if step.get("error"):
                lines += [f"Error: {step['error']}", ""]
            if step.get("log_tail"):
                lines += ["```", step["log_tail"], "```", ""]
            if step.get("result") is not None:
                lines += self.result_lines(name, step["result"])
        return "\n".join(lines) + "\n"

    def write(self):
        report = self.report()
        for path, text in ((self.out / "report.json", json_text(report, indent=1, default=str)),
                           (self.out / "report.md", self.markdown(report))):
            write_atomic(path, lambda f, text=text: f.write(text), mode="w", fsync=False)

    def not_ok(self):
        return [n for n, s in self.steps.items() if s["status"] not in ("ok", "skipped")]
