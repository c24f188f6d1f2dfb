"""fastact on a dask.distributed cluster of two worker processes, on loopback only."""

import numpy as np
import pytest

import fastact

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    # the dashboard on a free loopback port: with None this distributed still tried 8787, which a
    # second test run on the machine (CI runs the wheel's beside the clone's) may hold
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address="127.0.0.1:0", worker_dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        yield client


def test_ops_on_a_two_worker_cluster(client):
    # made on the workers, so that no large array travels in the task graph
    rng = da.random.default_rng(0)
    dx = (rng.standard_normal((10_000, 1_000), chunks=(2_500, 250)) * 3).astype(np.float32)  # 1e7 elements
    dg = rng.standard_normal(dx.shape, chunks=dx.chunks).astype(np.float32)
    x, g, y, back, rows = client.compute([dx, dg, fastact.sigmoid(dx), fastact.sigmoid.backward(dg, x=dx),
                                          fastact.softmax(dx, axis=-1)], sync=True)
    assert x.shape == (10_000, 1_000) and x.dtype == np.float32
    np.testing.assert_array_equal(y, fastact.sigmoid(x))
    np.testing.assert_array_equal(back, fastact.sigmoid.backward(g, x=x))
    np.testing.assert_array_equal(rows, fastact.softmax(x, axis=-1))


def test_workers_run_each_call_on_one_thread(client):
    # a task runs in a worker's executor thread: one thread per call, so two
    # single-threaded workers keep two cores busy and no more
    threads = client.gather(client.map(lambda _: fastact.get_num_threads(), range(4), pure=False))
    assert threads == [1, 1, 1, 1]
