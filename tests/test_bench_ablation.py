"""`benchmarks/bench_ablation.py` builds its table over several calls: a finished run is reused only when its recorded
training options are the ones asked for, and `--table` names the runs it lacks instead of printing a partial table.
"""

from __future__ import annotations

import json

import pytest

from .conftest import load_benchmark


def load_bench_ablation():
    return load_benchmark("bench_ablation")


def write_run(run_dir, clip, train_data, lr=2e-3, seed=0, model_overrides=None, **more_options):
    """A run folder as `examples/train.py` leaves it, with `metrics.json["options"]` as the script records them."""
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "model" / "model.safetensors").write_bytes(b"")
    options = {"clip": str(clip), "train_data": str(train_data), "epochs": 12, "num_frames": 8, "seed": seed,
               "lr": lr, "warmup_epochs": 3.0, "model_overrides": json.dumps(model_overrides) if model_overrides else None,
               **more_options}
    (run_dir / "metrics.json").write_text(json.dumps({"options": options, "top1": 0.9}))


@pytest.fixture
def bench():
    return load_bench_ablation()


def expected_options(tmp_path, **changes):
    options = {"clip": str(tmp_path / "tiny_clip"), "train_data": str(tmp_path / "motion_data" / "train"),
               "epochs": 12, "num_frames": 8, "seed": 0, "lr": 2e-3, "warmup_epochs": 3.0, "model_overrides": {}}
    return {**options, **changes}


def test_a_run_is_reused_only_with_the_same_training_options(bench, tmp_path):
    run_dir = tmp_path / "runs" / "ratio_1_8" / "seed0"
    write_run(run_dir, tmp_path / "tiny_clip", tmp_path / "motion_data" / "train", model_overrides={"pta_ratio": 0.125})

    assert bench.finished_run(run_dir, expected_options(tmp_path, model_overrides={"pta_ratio": 0.125}))
    assert not bench.finished_run(tmp_path / "runs" / "full" / "seed0", expected_options(tmp_path))
    # A run made with other options is neither reused nor silently replaced.
    for changed in ({"model_overrides": {"pta_ratio": 0.5}}, {"lr": 3e-3}, {"warmup_epochs": 1.0}, {"seed": 1}):
        options = expected_options(tmp_path, **{"model_overrides": {"pta_ratio": 0.125}, **changed})
        with pytest.raises(FileExistsError, match="holds a run trained with other options"):
            bench.finished_run(run_dir, options)


def test_a_run_without_overrides_matches_the_full_row_and_needs_its_weights(bench, tmp_path):
    run_dir = tmp_path / "runs" / "full" / "seed0"
    write_run(run_dir, tmp_path / "tiny_clip", tmp_path / "motion_data" / "train")
    assert bench.finished_run(run_dir, expected_options(tmp_path, model_overrides=bench.ROWS["full"]))
    # A training that died before saving its model is trained again.
    (run_dir / "model" / "model.safetensors").unlink()
    assert not bench.finished_run(run_dir, expected_options(tmp_path))


def test_scores_accumulate_and_the_table_names_missing_runs(bench, tmp_path):
    results = tmp_path / "ablation_results.json"
    scores = {"top1": 0.9, "pair_top1": 1.0, "trainable_params": 10, "plateau_steps": 40}
    bench.record_score(results, "full", 0, scores)
    bench.record_score(results, "full", 1, {**scores, "top1": 0.8})
    bench.record_score(results, "neither", 0, {**scores, "top1": 0.5})

    for seed in (0, 1):
        write_run(tmp_path / "runs" / "full" / f"seed{seed}", tmp_path / "tiny_clip", tmp_path / "motion_data")
    any_recipe = lambda row, seed: (tmp_path / "runs" / row / f"seed{seed}", {})  # noqa: E731

    table = bench.read_table(results, ["full"], [0, 1], any_recipe)
    assert [run["top1"] for run in table["full"].values()] == [0.9, 0.8]
    with pytest.raises(ValueError, match="neither seed 1"):
        bench.read_table(results, ["full", "neither"], [0, 1], any_recipe)


def test_the_table_prints_only_scores_of_the_recipe_asked_for(bench, tmp_path, capsys):
    """Scores from runs of another recipe (the demo's 12 epochs before it moved to 30, say) are refused, not mixed."""
    args = bench.argparse.Namespace(epochs=12, num_frames=8, lr=2e-3, warmup_epochs=3.0, spg_lr_scale=0.1,
                                    prompt_lr_scale=0.1)
    clip = str(tmp_path / "tiny_clip")
    run_dir, expected = bench.expected_run("full", 0, args, tmp_path, clip)
    write_run(run_dir, clip, tmp_path / "motion_data" / "train", spg_lr_scale=0.1, prompt_lr_scale=0.1)
    results = tmp_path / "ablation_results.json"
    scores = {"top1": 0.9, "pair_top1": 1.0, "trainable_params": 10, "plateau_steps": 40}
    bench.record_score(results, "full", 0, scores)

    same_recipe = lambda row, seed: bench.expected_run(row, seed, args, tmp_path, clip)  # noqa: E731
    assert bench.read_table(results, ["full"], [0], same_recipe)["full"][0]["top1"] == 0.9
    args_30 = bench.argparse.Namespace(**{**vars(args), "epochs": 30})
    with pytest.raises(ValueError, match=r"full seed 0 .* other options \{'epochs': 12\}; give the recipe flags"):
        bench.read_table(results, ["full"], [0],
                         lambda row, seed: bench.expected_run(row, seed, args_30, tmp_path, clip))
    # Through the command line: the demo's recipe (30 epochs) is refused in one line; --epochs 12 prints the row.
    flags = ["--work_dir", str(tmp_path), "--table", "--rows", "full", "--seeds", "0", "--warmup_epochs", "3"]
    with pytest.raises(SystemExit) as exit_status:  # a usage error: "error: ..." and status 2, as the other benchmarks
        bench.main(flags)
    err = capsys.readouterr().err
    assert exit_status.value.code == 2 and "other options {'epochs': 12}" in err
    assert len(err.splitlines()) == 1 and "usage:" not in err  # the flags were well formed: no usage block
    bench.main(flags + ["--epochs", "12"])
    assert "| full | `{}` | 10 | 90.0 ± 0.0 |" in capsys.readouterr().out
    # Scores whose run folder is gone cannot be checked, so they are not printed either.
    (run_dir / "metrics.json").unlink()
    with pytest.raises(ValueError, match="holds no trained model to check their recipe against"):
        bench.read_table(results, ["full"], [0], same_recipe)


def test_the_table_counts_the_errors_that_chose_the_reverse_class(bench, capsys):
    """The last column sums each row's test errors over its seeds, and those that put a clip in its reverse class."""
    run = {"top1": 0.9, "pair_top1": 1.0, "trainable_params": 10, "plateau_steps": 40}
    bench.print_table({"full": {0: {**run, "errors": 12, "reversal_errors": 1},
                                1: {**run, "errors": 8, "reversal_errors": 2}},
                       "pta_only": {0: {**run, "errors": 5, "reversal_errors": 0}, 1: run}}, [0, 1])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("seeds 0, 1: mean ± ")  # above the table: every line of it a Markdown row
    assert lines[2].endswith("| test errors that chose the reverse class, all seeds |")
    assert all(line.count("|") == 9 for line in lines[2:6] if "`" not in line)
    assert lines[4].startswith("| full |") and lines[4].endswith("| 40 / 40 | 3 of 20 |")
    # A run scored before the count existed has none: the row says so rather than printing a partial sum.
    assert lines[5].startswith("| pta_only |") and lines[5].endswith("| 40 / 40 | not recorded |")


def test_plateau_steps_counts_the_steps_until_the_loss_leaves_ln_c(bench):
    import math

    plateau = [math.log(8)] * 40 + [0.5] * 40
    # The first 16-step window with a mean below 0.9 ln 8 holds 13 plateau steps: it starts at step 27.
    assert bench.plateau_steps(plateau, num_classes=8) == 43
    assert bench.plateau_steps([0.5] * 20, num_classes=8) == 16
    assert bench.plateau_steps([math.log(8)] * 100, num_classes=8) is None
