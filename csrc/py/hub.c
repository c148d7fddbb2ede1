/*
 * hub.c -- the hub's C half: HubBase (the greenlet type stolon.hub.Hub
 * derives from: switch() and wait()), the per-thread hub slot, and sleep().
 *
 * Why in C: every wait and every wake-up of the cooperative layer passes
 * here.  hub.wait(watcher) starts a stolon.loop watcher on the C fast path
 * (stl_pywatcher_start_c), so the loop's dispatch switches straight into
 * the parked greenlet; sleep(0) queues a C entry on the loop's callback
 * FIFO.  Python hooks (a Hub subclass's switch(), a greenlet's switch_out())
 * are still honoured: they are looked up, and called only if present.
 */
#include "hub.h"

static PyObject *stl__str_switch, *stl__str_switch_out, *stl__str_loop, *stl__str_stop;
static PyObject *stl__zero;                /* 0.0: a sleep timer's repeat */
static PyObject *stl__base_hub_switch;     /* HubBase.switch's descriptor (borrowed) */

/* ---- the thread's hub ---- */

PyObject *stl_hub_get(void)
{
    stl_gthread *gt = stl_gthread_get();
    if (gt == NULL)
        return NULL;
    if (gt->hub != NULL)
        return Py_NewRef(gt->hub);
    PyObject *mod = PyImport_ImportModule("stolon.hub");
    if (mod == NULL)
        return NULL;
    PyObject *hub = PyObject_CallMethod(mod, "get_hub", NULL);
    Py_DECREF(mod);
    return hub;
}

static PyObject *mod_get_hub_if_any(PyObject *m, PyObject *unused)
{
    stl_gthread *gt = stl_gthread_get();
    if (gt == NULL)
        return NULL;
    return Py_NewRef(gt->hub ? gt->hub : Py_None);
}

static PyObject *mod_set_hub(PyObject *m, PyObject *hub)
{
    stl_gthread *gt = stl_gthread_get();
    if (gt == NULL)
        return NULL;
    if (hub != Py_None && !PyObject_TypeCheck(hub, &stl_hubbase_type)) {
        PyErr_Format(PyExc_TypeError, "a hub must be a HubBase, not %.200s", Py_TYPE(hub)->tp_name);
        return NULL;
    }
    PyObject *old = gt->hub;
    gt->hub = hub == Py_None ? NULL : Py_NewRef(hub);
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

/* ---- switching to the hub ---- */

/* The switch_out() hook of the greenlet leaving, if its class has one. */
static int stl__switch_out(PyObject *cur)
{
    if (Py_TYPE(cur) == &stl_greenlet_type)
        return 0;
    PyObject *hook;
#if PY_VERSION_HEX >= 0x030D0000
    if (PyObject_GetOptionalAttr(cur, stl__str_switch_out, &hook) < 0)
        return -1;
#else
    if (_PyObject_LookupAttr(cur, stl__str_switch_out, &hook) < 0)
        return -1;
#endif
    if (hook == NULL)
        return 0;
    PyObject *r = PyObject_CallNoArgs(hook);
    Py_DECREF(hook);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static PyObject *stl__hub_switch_impl(PyObject *hub)
{
    stl_gthread *gt = stl_gthread_get();
    if (gt == NULL || stl__switch_out((PyObject *)gt->current) < 0)
        return NULL;
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL)
        return NULL;
    PyObject *r = stl_greenlet_switch((stl_greenlet *)hub, empty, NULL);
    Py_DECREF(empty);
    return r;
}

PyObject *stl_hub_switch(PyObject *hub)
{
    if (PyObject_TypeCheck(hub, &stl_hubbase_type)
        && _PyType_Lookup(Py_TYPE(hub), stl__str_switch) == stl__base_hub_switch)
        return stl__hub_switch_impl(hub);
    return PyObject_CallMethodNoArgs(hub, stl__str_switch);
}

static PyObject *hub_switch(PyObject *hub, PyObject *unused)
{
    return stl__hub_switch_impl(hub);
}

/* ---- hub.wait(watcher) ---- */

/* The watcher fired: wake whoever waits, with the waiter itself as value. */
static void stl__waiter_ccb(stl_pywatcher *w, int revents, void *arg)
{
    stl_waiter *waiter = arg;
    Py_INCREF(waiter);
    if (stl_waiter_switch(waiter, (PyObject *)waiter) < 0)
        stl_pyloop_report(w->loop, (PyObject *)w);
    Py_DECREF(waiter);
}

static int stl__invalid_switch_error(PyObject *hub, PyObject *got, stl_waiter *waiter, PyObject *watcher)
{
    stl_gthread *gt = stl_gthread_get();
    return stl_raise_stolon_error("InvalidSwitchError",
                                  "Invalid switch into %S: got %R (expected %R; waiting on %R with %R)",
                                  gt ? (PyObject *)gt->current : Py_None, got, waiter, hub, watcher);
}

/* Starts watcher so that it wakes waiter: the C path for stolon.loop watchers
 * (callback shows the waiter, as cancel_wait needs), start() for others. */
static int stl__start_for(PyObject *watcher, stl_waiter *waiter)
{
    if (PyObject_TypeCheck(watcher, &stl_pywatcher_type)) {
        stl_pywatcher *w = (stl_pywatcher *)watcher;
        if (stl_pywatcher_start_c(w, stl__waiter_ccb, waiter) < 0)
            return -1;
        Py_INCREF(waiter);
        Py_XSETREF(w->callback, (PyObject *)waiter);
        return 0;
    }
    PyObject *sw = PyObject_GetAttr((PyObject *)waiter, stl__str_switch);
    if (sw == NULL)
        return -1;
    PyObject *r = PyObject_CallMethod(watcher, "start", "OO", sw, waiter);
    Py_DECREF(sw);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

PyObject *stl_hub_wait(PyObject *hub, PyObject *watcher)
{
    stl_waiter *waiter = stl_waiter_new(hub);
    if (waiter == NULL)
        return NULL;
    if (stl__start_for(watcher, waiter) < 0) {
        Py_DECREF(waiter);
        return NULL;
    }
    PyObject *got = stl_waiter_get(waiter);
    PyObject *result = NULL;
    if (got != NULL && got != (PyObject *)waiter)
        stl__invalid_switch_error(hub, got, waiter, watcher);
    else if (got != NULL)
        result = Py_NewRef(Py_None);
    Py_XDECREF(got);
    /* finally: stop the watcher, keeping the exception that is on its way
     * (a stolon watcher stops in C: no method call on every wake-up) */
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    int stopped;
    if (PyObject_TypeCheck(watcher, &stl_pywatcher_type)) {
        stopped = stl_pywatcher_stop((stl_pywatcher *)watcher);
    } else {
        PyObject *r = PyObject_CallMethodNoArgs(watcher, stl__str_stop);
        stopped = r ? 0 : -1;
        Py_XDECREF(r);
    }
    if (stopped < 0) {
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
        Py_CLEAR(result);
    } else {
        PyErr_Restore(t, v, tb);
    }
    Py_DECREF(waiter);
    return result;
}

static PyObject *hub_wait(PyObject *hub, PyObject *watcher)
{
    return stl_hub_wait(hub, watcher);
}

/* ---- sleep ---- */

static int stl__waiter_wake_none(PyObject *obj)
{
    return stl_waiter_switch((stl_waiter *)obj, Py_None);
}

static stl_pyloop *stl__hub_loop(PyObject *hub)
{
    PyObject *loop = PyObject_GetAttr(hub, stl__str_loop);
    if (loop == NULL)
        return NULL;
    if (!PyObject_TypeCheck(loop, &stl_pyloop_type)) {
        PyErr_Format(PyExc_TypeError, "the hub's loop is %.200s, not a stolon loop", Py_TYPE(loop)->tp_name);
        Py_DECREF(loop);
        return NULL;
    }
    return (stl_pyloop *)loop;
}

/* sleep(0): queue a wake-up behind everything already queued, then park. */
static PyObject *stl__yield(PyObject *hub, stl_pyloop *pl)
{
    stl_waiter *waiter = stl_waiter_new(hub);
    if (waiter == NULL)
        return NULL;
    stl_pycallback *cb = stl_pyloop_run_callback_c(pl, stl__waiter_wake_none, (PyObject *)waiter);
    PyObject *r = NULL;
    if (cb != NULL) {
        Py_DECREF(cb);
        r = stl_waiter_get(waiter);
    }
    Py_DECREF(waiter);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyObject *stl__sleep_timer(PyObject *hub, stl_pyloop *pl, PyObject *seconds, int ref)
{
    /* loop.timer(seconds, 0.0, ref) without the method lookup; hub.wait stops it,
     * and a stopped watcher nobody holds is freed with its last reference */
    PyObject *args[3] = {seconds, stl__zero, ref ? Py_True : Py_False};
    PyObject *timer = stl_pyloop_new_timer(pl, args, 3, NULL);
    if (timer == NULL)
        return NULL;
    if (pl->loop != NULL)
        stl_loop_update_now(pl->loop);
    PyObject *r = stl_hub_wait(hub, timer);
    Py_DECREF(timer);
    return r;
}

static PyObject *mod_sleep(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"seconds", "ref", NULL};
    PyObject *seconds = NULL;
    int ref = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|Op:sleep", kwlist, &seconds, &ref))
        return NULL;
    double secs = seconds ? PyFloat_AsDouble(seconds) : 0.0;
    if (secs == -1.0 && PyErr_Occurred())
        return NULL;
    PyObject *hub = stl_hub_get();
    if (hub == NULL)
        return NULL;
    stl_pyloop *pl = stl__hub_loop(hub);
    PyObject *r = NULL;
    if (pl != NULL) {
        r = secs <= 0.0 ? stl__yield(hub, pl) : stl__sleep_timer(hub, pl, seconds, ref);
        Py_DECREF(pl);
    }
    Py_DECREF(hub);
    return r;
}

/* ---- the types and functions ---- */

static PyMethodDef hubbase_methods[] = {
    {"switch", (PyCFunction)hub_switch, METH_NOARGS,
     "switch(): park the current greenlet and run the hub (calls the leaving greenlet's "
     "switch_out() if it has one)."},
    {"wait", (PyCFunction)hub_wait, METH_O,
     "wait(watcher): park the current greenlet until watcher fires; the watcher is "
     "stopped on the way out."},
    {NULL}
};

PyTypeObject stl_hubbase_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stolon._core.HubBase",
    /* GC support, traverse and clear are inherited from greenlet */
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The C half of stolon.hub.Hub: a greenlet with switch() and wait().",
    .tp_methods = hubbase_methods,
};

static PyMethodDef hub_functions[] = {
    {"sleep", (PyCFunction)(void (*)(void))mod_sleep, METH_VARARGS | METH_KEYWORDS,
     "sleep(seconds=0, ref=True): park the current greenlet for seconds; 0 or less yields "
     "to every greenlet already ready (FIFO) and returns."},
    {"_get_hub", mod_get_hub_if_any, METH_NOARGS, "_get_hub(): this thread's hub, or None."},
    {"_set_hub", mod_set_hub, METH_O, "_set_hub(hub): make hub (or None) this thread's hub."},
    {NULL}
};

int stl_hub_types_ready(PyObject *module)
{
    stl__str_switch = PyUnicode_InternFromString("switch");
    stl__str_switch_out = PyUnicode_InternFromString("switch_out");
    stl__str_loop = PyUnicode_InternFromString("loop");
    stl__str_stop = PyUnicode_InternFromString("stop");
    stl__zero = PyFloat_FromDouble(0.0);
    if (!stl__str_switch || !stl__str_switch_out || !stl__str_loop || !stl__str_stop || !stl__zero)
        return -1;
    stl_hubbase_type.tp_base = &stl_greenlet_type;
    stl_hubbase_type.tp_basicsize = stl_greenlet_type.tp_basicsize;
    if (PyType_Ready(&stl_hubbase_type) < 0 || PyType_Ready(&stl_waiter_type) < 0)
        return -1;
    stl__base_hub_switch = _PyType_Lookup(&stl_hubbase_type, stl__str_switch);
    if (PyModule_AddObject(module, "HubBase", Py_NewRef((PyObject *)&stl_hubbase_type)) < 0
        || PyModule_AddObject(module, "Waiter", Py_NewRef((PyObject *)&stl_waiter_type)) < 0)
        return -1;
    return PyModule_AddFunctions(module, hub_functions);
}
