"""The deep peers (IFCNN ...) against the authors' own outputs, and their weights: safe loading, the cache,
and ``bench weights fetch`` against a local HTTP server (127.0.0.1 only; never the network)."""
from __future__ import annotations

import hashlib
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import methods
from bench.cli import main
from common.errors import UserError
from common.io import read_image
from bench.studies.peers_parity import TASKS, parity
from methods import pretrained
from methods.densefuse import l1_fusion
from methods.ifcnn import IFCNN, opencv_rgb_to_grey
from tests.conftest import HARVARD, SHARED

PEERS = SHARED / "peers"


@pytest.fixture
def peer_cache(monkeypatch) -> Path:
    """The shared copies of the published weights, used as the per-user cache (the same loader as a user's)."""
    weights = PEERS / "weights"
    for needed in (weights, PEERS / "outputs", HARVARD):
        if not needed.is_dir():
            pytest.skip(f"{needed} not found (the deep peers' weights and outputs, and the Harvard data)")
    monkeypatch.setenv(pretrained.CACHE_ENV, str(weights))
    return weights


@pytest.fixture
def empty_cache(monkeypatch, tmp_path) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv(pretrained.CACHE_ENV, str(cache))
    return cache


# --- parity with the authors' outputs ---------------------------------------------------------------------

# within one grey level on at least 99.9 % of pixels (issue #17)
GREY_LEVEL_PARITY = ["ifcnn", "densefuse", "matr"]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("method", GREY_LEVEL_PARITY)
def test_matches_the_authors_outputs_on_two_pairs(peer_cache, method, task):
    result = parity(method, task, 2, SHARED)
    assert result.within_one >= 0.999, (method, task, result)


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("method", GREY_LEVEL_PARITY)
def test_matches_the_authors_outputs_on_all_24_pairs(peer_cache, method, task):
    result = parity(method, task, None, SHARED)
    assert result.pairs == 24 and result.within_one >= 0.999, (method, task, result)


# GeSeNet samples Gumbel noise (the authors' script runs it in train mode): at least 40 dB PSNR (issue #17)
@pytest.mark.parametrize("task", TASKS)
def test_gesenet_is_within_40_db_of_the_authors_outputs_on_two_pairs(peer_cache, task):
    result = parity("gesenet", task, 2, SHARED)
    assert result.lowest_psnr >= 40, (task, result)


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_gesenet_is_within_40_db_of_the_authors_outputs_on_all_24_pairs(peer_cache, task):
    result = parity("gesenet", task, None, SHARED)
    assert result.pairs == 24 and result.lowest_psnr >= 40, (task, result)


def test_gesenet_seed_sets_the_gumbel_noise(peer_cache):
    a = read_image(HARVARD / "CT-MRI" / "test" / "CT" / "2004.png")
    b = read_image(HARVARD / "CT-MRI" / "test" / "MRI" / "2004.png")
    first, again = methods.fuse(a, b, "gesenet"), methods.fuse(a, b, "gesenet", seed=0)
    other = methods.fuse(a, b, "gesenet", seed=1)
    np.testing.assert_array_equal(first, again)
    psnr = 10 * np.log10(1 / np.mean((first - other) ** 2))
    assert 40 < psnr < 70, psnr          # another sample of the masks: close, not equal


# --- IFCNN -------------------------------------------------------------------------------------------------

def test_ifcnn_schemes_use_their_own_snapshots(peer_cache):
    a = read_image(HARVARD / "CT-MRI" / "test" / "CT" / "2004.png")
    b = read_image(HARVARD / "CT-MRI" / "test" / "MRI" / "2004.png")
    fused = {s: methods.fuse(a, b, "ifcnn", scheme=s) for s in ("max", "sum", "mean")}
    # the element-wise rules are symmetric: swapping the slots changes nothing beyond float rounding
    assert np.mean(np.abs(methods.fuse(b, a, "ifcnn") - fused["max"]) > 1.5 / 255) < 1e-4
    for one, other in (("max", "sum"), ("max", "mean"), ("sum", "mean")):
        assert np.mean(np.abs(fused[one] - fused[other])) > 2 / 255, (one, other)
    # an explicit weights file is the same as the cached one
    same = methods.fuse(a, b, "ifcnn", scheme="sum", weights=str(peer_cache / "ifcnn" / "IFCNN-SUM.pth"))
    np.testing.assert_array_equal(same, fused["sum"])


def test_opencv_grey_conversion_is_the_fixed_point_rounding():
    # values worked by hand: (4899 R + 9617 G + 1868 B + 8192) >> 14
    rgb = np.array([[[255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], dtype=np.uint8)
    np.testing.assert_array_equal(opencv_rgb_to_grey(rgb)[0], [255, 76, 150, 29, 18])


def test_ifcnn_complexity_counts_both_feature_passes():
    info = methods.get_method("ifcnn").complexity()
    # conv1 7x7x3->64 and conv2 3x3x64->64 twice, conv3 3x3x64->64 and conv4 1x1x64->3 once, at 256x256
    per_pixel = 2 * (7 * 7 * 3 * 64 + 9 * 64 * 64) + 9 * 64 * 64 + 64 * 3
    assert info["macs"] == per_pixel * 256 * 256
    assert info["parameters"] == sum(p.numel() for p in IFCNN().parameters())


# --- DenseFuse ---------------------------------------------------------------------------------------------

def test_densefuse_l1_rule_weights_by_block_averaged_activity():
    rng = torch.Generator().manual_seed(0)
    phi = torch.rand(1, 64, 12, 12, generator=rng) + 0.1
    silent = torch.zeros_like(phi)
    for radius in (0, 1):
        # all activity in one source: that source's features pass unchanged (addition would halve them)
        torch.testing.assert_close(l1_fusion([phi, silent], radius), phi)
        torch.testing.assert_close(l1_fusion([silent, silent], radius), silent)
    other = torch.rand(1, 64, 12, 12, generator=rng)
    c1, c2 = phi.abs().sum(1, keepdim=True), other.abs().sum(1, keepdim=True)
    torch.testing.assert_close(l1_fusion([phi, other], 0), (c1 * phi + c2 * other) / (c1 + c2))
    # r = 1: the weights come from 3x3 block sums of the activity (Eq. 8), not from single pixels
    box = torch.ones(1, 1, 3, 3)
    s1, s2 = F.conv2d(c1, box, padding=1), F.conv2d(c2, box, padding=1)
    torch.testing.assert_close(l1_fusion([phi, other], 1), (s1 * phi + s2 * other) / (s1 + s2))


def test_densefuse_l1_and_addition_agree_on_identical_sources(peer_cache):
    a = read_image(HARVARD / "CT-MRI" / "test" / "MRI" / "2004.png")
    b = read_image(HARVARD / "CT-MRI" / "test" / "CT" / "2004.png")
    np.testing.assert_allclose(methods.fuse(a, a, "densefuse", strategy="l1"), methods.fuse(a, a, "densefuse"),
                               atol=1.01 / 255)
    assert np.mean(np.abs(methods.fuse(a, b, "densefuse", strategy="l1") - methods.fuse(a, b, "densefuse"))) > 1 / 255


# --- loading the weights --------------------------------------------------------------------------------

def test_missing_weights_name_the_fetch_command_and_url(empty_cache):
    a = np.random.default_rng(0).random((32, 32), dtype=np.float32)
    with pytest.raises(UserError) as err:
        methods.fuse(a, a[::-1].copy(), "ifcnn")
    message = str(err.value)
    assert "python -m bench weights fetch ifcnn" in message
    assert pretrained.published("ifcnn", "IFCNN-MAX.pth").url in message and "\n" not in message


def test_a_state_dict_of_another_architecture_names_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.conv.weight": torch.zeros(16, 1, 3, 3)}, path)
    with pytest.raises(UserError, match=r"not a state dict of IFCNN: missing conv1\.weight, .*unexpected "
                                        r"encoder\.conv\.weight"):
        pretrained.load_state_dict(IFCNN(), path, "IFCNN")


def test_a_state_dict_with_a_wrong_shape_is_refused(tmp_path):
    state = IFCNN().state_dict()
    state["conv4.weight"] = torch.zeros(1, 64, 1, 1)
    torch.save(state, tmp_path / "grey.pth")
    with pytest.raises(UserError, match=r"conv4\.weight has shape \(1, 64, 1, 1\), expected \(3, 64, 1, 1\)"):
        pretrained.load_state_dict(IFCNN(), tmp_path / "grey.pth", "IFCNN")


def test_a_truncated_file_is_one_line(tmp_path):
    torch.save(IFCNN().state_dict(), tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "half.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated or corrupt"):
        pretrained.load_state_dict(IFCNN(), tmp_path / "half.pth", "IFCNN")


class _RunsCode:
    """Pickles as a call of os.system: full unpickling would run the command."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_a_pickle_that_carries_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"conv1.weight": _RunsCode(f"touch {marker}")}, tmp_path / "evil.pth")
    with pytest.raises(UserError, match="refused: the pickle references Python objects"):
        pretrained.load_state_dict(IFCNN(), tmp_path / "evil.pth", "IFCNN")
    assert not marker.exists()


# --- fetching into the cache ------------------------------------------------------------------------------

class _Files(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` (path -> bytes); a path in ``halfway`` announces its full length, sends half and
    closes the connection."""
    files: dict[str, bytes] = {}
    halfway: set[str] = set()

    def do_GET(self):
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if self.path in self.halfway else data)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1 and a function that publishes bytes under a path on it."""
    class Handler(_Files):
        files, halfway = {}, set()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield base, Handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _entry(base: str, data: bytes, sha: str | None = None) -> pretrained.PublishedWeights:
    return pretrained.PublishedWeights("ifcnn", "IFCNN-MAX.pth", f"{base}/snapshots/IFCNN-MAX.pth",
                                       sha or hashlib.sha256(data).hexdigest())


def test_fetch_downloads_checks_and_reuses(server, empty_cache):
    base, handler = server
    data = os.urandom(300_000)
    handler.files["/snapshots/IFCNN-MAX.pth"] = data
    entry = _entry(base, data)
    path = pretrained.fetch(entry)
    assert path == empty_cache / "ifcnn" / "IFCNN-MAX.pth" and path.read_bytes() == data
    del handler.files["/snapshots/IFCNN-MAX.pth"]           # a second fetch checks the copy, no download
    assert pretrained.fetch(entry) == path
    path.write_bytes(data[:-1] + b"x")
    with pytest.raises(UserError, match="does not match the published"):
        pretrained.fetch(entry)


def test_fetch_with_a_checksum_mismatch_leaves_nothing(server, empty_cache):
    base, handler = server
    handler.files["/snapshots/IFCNN-MAX.pth"] = b"not the published file"
    with pytest.raises(UserError, match="not the published"):
        pretrained.fetch(_entry(base, b"the published file"))
    assert [p for p in empty_cache.rglob("*") if p.is_file()] == []


def test_fetch_that_fails_halfway_leaves_no_partial_file(server, empty_cache):
    base, handler = server
    data = os.urandom(200_000)
    handler.files["/snapshots/IFCNN-MAX.pth"] = data
    handler.halfway.add("/snapshots/IFCNN-MAX.pth")
    with pytest.raises(UserError, match="nothing was written") as err:
        pretrained.fetch(_entry(base, data))
    assert "\n" not in str(err.value)
    assert [p for p in empty_cache.rglob("*") if p.is_file()] == []


def test_weights_fetch_command_uses_a_mirror_and_the_published_sums(server, empty_cache, capsys):
    base, handler = server
    for name in ("IFCNN-MAX.pth", "IFCNN-SUM.pth", "IFCNN-MEAN.pth"):
        handler.files[f"/mirror/ifcnn/{name}"] = b"wrong bytes"
    assert main(["weights", "fetch", "ifcnn", "--mirror", f"{base}/mirror"]) == 2
    assert "not the published" in capsys.readouterr().err
    assert main(["weights", "fetch", "nosuchmethod"]) == 2
    assert main(["weights", "fetch", "ifcnn", "--mirror", f"{base}/absent"]) == 2
    assert "HTTP 404" in capsys.readouterr().err
    assert [p for p in empty_cache.rglob("*") if p.is_file()] == []


def test_weights_fetch_command_fills_the_cache_from_a_mirror_of_the_real_files(server, empty_cache, capsys):
    weights = PEERS / "weights"
    if not weights.is_dir():
        pytest.skip(f"deep peers' weights not found at {weights}")
    base, handler = server
    for entry in pretrained.weights_for("ifcnn"):
        handler.files[f"/m/{entry.relative_path.as_posix()}"] = (weights / entry.relative_path).read_bytes()
    assert main(["weights", "fetch", "ifcnn", "--mirror", f"{base}/m"]) == 0
    assert capsys.readouterr().out.count("SHA-256 ok") == 3
    for entry in pretrained.weights_for("ifcnn"):
        assert pretrained.sha256_of(empty_cache / entry.relative_path) == entry.sha256
