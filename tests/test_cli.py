import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from gankit.cli import main

from conftest import toy_config

TOY = ["--data", "ring8", "--set", "data.n_samples=3000", "generator.hidden=16", "discriminator.hidden=16",
       "train.progress=none", "train.sample_every=10", "train.checkpoint_every=10", "train.log_every=5"]


def test_help_explains_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for cmd in ("train", "resume", "sample", "list"):
        assert cmd in text
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for opt in ("--method", "--data", "--steps", "--out", "--seed", "--set"):
        assert opt in text


def test_list_shows_registries_and_parameters(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for name in ("gan", "ring8", "grid25", "swissroll", "gaussian1d", "mixture", "fashion_mnist", "mnist",
                 "folder", "array", "dcgan", "mlp", "minimax", "nonsaturating"):
        assert f"  {name} " in text
    assert "d_steps: int = 1" in text


def test_list_shows_objective_parameters_and_how_to_set_them(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    objectives = text.split("\nobjectives:")[1].split("\n\n")[0]
    assert "method.objective=NAME method.objective.PARAM=VALUE" in objectives.splitlines()[0]
    fgan_gan = objectives.split("  fgan_gan ")[1].split("\n  fgan_hellinger ")[0]
    assert "generator: one of 'saddle', 'alternative' = 'saddle'" in fgan_gan
    assert "objective: objective NAME or {name: NAME, PARAM: VALUE} (see objectives) = 'nonsaturating'" in text
    for title in ("methods", "data", "generators", "discriminators", "features", "metrics"):
        assert f"\n{title}:  (" in "\n" + text


def test_objective_parameters_from_the_command_line(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *TOY, "--steps", "2", "--out", str(out), "--set", "method.objective=fgan_kl",
                 "method.objective.generator=alternative"]) == 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["method"]["objective"] == {"name": "fgan_kl", "generator": "alternative"}


def test_an_unknown_objective_parameter_exits_2_naming_the_closest(tmp_path, capsys):
    assert main(["train", *TOY, "--out", str(tmp_path / "x"), "--set",
                 "method.objective={name: fgan_kl, generater: alternative}"]) == 2
    assert "method.objective.generater: unknown parameter of objective 'fgan_kl' (did you mean 'generator'?)" \
        in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_train_sample_and_the_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TOY, "--steps", "20", "--seed", "4", "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"config.yaml", "checkpoints", "samples", "metrics.jsonl", "loss.png"} <= names
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["train"]["steps"] == 20 and cfg["train"]["seed"] == 4 and cfg["generator"]["name"] == "mlp"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15, 20] and all("d_loss" in r and "g_loss" in r for r in rows)
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_00000010.npz", "step_00000010.png",
                                                                   "step_00000020.npz", "step_00000020.png"]

    assert main(["sample", str(out), "--n", "50", "--out", str(tmp_path / "s.npz")]) == 0
    arr = np.load(tmp_path / "s.npz")["x"]
    assert arr.shape == (50, 2) and arr.dtype == np.float32
    assert main(["sample", str(out), "--n", "50", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    # the same seed gives the same samples
    main(["sample", str(out), "--n", "50", "--out", str(tmp_path / "t.npz")])
    np.testing.assert_array_equal(np.load(tmp_path / "t.npz")["x"], arr)


def test_image_samples_as_uint8(tmp_path, image_npz):
    out = tmp_path / "run"
    assert main(["train", "--data", "array", "--steps", "2", "--out", str(out), "--set", f"data.path={image_npz}",
                 "generator.width=4", "discriminator.width=4", "train.batch_size=8", "train.progress=none"]) == 0
    assert main(["sample", str(out), "--n", "5", "--out", str(tmp_path / "s.npz")]) == 0
    arr = np.load(tmp_path / "s.npz")["x"]
    assert arr.shape == (5, 3, 16, 16) and arr.dtype == np.uint8


def test_user_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["train", *TOY, "--set", "train.stesp=3", "--out", str(tmp_path / "x")]) == 2
    assert "did you mean 'steps'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()        # nothing is created for a bad config

    out = tmp_path / "run"
    assert main(["train", *TOY, "--steps", "10", "--out", str(out)]) == 0
    assert main(["train", *TOY, "--steps", "10", "--out", str(out)]) == 2
    assert f"gankit resume {out}" in capsys.readouterr().err

    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["train", *TOY, "--steps", "10", "--out", str(blocker / "run")]) == 2
    assert "cannot write to the run directory" in capsys.readouterr().err

    assert main(["resume", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["sample", str(out), "--out", str(tmp_path / "s.jpg")]) == 2
    assert ".png" in capsys.readouterr().err


def test_resume_refuses_an_incompatible_config(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TOY, "--steps", "10", "--out", str(out)]) == 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["generator"]["hidden"] = 64
    cfg["train"]["steps"] = 20
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert "changed: generator.hidden" in err and "train.steps" not in err.split("changed:")[1].split(")")[0]


def test_config_file_with_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(toy_config(tmp_path / "run", steps=10)))
    assert main(["train", str(path), "--set", "method.d_steps=2"]) == 0
    cfg = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert cfg["method"]["d_steps"] == 2 and cfg["train"]["steps"] == 10


def test_experiment_command(tmp_path, capsys):
    assert main(["experiment", "shifted-copeis"]) == 2
    assert "did you mean 'shifted-copies'" in capsys.readouterr().err
    assert main(["list"]) == 0
    assert "shifted-copies" in capsys.readouterr().out
    assert main(["experiment", "shifted-copies", "--out", str(tmp_path), "--n-train", "2000",
                 "--n-copies", "40"]) == 0
    assert (tmp_path / "shifted_copies.json").is_file() and (tmp_path / "shifted_copies.png").is_file()


def test_huge_pages_are_preferred_unless_the_environment_chose(monkeypatch):
    from gankit.train import runtime

    monkeypatch.delenv(runtime.HUGE_PAGES, raising=False)
    monkeypatch.setattr(runtime, "_huge_pages_set_here", False)
    assert runtime.prefer_huge_pages() is True
    assert os.environ[runtime.HUGE_PAGES] == "1"
    assert runtime.HUGE_PAGES not in runtime.plain_environment()   # the baseline's process goes without
    assert runtime.prefer_huge_pages() is False                     # already chosen

    monkeypatch.setenv(runtime.HUGE_PAGES, "0")                     # the user's choice stays
    monkeypatch.setattr(runtime, "_huge_pages_set_here", False)
    assert runtime.prefer_huge_pages() is False
    assert os.environ[runtime.HUGE_PAGES] == "0" and runtime.plain_environment()[runtime.HUGE_PAGES] == "0"


def test_the_command_switches_huge_pages_on_before_pytorch_reads_the_switch():
    """In a fresh process that goes through the command's entry point, PyTorch's CPU
    allocator backs a large tensor with huge pages; without it, it does not."""
    setting = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not setting.exists() or "[never]" in setting.read_text() or not Path("/proc/self/smaps_rollup").exists():
        pytest.skip("this kernel offers no transparent huge pages (see /sys/kernel/mm/transparent_hugepage)")
    probe = ("import sys, torch\n"
             "from gankit.cli import main\n"
             "if sys.argv[1] == 'command':\n"
             "    main(['list'])\n"
             "x = torch.ones(32, 1024, 1024)\n"
             "kb = [int(l.split()[1]) for l in open('/proc/self/smaps_rollup') if l.startswith('AnonHugePages')]\n"
             "print('HUGE', kb[0])\n")
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    huge = {}
    for how in ("command", "import_only"):
        out = subprocess.run([sys.executable, "-c", probe, how], capture_output=True, text=True, env=env,
                             check=True)
        huge[how] = int(out.stdout.split("HUGE")[-1])
    assert huge["command"] >= 64 * 1024, huge
    if "[madvise]" in setting.read_text():       # only regions asked for get huge pages
        assert huge["import_only"] == 0, huge
