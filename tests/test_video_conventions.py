# Copyright 2026 The omniclip-hf authors. Licensed under the Apache License, Version 2.0.
"""Transformers' video-processor conventions: `fps=` sampling, `video_metadata` in and out, `return_metadata`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers.video_utils import VideoMetadata

from omniclip_hf.video_decoding import read_video_pyav
from omniclip_hf.video_processing_omniclip import OmniCLIPVideoProcessor
from omniclip_hf.video_sampling import sample_clip_indices


VIDEOS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "videos"
TEN_SECONDS = VIDEOS_DIR / "mmaction2_tests_test.mp4"  # 300 frames at 30 fps


@pytest.mark.skipif(not VIDEOS_DIR.is_dir(), reason=f"shared test videos not found at {VIDEOS_DIR}")
@pytest.mark.parametrize("sampling", ["segment", "uniform"])
def test_fps_sampling_of_a_file_takes_that_many_frames_per_second(sampling):
    output = OmniCLIPVideoProcessor(sampling=sampling)(str(TEN_SECONDS), fps=1, return_tensors="pt",
                                                         return_metadata=True)
    (indices,) = output["video_metadata"][0].frames_indices
    assert output["pixel_values_videos"].shape[1] == 10  # 10 s at 1 frame per second
    assert indices == sample_clip_indices(300, 10, sampling)[0]


def test_video_metadata_gives_in_memory_frames_a_frame_rate():
    frames = np.random.default_rng(0).integers(0, 256, size=(60, 16, 16, 3), dtype=np.uint8)
    processor = OmniCLIPVideoProcessor()
    for metadata in ({"fps": 30}, VideoMetadata(total_num_frames=60, fps=30)):
        output = processor(frames, fps=2, video_metadata=metadata, return_tensors="pt", return_metadata=True)
        out = output["video_metadata"][0]
        assert output["pixel_values_videos"].shape[1] == 4  # 2 s at 2 frames per second
        assert out.fps == 30 and out.duration == 2.0
        assert out.timestamps == [[index / 30 for index in out.frames_indices[0]]]
    batch = processor([frames, frames[:30]], fps=2, video_metadata=[{"fps": 30}, {"fps": 15}], return_tensors=None,
                      return_metadata=True)
    assert [len(clip) for clip in batch["pixel_values_videos"]] == [4, 4]


def test_fps_errors_are_one_line():
    frames = np.zeros((8, 16, 16, 3), np.uint8)
    processor = OmniCLIPVideoProcessor()
    with pytest.raises(ValueError, match=r"needs the video's frame rate .*video_metadata"):
        processor(frames, fps=2)
    with pytest.raises(ValueError, match="mutually exclusive"):
        processor(frames, fps=2, num_frames=4, video_metadata={"fps": 4})
    with pytest.raises(ValueError, match="fps=0 is invalid"):
        processor(frames, fps=0)
    with pytest.raises(ValueError, match="video_metadata has 2 entries for 1 videos"):
        processor(frames, video_metadata=[{"fps": 4}, {"fps": 4}])


def test_saved_fps_is_used_and_a_call_num_frames_overrides_it(tmp_path):
    from transformers import AutoVideoProcessor

    import omniclip_hf  # noqa: F401  (registers the Auto classes)

    OmniCLIPVideoProcessor(fps=1).save_pretrained(tmp_path)
    loaded = AutoVideoProcessor.from_pretrained(tmp_path)
    frames = np.zeros((90, 16, 16, 3), np.uint8)
    by_rate = loaded(frames, video_metadata={"fps": 30}, return_tensors="pt")["pixel_values_videos"]
    assert by_rate.shape[1] == 3
    assert loaded(frames, num_frames=5, return_tensors="pt")["pixel_values_videos"].shape[1] == 5


@pytest.mark.skipif(not VIDEOS_DIR.is_dir(), reason=f"shared test videos not found at {VIDEOS_DIR}")
def test_sample_frames_is_the_hook_base_preprocess_samples_with():
    processor = OmniCLIPVideoProcessor(num_frames=8, num_temporal_clips=2)
    metadata = VideoMetadata(total_num_frames=300, fps=30)
    assert processor.sample_frames(metadata).tolist() == sample_clip_indices(300, 8, "segment", num_clips=2)
    assert processor.sample_frames(metadata, fps=1, num_temporal_clips=1).tolist() == [sample_clip_indices(300, 10)[0]]
    with pytest.raises(ValueError, match="mutually exclusive"):
        processor.sample_frames(metadata, num_frames=4, fps=1)

    class FirstFrames(OmniCLIPVideoProcessor):
        # A transformers-style sampler (one 1D array of indices): the base flow decodes exactly these frames.
        def sample_frames(self, metadata, **kwargs):
            return np.arange(3)

    output = FirstFrames()(str(TEN_SECONDS), return_tensors="pt", return_metadata=True)
    assert output["video_metadata"][0].frames_indices == [[0, 1, 2]]
    first_three, _, _, _ = read_video_pyav(str(TEN_SECONDS), lambda total: [0, 1, 2])
    expected = OmniCLIPVideoProcessor(do_sample_frames=False)(first_three, return_tensors="pt")
    torch.testing.assert_close(output["pixel_values_videos"], expected["pixel_values_videos"], rtol=0, atol=0)


def test_decode_and_sample_hook_outside_a_call_uses_the_processors_settings():
    frames = np.random.default_rng(1).integers(0, 256, size=(20, 8, 8, 3), dtype=np.uint8)
    processor = OmniCLIPVideoProcessor(num_temporal_clips=2, num_frames=4)
    sampled, metadata = processor._decode_and_sample_videos(
        frames, video_metadata=None, do_sample_frames=False, sample_indices_fn=None
    )
    assert metadata[0].frames_indices == [list(range(20))] * 2
    assert sampled[0].clip_rows.tolist() == [list(range(20))] * 2
    np.testing.assert_array_equal(sampled[0].frames.permute(0, 2, 3, 1).numpy(), frames)


def test_device_is_where_the_frames_are_processed():
    # transformers' convention: `_prepare_input_videos` moves the sampled frames, the transforms run there. The
    # meta device runs every transform on shapes only, so this needs no accelerator.
    frames = np.random.default_rng(2).integers(0, 256, size=(10, 32, 48, 3), dtype=np.uint8)
    processor = OmniCLIPVideoProcessor(num_frames=4)
    output = processor(frames, device="meta", return_tensors="pt")["pixel_values_videos"]
    assert output.device.type == "meta" and output.shape == (1, 4, 3, 224, 224)
    sampled, _ = processor._decode_and_sample_videos(frames, sample_indices_fn=None)
    assert processor._prepare_input_videos(sampled, device="meta")[0].frames.device.type == "meta"
