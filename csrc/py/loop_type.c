/*
 * loop_type.c -- stolon.loop.loop: the Python object around one stl_loop.
 *
 * What lives here: creation and destruction, run/break/time, the GIL
 * hand-off around the poll, and the error path (handle_error, and the
 * system errors that run() re-raises).  The watcher factories are in
 * watcher_kinds.c, run_callback in loop_callbacks.c (see loop.h for the
 * ownership rules).
 */
#include "loop.h"
#include "stolon_api.h"

#include <string.h>

/* The process's default loop (borrowed; cleared by destroy). */
static stl_pyloop *stl__default_loop;

PyObject *stl_pyloop_errno(int rc)
{
    if (rc == -ENOMEM)
        return PyErr_NoMemory();
    errno = -rc;
    return PyErr_SetFromErrno(PyExc_OSError);
}

/* ---- the GIL around the poll ---- */

void stl_pyloop_acquire(stl_pyloop *pl)
{
    PyThreadState *ts = pl->saved;
    if (ts != NULL) {
        PyEval_RestoreThread(ts);
        pl->saved = NULL;
    }
}

void stl_pyloop_release(stl_pyloop *pl)
{
    pl->gil_phase = 1;
}

/*
 * Called by the C loop around a poll that may block, and only then: a poll
 * with timeout 0 (callbacks pending, NOWAIT, a timer already due) keeps the
 * GIL, since releasing and re-taking it costs more than the poll itself.
 * The GIL goes only if the prepare phase allowed it (no error waits for
 * run() to raise).
 */
void stl_pyloop_block_hook(stl_loop *loop, int entering)
{
    stl_pyloop *pl = stl_loop_get_data(loop);
    if (entering) {
        if (!pl->gil_phase || pl->saved != NULL || pl->exc_type != NULL)
            return;
        /* saved is set before the GIL goes, so that other threads see it. */
        pl->saved = PyThreadState_Get();
        (void)PyEval_SaveThread();
    } else {
        stl_pyloop_acquire(pl);
        pl->gil_phase = 0;
    }
}

int stl_pyloop_check(stl_pyloop *pl)
{
    if (pl->loop == NULL) {
        PyErr_SetString(PyExc_ValueError, "operation on destroyed loop");
        return -1;
    }
    if (pl->saved != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the loop is blocked in another thread; "
                        "only async_.send() and run_callback_threadsafe() may be used");
        return -1;
    }
    return 0;
}

/* ---- errors ---- */

void stl_pyloop_keep_error(stl_pyloop *pl)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    if (pl->exc_type == NULL) {
        pl->exc_type = t;
        pl->exc_value = v;
        pl->exc_tb = tb;
    } else {
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
    }
    if (pl->loop != NULL)
        stl_loop_break(pl->loop, STL_BREAK_ALL);
}

static int stl__is_system_error(PyObject *type)
{
    return PyErr_GivenExceptionMatches(type, PyExc_KeyboardInterrupt)
        || PyErr_GivenExceptionMatches(type, PyExc_SystemExit);
}

/*
 * The pending exception of a callback: KeyboardInterrupt and SystemExit
 * are kept for run() to raise; anything else goes to
 * self.handle_error(context, type, value, tb).  If that raises, its
 * exception is kept for run() too: errors never vanish.
 */
void stl_pyloop_report(stl_pyloop *pl, PyObject *context)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb != NULL && v != NULL)
        PyException_SetTraceback(v, tb);
    if (t == NULL || stl__is_system_error(t)) {
        PyErr_Restore(t, v, tb);
        stl_pyloop_keep_error(pl);
        return;
    }
    PyObject *r = PyObject_CallMethod((PyObject *)pl, "handle_error", "OOOO",
                                      context ? context : Py_None, t,
                                      v ? v : Py_None, tb ? tb : Py_None);
    Py_DECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    if (r == NULL)
        stl_pyloop_keep_error(pl);
    Py_XDECREF(r);
}

/* The default error printer: traceback.print_exception, then a line naming the context. */
static int stl__print_error(PyObject *context, PyObject *type, PyObject *value, PyObject *tb)
{
    PyObject *mod = PyImport_ImportModule("traceback");
    if (mod == NULL)
        return -1;
    PyObject *r = PyObject_CallMethod(mod, "print_exception", "OOO", type, value, tb);
    Py_DECREF(mod);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    PyObject *err = PySys_GetObject("stderr"); /* borrowed */
    if (err == NULL || err == Py_None)
        return 0;
    PyObject *line = PyUnicode_FromFormat("%R failed with %s\n\n", context,
                                          PyType_Check(type) ? ((PyTypeObject *)type)->tp_name : "?");
    if (line == NULL)
        return -1;
    r = PyObject_CallMethod(err, "write", "O", line);
    Py_DECREF(line);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static PyObject *loop_handle_error(stl_pyloop *pl, PyObject *args)
{
    PyObject *context, *type, *value, *tb;
    if (!PyArg_ParseTuple(args, "OOOO:handle_error", &context, &type, &value, &tb))
        return NULL;
    if (pl->error_handler != NULL && pl->error_handler != Py_None)
        return PyObject_CallMethod(pl->error_handler, "handle_error", "OOOO", context, type, value, tb);
    if (stl__is_system_error(type)) {
        Py_INCREF(type);
        Py_INCREF(value);
        Py_INCREF(tb);
        PyErr_Restore(type, value, tb == Py_None ? (Py_DECREF(tb), NULL) : tb);
        stl_pyloop_keep_error(pl);
        Py_RETURN_NONE;
    }
    if (stl__print_error(context, type, value, tb) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ---- creation and destruction ---- */

static unsigned stl__backend_flag(PyObject *flags)
{
    if (flags == NULL || flags == Py_None)
        return 0;
    if (!PyUnicode_Check(flags)) {
        PyErr_SetString(PyExc_TypeError, "flags must be a backend name ('epoll', 'poll', 'kqueue') or None");
        return (unsigned)-1;
    }
    static const struct { const char *name; unsigned bit; } names[] = {
        {"epoll", STL_BACKEND_EPOLL}, {"poll", STL_BACKEND_POLL}, {"kqueue", STL_BACKEND_KQUEUE}, {NULL, 0}};
    const char *s = PyUnicode_AsUTF8(flags);
    if (s == NULL)
        return (unsigned)-1;
    for (int i = 0; names[i].name; i++)
        if (strcmp(s, names[i].name) == 0) {
            if (!(stl_loop_supported_backends() & names[i].bit))
                break;
            return names[i].bit;
        }
    PyErr_Format(PyExc_ValueError, "unsupported loop backend %R", flags);
    return (unsigned)-1;
}

/* 1 if the calling thread is threading.main_thread() (0 if that cannot be told). */
static int stl__in_main_thread(void)
{
    PyObject *mod = PyImport_ImportModule("threading");
    PyObject *main = mod ? PyObject_CallMethod(mod, "main_thread", NULL) : NULL;
    PyObject *ident = main ? PyObject_GetAttrString(main, "ident") : NULL;
    int yes = ident && PyLong_Check(ident) && PyLong_AsUnsignedLong(ident) == PyThread_get_thread_ident();
    Py_XDECREF(ident);
    Py_XDECREF(main);
    Py_XDECREF(mod);
    PyErr_Clear();
    return yes;
}

static PyObject *loop_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"flags", "default", NULL};
    PyObject *flags = Py_None, *dflt = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:loop", kwlist, &flags, &dflt))
        return NULL;
    unsigned bits = stl__backend_flag(flags);
    if (bits == (unsigned)-1)
        return NULL;
    int want_default = dflt == Py_None ? -1 : PyObject_IsTrue(dflt);
    if (dflt != Py_None && want_default < 0)
        return NULL;
    if (want_default == 1 && stl__default_loop != NULL) {
        /* gevent (libev's ev_default_loop): loop(default=True) is the one
         * default loop, from any thread and whatever the flags; we hand out
         * the same object, not a second C loop (two loops would fight over
         * SIGCHLD).  Only a different type cannot share it. */
        if (!PyObject_TypeCheck((PyObject *)stl__default_loop, type)) {
            PyErr_SetString(PyExc_ValueError, "a default loop of another type already exists");
            return NULL;
        }
        return Py_NewRef((PyObject *)stl__default_loop);
    }
    stl_pyloop *pl = (stl_pyloop *)type->tp_alloc(type, 0);
    if (pl == NULL)
        return NULL;
    int rc = stl_loop_new(&pl->loop, bits);
    if (rc < 0) {
        Py_DECREF(pl);
        return stl_pyloop_errno(rc);
    }
    stl_loop_set_data(pl->loop, pl);
    stl_loop_set_block_hook(pl->loop, stl_pyloop_block_hook);
    if (stl_pyloop_callbacks_init(pl) < 0) {
        Py_DECREF(pl);
        return NULL;
    }
    if (want_default == -1)
        want_default = stl__default_loop == NULL && stl__in_main_thread();
    if (want_default) {
        pl->is_default = 1;
        stl__default_loop = pl;
    }
    return (PyObject *)pl;
}

/* Frees the C loop; watchers become inert, queued callbacks are dropped. */
static int stl__destroy(stl_pyloop *pl)
{
    if (pl->loop != NULL) {
        if (stl_loop_depth(pl->loop) > 0) {
            PyErr_SetString(PyExc_RuntimeError, "cannot destroy a running loop");
            return -1;
        }
        stl_loop *l = pl->loop;
        pl->loop = NULL;
        stl_loop_free(l);
    }
    if (stl__default_loop == pl)
        stl__default_loop = NULL;
    stl_pyloop_release_held(pl);
    stl_pyloop_callbacks_clear(pl);
    return 0;
}

static PyObject *loop_destroy(stl_pyloop *pl, PyObject *unused)
{
    if (pl->saved != NULL)
        return stl_pyloop_check(pl), NULL;
    if (stl__destroy(pl) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int loop_traverse(stl_pyloop *pl, visitproc visit, void *arg)
{
    Py_VISIT(pl->dict);
    Py_VISIT(pl->error_handler);
    Py_VISIT(pl->exc_type);
    Py_VISIT(pl->exc_value);
    Py_VISIT(pl->exc_tb);
    for (stl_pywatcher *w = pl->held; w; w = w->hnext)
        Py_VISIT((PyObject *)w);
    for (stl_pycallback *c = pl->cb_head; c; c = c->next) {
        /* untracked callback objects: the loop reports what they hold (loop_callbacks.c) */
        Py_VISIT(c->callback);
        Py_VISIT(c->args);
    }
    return 0;
}

static int loop_clear(stl_pyloop *pl)
{
    if (pl->saved == NULL && (pl->loop == NULL || stl_loop_depth(pl->loop) == 0)) {
        stl_pyloop_release_held(pl);
        stl_pyloop_callbacks_clear(pl);
    }
    Py_CLEAR(pl->dict);
    Py_CLEAR(pl->error_handler);
    Py_CLEAR(pl->exc_type);
    Py_CLEAR(pl->exc_value);
    Py_CLEAR(pl->exc_tb);
    return 0;
}

static void loop_dealloc(stl_pyloop *pl)
{
    PyObject_GC_UnTrack(pl);
    if (pl->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)pl);
    if (stl__destroy(pl) < 0)
        PyErr_Clear();
    loop_clear(pl);
    Py_TYPE(pl)->tp_free((PyObject *)pl);
}

/* ---- running ---- */

static PyObject *loop_run(stl_pyloop *pl, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"nowait", "once", NULL};
    int nowait = 0, once = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|pp:run", kwlist, &nowait, &once))
        return NULL;
    if (stl_pyloop_check(pl) < 0)
        return NULL;
    Py_INCREF(pl);
    int mode = nowait ? STL_RUN_NOWAIT : once ? STL_RUN_ONCE : STL_RUN_DEFAULT;
    int rc = stl_loop_run(pl->loop, mode);
    stl_pyloop_acquire(pl);
    pl->gil_phase = 0;
    PyObject *result = NULL;
    if (pl->exc_type != NULL && (pl->loop == NULL || stl_loop_depth(pl->loop) == 0)) {
        PyErr_Restore(pl->exc_type, pl->exc_value, pl->exc_tb);
        pl->exc_type = pl->exc_value = pl->exc_tb = NULL;
    } else if (pl->exc_type != NULL && PyErr_GivenExceptionMatches(pl->exc_type, PyExc_BaseException)) {
        /* nested run: the outer one raises; this one returns, the break is ALL */
        result = Py_NewRef(Py_False);
    } else if (rc < 0) {
        stl_pyloop_errno(rc);
    } else {
        result = PyBool_FromLong(rc);
    }
    Py_DECREF(pl);
    return result;
}

static PyObject *loop_break(stl_pyloop *pl, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"how", NULL};
    int how = STL_BREAK_ONE;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|i:break_", kwlist, &how))
        return NULL;
    if (how != STL_BREAK_CANCEL && how != STL_BREAK_ONE && how != STL_BREAK_ALL) {
        PyErr_Format(PyExc_ValueError, "unknown break mode %d", how);
        return NULL;
    }
    if (stl_pyloop_check(pl) < 0)
        return NULL;
    stl_loop_break(pl->loop, how);
    Py_RETURN_NONE;
}

static PyObject *loop_now(stl_pyloop *pl, PyObject *unused)
{
    if (pl->loop == NULL)
        return stl_pyloop_check(pl), NULL;
    return PyFloat_FromDouble(stl_loop_now(pl->loop));
}

static PyObject *loop_update_now(stl_pyloop *pl, PyObject *unused)
{
    if (stl_pyloop_check(pl) < 0)
        return NULL;
    stl_loop_update_now(pl->loop);
    Py_RETURN_NONE;
}

static PyObject *loop_reinit(stl_pyloop *pl, PyObject *unused)
{
    if (stl_pyloop_check(pl) < 0)
        return NULL;
    stl_loop_fork(pl->loop);
    Py_RETURN_NONE;
}

static PyObject *loop_run_callback(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs)
{
    return stl_pyloop_run_callback(pl, args, nargs);
}

static PyObject *loop_run_callback_threadsafe(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs)
{
    return stl_pyloop_run_callback_threadsafe(pl, args, nargs);
}

/* gevent's closing_fd: wakes the watchers of fd (True if there were any:
 * the caller then defers the close to a check watcher) and makes the loop
 * register the number afresh, so a reused fd is safe. */
static PyObject *loop_closing_fd(stl_pyloop *pl, PyObject *arg)
{
    int fd = PyObject_AsFileDescriptor(arg);
    if (fd < 0 || stl_pyloop_check(pl) < 0)
        return NULL;
    int n = stl_loop_closing_fd(pl->loop, fd);
    if (n < 0)
        return stl_pyloop_errno(n);
    return PyBool_FromLong(n > 0);
}

/* gevent's fileno(): the backend's fd (epoll, kqueue), None for poll or a destroyed loop. */
static PyObject *loop_fileno(stl_pyloop *pl, PyObject *unused)
{
    int fd = pl->loop ? stl_loop_backend_fd(pl->loop) : -1;
    if (fd < 0)
        Py_RETURN_NONE;
    return PyLong_FromLong(fd);
}

/* ---- attributes ---- */

static PyObject *loop_get_sig_pending(stl_pyloop *pl, void *c)
{
    if (pl->loop == NULL)
        return stl_pyloop_check(pl), NULL;
    return PyBool_FromLong(stl_loop_sig_pending(pl->loop));
}

static PyObject *stl__loop_int(stl_pyloop *pl, long v)
{
    if (pl->loop == NULL)
        return stl_pyloop_check(pl), NULL;
    return PyLong_FromLong(v);
}

static PyObject *loop_get_backend(stl_pyloop *pl, void *c)
{
    if (pl->loop == NULL)
        Py_RETURN_NONE;
    return PyUnicode_FromString(stl_loop_backend_name(pl->loop));
}

static PyObject *loop_get_default(stl_pyloop *pl, void *c) { return PyBool_FromLong(pl->is_default); }
static PyObject *loop_get_destroyed(stl_pyloop *pl, void *c) { return PyBool_FromLong(pl->loop == NULL); }
static PyObject *loop_get_iteration(stl_pyloop *pl, void *c)
{
    if (pl->loop == NULL)
        return stl_pyloop_check(pl), NULL;
    return PyLong_FromUnsignedLongLong(stl_loop_iteration(pl->loop));
}
static PyObject *loop_get_depth(stl_pyloop *pl, void *c)
{
    return pl->loop ? PyLong_FromLong(stl_loop_depth(pl->loop)) : stl__loop_int(pl, 0);
}
static PyObject *loop_get_activecnt(stl_pyloop *pl, void *c)
{
    return pl->loop ? PyLong_FromLong(stl_loop_refcount(pl->loop)) : stl__loop_int(pl, 0);
}
static PyObject *loop_get_pendingcnt(stl_pyloop *pl, void *c)
{
    return pl->loop ? PyLong_FromLong(stl_loop_pending_count(pl->loop)) : stl__loop_int(pl, 0);
}

static PyObject *loop_get_error_handler(stl_pyloop *pl, void *c)
{
    return Py_NewRef(pl->error_handler ? pl->error_handler : Py_None);
}

static int loop_set_error_handler(stl_pyloop *pl, PyObject *v, void *c)
{
    Py_XINCREF(v);
    Py_XSETREF(pl->error_handler, v);
    return 0;
}

static PyObject *loop_repr(stl_pyloop *pl)
{
    if (pl->loop == NULL)
        return PyUnicode_FromFormat("<%s at %p destroyed>", Py_TYPE(pl)->tp_name, pl);
    return PyUnicode_FromFormat("<%s at %p backend=%s%s ref=%ld pending=%ld>", Py_TYPE(pl)->tp_name, pl,
                                stl_loop_backend_name(pl->loop), pl->is_default ? " default" : "",
                                stl_loop_refcount(pl->loop), stl_loop_pending_count(pl->loop));
}

#define KW (METH_VARARGS | METH_KEYWORDS)
#define FKW (METH_FASTCALL | METH_KEYWORDS)
static PyMethodDef loop_methods[] = {
    {"closing_fd", (PyCFunction)loop_closing_fd, METH_O,
     "closing_fd(fd): fd is about to close; wakes its watchers; True if there were any."},
    {"fileno", (PyCFunction)loop_fileno, METH_NOARGS, "The backend's fd (epoll, kqueue), or None (poll)."},
    {"io", (PyCFunction)(void (*)(void))stl_pyloop_new_io, FKW, "io(fd, events, ref=True, priority=None)"},
    {"timer", (PyCFunction)(void (*)(void))stl_pyloop_new_timer, FKW,
     "timer(after=0.0, repeat=0.0, ref=True, priority=None)"},
    {"signal", (PyCFunction)(void (*)(void))stl_pyloop_new_signal, FKW, "signal(signum, ref=True, priority=None)"},
    {"child", (PyCFunction)(void (*)(void))stl_pyloop_new_child, FKW, "child(pid, trace=0, ref=True)"},
    {"idle", (PyCFunction)(void (*)(void))stl_pyloop_new_idle, FKW, "idle(ref=True, priority=None)"},
    {"prepare", (PyCFunction)(void (*)(void))stl_pyloop_new_prepare, FKW, "prepare(ref=True, priority=None)"},
    {"check", (PyCFunction)(void (*)(void))stl_pyloop_new_check, FKW, "check(ref=True, priority=None)"},
    {"fork", (PyCFunction)(void (*)(void))stl_pyloop_new_fork, FKW, "fork(ref=True, priority=None)"},
    {"async_", (PyCFunction)(void (*)(void))stl_pyloop_new_async, FKW, "async_(ref=True, priority=None)"},
    {"run", (PyCFunction)(void (*)(void))loop_run, KW,
     "run(nowait=False, once=False): run the loop; True if referenced watchers remain."},
    {"break_", (PyCFunction)(void (*)(void))loop_break, KW, "break_(how=EVBREAK_ONE)"},
    {"now", (PyCFunction)loop_now, METH_NOARGS, "The cached loop time (monotonic seconds)."},
    {"update_now", (PyCFunction)loop_update_now, METH_NOARGS, "Refresh the cached time."},
    {"run_callback", (PyCFunction)(void (*)(void))loop_run_callback, METH_FASTCALL,
     "run_callback(func, *args): call func(*args) before the loop next blocks (FIFO)."},
    {"run_callback_threadsafe", (PyCFunction)(void (*)(void))loop_run_callback_threadsafe, METH_FASTCALL,
     "run_callback_threadsafe(func, *args): run_callback from any thread; wakes the loop."},
    {"handle_error", (PyCFunction)loop_handle_error, METH_VARARGS,
     "handle_error(context, type, value, tb): where exceptions from callbacks go."},
    {"destroy", (PyCFunction)loop_destroy, METH_NOARGS, "Free the loop; its watchers become inert."},
    {"reinit", (PyCFunction)loop_reinit, METH_NOARGS, "Rebuild kernel state (after fork) at the next iteration."},
    {NULL}
};

static PyGetSetDef loop_getset[] = {
    {"backend", (getter)loop_get_backend, NULL, "The backend's name.", NULL},
    {"default", (getter)loop_get_default, NULL, "True for the default loop.", NULL},
    {"destroyed", (getter)loop_get_destroyed, NULL, "True after destroy().", NULL},
    {"iteration", (getter)loop_get_iteration, NULL, "How many times the loop polled.", NULL},
    {"depth", (getter)loop_get_depth, NULL, "Nested run() calls in progress.", NULL},
    {"activecnt", (getter)loop_get_activecnt, NULL, "Referenced active watchers.", NULL},
    {"pendingcnt", (getter)loop_get_pendingcnt, NULL, "Pending watchers.", NULL},
    {"sig_pending", (getter)loop_get_sig_pending, NULL, "A signal arrived and its watchers are not fed yet.", NULL},
    {"error_handler", (getter)loop_get_error_handler, (setter)loop_set_error_handler,
     "If set, handle_error calls error_handler.handle_error(...).", NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL}
};

PyTypeObject stl_pyloop_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stolon.loop.loop",
    .tp_basicsize = sizeof(stl_pyloop),
    .tp_dealloc = (destructor)loop_dealloc,
    .tp_repr = (reprfunc)loop_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "loop(flags=None, default=None): an event loop (libev's model, gevent's API).",
    .tp_traverse = (traverseproc)loop_traverse,
    .tp_clear = (inquiry)loop_clear,
    .tp_weaklistoffset = offsetof(stl_pyloop, weakreflist),
    .tp_dictoffset = offsetof(stl_pyloop, dict),
    .tp_methods = loop_methods,
    .tp_getset = loop_getset,
    .tp_new = loop_new,
};

/* ---- the loop's entries of the _C_API capsule (stolon_api.h, version 2) ---- */

static int stl__capi_start_c(PyObject *w, stl_capi_watcher_cb fn, void *arg)
{
    if (!PyObject_TypeCheck(w, &stl_pywatcher_type)) {
        PyErr_Format(PyExc_TypeError, "not a stolon.loop watcher: %.200s", Py_TYPE(w)->tp_name);
        return -1;
    }
    /* stl_pywatcher_ccb takes the struct; the capsule's type takes the object:
     * the same pointer, so the cast is exact. */
    return stl_pywatcher_start_c((stl_pywatcher *)w, (stl_pywatcher_ccb)(void (*)(void))fn, arg);
}

static int stl__capi_stop(PyObject *w)
{
    if (!PyObject_TypeCheck(w, &stl_pywatcher_type)) {
        PyErr_Format(PyExc_TypeError, "not a stolon.loop watcher: %.200s", Py_TYPE(w)->tp_name);
        return -1;
    }
    return stl_pywatcher_stop((stl_pywatcher *)w);
}

/*
 * module.c makes the capsule (and fills greenlet.h's twelve entries and
 * `version`) before it calls stl_loop_types_ready; the loop fills its own
 * entries, after `version`, here.
 */
static int stl__capi_fill(PyObject *module)
{
    PyObject *cap = PyObject_GetAttrString(module, "_C_API");
    if (cap == NULL)
        return -1;
    stl_capi *api = PyCapsule_GetPointer(cap, "stolon._C_API");
    Py_DECREF(cap);
    if (api == NULL)
        return -1;
    api->watcher_start_c = stl__capi_start_c;
    api->watcher_stop = stl__capi_stop;
    return 0;
}

int stl_loop_types_ready(PyObject *module)
{
    if (stl__capi_fill(module) < 0)
        return -1;
    if (PyType_Ready(&stl_pyloop_type) < 0 || PyType_Ready(&stl_pycallback_type) < 0)
        return -1;
    Py_INCREF(&stl_pyloop_type);
    if (PyModule_AddObject(module, "loop", (PyObject *)&stl_pyloop_type) < 0)
        return -1;
    Py_INCREF(&stl_pycallback_type);
    if (PyModule_AddObject(module, "callback", (PyObject *)&stl_pycallback_type) < 0)
        return -1;
    return stl_watcher_kinds_ready(module);
}
