"""Half-written runs never look complete: a kill while reporting, a full disk (for results and for the
cache) and two runs sharing one cache, each through the real command line.

The rule under test (bench.store): run.json's `status` is 'running' from the first moment, 'reporting'
once every cell is scored, and 'complete' only after every report file; every file is written through
the store's atomic writer. A full disk is injected as OSError(ENOSPC) on the file it should hit; where
the machine lets an unprivileged user mount a small tmpfs (`unshare`), a real full disk is used too.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bench.report
from bench.__main__ import main
from bench.results import REPORT_FILES, list_runs, load_run
from bench.store import COMPLETE, FAILED, REPORTING, RUNNING, PredictionCache, read_json

ROOT = Path(__file__).resolve().parents[1]
MINI = str(ROOT / "tests" / "fixtures" / "mini")
RUN = ["run", MINI, "--dtype", "float32", "--n-boot", "50"]
FIXTURE = ROOT / "tests" / "fixtures" / "report_runs" / "mini" / "20261128-051505-b417"


class Killed(BaseException):
    """Stands in for SIGKILL: no `except Exception` handler can tidy up after it."""


@pytest.fixture()
def folders(tmp_path, monkeypatch):
    """Private results and cache folders, as `bench` reads them from the environment."""
    monkeypatch.setenv("TRIDENT_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TRIDENT_DEBUG", raising=False)
    return tmp_path


def only_run(tmp_path: Path) -> Path:
    runs = [r.path for r in list_runs(tmp_path / "results")]
    assert len(runs) == 1, runs
    return runs[0]


def error_lines(capsys) -> list[str]:
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return [line for line in err.splitlines() if line.startswith("error")]


def no_temp_files(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")], "a temp file was left"


def disk_full_on(monkeypatch, hit) -> None:
    """os.replace fails with ENOSPC for destinations `hit(path)` accepts: the atomic writer's last step,
    so the file being written is exactly the one a full disk would have cut."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if hit(Path(dst)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


# ---- a kill while the report is written ----


def test_a_kill_while_reporting_leaves_an_unfinished_run_that_bench_report_finishes(folders, monkeypatch, capsys):
    real_write = bench.report.write_report

    def killed_midway(run, query_volume=None):
        bench.report.atomic_write_text(run.run_dir / "report.md", "half a report\n")
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(bench.report, "write_report", killed_midway)
        with pytest.raises(Killed):
            main(RUN)
    run_dir = only_run(folders)
    assert read_json(run_dir / "run.json")["status"] == REPORTING
    assert (run_dir / "scores.json").is_file() and not (run_dir / "report.html").exists()

    capsys.readouterr()
    assert main(["ls", "--runs"]) == 0
    out = capsys.readouterr().out
    assert "reporting" in out and "1 run directories, 1 unfinished" in out
    [listed] = list_runs(folders / "results")
    assert listed.note == ("every cell is scored but the report was never finished: "
                           f"`bench report {run_dir}` finishes it")

    assert main(["compare", str(run_dir)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the note is wrapped to the terminal's width
    assert (f"is unfinished (run.json status 'reporting'): its report was never finished; `bench report {run_dir}` "
            "finishes it.") in out

    monkeypatch.setattr(bench.report, "write_report", real_write)
    assert main(["report", str(run_dir)]) == 0
    assert read_json(run_dir / "run.json")["status"] == COMPLETE
    assert all((run_dir / name).is_file() for name in REPORT_FILES)
    assert "half a report" not in (run_dir / "report.md").read_text()
    capsys.readouterr()
    main(["ls", "--runs"])
    assert "0 unfinished" in capsys.readouterr().out
    no_temp_files(folders)


def test_a_run_stopped_while_predicting_is_refused_by_report_and_compare(folders, capsys):
    assert main(RUN) == 0
    run_dir = only_run(folders)
    record = read_json(run_dir / "run.json")
    assert record["status"] == COMPLETE and list(record)[0] == "status"
    (run_dir / "run.json").write_text(json.dumps({**record, "status": RUNNING}))  # as a SIGKILL leaves it
    capsys.readouterr()
    for command in (["report", str(run_dir)], ["compare", str(run_dir), str(run_dir)]):
        assert main(command) == 2
        [line] = error_lines(capsys)
        assert line == (f"error: {run_dir}: unfinished run: it stopped before its scores were saved (killed, out of "
                        "disk, or still running); rerun the same `bench run` (finished cells come from the cache)")
    main(["ls", "--runs"])
    assert "running" in capsys.readouterr().out


# ---- a full disk where the run's files go ----


def test_disk_full_before_any_cell_finished_leaves_no_run_directory(folders, monkeypatch, capsys):
    disk_full_on(monkeypatch, lambda p: "results" in p.parts and p.suffix == ".jsonl")
    assert main(RUN) == 2
    [line] = error_lines(capsys)
    assert "disk full while writing " in line and "predictions/zero-shot/sentiment.jsonl" in line
    assert "MiB free there" in line and "--results DIR" in line and "TRIDENT_RESULTS" in line
    assert not any((folders / "results").rglob("*")), "a run directory was left"
    no_temp_files(folders)


def test_disk_full_after_the_cells_keeps_them_in_a_run_marked_failed(folders, monkeypatch, capsys):
    with monkeypatch.context() as m:
        disk_full_on(m, lambda p: p.name == "scores.json")
        assert main(RUN) == 2
    [line] = error_lines(capsys)
    run_dir = only_run(folders)
    assert line.startswith(f"error: disk full while writing {run_dir / 'scores.json'} (")
    record = read_json(run_dir / "run.json")
    assert record["status"] == FAILED and record["error"].startswith("ResourceError: disk full while writing")
    assert len(record["cells"]) == 7 and len(list((run_dir / "predictions").rglob("*.jsonl"))) == 7
    assert main(["report", str(run_dir)]) == 2
    [line] = error_lines(capsys)
    assert "unfinished run: it failed before its scores were saved (ResourceError: disk full" in line
    main(["ls", "--runs"])
    assert "failed" in capsys.readouterr().out
    assert main(RUN) == 0  # the rerun, with room again: every cell from the cache
    complete = [r for r in list_runs(folders / "results") if r.complete]
    assert len(complete) == 1 and all(c["cached"] for c in read_json(complete[0].path / "run.json")["cells"])
    no_temp_files(folders)


def test_disk_full_while_reporting_names_the_figure_and_leaves_no_half_png(folders, monkeypatch, capsys):
    disk_full_on(monkeypatch, lambda p: p.suffix == ".png")
    assert main(RUN) == 2
    [line] = error_lines(capsys)
    run_dir = only_run(folders)
    assert line.startswith(f"error: disk full while writing {run_dir / 'plots' / 'sentiment-bars.png'} (")
    assert read_json(run_dir / "run.json")["status"] == REPORTING
    assert not list(run_dir.rglob("*.png"))
    no_temp_files(folders)


def test_a_model_that_fails_to_load_leaves_no_run_directory(folders, monkeypatch, capsys):
    import bench.runner
    from bench.errors import ModelError

    def cannot_load(*args, **kwargs):
        raise ModelError("the model cannot be loaded")

    monkeypatch.setattr(bench.runner, "load_model", cannot_load)
    assert main(RUN) == 2
    assert error_lines(capsys) == ["error: the model cannot be loaded"]
    assert not any((folders / "results").rglob("*")), "an empty run directory was left"


# ---- a full disk where the cache goes ----


def test_disk_full_in_the_prediction_cache_names_it_and_trident_cache(folders, monkeypatch, capsys):
    disk_full_on(monkeypatch, lambda p: "cache" in p.parts)
    assert main(RUN) == 2
    [line] = error_lines(capsys)
    cache = folders / "cache"
    assert line.startswith(f"error: disk full while writing {cache / 'predictions'}/")
    assert f"anything under the trident cache {cache} can be deleted" in line and "set TRIDENT_CACHE" in line
    assert not any((folders / "results").rglob("*")), "a run directory was left"
    no_temp_files(folders)


def test_disk_full_in_the_embedding_cache_names_the_file(folders, monkeypatch):
    import numpy as np

    from bench.errors import ResourceError
    from bench.retrieval.embedding import EmbeddingCache

    disk_full_on(monkeypatch, lambda p: p.name == "vectors.npy")
    cache = EmbeddingCache(folders / "cache" / "embeddings")
    with pytest.raises(ResourceError, match=r"disk full while writing .*/embeddings/k/vectors\.npy .*TRIDENT_CACHE"):
        cache.put("k", np.zeros((2, 3), dtype=np.float32), ["a", "b"], {"embedder": "e"})
    no_temp_files(folders)


# ---- the same on a real small disk, where the machine allows mounting one ----


def on_small_disk(tmp_path: Path, which: str, size: str) -> tuple[int, str, Path]:
    """`bench run` of the mini suite with `which` ('results' or 'cache') on a tmpfs of `size`, in a
    private mount namespace; returns the exit code, stderr and a copy of what was left on the disk."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare: cannot mount a small disk here")
    disk, copy = tmp_path / "disk", tmp_path / "left"
    disk.mkdir()
    copy.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRIDENT_RESULTS": str(tmp_path / "results"),
           "TRIDENT_CACHE": str(tmp_path / "cache"), "TRIDENT_DEBUG": ""}
    env["TRIDENT_RESULTS" if which == "results" else "TRIDENT_CACHE"] = str(disk)
    script = ('mount -t tmpfs -o size="$0" tmpfs "$1" || exit 99; "$2" -m bench run "$4" --dtype float32 '
              '--n-boot 50; rc=$?; cp -a "$1/." "$3/"; exit $rc')
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, size, str(disk),
                           sys.executable, str(copy), MINI], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    if done.returncode == 99 or "unshare:" in done.stderr:
        pytest.skip(f"cannot mount a small disk here: {done.stderr.strip()[:200]}")
    return done.returncode, done.stderr, copy


def _one_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1, stderr
    return " ".join(stderr[stderr.index("error:"):].split())  # rich wraps long lines


@pytest.mark.parametrize("which,hint", [("results", "--results DIR"), ("cache", "set TRIDENT_CACHE")])
def test_a_real_full_disk(tmp_path, which, hint):
    code, stderr, left = on_small_disk(tmp_path, which, "16k")
    assert code == 2, stderr
    line = _one_error(stderr)
    assert f"disk full while writing {tmp_path / 'disk'}/" in line and hint in line, line
    no_temp_files(left)
    for run in list_runs(left) if which == "results" else list_runs(tmp_path / "results"):
        assert not run.complete  # a run left behind says it is unfinished


# ---- two runs sharing one cache ----


def test_two_concurrent_runs_sharing_a_cache_both_finish_with_identical_scores(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRIDENT_RESULTS": str(tmp_path / "results"),
           "TRIDENT_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-m", "bench", *RUN], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    runs = list_runs(tmp_path / "results")
    assert len(runs) == 2 and all(r.complete for r in runs)
    first, second = (r.path for r in runs)
    assert read_json(first / "scores.json") == read_json(second / "scores.json")
    for f in (first / "predictions").rglob("*.jsonl"):
        outputs = [[(r["id"], r["output"]) for r in map(json.loads, p.read_text().splitlines())]
                   for p in (f, second / f.relative_to(first))]
        assert outputs[0] == outputs[1]
    cache = PredictionCache(tmp_path / "cache")
    for cell in read_json(first / "run.json")["cells"]:
        hit = cache.get(cell["cache_key"])
        assert hit is not None and len(hit[0]) == cell["n"]
    no_temp_files(tmp_path)


# ---- runs from before the status field ----


def test_runs_without_a_status_load_as_complete_with_their_report_and_as_reporting_without(tmp_path):
    assert "status" not in read_json(FIXTURE / "run.json")
    assert load_run(FIXTURE).status == COMPLETE
    copy = tmp_path / "results" / "mini" / FIXTURE.name
    shutil.copytree(FIXTURE, copy, ignore=shutil.ignore_patterns(*REPORT_FILES))
    assert load_run(copy).status == REPORTING
    assert [(r.status, r.note.split(":")[0]) for r in list_runs(tmp_path / "results")] == [
        (REPORTING, "every cell is scored but the report was never finished")]
    (tmp_path / "results" / "mini" / "20200101-000000-dead").mkdir()  # what failed runs used to leave
    assert [r.kind for r in list_runs(tmp_path / "results")] == ["?", "run"]


def test_atomic_writes_give_files_the_usual_permissions(tmp_path):
    """A temp file is created private (0600); the file it becomes must be readable like any other
    the user writes (results are shared and published)."""
    import os

    from bench.store import atomic_write_text

    path = tmp_path / "report.md"
    atomic_write_text(path, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
