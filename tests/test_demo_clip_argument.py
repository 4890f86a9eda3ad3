"""`examples/demo.py --clip HUB_ID` that cannot be loaded is refused at parsing, before step 1 rewrites the motion set.

Offline, an uncached Hub id used to pass parsing: the demo wrote demo_output/motion_data and failed only about 50 s
later, when train.py could not load the CLIP.
"""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import REPO_ROOT


def test_an_unloadable_hub_clip_is_refused_before_the_motion_set_is_written(tmp_path):
    output = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "demo.py"), "--output_dir", str(output),
         "--clip", "nobody/no-such-clip"],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1, result.stderr[-2000:]
    assert "--clip nobody/no-such-clip" in error_lines[0], error_lines[0]
    assert "local CLIP folder" in error_lines[0], error_lines[0]
    assert not (output / "motion_data").exists()
