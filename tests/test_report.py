"""`gankit report` and `gankit serve`: what the page is made from, and the page itself.

The browser tests (the second half) open the pages in headless Chromium through selenium as a
person would: no console errors, the sample slider changes the picture, the curves render, the
2-D animation plays and the live page follows a training run. They need Debian's `chromium`
and `chromium-driver` (`make test` installs them); without them they are skipped, except under
CI, where a missing browser is a failure. Screenshots go to `test-artifacts/` (or
$GANKIT_TEST_ARTIFACTS).
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.report import page as P
from gankit.report.serve import ReportServer
from gankit.report.snapshot import GRID, load_points

from conftest import toy_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    """A 300-step GAN on ring8 with a sample picture (and 2-D snapshot) every 50 steps, evaluated once."""
    out = tmp_path_factory.mktemp("report") / "ring"
    cfg = toy_config(out, steps=300)
    cfg["train"]["sample_every"] = 50
    gankit.train(cfg)
    assert main(["eval", str(out), "--n", "500", "--metrics", "fid,modes", "--reference"]) == 0
    return out


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """The default run (DCGAN on Fashion-MNIST), shortened: 30 steps, pictures every 10."""
    out = tmp_path_factory.mktemp("report") / "default"
    assert main(["train", "--steps", "30", "--out", str(out), "--set", "train.sample_every=10",
                 "train.batch_size=16", "train.log_every=5", "train.progress=none", "runtime.threads=1"]) == 0
    return out


# ------------------------------------------------------------------------ what the page is made of
def test_snapshot_holds_the_discriminators_surface(ring_run):
    """The last snapshot's surface is the trained discriminator's score on its grid, and its
    points are the run's generated points over the real ones."""
    snaps = sorted((ring_run / "samples").glob("step_*.npz"))
    assert [p.name for p in snaps] == [f"step_{s:08d}.npz" for s in range(50, 301, 50)]
    z = load_points(snaps[-1])
    assert z["x"].shape == (2000, 2) and z["real"].shape == (2000, 2)
    assert z["surface"].shape == (GRID, GRID)
    run = gankit.load_run(ring_run)
    gx, gy = np.meshgrid(z["grid_x"], z["grid_y"])
    grid = torch.from_numpy(np.stack([gx, gy], -1).reshape(-1, 2).astype(np.float32))
    with torch.no_grad():
        direct = run.method.discriminator(grid).reshape(GRID, GRID).double().numpy()
    np.testing.assert_allclose(z["surface"], direct, rtol=1e-5, atol=1e-6)
    # the grid covers the data and the samples
    for pts in (z["real"], z["x"]):
        assert z["grid_x"][0] <= pts[:, 0].min() and pts[:, 0].max() <= z["grid_x"][-1]
        assert z["grid_y"][0] <= pts[:, 1].min() and pts[:, 1].max() <= z["grid_y"][-1]


def test_critic_of_energy_and_loss_methods_is_minus_their_energy(tmp_path):
    for method in ("ebgan", "loss_sensitive"):
        cfg = toy_config(tmp_path / method, steps=2, method__name=method)
        if method == "ebgan":
            cfg["discriminator"] = {"name": "auto"}
        run = gankit.train(cfg)
        x = torch.randn(7, 2)
        D = run.method.discriminator
        with torch.no_grad():
            want = -(D.energy(x) if method == "ebgan" else D(x).abs()).reshape(7)
        torch.testing.assert_close(run.method.critic(x), want.float())


def test_spaced_keeps_first_and_last():
    items = list(range(100))
    picked = P._spaced(items, 7)
    assert len(picked) == 7 and picked[0] == 0 and picked[-1] == 99
    assert picked == sorted(picked)
    assert P._spaced(items[:5], 7) == items[:5]


def test_eval_keeps_results_and_the_reference_with_the_run(ring_run):
    files = list((ring_run / "evals").glob("*.json"))
    assert [f.name for f in files] == ["step_00000300_test.json"]
    e = json.loads(files[0].read_text())
    assert e["step"] == 300 and e["n"] == 500
    assert set(e["metrics"]) >= {"fid", "modes"} and set(e["reference"]) >= {"fid", "modes"}
    # the data against itself: all 8 modes, a far lower FID than a 300-step generator's
    assert e["reference"]["modes"] == 8
    assert e["reference"]["fid"] < e["metrics"]["fid"] and e["reference"]["fid"] < 0.01


def test_save_eval_merges_metrics_of_the_same_step(tmp_path):
    base = {"step": 5, "n": 100, "split": "test", "features": "auto"}
    P.save_eval(tmp_path, {**base, "metrics": {"fid": 2.0}})
    path = P.save_eval(tmp_path, {**base, "metrics": {"kid": 0.1}, "reference": {"fid": 0.5}})
    got = json.loads(path.read_text())
    assert got["metrics"] == {"fid": 2.0, "kid": 0.1} and got["reference"] == {"fid": 0.5}
    other = P.save_eval(tmp_path, {**base, "n": 200, "metrics": {"is": 3.0}})   # other n: replaced
    assert json.loads(other.read_text())["metrics"] == {"is": 3.0}


def test_reference_refuses_the_training_split(ring_run, capsys):
    assert main(["eval", str(ring_run), "--n", "200", "--metrics", "fid", "--split", "train", "--reference"]) == 2
    assert "--split test" in capsys.readouterr().err


def test_report_is_self_contained(ring_run, image_run, tmp_path):
    out = tmp_path / "page.html"
    assert main(["report", str(ring_run), "--out", str(out)]) == 0
    text = out.read_text()
    rec = P.collect(ring_run)
    assert len(rec.frames) == 6 and len(rec.points) == 6 and len(rec.evals) == 1
    assert "<script src=" not in text and "<link rel='stylesheet'" not in text
    assert "src='http" not in text and 'src="http' not in text
    assert text.count("data:image/png;base64,") >= 6
    assert "real data (reference)" in text and "anim-0" in text
    # the default run: its grids; one run writes report.html into the run by default
    assert main(["report", str(image_run)]) == 0
    assert (image_run / "report.html").is_file()
    assert len(P.collect(image_run).frames) == 3


def test_report_of_several_runs_compares_them(ring_run, image_run, tmp_path):
    out = tmp_path / "both.html"
    assert main(["report", str(ring_run), str(image_run), "--out", str(out)]) == 0
    text = out.read_text()
    assert "id='comparison'" in text and "compare-table" in text
    assert "id='run-0'" in text and "id='run-1'" in text
    assert "compare-0" in text   # d_loss and g_loss are logged by both: a curve with both runs


def test_max_frames_limits_what_is_inlined(ring_run):
    rec = P.collect(ring_run, max_frames=3)
    assert [f["step"] for f in rec.frames] == [50, 150, 300]   # indices 0, round(2.5) = 2, 5


def test_report_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "no config.yaml" in capsys.readouterr().err
    (tmp_path / "config.yaml").write_text("method: [unclosed\n")
    assert main(["report", str(tmp_path)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_report_max_frames_error(ring_run, capsys):
    assert main(["report", str(ring_run), "--max-frames", "1"]) == 2
    assert "--max-frames" in capsys.readouterr().err


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


def test_server_is_local_read_only_and_follows_the_run(ring_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(ring_run, run)
    server = ReportServer([run], port=0).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        status, kind, body = _get(server.url)
        assert status == 200 and kind.startswith("text/html") and b"fetch('state'" in body
        status, _, body = _get(server.url + "state")
        before = json.loads(body)
        assert before["steps"] == [300]
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(server.url, data=b"x", method="POST"), timeout=30)
        assert err.value.code == 405
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + "config.yaml", timeout=30)
        assert err.value.code == 404
        with open(run / "metrics.jsonl", "a") as f:   # the run logs a new step
            f.write(json.dumps({"step": 310, "d_loss": 1.0}) + "\n")
        after = json.loads(_get(server.url + "state")[2])
        assert after["steps"] == [310] and after["signature"] != before["signature"]
    finally:
        server.close()


def test_server_port_errors(ring_run, capsys):
    busy = ReportServer([ring_run], port=0)
    try:
        assert main(["serve", str(ring_run), "--port", str(busy.httpd.server_address[1])]) == 2
        assert "pick another --port" in capsys.readouterr().err
    finally:
        busy.close()
    assert main(["serve", str(ring_run), "--port", "70000"]) == 2
    assert main(["serve", str(ring_run), "--interval", "0"]) == 2


# --------------------------------------------------------------------------------- in a browser
def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if importlib.util.find_spec("selenium") is None:
        chromium = None
    if not (chromium and driver):
        if os.environ.get("CI"):
            pytest.fail("the browser tests need chromium, chromium-driver and selenium (`make test` installs them)")
        pytest.skip("chromium, chromium-driver or selenium is not installed (`make test` installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1300,1800",
                "--disable-gpu"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.fixture
def browser():
    d = _browser()
    d.set_page_load_timeout(120)
    yield d
    d.quit()


def _artifact(name: str) -> Path:
    folder = Path(os.environ.get("GANKIT_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def _errors(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _wait(predicate, timeout=60.0, every=0.25):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()


def _text(driver, element_id):
    """The text of an element, or None while the page is being reloaded."""
    from selenium.common.exceptions import WebDriverException

    try:
        return driver.find_element("id", element_id).text
    except WebDriverException:
        return None


def _open(driver, path: Path):
    driver.get(path.resolve().as_uri())
    assert _wait(lambda: driver.execute_script("return document.readyState") == "complete")


def test_page_in_a_browser_slider_and_curves(browser, image_run, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    out = tmp_path / "default.html"
    assert main(["report", str(image_run), "--out", str(out)]) == 0
    _open(browser, out)
    img = browser.find_element(By.ID, "frame-0")
    label = browser.find_element(By.ID, "step-0")
    assert label.text == "30"
    last_src = img.get_attribute("src")
    slider = browser.find_element(By.ID, "slider-0")
    slider.send_keys(Keys.HOME)             # as a person would: the keyboard on the slider
    assert _wait(lambda: label.text == "10")
    assert img.get_attribute("src") != last_src and img.get_attribute("src").startswith("data:image/png")
    assert browser.execute_script("return document.getElementById('frame-0').naturalWidth") > 0
    # the curves: Plotly drew an SVG line for every loss it was given
    n_lines = _wait(lambda: browser.execute_script(
        "return document.querySelectorAll('#curves-0-0 .scatterlayer .trace path.js-line').length"))
    assert n_lines == len(P._curve_keys(P.collect(image_run).rows)["losses"]) >= 2
    browser.save_screenshot(str(_artifact("report_default_run.png")))
    assert _errors(browser) == []


def test_page_in_a_browser_2d_animation_plays(browser, ring_run, tmp_path):
    from selenium.webdriver.common.by import By

    out = tmp_path / "ring.html"
    assert main(["report", str(ring_run), "--out", str(out)]) == 0
    assert "Plotly.animate(" not in out.read_text()     # no autoplay on load: only the play button animates
    _open(browser, out)
    assert _wait(lambda: browser.execute_script("var g = document.getElementById('anim-0'); "
                                                "return !!(g && g._fullLayout);"))
    shown = "return Array.from(document.getElementById('anim-0')._fullData[2].x).slice(0, 5);"
    first = browser.execute_script(shown)
    time.sleep(1.5)                           # nothing plays by itself: the page still shows the same step
    np.testing.assert_array_equal(browser.execute_script(shown), first)
    browser.execute_script("window.seen = []; document.getElementById('anim-0')"
                           ".on('plotly_animatingframe', function (e) { window.seen.push(e.name); });")
    play = [b for b in browser.find_elements(By.CSS_SELECTOR, "#anim-0 .updatemenu-button")
            if b.text.strip() == "play"]
    assert play, "the animation has a play button"
    play[0].click()
    seen = _wait(lambda: (lambda s: s if s and len(set(s)) >= 6 else None)(
        browser.execute_script("return window.seen;")), timeout=60)
    assert set(seen) == {str(s) for s in range(50, 301, 50)}       # every sample step was shown
    # after playing, the generated points shown are the last step's again, and other frames differed
    snaps = [load_points(p) for p in sorted((ring_run / "samples").glob("step_*.npz"))]
    assert not np.allclose(snaps[0]["x"][:5], snaps[-1]["x"][:5])
    assert _wait(lambda: np.allclose(browser.execute_script(
        "return Array.from(document.getElementById('anim-0')._fullData[2].x).slice(0, 5);"), snaps[-1]["x"][:5, 0]))
    np.testing.assert_allclose(first, snaps[-1]["x"][:5, 0], rtol=1e-6)
    browser.save_screenshot(str(_artifact("report_ring8.png")))
    assert _errors(browser) == []


def test_live_page_follows_a_training_run(browser, tmp_path):
    """A run at step 500 is served; it is then resumed to step 1,000 in another process, and the
    open page shows the new step by itself."""
    run = tmp_path / "live"
    c = toy_config(run, steps=500)
    c["train"].update(sample_every=500, log_every=100, checkpoint_every=500)
    gankit.train(c)
    server = ReportServer([run], port=0, interval_ms=500).start()
    try:
        browser.get(server.url)
        assert _wait(lambda: _text(browser, "step-0") == "500")
        assert _text(browser, "live") == "live: step 500"
        browser.execute_script("window.notReloaded = true;")
        done = subprocess.run([sys.executable, "-m", "gankit", "resume", str(run), "--steps", "1000"],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert _wait(lambda: _text(browser, "step-0") == "1000", timeout=120)
        assert browser.execute_script("return window.notReloaded === undefined;")   # the page reloaded itself
        assert _wait(lambda: _text(browser, "live") == "live: step 1000", timeout=30)
        assert int(browser.find_element("id", "slider-0").get_attribute("max")) == 1   # two sample steps now
        browser.save_screenshot(str(_artifact("report_live.png")))
        assert _errors(browser) == []
    finally:
        server.close()


def test_critic_of_a_packed_gan_and_that_looking_changes_nothing(tmp_path):
    """PacGAN's D judges packs: a point's score is that of a pack of its copies. Scoring leaves
    the networks' modes, batch statistics and the global random state as they were."""
    run = gankit.train(toy_config(tmp_path / "pack", steps=2, method__pack=2))
    m, D = run.method, run.method.discriminator
    x = torch.randn(5, 2)
    D.train()
    state = torch.get_rng_state()
    buffers = {k: v.clone() for k, v in D.state_dict().items()}
    got = m.critic(x)
    assert D.training and torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(v, D.state_dict()[k]) for k, v in buffers.items())
    D.eval()
    with torch.no_grad():
        want = D(torch.cat([x, x], 1)).reshape(5)
    torch.testing.assert_close(got, want)
