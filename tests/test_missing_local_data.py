"""A local data folder that does not exist is named as one: `k400_shards/` (a trailing slash, no Hub id) was looked up
on the Hub and refused as an invalid repo id, and a streamed name the Hub does not have never said that no such
local folder exists either."""

from __future__ import annotations

import pytest

from omniclip_hf.training.loop import check_inputs_exist, parse_training_options
from omniclip_hf.training.streaming import load_streaming_dataset


@pytest.mark.parametrize("streaming", [[], ["--streaming", "--max_steps", "1", "--warmup_steps", "0"]])
def test_a_missing_folder_with_a_trailing_slash_is_no_such_folder(tmp_path, monkeypatch, streaming):
    monkeypatch.chdir(tmp_path)
    options = parse_training_options(["--clip", str(tmp_path), "--train_data", "k400_shards/", *streaming])
    with pytest.raises(FileNotFoundError, match=r"^--train_data k400_shards/: no such file or folder\.$"):
        check_inputs_exist(options)


def test_a_streamed_name_neither_local_nor_on_the_hub_says_both(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # offline in the tests (conftest): the Hub lookup fails at once
    with pytest.raises(FileNotFoundError, match=r"^k400_shards: no such local folder of shards, and streaming it as "
                                                r"a Hub dataset failed \("):
        load_streaming_dataset("k400_shards", ["a", "b"])
