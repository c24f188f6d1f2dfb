/* The small calls of an elementwise op on a float32 or float64 ndarray, in C.
 *
 * fastact.sigmoid(x, out=o) on 16 elements spent 0.5 us in Python (the test for
 * the shortcut below, the call of the ufunc) and 0.2 us in the ufunc; SciPy's
 * expit, a plain ufunc, takes 0.24 us (CHANGELOG: small calls, issue 18).
 *
 * Dispatch is the base class of _api.ElementwiseOp and _api.RowOp.  An
 * elementwise op's call takes the same shortcut as ElementwiseOp._call, the op's
 * call written in Python, and hands every other call to _call unchanged:
 *   op(x) or op(x, out=o), x an ndarray (not a subclass) of float32 or float64 in
 *   native byte order, the op's shortcut armed (self._shortcuts["forward"], a tuple
 *   (ufunc, float32 size, float64 size, default parameters, layer)), x.size below
 *   the size for its dtype, the backend numba (fastact.use_backend(...) in this
 *   context, else fastact.set_backend's), o an ndarray of x's dtype and shape;
 *   then it is ufunc(x, *parameters) or ufunc(x, *parameters, o).
 * Entry does the same for op.grad(x), op.value_and_grad(x) (no out) and
 * op.backward(g, x=x) or op.backward(g, y=y), g an ndarray of x's dtype and
 * shape, and hands the rest to the Python method (_api._small has the test).
 * A row op's call and backward take what _api._small_rows takes (row_shortcut).
 * softmax_cross_entropy(logits, labels) and its value_and_grad, with the
 * reduction "mean" or "sum" and no other option, take the common small batch of
 * _losses.SoftmaxCrossEntropy._run (loss_shortcut).  Both call the serial kernel
 * compiled as a C function on the arrays' data (_kernels.small_row_function,
 * small_loss_function), whose address _api's tables of small calls hold: Numba's
 * dispatch of the kernel took more than half of such a call.
 * Where the arrays are aligned, contiguous (or one-dimensional, of any stride),
 * o writeable and either an input itself or apart from them, and the parameters
 * Python floats, it calls the ufunc's inner loop for the dtype itself, as NumPy's
 * ufunc machinery would after its checks, which are most of a small call's time.
 * fastact's loops raise no floating-point flag (tests/test_semantics.py), so
 * there is no error state to look at afterwards.  Anything else goes to the ufunc.
 *
 * Python stays the definition: without this module (no C compiler at install)
 * ElementwiseOp.__call__ is _call and the methods are called as they are, and
 * tests/test_small_calls.py runs the same calls both ways.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <numpy/ufuncobject.h>

#define MAX_PARAMS 6

static PyObject *str_forward, *str_grad, *str_value_and_grad, *str_backward_x, *str_backward_y;
static PyObject *str_out, *str_x, *str_y, *str_axis, *str_numba, *str_default_backend, *str_call;
static PyObject *str_reduction, *str_mean, *str_sum;
static PyObject *small_rows;  /* _api._SMALL_ROWS: name -> {n, or -n for float64: (address, size, owner)} */
static PyObject *small_losses;  /* _api._SMALL_LOSSES: name -> {n, or -n for float64: (address, size, short, owner)} */
static PyObject *override_var;  /* _backend._override, a ContextVar */
static PyObject *backend_dict;  /* _backend's globals: _default_backend */
static PyArray_Descr *descr_f32, *descr_f64, *descr_i64;

/* The base of the ops (ElementwiseOp, RowOp): which small calls it takes in C */
typedef struct {
    PyObject_HEAD
    PyObject *shortcuts;  /* an elementwise op's: kind -> shortcut tuple or None (ElementwiseOp._shortcuts) */
    PyObject *row_name;   /* a row op's: its name in _api._SMALL_ROWS (RowOp._small_name) */
    PyObject *loss_name;  /* a loss's: its name in _api._SMALL_LOSSES (SoftmaxCrossEntropy._small_loss) */
} Dispatch;

/* 1 where the backend of this call is numba, 0 where not, -1 with an error set */
static int
numba_backend(void)
{
    PyObject *name = NULL;
    if (override_var == NULL || backend_dict == NULL) {
        return 0;
    }
    if (PyContextVar_Get(override_var, NULL, &name) < 0) {
        return -1;
    }
    if (name == NULL || name == Py_None) {
        Py_XDECREF(name);
        name = PyDict_GetItemWithError(backend_dict, str_default_backend);
        if (name == NULL) {
            return PyErr_Occurred() ? -1 : 0;
        }
        Py_INCREF(name);
    }
    int r = name == str_numba || (PyUnicode_Check(name) && PyUnicode_Compare(name, str_numba) == 0);
    Py_DECREF(name);
    if (r == 0 && PyErr_Occurred()) {
        return -1;
    }
    return r;
}

static int
same_shape(PyArrayObject *a, PyArrayObject *b)
{
    int nd = PyArray_NDIM(a);
    if (PyArray_NDIM(b) != nd) {
        return 0;
    }
    npy_intp *da = PyArray_DIMS(a), *db = PyArray_DIMS(b);
    for (int i = 0; i < nd; i++) {
        if (da[i] != db[i]) {
            return 0;
        }
    }
    return 1;
}

/* Whether obj is an ndarray (not a subclass) of x's dtype and shape */
static int
like_x(PyObject *obj, PyArrayObject *x)
{
    return PyArray_CheckExact(obj) && PyArray_DESCR((PyArrayObject *)obj) == PyArray_DESCR(x)
           && same_shape(x, (PyArrayObject *)obj);
}

/* The stride of a as one run of n elements, or 0 where it is not one */
static npy_intp
run_stride(PyArrayObject *a)
{
    if (!PyArray_ISALIGNED(a)) {
        return 0;
    }
    if (PyArray_NDIM(a) == 1) {
        npy_intp s = PyArray_STRIDES(a)[0];
        return s ? s : 0;
    }
    return PyArray_IS_C_CONTIGUOUS(a) ? (npy_intp)PyArray_ITEMSIZE(a) : 0;
}

/* The inner loop of ufunc from nin arrays of type_num and np float64 parameters
 * to nout arrays of type_num, or NULL */
static PyUFuncGenericFunction
inner_loop(PyObject *ufunc, int nin, int np_, int nout, int type_num, void **data)
{
    if (!PyObject_TypeCheck(ufunc, &PyUFunc_Type)) {
        return NULL;
    }
    PyUFuncObject *u = (PyUFuncObject *)ufunc;
    int nargs = nin + np_ + nout;
    if (u->nin != nin + np_ || u->nout != nout || u->functions == NULL) {
        return NULL;
    }
    for (int i = 0; i < u->ntypes; i++) {
        int all = 1;
        for (int j = 0; j < nargs; j++) {
            all &= u->types[nargs * i + j] == (j >= nin && j < nin + np_ ? NPY_FLOAT64 : type_num);
        }
        if (all) {
            *data = u->data ? u->data[i] : NULL;
            return u->functions[i];
        }
    }
    return NULL;
}

/* Whether out may be written while a is read element by element: the same
 * elements, or no memory in common */
static int
apart_or_same(PyArrayObject *a, npy_intp as, PyArrayObject *out, npy_intp os, npy_intp n)
{
    char *ab = PyArray_BYTES(a), *ob = PyArray_BYTES(out);
    if (ab == ob && as == os) {
        return 1;
    }
    npy_intp span_a = (n - 1) * as, span_o = (n - 1) * os;
    char *alo = span_a < 0 ? ab + span_a : ab, *ahi = (span_a < 0 ? ab : ab + span_a) + PyArray_ITEMSIZE(a);
    char *olo = span_o < 0 ? ob + span_o : ob, *ohi = (span_o < 0 ? ob : ob + span_o) + PyArray_ITEMSIZE(out);
    return !(alo < ohi && olo < ahi);
}

/* ufunc's loop over the nin inputs and the parameters (float64 scalars, each
 * given to the loop with step 0, as NumPy gives a scalar) into out (NULL: nout
 * new arrays; one is returned as it is, two as a tuple), or NULL without an error
 * where the call is not one for the loop */
static PyObject *
run_loop(PyObject *ufunc, PyArrayObject **in, int nin, PyObject *params, PyArrayObject *out, int nout)
{
    PyArrayObject *x = in[nin - 1];
    npy_intp n = PyArray_SIZE(x);
    int np_ = (int)PyTuple_GET_SIZE(params);
    double values[MAX_PARAMS];
    char *args[2 + MAX_PARAMS + 2];
    npy_intp steps[2 + MAX_PARAMS + 2];
    if (PyArray_NDIM(x) == 0 || n == 0) {
        return NULL;
    }
    for (int i = 0; i < nin; i++) {
        steps[i] = run_stride(in[i]);
        if (steps[i] == 0) {
            return NULL;
        }
        args[i] = PyArray_BYTES(in[i]);
    }
    for (int k = 0; k < np_; k++) {
        PyObject *p = PyTuple_GET_ITEM(params, k);
        if (!PyFloat_CheckExact(p)) {  /* ints and the rest: NumPy's conversion, through the ufunc */
            return NULL;
        }
        values[k] = PyFloat_AS_DOUBLE(p);
        args[nin + k] = (char *)&values[k];
        steps[nin + k] = 0;
    }
    void *data = NULL;
    PyUFuncGenericFunction loop = inner_loop(ufunc, nin, np_, nout, PyArray_TYPE(x), &data);
    if (loop == NULL) {
        return NULL;
    }
    PyArrayObject *outs[2] = {NULL, NULL};
    if (out != NULL) {
        npy_intp os = run_stride(out);
        if (os == 0 || !PyArray_ISWRITEABLE(out)) {
            return NULL;
        }
        for (int i = 0; i < nin; i++) {
            if (!apart_or_same(in[i], steps[i], out, os, n)) {
                return NULL;
            }
        }
        Py_INCREF(out);
        outs[0] = out;
    }
    else {
        for (int k = 0; k < nout; k++) {
            Py_INCREF(PyArray_DESCR(x));  /* for SimpleNewFromDescr, which steals it */
            outs[k] = (PyArrayObject *)PyArray_SimpleNewFromDescr(PyArray_NDIM(x), PyArray_DIMS(x), PyArray_DESCR(x));
            if (outs[k] == NULL) {
                Py_XDECREF(outs[0]);
                return NULL;  /* with MemoryError set */
            }
        }
    }
    for (int k = 0; k < nout; k++) {
        args[nin + np_ + k] = PyArray_BYTES(outs[k]);
        steps[nin + np_ + k] = run_stride(outs[k]);
    }
    loop(args, &n, steps, data);
    if (nout == 1) {
        return (PyObject *)outs[0];
    }
    PyObject *pair = PyTuple_Pack(2, outs[0], outs[1]);
    Py_DECREF(outs[0]);
    Py_DECREF(outs[1]);
    return pair;
}

/* The result of the shortcut shortcuts[key] on the nin ndarrays in (grad_out
 * first, then x or y), into out, or NULL: with an error set where the call
 * failed, without one where the call is not the shortcut's (Python has it) */
static PyObject *
shortcut(PyObject *shortcuts, PyObject *key, PyObject **in, int nin, PyObject *out, int nout)
{
    PyObject *x = in[nin - 1];
    if (shortcuts == NULL || !PyDict_CheckExact(shortcuts) || !PyArray_CheckExact(x)) {
        return NULL;
    }
    PyObject *cut = PyDict_GetItemWithError(shortcuts, key);
    if (cut == NULL || !PyTuple_CheckExact(cut) || PyTuple_GET_SIZE(cut) < 4) {
        return NULL;
    }
    PyArrayObject *xa = (PyArrayObject *)x;
    PyArray_Descr *dt = PyArray_DESCR(xa);
    PyObject *size = dt == descr_f32 ? PyTuple_GET_ITEM(cut, 1) : dt == descr_f64 ? PyTuple_GET_ITEM(cut, 2) : NULL;
    if (size == NULL || !PyLong_CheckExact(size)) {
        return NULL;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(size);
    if (limit <= 0 || PyArray_SIZE(xa) >= limit) {
        PyErr_Clear();  /* a limit beyond Py_ssize_t: Python's test has it */
        return NULL;
    }
    int numba = numba_backend();
    if (numba <= 0) {
        return NULL;  /* with the error set, where there was one */
    }
    PyObject *params = PyTuple_GET_ITEM(cut, 3);
    if (!PyTuple_CheckExact(params) || PyTuple_GET_SIZE(params) > MAX_PARAMS) {
        return NULL;
    }
    for (int i = 0; i < nin - 1; i++) {  /* grad_out: x's dtype and shape (no broadcasting here) */
        if (!like_x(in[i], xa)) {
            return NULL;
        }
    }
    if (out != NULL && !like_x(out, xa)) {
        return NULL;
    }
    PyObject *ufunc = PyTuple_GET_ITEM(cut, 0);
    Py_INCREF(cut);  /* the dict's entry may change during the call */
    Py_ssize_t np_ = PyTuple_GET_SIZE(params);
    PyObject *result = run_loop(ufunc, (PyArrayObject **)in, nin, params, (PyArrayObject *)out, nout);
    if (result == NULL && !PyErr_Occurred()) {
        PyObject *stack[MAX_PARAMS + 3];
        Py_ssize_t n = 0;
        for (int i = 0; i < nin; i++) {
            stack[n++] = in[i];
        }
        for (Py_ssize_t i = 0; i < np_; i++) {
            stack[n++] = PyTuple_GET_ITEM(params, i);
        }
        if (out != NULL) {
            stack[n++] = out;
        }
        result = PyObject_Vectorcall(ufunc, stack, n, NULL);
        if (result == NULL && out != NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();  /* a read-only out: Python says so in fastact's words */
        }
    }
    Py_DECREF(cut);
    return result;
}

static int
key_is(PyObject *key, PyObject *name)
{
    return key == name || (PyUnicode_Check(key) && PyUnicode_Compare(key, name) == 0);
}

/* out= alone among kwargs, or no kwargs: 1 (*out the value, NULL for None);
 * 0 where there are others; -1 on an error */
static int
only_out(PyObject *kwargs, PyObject **out)
{
    *out = NULL;
    if (kwargs == NULL || PyDict_GET_SIZE(kwargs) == 0) {
        return 1;
    }
    if (PyDict_GET_SIZE(kwargs) != 1) {
        return 0;
    }
    PyObject *value = PyDict_GetItemWithError(kwargs, str_out);
    if (value == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    *out = value == Py_None ? NULL : value;
    return 1;
}

/* --- row ops: op(x, axis=-1, out=None) and op.backward(grad_out, y, axis=-1, out=None) -- */

/* Whether the C-contiguous arrays a and b have memory in common (np.may_share_memory) */
static int
contiguous_overlap(PyArrayObject *a, PyArrayObject *b)
{
    char *ab = PyArray_BYTES(a), *bb = PyArray_BYTES(b);
    npy_intp na = PyArray_NBYTES(a), nb = PyArray_NBYTES(b);
    return na > 0 && nb > 0 && ab < bb + nb && bb < ab + na;
}

/* A row op's serial kernel as a C function (_kernels.small_row_function):
 * f(in0, in1, out, rows, n) on (rows, n) C-contiguous buffers */
typedef int (*small_row_fn)(void *, void *, void *, npy_intp, npy_intp);

/* Whether a is an aligned C-contiguous ndarray: what the C functions of the
 * kernels read and write (Numba's dispatch takes the others) */
static int
aligned_c(PyArrayObject *a)
{
    return PyArray_IS_C_CONTIGUOUS(a) && PyArray_ISALIGNED(a);
}

/* 1 where axis (NULL: not given) is an int naming the last of nd axes, -1 or nd - 1;
 * 0 where not (not an int, another axis, beyond a C long: Python's answer) */
static int
last_axis(PyObject *axis, int nd)
{
    if (axis == NULL) {
        return 1;
    }
    if (!PyLong_CheckExact(axis)) {
        return 0;
    }
    long ax = PyLong_AsLong(axis);
    if (ax == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return ax == -1 || ax == nd - 1;
}

/* table[name][key], borrowed (_api's tables of small calls: name -> {row length
 * n, or -n for float64: entry}); NULL without an error where there is none.  Two
 * lookups without building a key: a (name, n) tuple cost a tenth of C's part of
 * the call. */
static PyObject *
table_entry(PyObject *table, PyObject *name, npy_intp key)
{
    PyObject *by_length = PyDict_GetItemWithError(table, name);
    if (by_length == NULL || !PyDict_CheckExact(by_length)) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *k = PyLong_FromSsize_t(key);
    if (k == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *entry = PyDict_GetItemWithError(by_length, k);
    Py_DECREF(k);
    if (entry == NULL) {
        PyErr_Clear();
    }
    return entry;
}

/* Row op name's serial kernel along the last axis of the nin C-contiguous
 * ndarrays in (grad_out first, then y; or x), into out (NULL: a new array), as
 * _api._small_rows runs it; NULL without an error where the call is not one for
 * it (Python's _small_rows then has it, or the general path) */
static PyObject *
row_shortcut(PyObject *name, PyObject **in, int nin, PyObject *axis, PyObject *out)
{
    PyObject *x = in[nin - 1];
    if (small_rows == NULL || !PyArray_CheckExact(x)) {
        return NULL;
    }
    PyArrayObject *xa = (PyArrayObject *)x;
    PyArray_Descr *dt = PyArray_DESCR(xa);
    int nd = PyArray_NDIM(xa);
    if ((dt != descr_f32 && dt != descr_f64) || nd == 0 || PyArray_SIZE(xa) == 0 || !aligned_c(xa)) {
        return NULL;
    }
    if (!last_axis(axis, nd)) {
        return NULL;
    }
    int numba = numba_backend();
    if (numba <= 0) {
        return NULL;
    }
    npy_intp n = PyArray_DIMS(xa)[nd - 1];
    PyObject *entry = table_entry(small_rows, name, dt == descr_f32 ? n : -n);
    if (entry == NULL || !PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3
            || !PyLong_CheckExact(PyTuple_GET_ITEM(entry, 0)) || !PyLong_CheckExact(PyTuple_GET_ITEM(entry, 1))) {
        return NULL;
    }
    Py_ssize_t below = PyLong_AsSsize_t(PyTuple_GET_ITEM(entry, 1));
    if (below == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    if (PyArray_SIZE(xa) >= below) {
        return NULL;  /* Python's: serial where this thread runs on one thread */
    }
    for (int i = 0; i < nin - 1; i++) {
        if (!like_x(in[i], xa) || !aligned_c((PyArrayObject *)in[i])) {
            return NULL;
        }
    }
    small_row_fn f = (small_row_fn)PyLong_AsVoidPtr(PyTuple_GET_ITEM(entry, 0));
    if (f == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyArrayObject *dest;
    if (out == NULL) {
        Py_INCREF(dt);  /* for SimpleNewFromDescr, which steals it */
        Py_INCREF(entry);  /* its owner keeps f's code: the allocation may run a collection that empties the table */
        dest = (PyArrayObject *)PyArray_SimpleNewFromDescr(nd, PyArray_DIMS(xa), dt);
        if (dest == NULL) {
            Py_DECREF(entry);
            return NULL;
        }
    }
    else {
        PyArrayObject *o = (PyArrayObject *)out;
        if (!like_x(out, xa) || !aligned_c(o) || !PyArray_ISWRITEABLE(o)) {
            return NULL;
        }
        for (int i = 0; i < nin; i++) {
            if (contiguous_overlap(o, (PyArrayObject *)in[i])) {
                return NULL;
            }
        }
        dest = (PyArrayObject *)Py_NewRef(out);
        Py_INCREF(entry);
    }
    f(PyArray_DATA((PyArrayObject *)in[0]), PyArray_DATA((PyArrayObject *)in[nin - 1]), PyArray_DATA(dest),
      PyArray_SIZE(xa) / n, n);
    Py_DECREF(entry);
    return (PyObject *)dest;
}

/* (x[, axis[, out]]) with axis= and out= as keywords too: 1 where these are all
 * (*axis and *out NULL where not given or None, for out), 0 where there are
 * others, -1 on an error */
static int
row_arguments(PyObject *args, Py_ssize_t first, PyObject *kwargs, PyObject **axis, PyObject **out)
{
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    *axis = nargs > first ? PyTuple_GET_ITEM(args, first) : NULL;
    *out = nargs > first + 1 ? PyTuple_GET_ITEM(args, first + 1) : NULL;
    if (nargs > first + 2) {
        return 0;
    }
    if (kwargs != NULL) {
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(kwargs, &pos, &key, &value)) {
            if (key_is(key, str_axis) && *axis == NULL) {
                *axis = value;
            }
            else if (key_is(key, str_out) && *out == NULL) {
                *out = value;
            }
            else {
                return PyErr_Occurred() ? -1 : 0;  /* where=, temperature=, dim=, twice given: Python's */
            }
        }
    }
    *out = *out == Py_None ? NULL : *out;
    return 1;
}

/* --- softmax_cross_entropy's small batch ------------------------------------------ */

/* A loss's serial kernel as a C function (_kernels.small_loss_function):
 * total = f(x, labels, rows, n, flags, grad, scale, losses), flags bit 0
 * want_grad (grad (rows, n), else (rows, 0)), bit 1 short rows (blocks) */
typedef double (*small_loss_fn)(void *, npy_int64 *, npy_intp, npy_intp, npy_intp, void *, double, double *);

/* rows whose losses the C call keeps on its stack (more: PyMem_Malloc) */
#define STACK_ROWS 256

/* f's total on (rows, n) x, labels, and grad (NULL for none), with scale: NaN
 * and an error set where the losses' buffer cannot be had */
static double
run_small_loss(small_loss_fn f, PyArrayObject *x, PyArrayObject *labels, PyArrayObject *grad, int short_rows,
               double scale)
{
    npy_intp rows = PyArray_DIMS(x)[0], n = PyArray_DIMS(x)[1];
    double on_stack[STACK_ROWS], *losses = on_stack;
    if (rows > STACK_ROWS) {
        losses = PyMem_Malloc((size_t)rows * sizeof(double));
        if (losses == NULL) {
            PyErr_NoMemory();
            return NAN;
        }
    }
    double total = f(PyArray_DATA(x), (npy_int64 *)PyArray_DATA(labels), rows, n,
                     (grad != NULL ? 1 : 0) | (short_rows ? 2 : 0), grad != NULL ? PyArray_DATA(grad) : (void *)losses,
                     scale, losses);
    if (losses != on_stack) {
        PyMem_Free(losses);
    }
    return total;
}

/* Whether x and labels are the arrays of a loss's small batch: x (rows, n) float32 or
 * float64, labels (rows,) int64, both aligned, C-contiguous, in native byte order */
static int
small_batch(PyArrayObject *x, PyArrayObject *labels)
{
    PyArray_Descr *dt = PyArray_DESCR(x);
    return (dt == descr_f32 || dt == descr_f64) && PyArray_NDIM(x) == 2 && aligned_c(x)
           && PyArray_DESCR(labels) == descr_i64 && PyArray_NDIM(labels) == 1 && aligned_c(labels)
           && PyArray_DIMS(labels)[0] == PyArray_DIMS(x)[0];
}

/* Whether every label is in [0, n) (none ignored, none outside) */
static int
labels_within(PyArrayObject *labels, npy_intp n)
{
    const npy_uint64 *l = (const npy_uint64 *)PyArray_DATA(labels);
    npy_uint64 top = 0;
    for (npy_intp i = 0; i < PyArray_DIMS(labels)[0]; i++) {
        top = l[i] > top ? l[i] : top;  /* a negative label is above every n as unsigned */
    }
    return top < (npy_uint64)n;
}

/* The entry of _SMALL_LOSSES for loss name on rows of n (float64: -n), as
 * (address of the kernel's C function, size, short, the function's owner), with
 * *f that function; NULL without an error where there is none, or the size is not
 * below its size */
static PyObject *
loss_entry(PyObject *name, npy_intp n, npy_intp size, PyArray_Descr *dt, small_loss_fn *f, int *short_rows)
{
    PyObject *entry = table_entry(small_losses, name, dt == descr_f32 ? n : -n);
    if (entry == NULL || !PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 4
            || !PyLong_CheckExact(PyTuple_GET_ITEM(entry, 0)) || !PyLong_CheckExact(PyTuple_GET_ITEM(entry, 1))
            || !PyBool_Check(PyTuple_GET_ITEM(entry, 2))) {
        PyErr_Clear();
        return NULL;
    }
    Py_ssize_t below = PyLong_AsSsize_t(PyTuple_GET_ITEM(entry, 1));
    if (below == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    if (size >= below) {
        return NULL;  /* parallel, or Python's decision */
    }
    *f = (small_loss_fn)PyLong_AsVoidPtr(PyTuple_GET_ITEM(entry, 0));
    if (*f == NULL) {
        PyErr_Clear();
        return NULL;
    }
    *short_rows = PyTuple_GET_ITEM(entry, 2) == Py_True;
    return entry;
}

/* loss(logits, labels, axis=-1, reduction="mean") or its value_and_grad (want_grad)
 * as _losses.SoftmaxCrossEntropy._run's common small batch runs it: (rows, n)
 * C-contiguous float32 or float64 logits, C-contiguous int64 labels of shape
 * (rows,), axis -1 or 1, reduction "mean" or "sum" (as str), no other argument, the
 * numba backend, and an entry in _SMALL_LOSSES for the row length with rows * n
 * below its size (the serial kernel), and every label in [0, n) (Python's call
 * tells a label outside from ignore_index's -100).  The kernel returns the losses'
 * total (NaN for a NaN or infinite logit, as Python's).  NULL without an error where
 * the call is not one for it. */
static PyObject *
loss_shortcut(PyObject *name, PyObject *args, PyObject *kwargs, int want_grad)
{
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    if (small_losses == NULL || nargs < 2 || nargs > 4) {
        return NULL;
    }
    PyObject *axis = nargs > 2 ? PyTuple_GET_ITEM(args, 2) : NULL;
    PyObject *reduction = nargs > 3 ? PyTuple_GET_ITEM(args, 3) : NULL;
    if (kwargs != NULL) {
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(kwargs, &pos, &key, &value)) {
            if (key_is(key, str_axis) && axis == NULL) {
                axis = value;
            }
            else if (key_is(key, str_reduction) && reduction == NULL) {
                reduction = value;
            }
            else {
                PyErr_Clear();
                return NULL;  /* the options (even at their defaults), dim=, twice given: Python's */
            }
        }
    }
    int sum = 0;
    if (reduction != NULL) {
        if (!PyUnicode_CheckExact(reduction)) {
            return NULL;
        }
        sum = PyUnicode_Compare(reduction, str_sum) == 0;
        if (!sum && PyUnicode_Compare(reduction, str_mean) != 0) {
            PyErr_Clear();
            return NULL;  /* "none", or Python's error */
        }
    }
    if (!last_axis(axis, 2)) {
        return NULL;
    }
    PyObject *x = PyTuple_GET_ITEM(args, 0), *labels = PyTuple_GET_ITEM(args, 1);
    if (!PyArray_CheckExact(x) || !PyArray_CheckExact(labels)) {
        return NULL;
    }
    PyArrayObject *xa = (PyArrayObject *)x, *la = (PyArrayObject *)labels;
    PyArray_Descr *dt = PyArray_DESCR(xa);
    if (!small_batch(xa, la) || PyArray_SIZE(xa) == 0) {
        return NULL;
    }
    int numba = numba_backend();
    if (numba <= 0) {
        return NULL;
    }
    npy_intp rows = PyArray_DIMS(xa)[0], n = PyArray_DIMS(xa)[1];
    int short_rows = 0;
    small_loss_fn f;
    PyObject *entry = loss_entry(name, n, rows * n, dt, &f, &short_rows);
    if (entry == NULL || !labels_within(la, n)) {
        return NULL;  /* a label outside [0, n) or ignored (-100): Python's, which tells them apart */
    }
    PyArrayObject *grad = NULL;
    Py_INCREF(entry);  /* its owner keeps f's code: an allocation may run a collection that empties the table */
    if (want_grad) {
        Py_INCREF(dt);  /* for SimpleNewFromDescr, which steals it */
        grad = (PyArrayObject *)PyArray_SimpleNewFromDescr(2, PyArray_DIMS(xa), dt);
        if (grad == NULL) {
            Py_DECREF(entry);
            return NULL;
        }
    }
    double t = run_small_loss(f, xa, la, grad, short_rows, sum ? 1.0 : 1.0 / (double)rows);  /* as _run's scale */
    Py_DECREF(entry);
    if (t != t && PyErr_Occurred()) {
        Py_XDECREF(grad);
        return NULL;  /* no memory */
    }
    PyObject *loss;
    if (dt == descr_f32) {
        float v = (float)(sum ? t : t / (double)rows);  /* as np.float32(total / count) */
        loss = PyArray_Scalar(&v, descr_f32, NULL);
    }
    else {
        double v = sum ? t : t / (double)rows;
        loss = PyArray_Scalar(&v, descr_f64, NULL);
    }
    if (loss == NULL || !want_grad) {
        Py_XDECREF(grad);
        return loss;
    }
    PyObject *pair = PyTuple_Pack(2, loss, (PyObject *)grad);
    Py_DECREF(loss);
    Py_DECREF(grad);
    return pair;
}

/* --- the ops' own call --------------------------------------------------------- */

/* self._call(*args, **kwargs): the call in Python */
static PyObject *
call_python(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *call = PyObject_GetAttr(self, str_call);
    if (call == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_Call(call, args, kwargs);
    Py_DECREF(call);
    return result;
}

static PyObject *
dispatch_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    Dispatch *op = (Dispatch *)self;
    PyObject *result = NULL, *axis, *out;
    if (op->loss_name != NULL) {  /* loss(logits, labels, axis=-1, reduction="mean") */
        result = loss_shortcut(op->loss_name, args, kwargs, 0);
    }
    else if (op->row_name != NULL && PyTuple_GET_SIZE(args) >= 1) {  /* op(x, axis=-1, out=None) */
        int plain = row_arguments(args, 1, kwargs, &axis, &out);
        if (plain < 0) {
            return NULL;
        }
        if (plain) {
            PyObject *in[1] = {PyTuple_GET_ITEM(args, 0)};
            result = row_shortcut(op->row_name, in, 1, axis, out);
        }
    }
    else if (op->row_name == NULL && PyTuple_GET_SIZE(args) == 1) {  /* op(x, out=None) */
        int plain = only_out(kwargs, &out);
        if (plain < 0) {
            return NULL;
        }
        if (plain) {
            PyObject *in[1] = {PyTuple_GET_ITEM(args, 0)};
            result = shortcut(op->shortcuts, str_forward, in, 1, out, 1);
        }
    }
    if (result != NULL || PyErr_Occurred()) {
        return result;
    }
    return call_python(self, args, kwargs);
}

static int
dispatch_traverse(Dispatch *self, visitproc visit, void *arg)
{
    Py_VISIT(self->shortcuts);
    Py_VISIT(self->row_name);
    Py_VISIT(self->loss_name);
    return 0;
}

static int
dispatch_clear(Dispatch *self)
{
    Py_CLEAR(self->shortcuts);
    Py_CLEAR(self->row_name);
    Py_CLEAR(self->loss_name);
    return 0;
}

static void
dispatch_dealloc(Dispatch *self)
{
    PyObject_GC_UnTrack(self);
    dispatch_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef dispatch_members[] = {
    {"_shortcuts", T_OBJECT, offsetof(Dispatch, shortcuts), 0,
     "an elementwise op's: kind -> the shortcut tuple, or None before a call has armed it"},
    {"_small_name", T_OBJECT, offsetof(Dispatch, row_name), 0, "a row op's: its name in _api._SMALL_ROWS"},
    {"_small_loss", T_OBJECT, offsetof(Dispatch, loss_name), 0, "a loss's: its name in _api._SMALL_LOSSES"},
    {NULL}
};

static PyTypeObject DispatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fastact._fastcall.Dispatch",
    .tp_doc = PyDoc_STR("Base of the ops: small calls in C, else _call."),
    .tp_basicsize = sizeof(Dispatch),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_call = dispatch_call,
    .tp_traverse = (traverseproc)dispatch_traverse,
    .tp_clear = (inquiry)dispatch_clear,
    .tp_dealloc = (destructor)dispatch_dealloc,
    .tp_members = dispatch_members,
};

/* --- op.grad, op.value_and_grad and op.backward -------------------------------- */

enum { KIND_GRAD, KIND_VALUE_AND_GRAD, KIND_BACKWARD, KIND_ROW_BACKWARD, KIND_LOSS_VALUE_AND_GRAD, KINDS };
static const char *const kind_names[] = {"grad", "value_and_grad", "backward", "row_backward", "loss_value_and_grad"};
/* the method each kind stands in front of */
static const char *const method_names[] = {"grad", "value_and_grad", "backward", "backward", "value_and_grad"};

typedef struct {
    PyObject_HEAD
    PyObject *bound;  /* the op's Python method, bound to the op (a Dispatch: its __self__) */
    PyObject *name;   /* row_backward: the backward's name in _SMALL_ROWS; loss_value_and_grad: in _SMALL_LOSSES */
    int kind;
} Entry;

static Dispatch *
op_of(Entry *self)
{
    return (Dispatch *)PyMethod_GET_SELF(self->bound);
}

static PyObject *
entry_call(PyObject *self_, PyObject *args, PyObject *kwargs)
{
    Entry *self = (Entry *)self_;
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    PyObject *result = NULL;
    if (self->kind == KIND_LOSS_VALUE_AND_GRAD) {  /* value_and_grad(logits, labels, axis=-1, reduction="mean") */
        result = loss_shortcut(self->name, args, kwargs, 1);
    }
    else if (self->kind == KIND_ROW_BACKWARD) {  /* backward(grad_out, y, axis=-1, out=None) */
        PyObject *axis, *out;
        int plain = nargs >= 2 ? row_arguments(args, 2, kwargs, &axis, &out) : 0;
        if (plain < 0) {
            return NULL;
        }
        if (plain) {
            PyObject *in[2] = {PyTuple_GET_ITEM(args, 0), PyTuple_GET_ITEM(args, 1)};
            result = row_shortcut(self->name, in, 2, axis, out);
        }
    }
    else if (self->kind != KIND_BACKWARD) {  /* grad(x, out=None), value_and_grad(x) */
        PyObject *out;
        int plain = nargs == 1 ? only_out(kwargs, &out) : 0;
        if (plain < 0) {
            return NULL;
        }
        if (plain && !(self->kind == KIND_VALUE_AND_GRAD && out != NULL)) {
            PyObject *in[1] = {PyTuple_GET_ITEM(args, 0)};
            int grad = self->kind == KIND_GRAD;
            result = shortcut(op_of(self)->shortcuts, grad ? str_grad : str_value_and_grad, in, 1, out, grad ? 1 : 2);
        }
    }
    else if (nargs == 1 || nargs == 2) {  /* backward(grad_out, x=None, *, y=None, out=None) */
        PyObject *x = nargs == 2 ? PyTuple_GET_ITEM(args, 1) : NULL, *y = NULL, *out = NULL;
        int plain = 1;
        if (kwargs != NULL) {
            PyObject *key, *value;
            Py_ssize_t pos = 0;
            while (plain && PyDict_Next(kwargs, &pos, &key, &value)) {
                if (key_is(key, str_out)) {
                    out = value;
                }
                else if (key_is(key, str_y)) {
                    y = value;
                }
                else if (key_is(key, str_x) && nargs == 1) {
                    x = value;
                }
                else {
                    plain = 0;  /* bias=, param_grads=, parameters, x given twice: Python's */
                }
            }
            if (PyErr_Occurred()) {
                return NULL;
            }
        }
        x = x == Py_None ? NULL : x;
        y = y == Py_None ? NULL : y;
        out = out == Py_None ? NULL : out;
        if (plain && (x == NULL) != (y == NULL)) {
            PyObject *in[2] = {PyTuple_GET_ITEM(args, 0), x != NULL ? x : y};
            result = shortcut(op_of(self)->shortcuts, x != NULL ? str_backward_x : str_backward_y, in, 2, out, 1);
        }
    }
    if (result != NULL || PyErr_Occurred()) {
        return result;
    }
    return PyObject_Call(self->bound, args, kwargs);
}

static PyObject *
entry_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *bound, *row_name = NULL;
    const char *name;
    static char *keywords[] = {"method", "kind", "name", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!s|U:Entry", keywords, &PyMethod_Type, &bound, &name,
                                     &row_name)) {
        return NULL;
    }
    int kind = -1;
    for (int k = 0; k < KINDS; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            kind = k;
        }
    }
    PyObject *op = PyMethod_GET_SELF(bound);
    int row = kind == KIND_ROW_BACKWARD || kind == KIND_LOSS_VALUE_AND_GRAD;
    if (kind < 0 || !PyObject_TypeCheck(op, &DispatchType) || row != (row_name != NULL)) {
        PyErr_SetString(PyExc_ValueError, "Entry(method, kind[, name]): a method of an op, kind grad, value_and_grad "
                        "or backward, or row_backward or loss_value_and_grad with the name of its kernels");
        return NULL;
    }
    Entry *self = (Entry *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->bound = Py_NewRef(bound);
    self->name = Py_XNewRef(row_name);
    self->kind = kind;
    return (PyObject *)self;
}

static int
entry_traverse(Entry *self, visitproc visit, void *arg)
{
    Py_VISIT(self->bound);
    Py_VISIT(self->name);
    return 0;
}

static int
entry_clear(Entry *self)
{
    Py_CLEAR(self->bound);
    Py_CLEAR(self->name);
    return 0;
}

static void
entry_dealloc(Entry *self)
{
    PyObject_GC_UnTrack(self);
    entry_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
entry_repr(Entry *self)
{
    return PyObject_Repr(self->bound);
}

/* what functions have: the method's name, doc and signature (inspect follows
 * __wrapped__), the op as __self__ */
static PyObject *
entry_attr(Entry *self, void *name)
{
    return PyObject_GetAttrString(self->bound, (const char *)name);
}

static PyObject *
entry_wrapped(Entry *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->bound);
}

static PyObject *
entry_self(Entry *self, void *Py_UNUSED(closure))
{
    return Py_NewRef((PyObject *)op_of(self));
}

static PyGetSetDef entry_getset[] = {
    {"__doc__", (getter)entry_attr, NULL, NULL, "__doc__"},
    {"__name__", (getter)entry_attr, NULL, NULL, "__name__"},
    {"__qualname__", (getter)entry_attr, NULL, NULL, "__qualname__"},
    {"__wrapped__", (getter)entry_wrapped, NULL, NULL, NULL},
    {"__self__", (getter)entry_self, NULL, NULL, NULL},
    {NULL}
};

/* pickled as the op's attribute, as a bound method is */
static PyObject *
entry_reduce(Entry *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *getattr = PyDict_GetItemString(PyEval_GetBuiltins(), "getattr");
    if (getattr == NULL) {
        return NULL;
    }
    return Py_BuildValue("O(Os)", getattr, (PyObject *)op_of(self), method_names[self->kind]);
}

static PyMethodDef entry_methods[] = {
    {"__reduce__", (PyCFunction)entry_reduce, METH_NOARGS, NULL},
    {NULL}
};

static PyTypeObject EntryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fastact._fastcall.Entry",
    .tp_basicsize = sizeof(Entry),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = entry_new,
    .tp_call = entry_call,
    .tp_traverse = (traverseproc)entry_traverse,
    .tp_clear = (inquiry)entry_clear,
    .tp_dealloc = (destructor)entry_dealloc,
    .tp_repr = (reprfunc)entry_repr,
    .tp_getset = entry_getset,
    .tp_methods = entry_methods,
};

static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *var, *globals, *rows, *losses;
    if (!PyArg_ParseTuple(args, "O!O!O!O!:configure", &PyContextVar_Type, &var, &PyDict_Type, &globals, &PyDict_Type,
                          &rows, &PyDict_Type, &losses)) {
        return NULL;
    }
    Py_XSETREF(small_rows, Py_NewRef(rows));
    Py_XSETREF(small_losses, Py_NewRef(losses));
    Py_INCREF(var);
    Py_XSETREF(override_var, var);
    Py_INCREF(globals);
    Py_XSETREF(backend_dict, globals);
    Py_RETURN_NONE;
}

/* The function at address (an int from _api's tables), or NULL with an error set
 * (ValueError from caller where it is 0) */
static void *
function_at(PyObject *address, const char *caller)
{
    void *f = PyLong_AsVoidPtr(address);
    if (f == NULL && !PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "%s: no function at 0", caller);
    }
    return f;
}

/* small_loss(address, x, labels, short, grad, scale): _run's serial call of the
 * C function at address (the entry it puts in _SMALL_LOSSES), x (rows, n) float32
 * or float64 and labels (rows,) int64, C-contiguous, grad x's dtype and shape or
 * None; the losses' total */
static PyObject *
small_loss(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *address, *grad;
    PyArrayObject *x, *labels;
    int short_rows;
    double scale;
    if (!PyArg_ParseTuple(args, "O!O!O!pOd:small_loss", &PyLong_Type, &address, &PyArray_Type, &x, &PyArray_Type,
                          &labels, &short_rows, &grad, &scale)) {
        return NULL;
    }
    PyArrayObject *g = (PyArrayObject *)grad;
    int grad_ok = grad == Py_None || (PyArray_CheckExact(grad) && PyArray_DESCR(g) == PyArray_DESCR(x)
                                      && aligned_c(g) && PyArray_ISWRITEABLE(g) && PyArray_SAMESHAPE(g, x));
    if (!small_batch(x, labels) || !grad_ok) {
        PyErr_SetString(PyExc_ValueError, "small_loss: (rows, n) float logits, (rows,) int64 labels, aligned, "
                        "C-contiguous, grad None or the logits' like");
        return NULL;
    }
    small_loss_fn f = (small_loss_fn)function_at(address, "small_loss");
    if (f == NULL) {
        return NULL;
    }
    double total = run_small_loss(f, x, labels, grad == Py_None ? NULL : (PyArrayObject *)grad, short_rows, scale);
    if (total != total && PyErr_Occurred()) {
        return NULL;
    }
    return PyFloat_FromDouble(total);
}

/* small_rows(address, in0, in1, out): _api._small_rows's serial call of the C
 * function at address (the entry it puts in _SMALL_ROWS) on ndarrays of one float
 * dtype and shape, aligned and C-contiguous, along their last axis (in1 None for a
 * forward, whose in0 is x; a backward's are grad_out and y); out */
static PyObject *
small_rows_call(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *address, *in1;
    PyArrayObject *in0, *out;
    if (!PyArg_ParseTuple(args, "O!O!OO!:small_rows", &PyLong_Type, &address, &PyArray_Type, &in0, &in1,
                          &PyArray_Type, &out)) {
        return NULL;
    }
    PyArray_Descr *dt = PyArray_DESCR(out);
    int nd = PyArray_NDIM(out);
    if ((dt != descr_f32 && dt != descr_f64) || nd == 0 || PyArray_SIZE(out) == 0 || !aligned_c(out)
            || !PyArray_ISWRITEABLE(out) || !like_x((PyObject *)in0, out) || !aligned_c(in0)
            || (in1 != Py_None && (!like_x(in1, out) || !aligned_c((PyArrayObject *)in1)))) {
        PyErr_SetString(PyExc_ValueError, "small_rows: ndarrays of one shape and float dtype, aligned, C-contiguous, "
                        "not empty, out writeable");
        return NULL;
    }
    small_row_fn f = (small_row_fn)function_at(address, "small_rows");
    if (f == NULL) {
        return NULL;
    }
    npy_intp n = PyArray_DIMS(out)[nd - 1];
    f(PyArray_DATA(in0), PyArray_DATA(in1 == Py_None ? in0 : (PyArrayObject *)in1), PyArray_DATA(out),
      PyArray_SIZE(out) / n, n);
    return Py_NewRef((PyObject *)out);
}

static PyMethodDef module_methods[] = {
    {"small_rows", small_rows_call, METH_VARARGS,
     PyDoc_STR("small_rows(address, in0, in1, out): a row op's serial kernel as a C function "
               "(_kernels.small_row_function) along the last axis; out")},
    {"small_loss", small_loss, METH_VARARGS,
     PyDoc_STR("small_loss(address, x, labels, short, grad, scale): the losses' total from the C function of "
               "a loss's serial kernel (_kernels.small_loss_function)")},
    {"configure", configure, METH_VARARGS,
     PyDoc_STR("configure(override, backend_globals, small_rows, small_losses): the ContextVar of "
               "fastact.use_backend(...), _backend's globals, _api._SMALL_ROWS and _api._SMALL_LOSSES")},
    {NULL}
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "fastact._fastcall",
    .m_doc = PyDoc_STR("The small calls of elementwise ops, in C."),
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__fastcall(void)
{
    import_array();
    import_umath();
    if (PyType_Ready(&DispatchType) < 0 || PyType_Ready(&EntryType) < 0) {
        return NULL;
    }
    str_forward = PyUnicode_InternFromString("forward");
    str_grad = PyUnicode_InternFromString("grad");
    str_value_and_grad = PyUnicode_InternFromString("value_and_grad");
    str_backward_x = PyUnicode_InternFromString("backward_x");
    str_backward_y = PyUnicode_InternFromString("backward_y");
    str_out = PyUnicode_InternFromString("out");
    str_x = PyUnicode_InternFromString("x");
    str_y = PyUnicode_InternFromString("y");
    str_axis = PyUnicode_InternFromString("axis");
    str_numba = PyUnicode_InternFromString("numba");
    str_default_backend = PyUnicode_InternFromString("_default_backend");
    str_call = PyUnicode_InternFromString("_call");
    str_reduction = PyUnicode_InternFromString("reduction");
    str_mean = PyUnicode_InternFromString("mean");
    str_sum = PyUnicode_InternFromString("sum");
    descr_f32 = PyArray_DescrFromType(NPY_FLOAT32);
    descr_f64 = PyArray_DescrFromType(NPY_FLOAT64);
    descr_i64 = PyArray_DescrFromType(NPY_INT64);
    if (!str_forward || !str_grad || !str_value_and_grad || !str_backward_x || !str_backward_y
            || !str_x || !str_y || !str_axis || !str_out || !str_numba || !str_default_backend || !str_call || !str_reduction
            || !str_mean || !str_sum || !descr_f32 || !descr_f64 || !descr_i64) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&DispatchType);
    if (PyModule_AddObject(m, "Dispatch", (PyObject *)&DispatchType) < 0) {
        Py_DECREF(&DispatchType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&EntryType);
    if (PyModule_AddObject(m, "Entry", (PyObject *)&EntryType) < 0) {
        Py_DECREF(&EntryType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
