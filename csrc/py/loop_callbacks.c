/*
 * loop_callbacks.c -- loop.run_callback: a FIFO of Python calls made just
 * before the loop would block, as gevent does it.
 *
 * The FIFO is drained by the loop's internal prepare watcher (priority
 * MINPRI, started with the loop).  That watcher is unreferenced while the
 * FIFO is empty and referenced while it is not, so queued callbacks keep
 * run() going.  A drain stops once it has taken longer than
 * sys.getswitchinterval() and arms an internal zero timer, so the loop
 * polls without blocking (I/O is not starved by callbacks that queue
 * callbacks) and comes back for the rest.  Last, the prepare watcher
 * releases the GIL for the poll (loop.h).
 *
 * The callback objects are not tracked by the cyclic GC: a program that
 * queues many calls per iteration would otherwise pay for the collector
 * walking them.  A callback object holds references only while it is
 * queued (running or stopping it clears them), and while it is queued the
 * loop's tp_traverse visits those references for it, so cycles through a
 * queued call are still found and nothing is hidden from the collector.
 *
 * run_callback_threadsafe appends under the GIL and sends the loop's
 * internal async watcher, whose callback (in the loop's thread) re-refs
 * the prepare watcher.  Nothing here touches the C loop from a thread
 * other than the loop's.
 */
#include "hub.h"

#include <time.h>

/* ---- the callback object ---- */

static PyObject *cb_stop(stl_pycallback *c, PyObject *unused)
{
    Py_CLEAR(c->callback);
    Py_CLEAR(c->args);
    Py_RETURN_NONE;
}

static PyObject *cb_get_pending(stl_pycallback *c, void *x) { return PyBool_FromLong(c->callback != NULL); }
static PyObject *cb_get_callback(stl_pycallback *c, void *x) { return Py_NewRef(c->callback ? c->callback : Py_None); }
static PyObject *cb_get_args(stl_pycallback *c, void *x) { return Py_NewRef(c->args ? c->args : Py_None); }

static int cb_clear(stl_pycallback *c)
{
    Py_CLEAR(c->callback);
    Py_CLEAR(c->args);
    return 0;
}

/* Spent callback objects are kept for reuse: a queued call costs one of them,
 * and a program that queues many per iteration would otherwise pay the
 * allocator for each.  Every user holds the GIL. */
#define STL_CB_FREELIST 128
static stl_pycallback *stl__cb_free[STL_CB_FREELIST];
static int stl__cb_nfree;

static stl_pycallback *stl__cb_alloc(void)
{
    if (stl__cb_nfree > 0) {
        stl_pycallback *c = stl__cb_free[--stl__cb_nfree];
        PyObject_Init((PyObject *)c, &stl_pycallback_type);
        return c;
    }
    return PyObject_New(stl_pycallback, &stl_pycallback_type);
}

static void cb_dealloc(stl_pycallback *c)
{
    cb_clear(c);
    if (Py_TYPE(c) == &stl_pycallback_type && stl__cb_nfree < STL_CB_FREELIST) {
        stl__cb_free[stl__cb_nfree++] = c;
        return;
    }
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *cb_repr(stl_pycallback *c)
{
    if (c->callback == NULL)
        return PyUnicode_FromFormat("<callback at %p done>", c);
    return PyUnicode_FromFormat("<callback at %p pending %R>", c, c->callback);
}

static PyMethodDef cb_methods[] = {
    {"stop", (PyCFunction)cb_stop, METH_NOARGS, "Cancel the call if it has not run yet."},
    {"close", (PyCFunction)cb_stop, METH_NOARGS, "Same as stop()."},
    {NULL}
};

static PyGetSetDef cb_getset[] = {
    {"pending", (getter)cb_get_pending, NULL, "True until it runs or is stopped.", NULL},
    {"callback", (getter)cb_get_callback, NULL, NULL, NULL},
    {"args", (getter)cb_get_args, NULL, NULL, NULL},
    {NULL}
};

PyTypeObject stl_pycallback_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stolon.loop.callback",
    .tp_basicsize = sizeof(stl_pycallback),
    .tp_dealloc = (destructor)cb_dealloc,
    .tp_repr = (reprfunc)cb_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A call queued by loop.run_callback().",
    .tp_methods = cb_methods,
    .tp_getset = cb_getset,
};

/* ---- the FIFO ---- */

/* The prepare watcher keeps run() going exactly while callbacks are queued. */
static void stl__cbq_sync_ref(stl_pyloop *pl)
{
    if (pl->loop == NULL)
        return;
    int ref = stl_is_ref(&pl->prep.w);
    if (pl->cb_head != NULL && !ref)
        stl_ref(pl->loop, &pl->prep.w);
    else if (pl->cb_head == NULL && ref)
        stl_unref(pl->loop, &pl->prep.w);
}

/* Appends c; the queue takes a reference of its own. */
static void stl__cbq_link(stl_pyloop *pl, stl_pycallback *c)
{
    Py_INCREF(c);
    if (pl->cb_tail)
        pl->cb_tail->next = c;
    else
        pl->cb_head = c;
    pl->cb_tail = c;
}

static stl_pycallback *stl__cbq_append(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "run_callback() needs a callable");
        return NULL;
    }
    PyObject *func = args[0];
    if (!PyCallable_Check(func)) {
        PyErr_Format(PyExc_TypeError, "callback must be callable, not %.200s", Py_TYPE(func)->tp_name);
        return NULL;
    }
    if (pl->loop == NULL) {
        PyErr_SetString(PyExc_ValueError, "operation on destroyed loop");
        return NULL;
    }
    PyObject *rest = PyTuple_New(nargs - 1);
    if (rest == NULL)
        return NULL;
    for (Py_ssize_t i = 1; i < nargs; i++)
        PyTuple_SET_ITEM(rest, i - 1, Py_NewRef(args[i]));
    stl_pycallback *c = stl__cb_alloc();
    if (c == NULL) {
        Py_DECREF(rest);
        return NULL;
    }
    c->next = NULL;
    c->cfn = NULL;
    c->callback = Py_NewRef(func);
    c->args = rest;
    stl__cbq_link(pl, c);
    return c;
}

stl_pycallback *stl_pyloop_run_callback_c(stl_pyloop *pl, int (*fn)(PyObject *), PyObject *obj)
{
    if (pl->loop == NULL) {
        PyErr_SetString(PyExc_ValueError, "operation on destroyed loop");
        return NULL;
    }
    if (pl->saved != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the loop is polling in another thread");
        return NULL;
    }
    stl_pycallback *c = stl__cb_alloc();
    if (c == NULL)
        return NULL;
    c->next = NULL;
    c->cfn = fn;
    c->callback = Py_NewRef(obj);
    c->args = NULL;
    stl__cbq_link(pl, c);
    stl__cbq_sync_ref(pl);
    return c;
}

PyObject *stl_pyloop_run_callback(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs)
{
    if (pl->saved != NULL) /* the loop polls in another thread */
        return stl_pyloop_run_callback_threadsafe(pl, args, nargs);
    stl_pycallback *c = stl__cbq_append(pl, args, nargs);
    if (c != NULL)
        stl__cbq_sync_ref(pl);
    return (PyObject *)c;
}

PyObject *stl_pyloop_run_callback_threadsafe(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs)
{
    stl_pycallback *c = stl__cbq_append(pl, args, nargs);
    if (c != NULL)
        stl_async_send(pl->loop, &pl->wake);
    return (PyObject *)c;
}

void stl_pyloop_callbacks_clear(stl_pyloop *pl)
{
    while (pl->cb_head != NULL) {
        stl_pycallback *c = pl->cb_head;
        pl->cb_head = c->next;
        if (pl->cb_head == NULL)
            pl->cb_tail = NULL;
        c->next = NULL;
        cb_clear(c);
        Py_DECREF(c);
    }
}

/* ---- the drain ---- */

static double stl__mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double stl__switch_interval(void)
{
    PyObject *get = PySys_GetObject("getswitchinterval");    /* borrowed, no import */
    PyObject *r = get ? PyObject_CallNoArgs(get) : NULL;
    double v = r ? PyFloat_AsDouble(r) : 0.005;
    Py_XDECREF(r);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        v = 0.005;
    }
    return v;
}

/* Runs queued callbacks in order until the FIFO is empty or the time slice is spent. */
/* The clock is read every this many callbacks (gevent's CALLBACK_CHECK_COUNT):
 * reading it after each one would cost as much as a short callback. */
#define STL_CALLBACK_CHECK_COUNT 50

static void stl__cbq_drain(stl_pyloop *pl)
{
    double start = stl__mono(), slice = stl__switch_interval();
    int until_check = STL_CALLBACK_CHECK_COUNT;
    /* a callback may run a nested loop, which drains too */
    int was_running = pl->running_callbacks;
    pl->running_callbacks = 1;
    while (pl->cb_head != NULL && pl->loop != NULL) {
        stl_pycallback *c = pl->cb_head;
        pl->cb_head = c->next;
        if (pl->cb_head == NULL)
            pl->cb_tail = NULL;
        c->next = NULL;
        PyObject *func = c->callback, *args = c->args;
        c->callback = c->args = NULL;
        if (func != NULL && c->cfn != NULL) {
            if (c->cfn(func) < 0)
                stl_pyloop_report(pl, (PyObject *)c);
        } else if (func != NULL) {
            PyObject *r = PyObject_Vectorcall(func, &PyTuple_GET_ITEM(args, 0),
                                              PyTuple_GET_SIZE(args), NULL);
            if (r == NULL)
                stl_pyloop_report(pl, (PyObject *)c);
            Py_XDECREF(r);
        }
        Py_XDECREF(func);
        Py_XDECREF(args);
        Py_DECREF(c);
        if (pl->exc_type != NULL)
            break;
        if (--until_check > 0)
            continue;
        until_check = STL_CALLBACK_CHECK_COUNT;
        if (pl->cb_head != NULL && pl->loop != NULL && stl__mono() - start >= slice) {
            /* the zero timer makes the poll non-blocking; if it cannot start
             * (no memory to grow the timer heap), draining on is the safe choice */
            stl_timer_stop(pl->loop, &pl->timer0);
            if (stl_timer_start(pl->loop, &pl->timer0) == 0)
                break;
        }
    }
    pl->running_callbacks = was_running;
}

/* The internal prepare watcher: signals, the FIFO, then the GIL goes for the poll. */
static void stl__prep_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    stl_pyloop *pl = stl_loop_get_data(loop);
    stl_pyloop_acquire(pl);
    Py_INCREF(pl);
    /* A Python signal handler raised: handle_error gets it with no context (a hub
     * throws it into its main greenlet, as gevent's does); KeyboardInterrupt and
     * SystemExit are kept for run() to raise. */
    if (PyErr_CheckSignals() < 0)
        stl_pyloop_report(pl, NULL);
    if (pl->cb_head != NULL)
        stl__cbq_drain(pl);
    stl__cbq_sync_ref(pl);
    int release = pl->exc_type == NULL && pl->loop != NULL;
    Py_DECREF(pl);
    if (release)
        stl_pyloop_release(pl);
}

static void stl__wake_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    stl_pyloop *pl = stl_loop_get_data(loop);
    stl_pyloop_acquire(pl);
    pl->gil_phase = 0;
    stl__cbq_sync_ref(pl);
}

static void stl__timer0_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)loop;
}

int stl_pyloop_callbacks_init(stl_pyloop *pl)
{
    stl_prepare_init(&pl->prep, stl__prep_cb);
    stl_async_init(&pl->wake, stl__wake_cb);
    stl_timer_init(&pl->timer0, stl__timer0_cb, 0.0, 0.0);
    int rc = stl_set_priority(&pl->prep.w, STL_MINPRI);
    if (rc == 0)
        rc = stl_prepare_start(pl->loop, &pl->prep);
    if (rc == 0)
        rc = stl_async_start(pl->loop, &pl->wake);
    if (rc < 0) {
        stl_pyloop_errno(rc);
        return -1;
    }
    stl_unref(pl->loop, &pl->prep.w);
    stl_unref(pl->loop, &pl->wake.w);
    stl_unref(pl->loop, &pl->timer0.w);
    return 0;
}
