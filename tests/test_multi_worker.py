"""Multi-worker training (``--strategy multi_worker``, `MultiWorkerMirroredStrategy` from ``TF_CONFIG``).

Two worker processes on 127.0.0.1 (free ports) train the custom Transformer
(`pipelines.agnews_transformer`, tiny settings and data) for a few steps with
the same command and output folder, as on two machines:

- both finish; the chief alone writes metrics.json, the history, the report's
  PNGs and the export (the other worker's copies go to its own temporary
  folder, deleted when it ends);
- the chief's weights equal those of one process trained with the same global
  batch (every global batch splits evenly between the workers here);
- a worker killed mid-training makes the other stop within a bounded time with
  one line naming the lost worker, instead of hanging.

Every process is bounded by a timeout and killed when the test ends. The two
cluster runs are in the large tier (`make test-all`); the reading of cluster
failures is a unit test.
"""

import json
import os
import socket
import subprocess
import sys
import time

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf

from helpers import topic_rows, write_ag_news_folder
from pipelines import agnews_transformer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 64 training examples (72 rows, the last 8 for validation) in 8 full global batches of 8: each worker gets 4 of
# every batch. Texts padded to one length (one bucket, no partial batch), no dropout: the same arithmetic as one
# process. Dense Adam: LazyAdam's sparse row updates are not compared here (see docs/scaling.md).
TINY = ["--tokenizer", "text_vectorization", "--no-pretrained-embeddings", "--embedding-dim", "8",
        "--num-heads", "2", "--intermediate-dim", "8", "--sequence-length", "32", "--pad-to-sequence-length",
        "--dropout", "0", "--ngram-buckets", "1000", "--no-lazy-embedding-updates", "--distillation-weight", "0",
        "--batch-size", "8", "--validation-size", "8"]
RUN_SECONDS = 1800  # Upper bound for a two-worker run: 2 to 3 min on a busy 2-core machine, 15 on an overloaded one.
LOST_WORKER_SECONDS = 90  # The survivor must give up within this after its peer is killed (--worker-timeout 30).


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Cluster:
    """Two worker processes running one command, each logging to a file; killed on exit."""

    def __init__(self, tmp_path, argv):
        ports = free_ports(2)
        cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
        self.scratch = tmp_path / "worker_tmp"  # TMPDIR of the workers: their private folders go there.
        self.scratch.mkdir()
        self.logs = [tmp_path / f"worker{index}.log" for index in range(2)]
        self.processes = []
        for index in range(2):
            env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(self.scratch),
                   "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
            with open(self.logs[index], "w") as log:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "pipelines.agnews_transformer", *argv], cwd=REPO, env=env,
                    stdout=log, stderr=subprocess.STDOUT))

    def log(self, index):
        return self.logs[index].read_text(errors="replace")

    def wait(self, index, timeout):
        try:
            return self.processes[index].wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"worker {index} still running after {timeout:.0f} s:\n{self.log(index)[-3000:]}")

    def kill(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def data(tmp_path):
    return write_ag_news_folder(tmp_path / "data", topic_rows(72, seed=0), topic_rows(16, seed=1))


def float_variables(checkpoint):
    """``(weights, optimizer slots)``: the float variables of a checkpoint, by name."""
    reader = tf.train.load_checkpoint(checkpoint)
    weights, slots = {}, {}
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            (slots if "OPTIMIZER_SLOT" in name or name.startswith("optimizer/") else weights)[name] = value
    return weights, slots


def largest_difference(a, b):
    return max(float(np.max(np.abs(a[name] - b[name]))) if b[name].size else 0.0 for name in b)


@pytest.mark.large
def test_two_workers_train_like_one_process_and_only_the_chief_writes(tmp_path, data):
    run, export = tmp_path / "run", tmp_path / "export"
    argv = ["--data-dir", data, "--output-dir", str(run), "--export-dir", str(export), "--epochs", "2",
            "--strategy", "multi_worker", *TINY]
    start = time.monotonic()
    cluster = Cluster(tmp_path, argv)
    try:
        codes = [cluster.wait(index, RUN_SECONDS - (time.monotonic() - start)) for index in range(2)]
    finally:
        cluster.kill()
    seconds = time.monotonic() - start
    print(f"two-worker run: {seconds:.0f} s")
    assert codes == [0, 0], "\n".join(f"worker {i} (exit {c}):\n{cluster.log(i)[-3000:]}" for i, c in enumerate(codes))

    chief, other = cluster.log(0), cluster.log(1)
    assert f"wrote {run / 'metrics.json'}" in chief and "wrote " not in other
    assert f"exported SavedModel version 1 to {cluster.scratch}" in other  # Its copy, in its own folder.
    assert "joining the TF_CONFIG cluster as worker 1 of 2 workers" in other
    config = json.loads((run / "config.json").read_text())
    assert config["environment"]["replicas"] == 2
    assert config["environment"]["strategy"] == "CollectiveAllReduceStrategy"
    # The chief's files, once: two epochs in the history (not four), one export version, the report.
    assert (run / "history.csv").read_text().count("\n") == 3
    assert sorted(os.listdir(export)) == ["1"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["export"]["path"] == str(export / "1")
    assert metrics["plots"] == {"curves": "curves.png", "confusion_matrix": "confusion_matrix.png"}
    assert sum(map(sum, metrics["test"]["confusion_matrix"])) == 16
    assert not (run / "backup").exists() and not list(run.glob(".tfnlp-cluster*"))
    assert os.listdir(cluster.scratch) == [], "the other worker's private folder outlived it"

    # One process, the same global batch of 8: the same training.
    single = tmp_path / "single"
    agnews_transformer.main(["--data-dir", data, "--output-dir", str(single), "--export-dir", "", "--epochs", "2",
                             *TINY])
    two_workers, two_workers_slots = float_variables(str(run / "checkpoints" / "final"))
    one_process, one_process_slots = float_variables(str(single / "checkpoints" / "final"))
    assert set(two_workers) == set(one_process) and len(one_process) >= 20
    assert set(two_workers_slots) == set(one_process_slots) and len(one_process_slots) >= 40
    # Measured: weights within 2.3e-4 after 16 steps; Adam's first moments, sums of gradients that nearly
    # cancel (an attention value bias), within 3.1e-3: the all-reduce adds the replicas' halves in another order.
    for name, value in one_process.items():
        np.testing.assert_allclose(two_workers[name], value, rtol=0, atol=1e-3, err_msg=name)
    for name, value in one_process_slots.items():
        np.testing.assert_allclose(two_workers_slots[name], value, rtol=0, atol=1e-2, err_msg=name)
    print(f"largest difference from one process: weights {largest_difference(two_workers, one_process):.1e}, "
          f"optimizer slots {largest_difference(two_workers_slots, one_process_slots):.1e}")
    history = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    reference = [line.split(",") for line in (single / "history.csv").read_text().splitlines()]
    column = history[0].index("val_loss")
    assert history[0] == reference[0]
    np.testing.assert_allclose([float(row[column]) for row in history[1:]],
                               [float(row[column]) for row in reference[1:]], rtol=1e-3)


@pytest.mark.large
def test_a_killed_worker_stops_the_other_with_a_clear_message(tmp_path, data):
    argv = ["--data-dir", data, "--output-dir", str(tmp_path / "run"), "--export-dir", "", "--epochs", "500",
            "--strategy", "multi_worker", *TINY]
    start = time.monotonic()
    cluster = Cluster(tmp_path, argv)
    try:
        while "epoch 1/500" not in cluster.log(0):  # Training under way on both (epochs end in step).
            assert cluster.processes[0].poll() is None and cluster.processes[1].poll() is None, \
                f"a worker ended before training:\n{cluster.log(0)[-3000:]}\n{cluster.log(1)[-3000:]}"
            assert time.monotonic() - start < RUN_SECONDS, f"no epoch after {RUN_SECONDS} s:\n{cluster.log(0)[-3000:]}"
            time.sleep(0.5)
        cluster.processes[1].kill()
        killed = time.monotonic()
        code = cluster.wait(0, LOST_WORKER_SECONDS)
        seconds = time.monotonic() - killed
    finally:
        cluster.kill()
    print(f"the chief stopped {seconds:.1f} s after worker 1 was killed")
    lines = cluster.log(0).strip().splitlines()
    assert code == 1, cluster.log(0)[-3000:]
    assert lines[-1].startswith("error: the multi-worker cluster lost ") and \
        "/job:worker/replica:0/task:1" in lines[-1], lines[-5:]
    assert "Start every worker again with the same command" in lines[-1]
    assert "Traceback" not in cluster.log(0)
    assert seconds < LOST_WORKER_SECONDS


@pytest.mark.parametrize("error, expected", [
    (tf.errors.UnavailableError(None, None, "Collective ops is aborted by: Error reported from /job:worker/task:1: The "
                                "following tasks are unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/"
                                "task:1\nThe tasks have crashed."),
     "the multi-worker cluster lost /job:worker/replica:0/task:1 (it stopped sending heartbeats: killed, crashed or "
     "unreachable)"),
    (tf.errors.AbortedError(None, None, "Collective ops is aborted by: Unexpected heartbeat request from an already-in-"
                            "error task: /job:worker/replica:0/task:0 with existing error: UNAVAILABLE: Task /job:worker/"
                            "replica:0/task:0 heartbeat timeout. This indicates that the remote task has failed"),
     "the multi-worker cluster lost /job:worker/replica:0/task:0 (no heartbeat within --worker-timeout seconds: killed, "
     "crashed, unreachable or stalled)"),
    (tf.errors.UnavailableError(None, None, "Collective ops is aborted by: failed to connect to all addresses\n"
                                "remote target /job:worker/replica:0/task:0 ..."),
     "the multi-worker cluster lost the connection to /job:worker/replica:0/task:0 (failed to connect to all "
     "addresses)"),
])
def test_cluster_failures_are_one_line_naming_the_lost_worker(error, expected):
    from tfnlp.training.cli import cluster_failure_message

    message = cluster_failure_message(error)
    assert message.split(";")[0] == expected
    assert "\n" not in message and message.endswith("the run resumes from its last finished epoch")


def test_other_errors_are_not_cluster_failures():
    from tfnlp.training.cli import cluster_failure_message

    assert cluster_failure_message(tf.errors.AbortedError(None, None, "the iterator was cancelled")) is None
    assert cluster_failure_message(ValueError("heartbeat timeout")) is None
