/*
 * watcher_type.c -- stolon.loop.watcher: what every watcher kind shares.
 *
 * start(callback, *args) / stop() / close(), the attributes (active,
 * pending, ref, priority, callback, args, loop), context-manager use, the
 * "held" bookkeeping of loop.h and the one C callback of every watcher
 * object (stl_pywatcher_dispatch), which calls the C fast path if one is
 * set and the Python callback otherwise.  Kinds (watcher_kinds.c) add
 * their own attributes and the start/stop of their C watcher.
 */
#include "loop.h"

/* ---- holding ---- */

static void stl__hold(stl_pywatcher *w)
{
    stl_pyloop *pl = w->loop;
    Py_INCREF(w);
    w->held = 1;
    w->hprev = NULL;
    w->hnext = pl->held;
    if (pl->held)
        pl->held->hprev = w;
    pl->held = w;
    pl->nheld++;
}

/* Unlinks w from its loop's held list; the caller owes the DECREF. */
static void stl__unhold(stl_pywatcher *w)
{
    stl_pyloop *pl = w->loop;
    if (w->hprev)
        w->hprev->hnext = w->hnext;
    else
        pl->held = w->hnext;
    if (w->hnext)
        w->hnext->hprev = w->hprev;
    w->hprev = w->hnext = NULL;
    w->held = 0;
    pl->nheld--;
}

void stl_pywatcher_sync(stl_pywatcher *w)
{
    int busy = w->loop != NULL && w->loop->loop != NULL && (w->cw->active || w->cw->pending);
    if (busy && !w->held) {
        stl__hold(w);
    } else if (!busy && w->held) {
        stl__unhold(w);
        Py_DECREF(w);
    }
}

void stl_pyloop_release_held(stl_pyloop *pl)
{
    while (pl->held != NULL) {
        stl_pywatcher *w = pl->held;
        if (pl->loop != NULL)
            stl_pywatcher_kind_stop(w);
        stl__unhold(w);
        Py_DECREF(w);
    }
}

/* ---- start and stop ---- */

static int stl__usable(stl_pywatcher *w)
{
    if (w->closed) {
        PyErr_SetString(PyExc_ValueError, "operation on closed watcher");
        return -1;
    }
    if (w->loop == NULL) {
        PyErr_SetString(PyExc_ValueError, "operation on destroyed loop");
        return -1;
    }
    return stl_pyloop_check(w->loop);
}

int stl_pywatcher_start_raw(stl_pywatcher *w)
{
    if (stl__usable(w) < 0)
        return -1;
    int rc = stl_pywatcher_kind_start(w);
    if (rc < 0) {
        if (!PyErr_Occurred())
            stl_pyloop_errno(rc);
        return -1;
    }
    stl_pywatcher_sync(w);
    return 0;
}

void stl_pywatcher_stop_raw(stl_pywatcher *w)
{
    if (w->loop != NULL && w->loop->loop != NULL && w->loop->saved == NULL)
        stl_pywatcher_kind_stop(w);
    stl_pywatcher_sync(w);
}

int stl_pywatcher_start_c(stl_pywatcher *w, stl_pywatcher_ccb fn, void *arg)
{
    if (stl__usable(w) < 0)
        return -1;
    w->ccb = fn;
    w->carg = arg;
    Py_CLEAR(w->callback);
    Py_CLEAR(w->args);
    return stl_pywatcher_start_raw(w);
}

/*
 * Sets callback and args from a vector (callback, *args), as start() gets
 * it from METH_FASTCALL: no argument tuple is built for the call, only the
 * args tuple the watcher keeps (the shared empty tuple when there are none).
 */
int stl__pw_set_callback(stl_pywatcher *w, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "start() needs a callback");
        return -1;
    }
    PyObject *func = args[0];
    if (!PyCallable_Check(func)) {
        PyErr_Format(PyExc_TypeError, "callback must be callable, not %.200s", Py_TYPE(func)->tp_name);
        return -1;
    }
    PyObject *rest = PyTuple_New(nargs - 1);
    if (rest == NULL)
        return -1;
    for (Py_ssize_t i = 1; i < nargs; i++)
        PyTuple_SET_ITEM(rest, i - 1, Py_NewRef(args[i]));
    Py_INCREF(func);
    Py_XSETREF(w->callback, func);
    Py_XSETREF(w->args, rest);
    w->ccb = NULL;
    return 0;
}

static PyObject *pw_start(stl_pywatcher *w, PyObject *const *args, Py_ssize_t nargs)
{
    if (stl__usable(w) < 0 || stl__pw_set_callback(w, args, nargs) < 0)
        return NULL;
    if (stl_pywatcher_start_raw(w) < 0)
        return NULL;
    Py_RETURN_NONE;
}

int stl_pywatcher_stop(stl_pywatcher *w)
{
    if (w->loop != NULL && w->loop->saved != NULL)
        return stl_pyloop_check(w->loop);   /* raises: blocked in another thread */
    Py_INCREF(w);
    stl_pywatcher_stop_raw(w);
    Py_CLEAR(w->callback);
    Py_CLEAR(w->args);
    w->ccb = NULL;
    Py_DECREF(w);
    return 0;
}

static PyObject *pw_stop(stl_pywatcher *w, PyObject *unused)
{
    if (stl_pywatcher_stop(w) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *pw_close(stl_pywatcher *w, PyObject *unused)
{
    PyObject *r = pw_stop(w, NULL);
    if (r != NULL)
        w->closed = 1;
    return r;
}

static PyObject *pw_enter(stl_pywatcher *w, PyObject *unused)
{
    return Py_NewRef((PyObject *)w);
}

static PyObject *pw_exit(stl_pywatcher *w, PyObject *args)
{
    PyObject *r = pw_close(w, NULL);
    Py_XDECREF(r);
    return r ? Py_NewRef(Py_False) : NULL;
}

/* ---- the C callback of every watcher object ---- */

#define STL__STACK_ARGS 8

/*
 * func(*args) through vectorcall: the stored tuple's items are the vector,
 * so no tuple is built per event.  gevent's convention: if args[0] is
 * EVENTS, the callback gets revents in its place (in a copy of the vector).
 */
static PyObject *stl__call_stored(PyObject *func, PyObject *args, int revents)
{
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *const *argv = &PyTuple_GET_ITEM(args, 0);
    if (n == 0 || argv[0] != stl_pyloop_EVENTS)
        return PyObject_Vectorcall(func, argv, (size_t)n, NULL);
    PyObject *small[STL__STACK_ARGS], **vec = small;
    if (n > STL__STACK_ARGS && (vec = PyMem_Malloc((size_t)n * sizeof *vec)) == NULL)
        return PyErr_NoMemory();
    PyObject *ev = PyLong_FromLong(revents);
    PyObject *r = NULL;
    if (ev != NULL) {
        vec[0] = ev;
        for (Py_ssize_t i = 1; i < n; i++)
            vec[i] = argv[i];
        r = PyObject_Vectorcall(func, vec, (size_t)n, NULL);
        Py_DECREF(ev);
    }
    if (vec != small)
        PyMem_Free(vec);
    return r;
}

void stl_pywatcher_dispatch(stl_loop *loop, stl_watcher *cw, int revents)
{
    stl_pywatcher *w = cw->data;
    stl_pyloop *pl = w->loop;
    stl_pyloop_acquire(pl);
    Py_INCREF(w);
    if (w->ccb != NULL) {
        w->ccb(w, revents, w->carg);
    } else if (w->callback != NULL) {
        PyObject *func = Py_NewRef(w->callback), *args = Py_NewRef(w->args);
        PyObject *r = stl__call_stored(func, args, revents);
        if (r == NULL)
            stl_pyloop_report(pl, (PyObject *)w);
        Py_XDECREF(r);
        if (!cw->active && !cw->pending && w->callback == func) {
            /* done for good (a one-shot timer, a child that exited): let go */
            Py_CLEAR(w->callback);
            Py_CLEAR(w->args);
        }
        Py_DECREF(func);
        Py_DECREF(args);
    }
    stl_pywatcher_sync(w);
    Py_DECREF(w);
}

/* ---- attributes ---- */

static PyObject *pw_get_active(stl_pywatcher *w, void *c) { return PyBool_FromLong(w->cw->active); }
static PyObject *pw_get_pending(stl_pywatcher *w, void *c) { return PyBool_FromLong(w->cw->pending); }
static PyObject *pw_get_ref(stl_pywatcher *w, void *c) { return PyBool_FromLong(stl_is_ref(w->cw)); }
static PyObject *pw_get_priority(stl_pywatcher *w, void *c) { return PyLong_FromLong(w->cw->priority); }
static PyObject *pw_get_closed(stl_pywatcher *w, void *c) { return PyBool_FromLong(w->closed); }
static PyObject *pw_get_loop(stl_pywatcher *w, void *c)
{
    return Py_NewRef(w->loop ? (PyObject *)w->loop : Py_None);
}
static PyObject *pw_get_callback(stl_pywatcher *w, void *c)
{
    return Py_NewRef(w->callback ? w->callback : Py_None);
}
static PyObject *pw_get_args(stl_pywatcher *w, void *c)
{
    return Py_NewRef(w->args ? w->args : Py_None);
}

static int pw_set_ref(stl_pywatcher *w, PyObject *v, void *c)
{
    int on = v ? PyObject_IsTrue(v) : -1;
    if (on < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_AttributeError, "cannot delete ref");
        return -1;
    }
    stl_loop *l = w->loop ? w->loop->loop : NULL;
    if (w->cw->active && (l == NULL || stl_pyloop_check(w->loop) < 0))
        return -1;
    if (on)
        stl_ref(l, w->cw);
    else
        stl_unref(l, w->cw);
    return 0;
}

/* libev's rule: the priority changes only while neither active nor pending. */
int stl__pw_set_priority_obj(stl_pywatcher *w, PyObject *v)
{
    long p = v == NULL || v == Py_None ? 0 : PyLong_AsLong(v);
    if (p == -1 && PyErr_Occurred())
        return -1;
    if (p < STL_MINPRI || p > STL_MAXPRI) {
        PyErr_Format(PyExc_ValueError, "priority must be in [%d, %d], not %ld", STL_MINPRI, STL_MAXPRI, p);
        return -1;
    }
    if (stl_set_priority(w->cw, (int)p) < 0) {
        PyErr_SetString(PyExc_AttributeError, "cannot set the priority of an active or pending watcher");
        return -1;
    }
    return 0;
}

static int pw_set_priority(stl_pywatcher *w, PyObject *v, void *c)
{
    return stl__pw_set_priority_obj(w, v);
}

static int pw_set_callback(stl_pywatcher *w, PyObject *v, void *c)
{
    if (v == NULL || v == Py_None) {
        Py_CLEAR(w->callback);
        return 0;
    }
    if (!PyCallable_Check(v)) {
        PyErr_Format(PyExc_TypeError, "callback must be callable, not %.200s", Py_TYPE(v)->tp_name);
        return -1;
    }
    Py_INCREF(v);
    Py_XSETREF(w->callback, v);
    if (w->args == NULL && (w->args = PyTuple_New(0)) == NULL)
        return -1;
    return 0;
}

static int pw_set_args(stl_pywatcher *w, PyObject *v, void *c)
{
    if (v == NULL || !PyTuple_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "args must be a tuple");
        return -1;
    }
    Py_INCREF(v);
    Py_XSETREF(w->args, v);
    return 0;
}

/* ---- the type ---- */

/* Watchers come from the loop's factories (loop.io(...), ...), never from their type. */
PyObject *stl_pywatcher_no_new(PyTypeObject *t, PyObject *a, PyObject *k)
{
    PyErr_Format(PyExc_TypeError, "cannot create '%.100s' instances; use the loop's factory methods",
                 t->tp_name);
    return NULL;
}

static int pw_traverse(stl_pywatcher *w, visitproc visit, void *arg)
{
    Py_VISIT(w->loop);
    Py_VISIT(w->callback);
    Py_VISIT(w->args);
    return 0;
}

static int pw_clear(stl_pywatcher *w)
{
    if (w->loop != NULL) {
        if (w->loop->saved != NULL)
            return 0; /* the loop polls in another thread: leave it alone */
        stl_pywatcher_stop_raw(w);
    }
    Py_CLEAR(w->callback);
    Py_CLEAR(w->args);
    if (!w->held)
        Py_CLEAR(w->loop);
    return 0;
}

static void pw_dealloc(stl_pywatcher *w)
{
    PyObject_GC_UnTrack(w);
    if (w->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)w);
    /* held watchers are never deallocated, so the C watcher is idle here,
     * unless the loop is gone (then it is inactive and forgotten) */
    if (w->loop != NULL && w->loop->loop != NULL && (w->cw->active || w->cw->pending)
        && w->loop->saved == NULL)
        stl_pywatcher_kind_stop(w);
    Py_CLEAR(w->callback);
    Py_CLEAR(w->args);
    Py_CLEAR(w->loop);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyObject *pw_repr(stl_pywatcher *w)
{
    return PyUnicode_FromFormat("<%s at %p%s%s%s callback=%R>", Py_TYPE(w)->tp_name, w,
                                w->cw->active ? " active" : "", w->cw->pending ? " pending" : "",
                                w->closed ? " closed" : "", w->callback ? w->callback : Py_None);
}

static PyMethodDef pw_methods[] = {
    {"start", (PyCFunction)(void (*)(void))pw_start, METH_FASTCALL,
     "start(callback, *args): call callback(*args) on events (EVENTS in args[0] becomes the revents)."},
    {"stop", (PyCFunction)pw_stop, METH_NOARGS, "Stop; forgets a pending event, callback and args."},
    {"close", (PyCFunction)pw_close, METH_NOARGS, "Stop for good; start() then raises ValueError."},
    {"__enter__", (PyCFunction)pw_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)pw_exit, METH_VARARGS, NULL},
    {NULL}
};

static PyGetSetDef pw_getset[] = {
    {"active", (getter)pw_get_active, NULL, "Started and not stopped.", NULL},
    {"pending", (getter)pw_get_pending, NULL, "An event waits for delivery.", NULL},
    {"ref", (getter)pw_get_ref, (setter)pw_set_ref, "Whether it keeps loop.run() going.", NULL},
    {"priority", (getter)pw_get_priority, (setter)pw_set_priority, "-2..2; set only while idle.", NULL},
    {"callback", (getter)pw_get_callback, (setter)pw_set_callback, NULL, NULL},
    {"args", (getter)pw_get_args, (setter)pw_set_args, NULL, NULL},
    {"loop", (getter)pw_get_loop, NULL, NULL, NULL},
    {"closed", (getter)pw_get_closed, NULL, NULL, NULL},
    {NULL}
};

PyTypeObject stl_pywatcher_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stolon.loop.watcher",
    .tp_basicsize = sizeof(stl_pywatcher),
    .tp_dealloc = (destructor)pw_dealloc,
    .tp_repr = (reprfunc)pw_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The base of every watcher kind; made by the loop's factory methods.",
    .tp_traverse = (traverseproc)pw_traverse,
    .tp_clear = (inquiry)pw_clear,
    .tp_weaklistoffset = offsetof(stl_pywatcher, weakreflist),
    .tp_methods = pw_methods,
    .tp_getset = pw_getset,
    .tp_new = stl_pywatcher_no_new,
};
