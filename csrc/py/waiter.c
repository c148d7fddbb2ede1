/*
 * waiter.c -- stolon._core.Waiter, gevent's Waiter in C.
 *
 * A one-shot slot between one waiting greenlet and the hub.  get() returns
 * an outcome that arrived first, or records the current greenlet and
 * switches to the hub; switch(value)/throw(*args), called from the hub
 * (a watcher's or a queued callback), resume that greenlet, or store the
 * outcome when nobody waits yet.  Only the hub may resume a waiting
 * greenlet: that is what lets hub.wait() detect a stray switch.
 *
 * Errors the resumed greenlet lets escape into the hub are the hub's
 * (hub.handle_error(context, type, value, tb)), as in gevent.
 */
#include "hub.h"

#include "structmember.h"

#include <stdarg.h>


/* ---- the core operations (also used by hub.c) ---- */

stl_waiter *stl_waiter_new(PyObject *hub)
{
    stl_waiter *w = PyObject_GC_New(stl_waiter, &stl_waiter_type);
    if (w == NULL)
        return NULL;
    w->hub = Py_NewRef(hub);
    w->greenlet = w->value = w->exc = NULL;
    PyObject_GC_Track(w);
    return w;
}

/* hub.handle_error(context, *sys.exc_info()) for what the resumed greenlet
 * raised; -1 if handle_error itself raises. */
static int stl__waiter_report(stl_waiter *w, PyObject *glet, const char *how)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    PyObject *context = PyObject_GetAttrString(glet, how);
    if (context == NULL) {
        PyErr_Clear();
        context = Py_NewRef(glet);
    }
    PyObject *r = PyObject_CallMethod(w->hub, "handle_error", "OOOO", context, t,
                                      v ? v : Py_None, tb ? tb : Py_None);
    Py_DECREF(context);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int stl__waiter_from_hub(stl_waiter *w)
{
    stl_gthread *gt = stl_gthread_get();
    if (gt == NULL)
        return -1;
    if ((PyObject *)gt->current != w->hub) {
        PyErr_SetString(PyExc_AssertionError, "Can only use Waiter.switch method from the Hub greenlet");
        return -1;
    }
    return 0;
}

PyObject *stl_greenlet_resume(PyObject *glet, PyObject *value)
{
    static PyObject *name, *base_switch;
    if (name == NULL) {
        name = PyUnicode_InternFromString("switch");
        if (name == NULL)
            return NULL;
        base_switch = _PyType_Lookup(&stl_greenlet_type, name); /* borrowed: static type */
    }
    if (stl_greenlet_check(glet) && _PyType_Lookup(Py_TYPE(glet), name) == base_switch) {
        PyObject *args = PyTuple_Pack(1, value);
        if (args == NULL)
            return NULL;
        PyObject *r = stl_greenlet_switch((stl_greenlet *)glet, args, NULL);
        Py_DECREF(args);
        return r;
    }
    return PyObject_CallMethodOneArg(glet, name, value);
}

int stl_raise_stolon_error(const char *name, const char *fmt, ...)
{
    static PyObject *module;            /* stolon.exceptions, imported on first error */
    if (module == NULL && (module = PyImport_ImportModule("stolon.exceptions")) == NULL)
        return -1;
    PyObject *type = PyObject_GetAttrString(module, name);
    if (type == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    PyErr_FormatV(type, fmt, ap);
    va_end(ap);
    Py_DECREF(type);
    return -1;
}

int stl_waiter_switch(stl_waiter *w, PyObject *value)
{
    PyObject *glet = w->greenlet;
    if (glet == NULL) {
        Py_INCREF(value);
        Py_XSETREF(w->value, value);
        Py_XSETREF(w->exc, Py_NewRef(Py_None));
        return 0;
    }
    if (stl__waiter_from_hub(w) < 0)
        return -1;
    Py_INCREF(glet);
    PyObject *r = stl_greenlet_resume(glet, value);
    int rc = 0;
    if (r == NULL)
        rc = stl__waiter_report(w, glet, "switch");
    Py_XDECREF(r);
    Py_DECREF(glet);
    return rc;
}

static int stl__waiter_throw(stl_waiter *w, PyObject *args)
{
    PyObject *glet = w->greenlet;
    if (glet == NULL) {
        Py_INCREF(args);
        Py_XSETREF(w->exc, args);
        return 0;
    }
    if (stl__waiter_from_hub(w) < 0)
        return -1;
    Py_INCREF(glet);
    PyObject *throw = PyObject_GetAttrString(glet, "throw");
    PyObject *r = throw ? PyObject_Call(throw, args, NULL) : NULL;
    Py_XDECREF(throw);
    int rc = 0;
    if (r == NULL)
        rc = stl__waiter_report(w, glet, "throw");
    Py_XDECREF(r);
    Py_DECREF(glet);
    return rc;
}

PyObject *stl_waiter_get(stl_waiter *w)
{
    if (w->exc == Py_None)
        return Py_NewRef(w->value ? w->value : Py_None);
    stl_gthread *gt = stl_gthread_get();
    if (gt == NULL)
        return NULL;
    PyObject *cur = (PyObject *)gt->current;
    if (w->exc != NULL) {
        /* raised the way greenlet.throw raises into the running greenlet */
        PyObject *throw = PyObject_GetAttrString(cur, "throw");
        PyObject *r = throw ? PyObject_Call(throw, w->exc, NULL) : NULL;
        Py_XDECREF(throw);
        return r;
    }
    if (w->greenlet != NULL) {
        stl_raise_stolon_error("ConcurrentObjectUseError", "This Waiter is already used by %R", w->greenlet);
        return NULL;
    }
    w->greenlet = Py_NewRef(cur);
    Py_INCREF(w);
    PyObject *r = stl_hub_switch(w->hub);
    Py_CLEAR(w->greenlet);
    Py_DECREF(w);
    return r;
}

/* ---- the Python type ---- */

static int waiter_init(stl_waiter *w, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"hub", NULL};
    PyObject *hub = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:Waiter", kwlist, &hub))
        return -1;
    if (hub == Py_None) {
        hub = stl_hub_get();
        if (hub == NULL)
            return -1;
    } else {
        Py_INCREF(hub);
    }
    Py_XSETREF(w->hub, hub);
    Py_CLEAR(w->greenlet);
    Py_CLEAR(w->value);
    Py_CLEAR(w->exc);
    return 0;
}

static PyObject *waiter_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    stl_waiter *w = (stl_waiter *)type->tp_alloc(type, 0);
    return (PyObject *)w;
}

static int waiter_traverse(stl_waiter *w, visitproc visit, void *arg)
{
    Py_VISIT(w->hub);
    Py_VISIT(w->greenlet);
    Py_VISIT(w->value);
    Py_VISIT(w->exc);
    return 0;
}

static int waiter_clear_refs(stl_waiter *w)
{
    Py_CLEAR(w->hub);
    Py_CLEAR(w->greenlet);
    Py_CLEAR(w->value);
    Py_CLEAR(w->exc);
    return 0;
}

static void waiter_dealloc(stl_waiter *w)
{
    PyObject_GC_UnTrack(w);
    waiter_clear_refs(w);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyObject *waiter_switch(stl_waiter *w, PyObject *value)
{
    if (stl_waiter_switch(w, value) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *waiter_switch_args(stl_waiter *w, PyObject *args)
{
    return waiter_switch(w, args);
}

static PyObject *waiter_throw(stl_waiter *w, PyObject *args)
{
    if (stl__waiter_throw(w, args) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *waiter_get_m(stl_waiter *w, PyObject *unused)
{
    return stl_waiter_get(w);
}

static PyObject *waiter_clear(stl_waiter *w, PyObject *unused)
{
    Py_CLEAR(w->greenlet);
    Py_CLEAR(w->value);
    Py_CLEAR(w->exc);
    Py_RETURN_NONE;
}

static PyObject *waiter_ready(stl_waiter *w, PyObject *unused)
{
    return PyBool_FromLong(w->exc != NULL);
}

static PyObject *waiter_successful(stl_waiter *w, PyObject *unused)
{
    return PyBool_FromLong(w->exc == Py_None);
}

/* A link callback: the outcome of a finished greenlet or AsyncResult. */
static PyObject *waiter_call(stl_waiter *w, PyObject *args, PyObject *kw)
{
    PyObject *source;
    if (!PyArg_ParseTuple(args, "O:Waiter", &source))
        return NULL;
    PyObject *exc = PyObject_GetAttrString(source, "exception");
    if (exc == NULL)
        return NULL;
    int rc;
    if (exc == Py_None) {
        PyObject *value = PyObject_GetAttrString(source, "value");
        rc = value ? stl_waiter_switch(w, value) : -1;
        Py_XDECREF(value);
    } else {
        PyObject *targs = PyTuple_Pack(1, exc);
        rc = targs ? stl__waiter_throw(w, targs) : -1;
        Py_XDECREF(targs);
    }
    Py_DECREF(exc);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *waiter_get_exc_info(stl_waiter *w, void *c)
{
    if (w->exc == NULL)
        Py_RETURN_NONE;
    return Py_NewRef(w->exc);
}

static PyObject *waiter_get_greenlet(stl_waiter *w, void *c)
{
    return Py_NewRef(w->greenlet ? w->greenlet : Py_None);
}

static int waiter_set_greenlet(stl_waiter *w, PyObject *v, void *c)
{
    if (v == Py_None)
        v = NULL;
    Py_XINCREF(v);
    Py_XSETREF(w->greenlet, v);
    return 0;
}

static PyObject *waiter_get_value(stl_waiter *w, void *c)
{
    return Py_NewRef(w->value ? w->value : Py_None);
}

static int waiter_set_value(stl_waiter *w, PyObject *v, void *c)
{
    Py_XINCREF(v);
    Py_XSETREF(w->value, v);
    return 0;
}

static PyObject *waiter_get_hub(stl_waiter *w, void *c)
{
    return Py_NewRef(w->hub ? w->hub : Py_None);
}

static PyObject *waiter_str(stl_waiter *w)
{
    const char *name = Py_TYPE(w)->tp_name;
    const char *dot = strrchr(name, '.');
    name = dot ? dot + 1 : name;
    PyObject *g = w->greenlet ? w->greenlet : Py_None;
    if (w->exc == NULL)
        return PyUnicode_FromFormat("<%s greenlet=%S>", name, g);
    if (w->exc == Py_None)
        return PyUnicode_FromFormat("<%s greenlet=%S value=%R>", name, g, w->value ? w->value : Py_None);
    return PyUnicode_FromFormat("<%s greenlet=%S exc_info=%R>", name, g, w->exc);
}

static PyMethodDef waiter_methods[] = {
    {"switch", (PyCFunction)waiter_switch, METH_O,
     "switch(value): resume the waiting greenlet with value, or store it (hub only)."},
    {"switch_args", (PyCFunction)waiter_switch_args, METH_VARARGS, "switch_args(*args): switch(args)."},
    {"throw", (PyCFunction)waiter_throw, METH_VARARGS,
     "throw(*args): raise in the waiting greenlet, or store it (hub only)."},
    {"get", (PyCFunction)waiter_get_m, METH_NOARGS,
     "get(): the stored outcome, or wait in the hub for one."},
    {"clear", (PyCFunction)waiter_clear, METH_NOARGS, "Forget the outcome and the waiter."},
    {"ready", (PyCFunction)waiter_ready, METH_NOARGS, "True once an outcome is stored."},
    {"successful", (PyCFunction)waiter_successful, METH_NOARGS, "True if the outcome is a value."},
    {NULL}
};

static PyGetSetDef waiter_getset[] = {
    {"exc_info", (getter)waiter_get_exc_info, NULL, "The stored throw arguments, or None.", NULL},
    {"greenlet", (getter)waiter_get_greenlet, (setter)waiter_set_greenlet, "The waiting greenlet.", NULL},
    {"value", (getter)waiter_get_value, (setter)waiter_set_value, "The stored value.", NULL},
    {"hub", (getter)waiter_get_hub, NULL, "The hub that wakes this waiter.", NULL},
    {NULL}
};

PyTypeObject stl_waiter_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stolon.hub.Waiter",
    .tp_basicsize = sizeof(stl_waiter),
    .tp_dealloc = (destructor)waiter_dealloc,
    .tp_call = (ternaryfunc)waiter_call,
    .tp_str = (reprfunc)waiter_str,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Waiter(hub=None): a one-shot slot that parks one greenlet until the hub "
              "switches or throws into it.",
    .tp_traverse = (traverseproc)waiter_traverse,
    .tp_clear = (inquiry)waiter_clear_refs,
    .tp_methods = waiter_methods,
    .tp_getset = waiter_getset,
    .tp_init = (initproc)waiter_init,
    .tp_new = waiter_new,
};
