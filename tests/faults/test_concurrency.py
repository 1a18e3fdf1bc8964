"""Jobs that run at once on one output folder share the work, and a killed job's locks do not
block a re-run."""

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from speechseq.asr.decoding import DecoderConfig
from speechseq.asr.jobs import plan_job, run_job
from speechseq.asr.transcriber import Transcriber
from speechseq.cli import app

SAMPLES = Path(__file__).parents[2] / "data" / "samples"

pytestmark = pytest.mark.pretrained


def _folder(tmp_path: Path, copies: int) -> Path:
    folder = tmp_path / "in"
    for k in range(copies):
        shutil.copytree(SAMPLES, folder / f"copy{k}", ignore=shutil.ignore_patterns("*.txt"))
    return folder


def _statuses(report: Path) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    return [(row["input"], row["status"]) for row in rows]


def test_two_jobs_on_one_folder_do_each_input_once(tmp_path):
    folder, out = _folder(tmp_path, copies=4), tmp_path / "out"
    transcriber = Transcriber.from_pretrained(
        decoding=DecoderConfig(kind="greedy"), max_batch_seconds=4.0
    )
    plans = [plan_job([folder], out) for _ in range(2)]  # both planned before either starts
    assert len(plans[0].todo) == len(plans[1].todo) == 20
    second = []

    def start_the_second(result) -> None:  # once the first is under way
        if not second:
            second.append(run_job(transcriber, plans[1], report=tmp_path / "b.jsonl"))

    first = run_job(transcriber, plans[0], report=tmp_path / "a.jsonl", on_result=start_the_second)
    (second,) = second
    assert first.succeeded > 0 and second.succeeded > 0
    assert first.succeeded + second.succeeded == 20
    assert (first.elsewhere, second.elsewhere) == (second.succeeded, first.succeeded)
    done = [i for r in ("a", "b") for i, s in _statuses(tmp_path / f"{r}.jsonl") if s == "ok"]
    assert sorted(done) == sorted(str(job.input) for job in plans[0].todo)  # each once
    assert len(list(out.rglob("*.txt"))) == 20 and not list(out.rglob(".*.lock"))


def test_a_killed_jobs_lock_does_not_block_a_rerun_and_a_live_one_is_left_alone(tmp_path):
    folder, out = _folder(tmp_path, copies=1), tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / "copy0").mkdir(parents=True)
    host = socket.gethostname()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        for name, pid in (("flite-rms", dead.pid), ("festival-ked", live.pid)):
            record = {"host": host, "pid": pid, "run": "killed job"}
            (out / "copy0" / f".{name}.lock").write_text(json.dumps(record))
        result = CliRunner().invoke(app, ["transcribe", str(folder), "-o", str(out)])
        live.kill()
    assert result.exit_code == 0, result.output
    assert "4 succeeded, 0 failed, 0 skipped, 1 left to another job" in result.stderr
    assert (out / "copy0" / "flite-rms.txt").read_text().strip()
    assert not (out / "copy0" / "festival-ked.txt").exists()
    assert [p.name for p in out.rglob(".*.lock")] == [".festival-ked.lock"]  # not ours to remove
    report = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    (left,) = [row for row in report if row["status"] == "skipped"]
    assert left["input"].endswith("festival-ked.wav") and left["note"] == "another job has it"
