"""`seqzoo check`: SavedModel versions checked against TF Serving's loader without TF Serving."""

import pathlib
import subprocess
import sys

from plain_keras_export import X, KerasInModule, save_plainly

from seqzoo.serving import export

SEQZOO = str(pathlib.Path(sys.executable).with_name("seqzoo"))


def test_check_passes_exports_and_fails_what_tf_serving_would_refuse(tmp_path):
    module = KerasInModule()
    export.save_for_serving(module, tmp_path / "models" / "fixed" / "3", "fixed",
                            {"x": X.tolist()})
    save_plainly(module, tmp_path / "models" / "plain" / "1")
    result = subprocess.run([SEQZOO, "check", str(tmp_path / "models")], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    fixed, plain = result.stdout.splitlines()
    assert fixed == (f"{tmp_path}/models/fixed/3: answers under TF Serving's loader "
                     "(1 warmup request on serving_default)")
    assert plain.startswith(f"{tmp_path}/models/plain/1: FAILS under TF Serving's loader: "
                            "FAILED_PRECONDITION: Warmup record 1 failed: Could not find variable")

    result = subprocess.run([SEQZOO, "check", str(tmp_path / "models" / "fixed")],
                            capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stdout.count("answers")) == (0, 1), result.stderr
    result = subprocess.run([SEQZOO, "check", str(tmp_path / "nowhere")], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2
    assert f"'{tmp_path}/nowhere' does not exist" in result.stderr
