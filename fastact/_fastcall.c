/* The call of an elementwise op on a small float32 or float64 ndarray, in C.
 *
 * fastact.sigmoid(x, out=o) on 16 elements spent 0.5 us in Python (the test for
 * the shortcut below, the call of the ufunc) and 0.2 us in the ufunc; SciPy's
 * expit, a plain ufunc, takes 0.24 us (CHANGELOG: small calls, issue 18).
 *
 * Dispatch is the base class of _api.ElementwiseOp.  Its call takes the same
 * shortcut as ElementwiseOp._call, the op's call written in Python, and hands
 * every other call to _call unchanged:
 *   op(x) or op(x, out=o), x an ndarray (not a subclass) of float32 or float64 in
 *   native byte order, the op's shortcut armed (self._shortcuts["forward"], a tuple
 *   (ufunc, float32 size, float64 size, default parameters, layer)), x.size below
 *   the size for its dtype, the backend numba (fastact.backend(...) in this
 *   context, else fastact.set_backend's), o an ndarray of x's dtype and shape;
 *   then it is ufunc(x, *parameters) or ufunc(x, *parameters, o).
 * Where x and o are aligned, contiguous (or one-dimensional, of any stride), o
 * writeable and the two either the same memory or apart, and the op has no
 * parameters, it calls the ufunc's inner loop for the dtype itself, as NumPy's
 * ufunc machinery would after its checks, which are most of a small call's time.
 * fastact's loops raise no floating-point flag (tests/test_semantics.py), so
 * there is no error state to look at afterwards.  Anything else goes to the ufunc.
 *
 * Python's _call stays the definition: without this module (no C compiler at
 * install) ElementwiseOp.__call__ is _call, and tests/test_small_calls.py runs
 * the same calls both ways.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <numpy/ufuncobject.h>

#define MAX_PARAMS 6

static PyObject *str_forward, *str_out, *str_numba, *str_default_backend, *str_call;
static PyObject *override_var;  /* _backend._override, a ContextVar */
static PyObject *backend_dict;  /* _backend's globals: _default_backend */
static PyArray_Descr *descr_f32, *descr_f64;

typedef struct {
    PyObject_HEAD
    PyObject *shortcuts;  /* kind -> shortcut tuple or None (ElementwiseOp._shortcuts) */
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

/* The inner loop of ufunc for type_num -> type_num, or NULL */
static PyUFuncGenericFunction
inner_loop(PyObject *ufunc, int type_num, void **data)
{
    if (!PyObject_TypeCheck(ufunc, &PyUFunc_Type)) {
        return NULL;
    }
    PyUFuncObject *u = (PyUFuncObject *)ufunc;
    if (u->nin != 1 || u->nout != 1 || u->functions == NULL) {
        return NULL;
    }
    for (int i = 0; i < u->ntypes; i++) {
        if (u->types[2 * i] == type_num && u->types[2 * i + 1] == type_num) {
            *data = u->data ? u->data[i] : NULL;
            return u->functions[i];
        }
    }
    return NULL;
}

/* ufunc's loop over x into out (NULL: a new array), or NULL without an error
 * where the call is not one for the loop */
static PyObject *
run_loop(PyObject *ufunc, PyArrayObject *x, PyArrayObject *out)
{
    npy_intp n = PyArray_SIZE(x);
    npy_intp xs = run_stride(x);
    if (PyArray_NDIM(x) == 0 || xs == 0 || n == 0) {
        return NULL;
    }
    void *data = NULL;
    PyUFuncGenericFunction loop = inner_loop(ufunc, PyArray_TYPE(x), &data);
    if (loop == NULL) {
        return NULL;
    }
    if (out != NULL) {
        npy_intp os = run_stride(out);
        if (os == 0 || !PyArray_ISWRITEABLE(out)) {
            return NULL;
        }
        char *xb = PyArray_BYTES(x), *ob = PyArray_BYTES(out);
        if (!(xb == ob && xs == os)) {  /* not in place: the two must be apart */
            npy_intp span_x = (n - 1) * xs, span_o = (n - 1) * os;
            char *xlo = span_x < 0 ? xb + span_x : xb, *xhi = (span_x < 0 ? xb : xb + span_x) + PyArray_ITEMSIZE(x);
            char *olo = span_o < 0 ? ob + span_o : ob, *ohi = (span_o < 0 ? ob : ob + span_o) + PyArray_ITEMSIZE(out);
            if (xlo < ohi && olo < xhi) {
                return NULL;
            }
        }
        Py_INCREF(out);
    }
    else {
        Py_INCREF(PyArray_DESCR(x));  /* for SimpleNewFromDescr, which steals it */
        out = (PyArrayObject *)PyArray_SimpleNewFromDescr(PyArray_NDIM(x), PyArray_DIMS(x), PyArray_DESCR(x));
        if (out == NULL) {
            return NULL;  /* with MemoryError set */
        }
    }
    char *args[2] = {PyArray_BYTES(x), PyArray_BYTES(out)};
    npy_intp steps[2] = {xs, run_stride(out)};
    loop(args, &n, steps, data);
    return (PyObject *)out;
}

/* The shortcut's result, or NULL: with an error set where the call failed, without
 * one where the call is not the shortcut's (Python's _call then has it) */
static PyObject *
shortcut(Dispatch *self, PyObject *x, PyObject *out)
{
    if (self->shortcuts == NULL || !PyDict_CheckExact(self->shortcuts) || !PyArray_CheckExact(x)) {
        return NULL;
    }
    PyObject *cut = PyDict_GetItemWithError(self->shortcuts, str_forward);
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
    PyObject *params = PyTuple_GET_ITEM(cut, 3);
    if (!PyTuple_CheckExact(params) || PyTuple_GET_SIZE(params) > MAX_PARAMS) {
        return NULL;
    }
    if (out != NULL) {
        if (!PyArray_CheckExact(out) || PyArray_DESCR((PyArrayObject *)out) != dt
                || !same_shape(xa, (PyArrayObject *)out)) {
            return NULL;
        }
    }
    int numba = numba_backend();
    if (numba <= 0) {
        return NULL;  /* with the error set, where there was one */
    }
    PyObject *ufunc = PyTuple_GET_ITEM(cut, 0);
    Py_INCREF(cut);  /* the dict's entry may change during the call */
    PyObject *result = NULL;
    Py_ssize_t np_ = PyTuple_GET_SIZE(params);
    if (np_ == 0) {
        result = run_loop(ufunc, xa, (PyArrayObject *)out);
    }
    if (result == NULL && !PyErr_Occurred()) {
        PyObject *stack[MAX_PARAMS + 2];
        Py_ssize_t n = 0;
        stack[n++] = x;
        for (Py_ssize_t i = 0; i < np_; i++) {
            stack[n++] = PyTuple_GET_ITEM(params, i);
        }
        if (out != NULL) {
            stack[n++] = out;
        }
        result = PyObject_Vectorcall(ufunc, stack, n, NULL);
        if (result == NULL && out != NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();  /* a read-only out: _call says so in fastact's words */
        }
    }
    Py_DECREF(cut);
    return result;
}

static PyObject *
dispatch_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) == 1) {
        PyObject *out = NULL;
        int plain = 1;
        if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
            out = PyDict_GET_SIZE(kwargs) == 1 ? PyDict_GetItemWithError(kwargs, str_out) : NULL;
            plain = out != NULL;
            if (out == Py_None) {
                out = NULL;
            }
        }
        if (plain) {
            PyObject *result = shortcut((Dispatch *)self, PyTuple_GET_ITEM(args, 0), out);
            if (result != NULL || PyErr_Occurred()) {
                return result;
            }
        }
        else if (PyErr_Occurred()) {
            return NULL;
        }
    }
    PyObject *call = PyObject_GetAttr(self, str_call);
    if (call == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_Call(call, args, kwargs);
    Py_DECREF(call);
    return result;
}

static int
dispatch_traverse(Dispatch *self, visitproc visit, void *arg)
{
    Py_VISIT(self->shortcuts);
    return 0;
}

static int
dispatch_clear(Dispatch *self)
{
    Py_CLEAR(self->shortcuts);
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
     "kind -> the shortcut tuple, or None before a call has armed it"},
    {NULL}
};

static PyTypeObject DispatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fastact._fastcall.Dispatch",
    .tp_doc = PyDoc_STR("Base of the elementwise ops: the call of a small ndarray in C, else _call."),
    .tp_basicsize = sizeof(Dispatch),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_call = dispatch_call,
    .tp_traverse = (traverseproc)dispatch_traverse,
    .tp_clear = (inquiry)dispatch_clear,
    .tp_dealloc = (destructor)dispatch_dealloc,
    .tp_members = dispatch_members,
};

static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *var, *globals;
    if (!PyArg_ParseTuple(args, "O!O!:configure", &PyContextVar_Type, &var, &PyDict_Type, &globals)) {
        return NULL;
    }
    Py_INCREF(var);
    Py_XSETREF(override_var, var);
    Py_INCREF(globals);
    Py_XSETREF(backend_dict, globals);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"configure", configure, METH_VARARGS,
     PyDoc_STR("configure(override, backend_globals): the ContextVar of fastact.backend(...) and _backend's globals")},
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
    if (PyType_Ready(&DispatchType) < 0) {
        return NULL;
    }
    str_forward = PyUnicode_InternFromString("forward");
    str_out = PyUnicode_InternFromString("out");
    str_numba = PyUnicode_InternFromString("numba");
    str_default_backend = PyUnicode_InternFromString("_default_backend");
    str_call = PyUnicode_InternFromString("_call");
    descr_f32 = PyArray_DescrFromType(NPY_FLOAT32);
    descr_f64 = PyArray_DescrFromType(NPY_FLOAT64);
    if (!str_forward || !str_out || !str_numba || !str_default_backend || !str_call || !descr_f32 || !descr_f64) {
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
    return m;
}
