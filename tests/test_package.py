"""The built package: everything under the one name `puffer`."""
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_holds_only_the_puffer_package(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path)], check=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("puffer-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"puffer", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    for expected in ["puffer/envs/cartpole/binding", "puffer/envs/probes/light_button/binding",
                     "puffer/trainer/gae", "puffer/configs/defaults.toml", "puffer/configs/cartpole.toml",
                     "puffer/models/mlp.py", "puffer/trainer/ppo.py", "puffer/envs/puffer.h",
                     "puffer/envs/text/tinyshakespeare.txt", "puffer/templates/env.h.tmpl"]:
        assert any(name.startswith(expected) for name in names), expected
