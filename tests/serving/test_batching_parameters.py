"""TF Serving's `--batching_parameters_file`: its text `BatchingParameters` (wrapped values) read
with TF Serving's defaults, bad values refused naming the field, and `seqzoo serve` refusing a
bad file (or a file without `--enable_batching`) before it loads anything."""

import subprocess

import pytest
from server_process import SEQZOO

from seqzoo.serving.batching_parameters import BatchingParameters, read_batching_parameters

TF_SERVING_FILE = """
# as written for TF Serving
max_batch_size { value: 32 }
batch_timeout_micros { value: 2500 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 3 }
thread_pool_name { value: "sentiment_batch_threads" }
allowed_batch_sizes: 8
allowed_batch_sizes: 16
allowed_batch_sizes: 32
pad_variable_length_inputs: true
"""


def test_a_tf_serving_file_parses_with_its_wrapped_values(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text(TF_SERVING_FILE)
    assert read_batching_parameters(path) == BatchingParameters(
        max_batch_size=32, batch_timeout_micros=2500, max_enqueued_batches=100,
        num_batch_threads=3, thread_pool_name="sentiment_batch_threads",
        allowed_batch_sizes=(8, 16, 32), pad_variable_length_inputs=True)


@pytest.fixture
def parse(tmp_path):
    """Reads a batching parameters file holding `text`."""
    def read(text):
        path = tmp_path / "batching.config"
        path.write_text(text)
        return read_batching_parameters(path)
    return read


def test_fields_left_out_take_tf_serving_defaults(parse):
    parameters = parse("batch_timeout_micros { value: 0 }")
    assert (parameters.max_batch_size, parameters.batch_timeout_micros,
            parameters.max_enqueued_batches, parameters.allowed_batch_sizes,
            parameters.pad_variable_length_inputs) == (1000, 0, 10, (), False)
    assert parameters.num_batch_threads >= 1
    # A merged batch runs at the next allowed size, or as it is without any.
    sizes = parse("max_batch_size { value: 8 } allowed_batch_sizes: [2, 4, 8]")
    assert [sizes.padded_size(n) for n in (1, 2, 3, 5, 8)] == [2, 2, 4, 8, 8]
    assert parameters.padded_size(7) == 7


@pytest.mark.parametrize("text, message", [
    ("max_batch_size { value: 0 }", "max_batch_size must be >= 1"),
    ("max_enqueued_batches { value: 0 }", "max_enqueued_batches must be >= 1"),
    ("num_batch_threads { value: -2 }", "num_batch_threads must be >= 1"),
    ("batch_timeout_micros { value: -1 }", "batch_timeout_micros must be >= 0"),
    ("max_batch_size { value: 8 } allowed_batch_sizes: [4, 2, 8]",
     "allowed_batch_sizes must be positive and increasing"),
    ("max_batch_size { value: 8 } allowed_batch_sizes: [2, 4]",
     "The last entry of allowed_batch_sizes must equal max_batch_size"),
    ("max_batch_size: 8", "max_batch_size"),  # TF Serving's values are wrapped: { value: 8 }
    ("max_batch_sise { value: 8 }", 'no field named "max_batch_sise"'),
])
def test_bad_values_are_refused_naming_the_field(parse, text, message):
    with pytest.raises(ValueError, match=f"Batching parameters file .*{message}"):
        parse(text)


def serve(*flags):
    return subprocess.run([SEQZOO, "serve", "--models-dir", "nowhere", *flags],
                          capture_output=True, text=True, timeout=120)


def test_serve_refuses_a_bad_file_before_loading(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text("max_batch_size { value: 4 }\nallowed_batch_sizes: 2\n")
    result = serve("--enable_batching", "--batching_parameters_file", str(path))
    assert result.returncode == 2
    assert "seqzoo serve: error: Batching parameters file" in result.stderr
    assert "allowed_batch_sizes" in result.stderr and "Serving" not in result.stdout

    result = serve("--batching_parameters_file", str(path))
    assert result.returncode == 2
    assert "without --enable_batching" in result.stderr
