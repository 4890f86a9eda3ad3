# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""The synthetic motion set: time-reversal symmetry, reproducibility, and the files it writes."""

import importlib.util
import json

import numpy as np
import pytest

from omniclip_hf.motion_benchmark import motion_data as md

from .conftest import REPO_ROOT

FRAMES, SIZE = 8, 64


def _object_centroids(params: md.ClipParams, num_frames: int = FRAMES, size: int = SIZE) -> np.ndarray:
    """(T, 2) centre of the drawn object mask on each frame, in pixels (x, y)."""
    grid_y, grid_x = np.mgrid[0:size, 0:size]
    centroids = []
    for t in range(num_frames):
        mask = md.render_object_mask(md.object_state(params, t, num_frames), size)
        centroids.append([(mask * grid_x).sum() / mask.sum(), (mask * grid_y).sum() / mask.sum()])
    return np.array(centroids)


def _object_areas(params: md.ClipParams) -> np.ndarray:
    return np.array([md.render_object_mask(md.object_state(params, t, FRAMES), SIZE).sum() for t in range(FRAMES)])


def test_class_list_is_reversal_pairs_of_natural_names():
    assert len(md.CLASS_NAMES) >= 8
    assert set(md.CLASS_NAMES) == set(md.REVERSED_CLASS)
    for name in md.CLASS_NAMES:
        partner = md.REVERSED_CLASS[name]
        assert partner != name and md.REVERSED_CLASS[partner] == name
        assert name == name.strip().lower() and "_" not in name  # reads well in "a video of {} action"


@pytest.mark.parametrize("forward, backward", md.REVERSAL_PAIRS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_partner_clip_from_same_seed_is_exact_time_reversal(forward, backward, seed):
    clip = md.render_clip(md.sample_clip_params(forward, np.random.default_rng(seed)), FRAMES, SIZE)
    partner = md.render_clip(md.sample_clip_params(backward, np.random.default_rng(seed)), FRAMES, SIZE)
    np.testing.assert_array_equal(clip[::-1], partner)
    # ...and the clip really changes over time, so the reversal is a different video.
    assert not np.array_equal(clip, partner)


def test_time_reversed_params_render_reversed_frames_for_any_frame_count():
    params = md.sample_clip_params("rotating clockwise", np.random.default_rng(5))
    for num_frames in (2, 5, 16):
        np.testing.assert_array_equal(md.render_clip(params, num_frames, 48)[::-1],
                                      md.render_clip(params.time_reversed(), num_frames, 48))
    assert params.time_reversed().time_reversed() == params


def _start_end_statistics(class_name: str, seed: int, count: int = 1500) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    samples = [md.sample_clip_params(class_name, rng) for _ in range(count)]
    return {
        "start": np.array([[*p.start_center, np.log(p.start_size), p.start_angle, p.start_opacity] for p in samples]),
        "end": np.array([[*p.end_center, np.log(p.end_size), p.end_angle, p.end_opacity] for p in samples]),
    }


@pytest.mark.parametrize("forward, backward", md.REVERSAL_PAIRS)
def test_partners_have_mirrored_start_end_distributions_from_independent_draws(forward, backward):
    # Independent generators: a class's start states are distributed like its partner's end states (and vice versa),
    # while start and end differ within a class (otherwise the classes would not move).
    a, b = _start_end_statistics(forward, seed=10), _start_end_statistics(backward, seed=20)
    spread = np.concatenate([a["start"], a["end"]]).std(axis=0) + 1e-9
    for quantile in (0.1, 0.5, 0.9):
        np.testing.assert_allclose(np.quantile(a["start"], quantile, axis=0) / spread,
                                   np.quantile(b["end"], quantile, axis=0) / spread, atol=0.12)
        np.testing.assert_allclose(np.quantile(a["end"], quantile, axis=0) / spread,
                                   np.quantile(b["start"], quantile, axis=0) / spread, atol=0.12)
    mean_change = (a["end"] - a["start"]).mean(axis=0) / spread
    assert np.abs(mean_change).max() > 1.0, f"{forward}: start and end states hardly differ ({mean_change})"


def test_each_class_moves_in_its_named_direction_by_a_visible_amount():
    rng = np.random.default_rng(3)
    for _ in range(10):
        right = _object_centroids(md.sample_clip_params("moving right", rng))
        left = _object_centroids(md.sample_clip_params("moving left", rng))
        down = _object_centroids(md.sample_clip_params("moving down", rng))
        up = _object_centroids(md.sample_clip_params("moving up", rng))
        # At least ~0.35 of the frame over the clip: over 20 pixels at 64x64, steadily in one direction.
        assert right[-1, 0] - right[0, 0] > 20 and np.all(np.diff(right[:, 0]) > 0)
        assert left[0, 0] - left[-1, 0] > 20 and np.all(np.diff(left[:, 0]) < 0)
        assert down[-1, 1] - down[0, 1] > 20 and np.all(np.diff(down[:, 1]) > 0)
        assert up[0, 1] - up[-1, 1] > 20 and np.all(np.diff(up[:, 1]) < 0)
        growing = _object_areas(md.sample_clip_params("approaching", rng))
        shrinking = _object_areas(md.sample_clip_params("receding", rng))
        assert growing[-1] > 3 * growing[0] and shrinking[0] > 3 * shrinking[-1]


def _tip_angles(params: md.ClipParams) -> np.ndarray:
    """Screen angle (degrees) of the shape's first vertex around its centre on each frame; with y pointing down an
    increasing angle is a clockwise turn (top -> right -> bottom -> left)."""
    angles = []
    for t in range(FRAMES):
        state = md.object_state(params, t, FRAMES)
        x, y = md.shape_polygon(state, SIZE)[0]
        angles.append(np.degrees(np.arctan2(y - state.center[1] * SIZE, x - state.center[0] * SIZE)))
    return np.array(angles)


def test_clockwise_means_clockwise_on_screen():
    # A triangle's apex (first vertex) pointing up at angle 0, turned by +90 degrees, must point right.
    state = md.ObjectState("triangle", "red", (0.5, 0.5), 0.5, 0.0)
    x, y = md.shape_polygon(state, SIZE)[0]
    assert np.isclose(x, 32) and y < 32
    x, y = md.shape_polygon(md.ObjectState("triangle", "red", (0.5, 0.5), 0.5, 90.0), SIZE)[0]
    assert x > 32 and np.isclose(y, 32)


def test_rotation_classes_turn_the_shape_clockwise_and_anticlockwise():
    rng = np.random.default_rng(4)
    for class_name, sign in (("rotating clockwise", 1), ("rotating anticlockwise", -1)):
        for _ in range(5):
            params = md.sample_clip_params(class_name, rng)
            assert params.shape in md.ROTATION_SHAPES
            turns = (np.diff(_tip_angles(params)) + 180) % 360 - 180  # wrap to (-180, 180]
            # Visible (over 10 degrees a frame) and unambiguous (under 45 degrees a frame) at 8 frames.
            assert np.all(sign * turns > 10) and np.all(sign * turns < 45), f"{class_name}: turns {turns}"
            frames = md.render_clip(params, FRAMES, SIZE)
            assert np.abs(np.diff(frames.astype(int), axis=0)).mean(axis=(1, 2, 3)).min() > 0.5


def test_appearing_fades_in_in_place_and_disappearing_fades_out():
    rng = np.random.default_rng(6)
    for class_name, sign in (("appearing", 1), ("disappearing", -1)):
        for _ in range(5):
            params = md.sample_clip_params(class_name, rng)
            states = [md.object_state(params, t, FRAMES) for t in range(FRAMES)]
            opacities = np.array([s.opacity for s in states])
            assert np.all(sign * np.diff(opacities) > 0), f"{class_name}: opacities {opacities}"
            assert max(opacities) == 1.0 and min(opacities) <= 0.1
            geometry = np.array([[*s.center, s.size, s.angle] for s in states])
            np.testing.assert_allclose(geometry, geometry[:1].repeat(FRAMES, 0), rtol=1e-12)  # only opacity changes
            # The object is barely visible on the faint end and solid on the other: the frames really change.
            frames = md.render_clip(params, FRAMES, SIZE).astype(int)
            faint, solid = (0, -1) if sign > 0 else (-1, 0)
            assert np.abs(frames[solid] - frames[faint]).max() > 60


def test_rendering_is_reproducible_and_seed_dependent():
    clips = [list(md.iter_split_clips("train", 2, FRAMES, SIZE, seed=s)) for s in (7, 7, 8)]
    for (name_a, _, params_a, frames_a), (name_b, _, params_b, frames_b) in zip(clips[0], clips[1]):
        assert name_a == name_b and params_a == params_b
        np.testing.assert_array_equal(frames_a, frames_b)
    assert not all(np.array_equal(a[3], c[3]) for a, c in zip(clips[0], clips[2]))
    frames = clips[0][0][3]
    assert frames.dtype == np.uint8 and frames.shape == (FRAMES, SIZE, SIZE, 3)


def test_train_and_test_splits_use_different_clips():
    train = [p for _, _, p, _ in md.iter_split_clips("train", 3, 4, 32, seed=0)]
    test = [p for _, _, p, _ in md.iter_split_clips("test", 3, 4, 32, seed=0)]
    assert not set(train) & set(test)


@pytest.fixture(scope="module")
def written_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("motion")
    info = md.write_motion_dataset(out, num_train_per_class=2, num_test_per_class=1, num_frames=FRAMES, size=SIZE,
                                   seed=3, fps=8)
    return out, info


def test_written_layout_labels_and_info(written_set):
    out, info = written_set
    assert md.read_labels(out) == list(md.CLASS_NAMES)
    assert (out / "labels.txt").read_text().splitlines() == list(md.CLASS_NAMES)
    on_disk = json.loads((out / "dataset_info.json").read_text())
    assert on_disk["classes"] == list(md.CLASS_NAMES)
    assert on_disk["reversal_pairs"]["moving left"] == "moving right"
    assert on_disk["settings"]["num_frames"] == FRAMES and on_disk["settings"]["seed"] == 3
    for split, per_class in (("train", 2), ("test", 1)):
        for label, name in enumerate(md.CLASS_NAMES):
            files = sorted((out / split / name).glob("*.mp4"))
            assert [f.name for f in files] == [f"{i:05d}.mp4" for i in range(per_class)]
        listed = on_disk["splits"][split]["files"]
        assert len(listed) == per_class * len(md.CLASS_NAMES)
        for entry in listed:
            assert (out / entry["path"]).is_file()
            assert md.CLASS_NAMES[entry["label"]] == entry["class_name"] == entry["path"].split("/")[1]


def test_written_videos_decode_to_the_rendered_frames(written_set):
    out, info = written_set
    for entry in info["splits"]["test"]["files"]:
        decoded = md.read_video(out / entry["path"])
        assert decoded.shape == (FRAMES, SIZE, SIZE, 3) and decoded.dtype == np.uint8
        rendered = md.render_clip(md.ClipParams(**{k: tuple(v) if isinstance(v, list) else v
                                                   for k, v in entry["params"].items()}), FRAMES, SIZE)
        # yuv420p halves colour resolution, so edges blur a little; the picture itself must survive.
        error = np.abs(decoded.astype(int) - rendered.astype(int))
        assert error.mean() < 6, f"{entry['path']}: mean error {error.mean():.1f}"
        # The motion survives compression: consecutive decoded frames differ clearly.
        assert np.abs(np.diff(decoded.astype(int), axis=0)).mean(axis=(1, 2, 3)).min() > 0.2


def test_written_twins_decode_to_exactly_reversed_frames(written_set):
    out, info = written_set
    if info["settings"]["codec"] != "libx264":
        pytest.skip("bit-exact reversal after encoding is only claimed for intra-only constant-qp libx264")
    for forward, backward in md.REVERSAL_PAIRS:
        for index in range(2):
            a = md.read_video(out / "train" / forward / f"{index:05d}.mp4")
            b = md.read_video(out / "train" / backward / f"{index:05d}.mp4")
            np.testing.assert_array_equal(a[::-1], b)


def test_written_set_is_reproducible(tmp_path, written_set):
    out, _ = written_set
    again = tmp_path / "again"
    md.write_motion_dataset(again, num_train_per_class=2, num_test_per_class=1, num_frames=FRAMES, size=SIZE, seed=3)
    for name in ("moving up", "rotating anticlockwise"):
        np.testing.assert_array_equal(md.read_video(out / "test" / name / "00000.mp4"),
                                      md.read_video(again / "test" / name / "00000.mp4"))


def test_mpeg4_fallback_writes_decodable_video(tmp_path):
    frames = md.render_clip(md.sample_clip_params("approaching", np.random.default_rng(0)), 6, 48)
    md.write_video(tmp_path / "clip.mp4", frames, fps=8, codec="mpeg4")
    decoded = md.read_video(tmp_path / "clip.mp4")
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 10


@pytest.mark.parametrize("kwargs, message", [
    ({"num_train_per_class": 0}, "at least 1"),
    ({"num_test_per_class": 0}, "at least 1"),
    ({"size": 16}, "at least 32"),
    ({"size": 65}, "even"),
    ({"num_frames": 1}, "at least 2"),
    ({"fps": 0}, "fps"),
    ({"classes": ["moving left"]}, "partner"),
    ({"classes": ["moving sideways", "moving left"]}, "unknown"),
])
def test_bad_settings_raise_clear_errors(tmp_path, kwargs, message):
    settings = dict(num_train_per_class=1, num_test_per_class=1, num_frames=4, size=32, seed=0)
    settings.update(kwargs)
    with pytest.raises(ValueError, match=message):
        md.write_motion_dataset(tmp_path / "bad", **settings)


def test_unknown_class_raises():
    with pytest.raises(ValueError, match="unknown class"):
        md.sample_clip_params("jumping", np.random.default_rng(0))


# ----------------------------------------------------------------------------------------------------------------------
# examples/make_motion_dataset.py: an existing --output_dir
# ----------------------------------------------------------------------------------------------------------------------
def make_motion_dataset(output_dir, *flags) -> dict:
    script = REPO_ROOT / "examples" / "make_motion_dataset.py"
    spec = importlib.util.spec_from_file_location("make_motion_dataset", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(["--output_dir", str(output_dir), "--num_frames", "2", "--size", "32", "--test_per_class", "1",
                        *flags])


def clips_on_disk(folder) -> dict[str, list[str]]:
    return {f"{split.name}/{cls.name}": sorted(clip.name for clip in cls.iterdir())
            for split in sorted(folder.iterdir()) if split.is_dir() for cls in sorted(split.iterdir())}


def test_script_refuses_a_non_empty_output_dir_and_overwrite_replaces_the_whole_set(tmp_path):
    out = tmp_path / "motion"
    make_motion_dataset(out, "--train_per_class", "2")
    before = clips_on_disk(out)
    assert len(before) == 2 * len(md.CLASS_NAMES) and before["train/approaching"] == ["00000.mp4", "00001.mp4"]
    # A rerun with other settings would leave the first run's clips and classes beside the new ones.
    with pytest.raises(ValueError, match="is not empty: give a new folder, or pass --overwrite"):
        make_motion_dataset(out, "--train_per_class", "1", "--seed", "5")
    assert clips_on_disk(out) == before
    make_motion_dataset(out, "--train_per_class", "1", "--seed", "5", "--classes", "approaching", "receding",
                        "--overwrite")
    assert clips_on_disk(out) == {f"{split}/{name}": ["00000.mp4"] for split in md.SPLITS
                                  for name in ("approaching", "receding")}
    assert md.read_labels(out) == ["approaching", "receding"]
    assert json.loads((out / "dataset_info.json").read_text())["settings"]["seed"] == 5
    assert sorted(path.name for path in tmp_path.iterdir()) == ["motion"]  # no scratch folder left


def test_script_overwrite_keeps_a_folder_it_did_not_write_and_a_file_is_refused(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match=r"holds files that are not a motion set \(notes.txt\)"):
        make_motion_dataset(tmp_path / "mine", "--train_per_class", "1", "--overwrite")
    assert [path.name for path in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    (tmp_path / "afile").write_text("")
    for output_dir in (tmp_path / "afile", tmp_path / "afile" / "motion"):  # was a FileExistsError traceback
        with pytest.raises(ValueError, match=r"--output_dir .*afile.*: .*afile is a file; give a folder"):
            make_motion_dataset(output_dir, "--train_per_class", "1")


def test_script_interrupted_overwrite_leaves_the_old_set_whole(tmp_path, monkeypatch):
    out = tmp_path / "motion"
    make_motion_dataset(out, "--train_per_class", "1", "--classes", "approaching", "receding")
    before = clips_on_disk(out)
    written = []

    def write_then_fail(path, *args, **kwargs):
        if written:
            raise KeyboardInterrupt
        written.append(path)

    monkeypatch.setattr(md, "write_video", write_then_fail)
    with pytest.raises(KeyboardInterrupt):
        make_motion_dataset(out, "--train_per_class", "3", "--overwrite")
    assert clips_on_disk(out) == before and md.read_labels(out) == ["approaching", "receding"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["motion"]
