/*
 * module.c -- the stolon._core extension module: its functions, exception
 * types, the greenlet type's extra class attributes, and the C API capsule.
 *
 * The types are static: stolon keeps per-thread state in C thread-locals,
 * which one interpreter at a time can own, so the module refuses
 * sub-interpreters (m_size -1) rather than pretending to isolate them.
 */
#include "greenlet.h"
#include "stolon_api.h"
#include "switch_arch.h"
#include "hub.h"

static PyObject *mod_getcurrent(PyObject *module, PyObject *unused)
{
    if (STL_IS_FINALIZING()) {
        /* greenlet >= 3.5.1: code run by finalizers must not start switching */
        PyErr_SetString(PyExc_RuntimeError, "greenlet is being finalized");
        return NULL;
    }
    stl_gthread *gt = stl_gthread_get();
    if (gt == NULL)
        return NULL;
    if (gt->deleteme != NULL)
        stl_gthread_drain(gt);
    return Py_NewRef((PyObject *)gt->current);
}

static PyObject *mod_settrace(PyObject *module, PyObject *tracer)
{
    return stl_greenlet_settrace(tracer);
}

static PyObject *mod_gettrace(PyObject *module, PyObject *unused)
{
    return stl_greenlet_gettrace();
}

static PyMethodDef module_methods[] = {
    {"getcurrent", mod_getcurrent, METH_NOARGS, "getcurrent(): the greenlet running in this thread."},
    {"settrace", mod_settrace, METH_O,
     "settrace(callback): set this thread's switch tracer; returns the previous one."},
    {"gettrace", mod_gettrace, METH_NOARGS, "gettrace(): this thread's switch tracer, or None."},
    {NULL}
};

/* --- the C API --- */

static PyObject *capi_new(PyObject *run, PyObject *parent)
{
    if (parent != NULL && !stl_greenlet_check(parent)) {
        PyErr_SetString(PyExc_TypeError, "parent must be a greenlet");
        return NULL;
    }
    return (PyObject *)stl_greenlet_new(run, (stl_greenlet *)parent);
}

static PyObject *capi_getcurrent(void)
{
    return mod_getcurrent(NULL, NULL);
}

static int capi_check(PyObject *g)
{
    if (g == NULL || !stl_greenlet_check(g)) {
        PyErr_SetString(PyExc_TypeError, "expected a greenlet");
        return -1;
    }
    return 0;
}

static PyObject *capi_switch(PyObject *g, PyObject *args, PyObject *kwargs)
{
    if (capi_check(g) < 0)
        return NULL;
    if (args == NULL) {
        PyObject *empty = PyTuple_New(0);
        if (empty == NULL)
            return NULL;
        PyObject *r = stl_greenlet_switch((stl_greenlet *)g, empty,
                                          kwargs && PyDict_Check(kwargs) ? kwargs : NULL);
        Py_DECREF(empty);
        return r;
    }
    return stl_greenlet_switch((stl_greenlet *)g, args, kwargs && PyDict_Check(kwargs) ? kwargs : NULL);
}

static PyObject *capi_throw(PyObject *g, PyObject *typ, PyObject *val, PyObject *tb)
{
    if (capi_check(g) < 0)
        return NULL;
    return stl_greenlet_throw((stl_greenlet *)g, typ, val, tb);
}

static int capi_set_parent(PyObject *g, PyObject *parent)
{
    if (capi_check(g) < 0)
        return -1;
    return stl_greenlet_set_parent((stl_greenlet *)g, parent);
}

static PyObject *capi_get_parent(PyObject *g)
{
    if (capi_check(g) < 0)
        return NULL;
    return (PyObject *)Py_XNewRef((PyObject *)((stl_greenlet *)g)->parent);
}

static int capi_active(PyObject *g)
{
    return stl_greenlet_check(g) && stl_greenlet_active((stl_greenlet *)g);
}

static int capi_started(PyObject *g)
{
    return stl_greenlet_check(g) && stl_greenlet_started((stl_greenlet *)g);
}

static int capi_main(PyObject *g)
{
    return stl_greenlet_check(g) && stl_greenlet_is_main((stl_greenlet *)g);
}

static stl_capi capi = {
    .version = STL_CAPI_VERSION,
    .greenlet_type = &stl_greenlet_type,
    .greenlet_new = capi_new,
    .getcurrent = capi_getcurrent,
    .greenlet_switch = capi_switch,
    .greenlet_throw = capi_throw,
    .greenlet_set_parent = capi_set_parent,
    .greenlet_get_parent = capi_get_parent,
    .greenlet_active = capi_active,
    .greenlet_started = capi_started,
    .greenlet_main = capi_main,
};

/* --- module init --- */

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "stolon._core",
    .m_doc = "stolon's C core: stack-switching greenlets.",
    .m_size = -1,
    .m_methods = module_methods,
};

/* getcurrent, settrace, gettrace, error and GreenletExit are also class
 * attributes of the greenlet type, as in greenlet. */
static int stl__type_extras(PyObject *module)
{
    static const char *names[] = {"getcurrent", "settrace", "gettrace", "error", "GreenletExit", NULL};
    PyObject *dict = stl_greenlet_type.tp_dict;
    for (int i = 0; names[i] != NULL; i++) {
        PyObject *v = PyObject_GetAttrString(module, names[i]);
        if (v == NULL)
            return -1;
        if (PyCFunction_Check(v)) {
            PyObject *sm = PyStaticMethod_New(v);
            Py_DECREF(v);
            if ((v = sm) == NULL)
                return -1;
        }
        int rc = PyDict_SetItemString(dict, names[i], v);
        Py_DECREF(v);
        if (rc < 0)
            return -1;
    }
    PyType_Modified(&stl_greenlet_type);
    return 0;
}

PyMODINIT_FUNC PyInit__core(void)
{
    if (PyType_Ready(&stl_greenlet_type) < 0 || stl_gthread_ready() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL)
        return NULL;
    stl_GreenletExit = PyErr_NewExceptionWithDoc(
        "stolon.GreenletExit", "Raised in a greenlet to kill it; it ends the greenlet quietly.",
        PyExc_BaseException, NULL);
    stl_GreenletError = PyErr_NewExceptionWithDoc(
        "stolon.error", "A greenlet operation that cannot be done (e.g. a switch to another thread).",
        PyExc_Exception, NULL);
    if (stl_GreenletExit == NULL || stl_GreenletError == NULL)
        goto fail;
    capi.GreenletExit = stl_GreenletExit;
    capi.error = stl_GreenletError;
    Py_INCREF(&stl_greenlet_type);
    if (PyModule_AddObject(m, "greenlet", (PyObject *)&stl_greenlet_type) < 0
        || PyModule_AddObject(m, "GreenletExit", Py_NewRef(stl_GreenletExit)) < 0
        || PyModule_AddObject(m, "error", Py_NewRef(stl_GreenletError)) < 0
        || PyModule_AddObject(m, "_C_API", PyCapsule_New(&capi, "stolon._C_API", NULL)) < 0
        || PyModule_AddIntConstant(m, "CAPI_VERSION", STL_CAPI_VERSION) < 0
        || PyModule_AddStringConstant(m, "SWITCH_ARCH", STL_ARCH_NAME_STR) < 0
        || stl__type_extras(m) < 0
        || stl_loop_types_ready(m) < 0
        || stl_hub_types_ready(m) < 0
        || stl_linkable_ready(m) < 0
        || stl_sockio_ready(m) < 0
        || stl_sockmethods_ready(m) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
