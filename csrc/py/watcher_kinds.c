/*
 * watcher_kinds.c -- the watcher kinds: io, timer, signal, child, idle,
 * prepare, check, fork, async_.  Each is a subtype of stolon.loop.watcher
 * whose object embeds the C watcher of its kind; this file knows how to
 * make, start and stop each one and adds the kind's own attributes.
 */
#include "loop.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>

typedef struct { stl_pywatcher base; stl_io c; } stl_pyio;
typedef struct { stl_pywatcher base; stl_timer c; } stl_pytimer;
typedef struct { stl_pywatcher base; stl_signal c; } stl_pysignal;
typedef struct { stl_pywatcher base; stl_child c; } stl_pychild;
typedef struct { stl_pywatcher base; stl_idle c; } stl_pyidle;
typedef struct { stl_pywatcher base; stl_prepare c; } stl_pyprepare;
typedef struct { stl_pywatcher base; stl_check c; } stl_pycheck;
typedef struct { stl_pywatcher base; stl_fork c; } stl_pyfork;
typedef struct { stl_pywatcher base; stl_async c; } stl_pyasync;

int stl__pw_set_callback(stl_pywatcher *w, PyObject *const *args, Py_ssize_t nargs);
int stl__pw_set_priority_obj(stl_pywatcher *w, PyObject *v);
PyObject *stl_pywatcher_no_new(PyTypeObject *t, PyObject *a, PyObject *k);

#define C_OF(w, T) (&((T *)(w))->c)

/* ---- start and stop by kind ---- */

int stl_pywatcher_kind_start(stl_pywatcher *w)
{
    stl_loop *l = w->loop->loop;
    switch (w->kind) {
    case STL_PWK_IO: return stl_io_start(l, C_OF(w, stl_pyio));
    case STL_PWK_TIMER: return stl_timer_start(l, C_OF(w, stl_pytimer));
    case STL_PWK_SIGNAL: return stl_signal_start(l, C_OF(w, stl_pysignal));
    case STL_PWK_CHILD: return stl_child_start(l, C_OF(w, stl_pychild));
    case STL_PWK_IDLE: return stl_idle_start(l, C_OF(w, stl_pyidle));
    case STL_PWK_PREPARE: return stl_prepare_start(l, C_OF(w, stl_pyprepare));
    case STL_PWK_CHECK: return stl_check_start(l, C_OF(w, stl_pycheck));
    case STL_PWK_FORK: return stl_fork_start(l, C_OF(w, stl_pyfork));
    case STL_PWK_ASYNC: return stl_async_start(l, C_OF(w, stl_pyasync));
    }
    return -EINVAL;
}

void stl_pywatcher_kind_stop(stl_pywatcher *w)
{
    stl_loop *l = w->loop->loop;
    switch (w->kind) {
    case STL_PWK_IO: stl_io_stop(l, C_OF(w, stl_pyio)); break;
    case STL_PWK_TIMER: stl_timer_stop(l, C_OF(w, stl_pytimer)); break;
    case STL_PWK_SIGNAL: stl_signal_stop(l, C_OF(w, stl_pysignal)); break;
    case STL_PWK_CHILD: stl_child_stop(l, C_OF(w, stl_pychild)); break;
    case STL_PWK_IDLE: stl_idle_stop(l, C_OF(w, stl_pyidle)); break;
    case STL_PWK_PREPARE: stl_prepare_stop(l, C_OF(w, stl_pyprepare)); break;
    case STL_PWK_CHECK: stl_check_stop(l, C_OF(w, stl_pycheck)); break;
    case STL_PWK_FORK: stl_fork_stop(l, C_OF(w, stl_pyfork)); break;
    case STL_PWK_ASYNC: stl_async_stop(l, C_OF(w, stl_pyasync)); break;
    }
}

/* ---- construction ---- */

/* A new, untracked watcher object of `kind`; its C watcher is initialised by the caller. */
static stl_pywatcher *stl__pw_alloc(stl_pyloop *pl, int kind)
{
    if (pl->loop == NULL) {
        PyErr_SetString(PyExc_ValueError, "operation on destroyed loop");
        return NULL;
    }
    PyTypeObject *type = stl_pywatcher_kinds[kind];
    stl_pywatcher *w = (stl_pywatcher *)PyObject_GC_New(stl_pywatcher, type);
    if (w == NULL)
        return NULL;
    memset((char *)w + sizeof(PyObject), 0, type->tp_basicsize - sizeof(PyObject));
    w->loop = (stl_pyloop *)Py_NewRef((PyObject *)pl);
    w->kind = (unsigned char)kind;
    w->cw = (stl_watcher *)((char *)w + sizeof(stl_pywatcher));
    return w;
}

/* The common tail: data pointer, ref and priority, GC tracking. */
static PyObject *stl__pw_finish(stl_pywatcher *w, int rc, int ref, PyObject *priority)
{
    w->cw->data = w;
    PyObject_GC_Track(w);
    if (rc < 0) {
        if (rc == -EBADF)
            stl_pyloop_errno(rc);
        else
            PyErr_SetString(PyExc_ValueError, rc == -EINVAL ? "invalid watcher arguments" : "cannot make watcher");
        Py_DECREF(w);
        return NULL;
    }
    if (!ref)
        stl_unref(w->loop->loop, w->cw);
    if (priority != NULL && priority != Py_None && stl__pw_set_priority_obj(w, priority) < 0) {
        Py_DECREF(w);
        return NULL;
    }
    return (PyObject *)w;
}

/*
 * The factories' argument parsing, for METH_FASTCALL | METH_KEYWORDS:
 * PyArg_ParseTupleAndKeywords builds a tuple and walks a format string on
 * every call, and loop.timer(...) runs once per timer.  Fills out[] with
 * borrowed references (NULL: not given); -1 with TypeError for too many,
 * unknown, repeated or missing (the first `required`) arguments.
 */
static int stl__fc_parse(const char *fname, const char *const *names, int nnames, int required,
                         PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **out)
{
    if (nargs > nnames) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fname, nnames, nargs);
        return -1;
    }
    for (int i = 0; i < nnames; i++)
        out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nk = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nk; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int i = 0;
        while (i < nnames && PyUnicode_CompareWithASCIIString(key, names[i]) != 0)
            i++;
        if (i == nnames) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname, key);
            return -1;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname, names[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (int i = 0; i < required; i++)
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, names[i]);
            return -1;
        }
    return 0;
}

/* An int argument (like PyArg's "i": floats refused); dflt if not given. */
static int stl__fc_int(PyObject *o, int dflt, int *out)
{
    if (o == NULL) {
        *out = dflt;
        return 0;
    }
    if (PyFloat_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "integer argument expected, got float");
        return -1;
    }
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < INT_MIN || v > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "signed integer is out of range");
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* A float argument (like PyArg's "d"); dflt if not given. */
static int stl__fc_double(PyObject *o, double dflt, double *out)
{
    if (o == NULL) {
        *out = dflt;
        return 0;
    }
    *out = PyFloat_CheckExact(o) ? PyFloat_AS_DOUBLE(o) : PyFloat_AsDouble(o);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* A truth value (like PyArg's "p"); dflt if not given. */
static int stl__fc_bool(PyObject *o, int dflt)
{
    return o == NULL ? dflt : PyObject_IsTrue(o);
}

PyObject *stl_pyloop_new_io(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"fd", "events", "ref", "priority"};
    PyObject *a[4];
    int events, ref;
    if (stl__fc_parse("io", names, 4, 2, args, nargs, kwnames, a) < 0 || stl__fc_int(a[1], 0, &events) < 0
        || (ref = stl__fc_bool(a[2], 1)) < 0)
        return NULL;
    int fd = PyObject_AsFileDescriptor(a[0]);
    if (fd < 0)
        return NULL;
    if (events & ~(STL_READ | STL_WRITE)) {
        PyErr_Format(PyExc_ValueError, "illegal event mask: %d", events);
        return NULL;
    }
    if (fcntl(fd, F_GETFD) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    stl_pywatcher *w = stl__pw_alloc(pl, STL_PWK_IO);
    if (w == NULL)
        return NULL;
    int rc = stl_io_init(C_OF(w, stl_pyio), stl_pywatcher_dispatch, fd, events);
    return stl__pw_finish(w, rc, ref, a[3]);
}

PyObject *stl_pyloop_new_timer(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"after", "repeat", "ref", "priority"};
    PyObject *a[4];
    double after, repeat;
    int ref;
    if (stl__fc_parse("timer", names, 4, 0, args, nargs, kwnames, a) < 0 || stl__fc_double(a[0], 0.0, &after) < 0
        || stl__fc_double(a[1], 0.0, &repeat) < 0 || (ref = stl__fc_bool(a[2], 1)) < 0)
        return NULL;
    if (!(after >= 0.0) || !(repeat >= 0.0)) {
        PyErr_Format(PyExc_ValueError, "timer times must be non-negative numbers (after=%R, repeat=%R)",
                     a[0] ? a[0] : Py_None, a[1] ? a[1] : Py_None);
        return NULL;
    }
    stl_pywatcher *w = stl__pw_alloc(pl, STL_PWK_TIMER);
    if (w == NULL)
        return NULL;
    int rc = stl_timer_init(C_OF(w, stl_pytimer), stl_pywatcher_dispatch, after, repeat);
    return stl__pw_finish(w, rc, ref, a[3]);
}

PyObject *stl_pyloop_new_signal(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"signum", "ref", "priority"};
    PyObject *a[3];
    int signum, ref;
    if (stl__fc_parse("signal", names, 3, 1, args, nargs, kwnames, a) < 0 || stl__fc_int(a[0], 0, &signum) < 0
        || (ref = stl__fc_bool(a[1], 1)) < 0)
        return NULL;
    stl_pywatcher *w = stl__pw_alloc(pl, STL_PWK_SIGNAL);
    if (w == NULL)
        return NULL;
    int rc = stl_signal_init(C_OF(w, stl_pysignal), stl_pywatcher_dispatch, signum);
    if (rc == -EINVAL) {
        w->cw->data = w;
        PyObject_GC_Track(w);
        Py_DECREF(w);
        return PyErr_Format(PyExc_ValueError, "illegal signal number: %d", signum);
    }
    return stl__pw_finish(w, rc, ref, a[2]);
}

PyObject *stl_pyloop_new_child(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"pid", "trace", "ref", "priority"};
    PyObject *a[4];
    int pid, trace, ref;
    if (stl__fc_parse("child", names, 4, 1, args, nargs, kwnames, a) < 0 || stl__fc_int(a[0], 0, &pid) < 0
        || stl__fc_int(a[1], 0, &trace) < 0 || (ref = stl__fc_bool(a[2], 1)) < 0)
        return NULL;
    if (pid <= 0)
        return PyErr_Format(PyExc_ValueError, "child watchers need a pid > 0, not %d", pid);
    stl_pywatcher *w = stl__pw_alloc(pl, STL_PWK_CHILD);
    if (w == NULL)
        return NULL;
    int rc = stl_child_init(C_OF(w, stl_pychild), stl_pywatcher_dispatch, (pid_t)pid, trace);
    return stl__pw_finish(w, rc, ref, a[3]);
}

/* idle, prepare, check, fork, async_: (ref=True, priority=None). */
static PyObject *stl__new_plain(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                                int kind, const char *fname)
{
    static const char *const names[] = {"ref", "priority"};
    PyObject *a[2];
    int ref;
    if (stl__fc_parse(fname, names, 2, 0, args, nargs, kwnames, a) < 0 || (ref = stl__fc_bool(a[0], 1)) < 0)
        return NULL;
    stl_pywatcher *w = stl__pw_alloc(pl, kind);
    if (w == NULL)
        return NULL;
    stl_cb cb = stl_pywatcher_dispatch;
    switch (kind) {
    case STL_PWK_IDLE: stl_idle_init(C_OF(w, stl_pyidle), cb); break;
    case STL_PWK_PREPARE: stl_prepare_init(C_OF(w, stl_pyprepare), cb); break;
    case STL_PWK_CHECK: stl_check_init(C_OF(w, stl_pycheck), cb); break;
    case STL_PWK_FORK: stl_fork_init(C_OF(w, stl_pyfork), cb); break;
    case STL_PWK_ASYNC: stl_async_init(C_OF(w, stl_pyasync), cb); break;
    }
    return stl__pw_finish(w, 0, ref, a[1]);
}

#define STL__PLAIN_FACTORY(fn, kind, fname)                                                      \
    PyObject *fn(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)   \
    {                                                                                          \
        return stl__new_plain(pl, args, nargs, kwnames, kind, fname);                          \
    }
STL__PLAIN_FACTORY(stl_pyloop_new_idle, STL_PWK_IDLE, "idle")
STL__PLAIN_FACTORY(stl_pyloop_new_prepare, STL_PWK_PREPARE, "prepare")
STL__PLAIN_FACTORY(stl_pyloop_new_check, STL_PWK_CHECK, "check")
STL__PLAIN_FACTORY(stl_pyloop_new_fork, STL_PWK_FORK, "fork")
STL__PLAIN_FACTORY(stl_pyloop_new_async, STL_PWK_ASYNC, "async_")

/* ---- io ---- */

static PyObject *io_get_fd(stl_pywatcher *w, void *c) { return PyLong_FromLong(C_OF(w, stl_pyio)->fd); }
static PyObject *io_get_events(stl_pywatcher *w, void *c) { return PyLong_FromLong(C_OF(w, stl_pyio)->events); }

static int io_set_events(stl_pywatcher *w, PyObject *v, void *c)
{
    long ev = v ? PyLong_AsLong(v) : -1;
    if (ev == -1 && PyErr_Occurred())
        return -1;
    if (ev & ~(long)(STL_READ | STL_WRITE) || ev < 0) {
        PyErr_Format(PyExc_ValueError, "illegal event mask: %ld", ev);
        return -1;
    }
    stl_io *io = C_OF(w, stl_pyio);
    if (!w->cw->active)
        return stl_io_set(io, io->fd, (int)ev) < 0 ? (PyErr_SetString(PyExc_ValueError, "bad io"), -1) : 0;
    if (stl_pyloop_check(w->loop) < 0)
        return -1;
    stl_io_modify(w->loop->loop, io, (int)ev);
    return 0;
}

/* gevent's events_str: 'READ', 'WRITE', 'READ|WRITE' or ''. */
static PyObject *io_get_events_str(stl_pywatcher *w, void *c)
{
    static const char *const strs[] = {"", "READ", "WRITE", "READ|WRITE"};
    return PyUnicode_FromString(strs[C_OF(w, stl_pyio)->events & (STL_READ | STL_WRITE)]);
}

static PyGetSetDef io_getset[] = {
    {"fd", (getter)io_get_fd, NULL, "The file descriptor.", NULL},
    {"events_str", (getter)io_get_events_str, NULL, "The events as text: 'READ|WRITE'.", NULL},
    {"events", (getter)io_get_events, (setter)io_set_events, "READ (1) | WRITE (2).", NULL},
    {NULL}
};

/* ---- timer ---- */

/* update=... among the keywords of timer.start and again (the only one); -1 on error.
 * start() takes update=None as "the default" (gevent's signature), again() as false. */
static int stl__update_kw(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int dflt,
                          int none_is_default)
{
    Py_ssize_t nk = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nk == 0)
        return dflt;
    if (nk > 1 || PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "update") != 0) {
        PyErr_SetString(PyExc_TypeError, "the only keyword argument is 'update'");
        return -1;
    }
    if (none_is_default && args[nargs] == Py_None)
        return dflt;
    return PyObject_IsTrue(args[nargs]);
}

static PyObject *timer_start(stl_pywatcher *w, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    int update = stl__update_kw(args, nargs, kwnames,
                                w->loop != NULL && w->loop->running_callbacks, 1);
    if (update < 0 || stl_pyloop_check(w->loop) < 0 || stl__pw_set_callback(w, args, nargs) < 0)
        return NULL;
    if (update)
        stl_loop_update_now(w->loop->loop);
    if (stl_pywatcher_start_raw(w) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *timer_again(stl_pywatcher *w, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    int update = stl__update_kw(args, nargs, kwnames, 1, 0);
    if (update < 0 || w->closed || stl_pyloop_check(w->loop) < 0 || stl__pw_set_callback(w, args, nargs) < 0) {
        if (w->closed && !PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "operation on closed watcher");
        return NULL;
    }
    if (update)
        stl_loop_update_now(w->loop->loop);
    stl_timer *t = C_OF(w, stl_pytimer);
    if (!w->cw->active && t->repeat == 0) {
        /* gevent: again() on an idle one-shot timer starts it */
        if (stl_pywatcher_start_raw(w) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    int rc = stl_timer_again(w->loop->loop, t);
    stl_pywatcher_sync(w);
    if (rc < 0)
        return stl_pyloop_errno(rc); /* -ENOMEM: the heap could not grow */
    Py_RETURN_NONE;
}

static PyObject *timer_get_remaining(stl_pywatcher *w, void *c)
{
    if (w->loop == NULL || w->loop->loop == NULL)
        return stl_pyloop_check(w->loop), NULL;
    return PyFloat_FromDouble(stl_timer_remaining(w->loop->loop, C_OF(w, stl_pytimer)));
}

/* gevent's `at`: the deadline, on loop.now()'s clock; for an inactive timer,
 * the one a start now would give (now + after). */
static PyObject *timer_get_at(stl_pywatcher *w, void *c)
{
    if (w->loop == NULL || w->loop->loop == NULL)
        return stl_pyloop_check(w->loop), NULL;
    stl_timer *t = C_OF(w, stl_pytimer);
    if (w->cw->active)
        return PyFloat_FromDouble(stl_timer_at(t));
    return PyFloat_FromDouble(stl_loop_now(w->loop->loop) + stl_timer_remaining(w->loop->loop, t));
}

static PyObject *timer_get_repeat(stl_pywatcher *w, void *c)
{
    return PyFloat_FromDouble(stl_timer_repeat(C_OF(w, stl_pytimer)));
}

static int timer_set_repeat(stl_pywatcher *w, PyObject *v, void *c)
{
    double r = v ? PyFloat_AsDouble(v) : -1.0;
    if (r == -1.0 && PyErr_Occurred())
        return -1;
    if (stl_timer_set_repeat(C_OF(w, stl_pytimer), r) < 0) {
        PyErr_SetString(PyExc_ValueError, "repeat must be a non-negative number");
        return -1;
    }
    return 0;
}

static PyMethodDef timer_methods[] = {
    {"start", (PyCFunction)(void (*)(void))timer_start, METH_FASTCALL | METH_KEYWORDS,
     "start(callback, *args, update=None): update=None refreshes the loop's time first "
     "only while run_callback callbacks run (gevent's rule)."},
    {"again", (PyCFunction)(void (*)(void))timer_again, METH_FASTCALL | METH_KEYWORDS,
     "again(callback, *args, update=True): restart at now + repeat (libev's again)."},
    {NULL}
};

static PyGetSetDef timer_getset[] = {
    {"remaining", (getter)timer_get_remaining, NULL, "Seconds until it fires.", NULL},
    {"at", (getter)timer_get_at, NULL, "The deadline on loop.now()'s clock (if started now, when inactive).", NULL},
    {"repeat", (getter)timer_get_repeat, (setter)timer_set_repeat, "The repeat interval.", NULL},
    {NULL}
};

/* ---- signal, child ---- */

static PyObject *sig_get_signum(stl_pywatcher *w, void *c) { return PyLong_FromLong(C_OF(w, stl_pysignal)->signum); }
static PyGetSetDef signal_getset[] = {{"signum", (getter)sig_get_signum, NULL, NULL, NULL}, {NULL}};

static PyObject *child_get_pid(stl_pywatcher *w, void *c) { return PyLong_FromLong(C_OF(w, stl_pychild)->pid); }
static PyObject *child_get_rpid(stl_pywatcher *w, void *c) { return PyLong_FromLong(C_OF(w, stl_pychild)->rpid); }
static PyObject *child_get_rstatus(stl_pywatcher *w, void *c)
{
    return PyLong_FromLong(C_OF(w, stl_pychild)->rstatus);
}
static PyGetSetDef child_getset[] = {
    {"pid", (getter)child_get_pid, NULL, NULL, NULL},
    {"rpid", (getter)child_get_rpid, NULL, NULL, NULL},
    {"rstatus", (getter)child_get_rstatus, NULL, NULL, NULL},
    {NULL}
};

/* ---- async_ ---- */

static PyObject *async_send(stl_pywatcher *w, PyObject *unused)
{
    if (w->loop == NULL || w->loop->loop == NULL) {
        PyErr_SetString(PyExc_ValueError, "operation on destroyed loop");
        return NULL;
    }
    stl_async_send(w->loop->loop, C_OF(w, stl_pyasync));
    Py_RETURN_NONE;
}

static PyObject *async_send_ignoring_arg(stl_pywatcher *w, PyObject *arg)
{
    return async_send(w, NULL);
}

static PyObject *async_get_pending(stl_pywatcher *w, void *c)
{
    return PyBool_FromLong(w->cw->pending || stl_async_pending(C_OF(w, stl_pyasync)));
}

static PyMethodDef async_methods[] = {
    {"send", (PyCFunction)async_send, METH_NOARGS, "Wake the loop (thread- and signal-safe); sends coalesce."},
    {"send_ignoring_arg", (PyCFunction)async_send_ignoring_arg, METH_O, "send(), for use as a callback."},
    {NULL}
};
static PyGetSetDef async_getset[] = {{"pending", (getter)async_get_pending, NULL, NULL, NULL}, {NULL}};

/* ---- EVENTS: gevent's GEVENT_CORE_EVENTS ---- */

static PyObject *events_repr(PyObject *self) { return PyUnicode_FromString("stolon.loop.EVENTS"); }

static PyTypeObject stl__events_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stolon.loop._EVENTSType",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The type of EVENTS: start(cb, EVENTS, ...) calls cb(revents, ...).",
    .tp_repr = events_repr,
};

/* The one instance (immortal in practice: the module keeps it). */
PyObject *stl_pyloop_EVENTS;

static int stl__events_ready(PyObject *module)
{
    if (PyType_Ready(&stl__events_type) < 0)
        return -1;
    if (stl_pyloop_EVENTS == NULL && (stl_pyloop_EVENTS = PyObject_New(PyObject, &stl__events_type)) == NULL)
        return -1;
    if (PyModule_AddObject(module, "EVENTS", Py_NewRef(stl_pyloop_EVENTS)) < 0
        || PyModule_AddObject(module, "GEVENT_CORE_EVENTS", Py_NewRef(stl_pyloop_EVENTS)) < 0)
        return -1;
    return 0;
}

/* ---- the types ---- */

#define STL__KIND_TYPE(var, name, T, methods, getset)                                 \
    static PyTypeObject var = {                                                       \
        PyVarObject_HEAD_INIT(NULL, 0)                                                \
        .tp_name = "stolon.loop." name,                                               \
        .tp_basicsize = sizeof(T),                                                    \
        .tp_flags = Py_TPFLAGS_DEFAULT, /* GC inherited */                            \
        .tp_doc = "A " name " watcher (made by loop." name "()).",                    \
        .tp_methods = methods,                                                        \
        .tp_getset = getset,                                                          \
        .tp_new = stl_pywatcher_no_new,                                               \
    }

STL__KIND_TYPE(io_type, "io", stl_pyio, NULL, io_getset);
STL__KIND_TYPE(timer_type, "timer", stl_pytimer, timer_methods, timer_getset);
STL__KIND_TYPE(signal_type, "signal", stl_pysignal, NULL, signal_getset);
STL__KIND_TYPE(child_type, "child", stl_pychild, NULL, child_getset);
STL__KIND_TYPE(idle_type, "idle", stl_pyidle, NULL, NULL);
STL__KIND_TYPE(prepare_type, "prepare", stl_pyprepare, NULL, NULL);
STL__KIND_TYPE(check_type, "check", stl_pycheck, NULL, NULL);
STL__KIND_TYPE(fork_type, "fork", stl_pyfork, NULL, NULL);
STL__KIND_TYPE(async_type, "async_", stl_pyasync, async_methods, async_getset);

PyTypeObject *stl_pywatcher_kinds[STL_PWK_COUNT] = {
    &io_type, &timer_type, &signal_type, &child_type, &idle_type,
    &prepare_type, &check_type, &fork_type, &async_type,
};

int stl_watcher_kinds_ready(PyObject *module)
{
    if (PyType_Ready(&stl_pywatcher_type) < 0)
        return -1;
    Py_INCREF(&stl_pywatcher_type);
    if (PyModule_AddObject(module, "watcher", (PyObject *)&stl_pywatcher_type) < 0)
        return -1;
    for (int k = 0; k < STL_PWK_COUNT; k++) {
        PyTypeObject *t = stl_pywatcher_kinds[k];
        t->tp_base = &stl_pywatcher_type;
        if (PyType_Ready(t) < 0)
            return -1;
        const char *name = strrchr(t->tp_name, '.') + 1;
        Py_INCREF(t);
        if (PyModule_AddObject(module, name, (PyObject *)t) < 0)
            return -1;
    }
    static const struct { const char *name; int v; } consts[] = {
        {"READ", STL_READ}, {"WRITE", STL_WRITE}, {"ERROR", STL_ERROR}, {"MINPRI", STL_MINPRI}, {"MAXPRI", STL_MAXPRI},
        {"EVBREAK_CANCEL", STL_BREAK_CANCEL}, {"EVBREAK_ONE", STL_BREAK_ONE}, {"EVBREAK_ALL", STL_BREAK_ALL},
        {NULL, 0}};
    for (int i = 0; consts[i].name; i++)
        if (PyModule_AddIntConstant(module, consts[i].name, consts[i].v) < 0)
            return -1;
    return stl__events_ready(module);
}
