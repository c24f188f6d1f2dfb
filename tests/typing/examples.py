"""How fastact reads to a type checker: tests/test_typing.py runs mypy --strict on this file.

Each ``assert_type`` states what mypy must infer; each line marked ``# type: ignore[...]``
must be rejected with that error code (under --strict an ignore that is not needed
is an error itself, so a bad call that mypy accepted would fail the test).
"""

from typing import Any

import numpy as np
from numpy.typing import NDArray
from typing_extensions import assert_type  # typing.assert_type is 3.11+

import fastact

x32: NDArray[np.float32] = np.zeros(8, np.float32)
x64: NDArray[np.float64] = np.zeros(8)
x16: NDArray[np.float16] = np.zeros(8, np.float16)
ints: NDArray[np.int64] = np.arange(8)

# float32 in, float32 out; float16 and float64 keep theirs; integers give float64
assert_type(fastact.sigmoid(x32), NDArray[np.float32])
assert_type(fastact.sigmoid(x64), NDArray[np.float64])
assert_type(fastact.gelu(x16), NDArray[np.float16])
assert_type(fastact.relu(ints), NDArray[np.float64])
assert_type(fastact.tanh.grad(x32), NDArray[np.float32])
assert_type(fastact.silu.value_and_grad(x32), tuple[NDArray[np.float32], NDArray[np.float32]])
assert_type(fastact.sigmoid.backward(x32, x=x32), NDArray[np.float32])
assert_type(fastact.tanh.backward(x64, y=x64), NDArray[np.float64])
assert_type(fastact.swish(x32), NDArray[np.float32])
assert_type(fastact.relu([1.0, -2.0]), Any)  # lists: whatever NumPy makes of them

# each op's own parameters, by name and by position
assert_type(fastact.elu(x32, alpha=0.5), NDArray[np.float32])
assert_type(fastact.leaky_relu(x32, 0.2), NDArray[np.float32])
assert_type(fastact.gelu(x32, approximate="tanh"), NDArray[np.float32])
assert_type(fastact.softplus.backward(x32, x=x32, beta=2.0, threshold=10.0), NDArray[np.float32])
assert_type(fastact.hardtanh.grad(x64, min_val=-2.0, max_val=2.0), NDArray[np.float64])

# bias= fused into the op; the backward then also gives the bias's gradient
assert_type(fastact.gelu(x32, bias=x32), NDArray[np.float32])
assert_type(fastact.silu.backward(x32, x=x32, bias=x32), tuple[NDArray[np.float32], NDArray[Any]])
assert_type(fastact.elu.backward(x64, x=x64, alpha=0.5), NDArray[np.float64])

# param_grads=True: the parameters' gradients too, a dict by name
assert_type(fastact.elu.backward(x32, x=x32, param_grads=True, alpha=0.5),
            tuple[NDArray[np.float32], dict[str, np.floating[Any]]])
assert_type(fastact.celu.backward(x64, x=x64, bias=x64, param_grads=True),
            tuple[NDArray[np.float64], NDArray[Any], dict[str, np.floating[Any]]])
assert_type(fastact.prelu.backward(x32, x32, 0.25, param_grads=True), tuple[NDArray[np.float32], dict[str, Any]])

out = np.empty(8, np.float32)
assert_type(fastact.mish(x32, out=out), NDArray[np.float32])

# row ops and losses
assert_type(fastact.softmax(x32), NDArray[np.float32])
assert_type(fastact.softmin(x32, dim=-1), NDArray[np.float32])
assert_type(fastact.tanhshrink(x64), NDArray[np.float64])
assert_type(fastact.threshold(x32, 0.5, -1.0), NDArray[np.float32])
assert_type(fastact.prelu(x32.reshape(2, 4), np.full(4, 0.25)), NDArray[np.float32])
assert_type(fastact.log_softmax(x64, axis=(0,)), NDArray[np.float64])
assert_type(fastact.softmax(x64, dim=0), NDArray[np.float64])
assert_type(fastact.softmax.backward(x32, x32, axis=None), NDArray[np.float32])
assert_type(fastact.softmax_cross_entropy(x64.reshape(2, 4), np.array([0, 1])), np.float64)
loss, grad = fastact.softmax_cross_entropy.value_and_grad(x32.reshape(2, 4), np.array([0, 1]), reduction="sum")
assert_type(grad, NDArray[np.float32])
assert_type(fastact.binary_cross_entropy_with_logits(x32, x32), np.float32)
assert_type(fastact.binary_cross_entropy_with_logits(x32, x32, pos_weight=np.ones(8), weight=2.0), np.float32)
assert_type(fastact.softmax_cross_entropy(x32.reshape(2, 4), np.array([0, -100]), weight=np.ones(4),
                                          label_smoothing=0.1, z_loss=1e-4), np.float32)

# gated units: one array split in two, or the halves as two arrays
assert_type(fastact.swiglu(x32), NDArray[np.float32])
assert_type(fastact.geglu(x64, axis=0, approximate="tanh"), NDArray[np.float64])
assert_type(fastact.glu.backward(x32[:4], x32), NDArray[np.float32])
assert_type(fastact.swiglu.backward(x32, x32, x32), tuple[NDArray[np.float32], NDArray[np.float32]])
value, partials = fastact.reglu.value_and_grad(x64)
assert_type(partials, NDArray[np.float64])

# controls
with fastact.use_backend("numpy") as name:
    assert_type(name, str)
assert_type(fastact.get_num_threads(), int)
fastact.set_num_threads(2)

# calls that must be rejected
fastact.gelu(x32, approximate="fast")  # type: ignore[call-overload]
fastact.relu.backward(x32, x=x32, z=3)  # type: ignore[call-overload]
fastact.elu(x32, beta=1.0)  # type: ignore[call-overload]
fastact.sigmoid(x32, 0.5)  # type: ignore[call-overload]
fastact.softmax(x32, axis="rows")  # type: ignore[call-overload]
fastact.prelu(x32)  # type: ignore[call-overload]
fastact.elu.backward(x32, y=x32, param_grads=True)  # type: ignore[call-overload]
fastact.softmax_cross_entropy(x32, np.array([0]), reduction="avg")  # type: ignore[call-overload]
fastact.set_backend("cuda")  # type: ignore[arg-type]
fastact.sigmoid.get_ufunc("forwards")  # type: ignore[arg-type]
fastact.geglu(x32, approximate="fast")  # type: ignore[call-overload]
fastact.swiglu(x32, alpha=1.0)  # type: ignore[call-overload]
