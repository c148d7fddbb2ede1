/*
 * watcher_kinds.c -- the watcher kinds: io, timer, signal, child, idle,
 * prepare, check, fork, async_.  Each is a subtype of stolon.loop.watcher
 * whose object embeds the C watcher of its kind; this file knows how to
 * make, start and stop each one and adds the kind's own attributes.
 */
#include "loop.h"

#include <fcntl.h>
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

int stl__pw_set_callback(stl_pywatcher *w, PyObject *args, Py_ssize_t first);
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

PyObject *stl_pyloop_new_io(stl_pyloop *pl, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"fd", "events", "ref", "priority", NULL};
    PyObject *fdobj, *priority = Py_None;
    int events, ref = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Oi|pO:io", kwlist, &fdobj, &events, &ref, &priority))
        return NULL;
    int fd = PyObject_AsFileDescriptor(fdobj);
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
    return stl__pw_finish(w, rc, ref, priority);
}

PyObject *stl_pyloop_new_timer(stl_pyloop *pl, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"after", "repeat", "ref", "priority", NULL};
    double after = 0.0, repeat = 0.0;
    int ref = 1;
    PyObject *priority = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|ddpO:timer", kwlist, &after, &repeat, &ref, &priority))
        return NULL;
    if (!(after >= 0.0) || !(repeat >= 0.0)) {
        PyErr_Format(PyExc_ValueError, "timer times must be non-negative numbers (after=%R, repeat=%R)",
                     PyTuple_Size(args) > 0 ? PyTuple_GET_ITEM(args, 0) : Py_None,
                     PyTuple_Size(args) > 1 ? PyTuple_GET_ITEM(args, 1) : Py_None);
        return NULL;
    }
    stl_pywatcher *w = stl__pw_alloc(pl, STL_PWK_TIMER);
    if (w == NULL)
        return NULL;
    int rc = stl_timer_init(C_OF(w, stl_pytimer), stl_pywatcher_dispatch, after, repeat);
    return stl__pw_finish(w, rc, ref, priority);
}

PyObject *stl_pyloop_new_signal(stl_pyloop *pl, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"signum", "ref", "priority", NULL};
    int signum, ref = 1;
    PyObject *priority = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|pO:signal", kwlist, &signum, &ref, &priority))
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
    return stl__pw_finish(w, rc, ref, priority);
}

PyObject *stl_pyloop_new_child(stl_pyloop *pl, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"pid", "trace", "ref", "priority", NULL};
    int pid, trace = 0, ref = 1;
    PyObject *priority = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|ipO:child", kwlist, &pid, &trace, &ref, &priority))
        return NULL;
    if (pid <= 0)
        return PyErr_Format(PyExc_ValueError, "child watchers need a pid > 0, not %d", pid);
    stl_pywatcher *w = stl__pw_alloc(pl, STL_PWK_CHILD);
    if (w == NULL)
        return NULL;
    int rc = stl_child_init(C_OF(w, stl_pychild), stl_pywatcher_dispatch, (pid_t)pid, trace);
    return stl__pw_finish(w, rc, ref, priority);
}

/* idle, prepare, check, fork, async_: (ref=True, priority=None). */
static PyObject *stl__new_plain(stl_pyloop *pl, PyObject *args, PyObject *kw, int kind, const char *fmt)
{
    static char *kwlist[] = {"ref", "priority", NULL};
    int ref = 1;
    PyObject *priority = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &ref, &priority))
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
    return stl__pw_finish(w, 0, ref, priority);
}

PyObject *stl_pyloop_new_idle(stl_pyloop *pl, PyObject *a, PyObject *k)
{
    return stl__new_plain(pl, a, k, STL_PWK_IDLE, "|pO:idle");
}
PyObject *stl_pyloop_new_prepare(stl_pyloop *pl, PyObject *a, PyObject *k)
{
    return stl__new_plain(pl, a, k, STL_PWK_PREPARE, "|pO:prepare");
}
PyObject *stl_pyloop_new_check(stl_pyloop *pl, PyObject *a, PyObject *k)
{
    return stl__new_plain(pl, a, k, STL_PWK_CHECK, "|pO:check");
}
PyObject *stl_pyloop_new_fork(stl_pyloop *pl, PyObject *a, PyObject *k)
{
    return stl__new_plain(pl, a, k, STL_PWK_FORK, "|pO:fork");
}
PyObject *stl_pyloop_new_async(stl_pyloop *pl, PyObject *a, PyObject *k)
{
    return stl__new_plain(pl, a, k, STL_PWK_ASYNC, "|pO:async_");
}

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

static PyGetSetDef io_getset[] = {
    {"fd", (getter)io_get_fd, NULL, "The file descriptor.", NULL},
    {"events", (getter)io_get_events, (setter)io_set_events, "READ (1) | WRITE (2).", NULL},
    {NULL}
};

/* ---- timer ---- */

/* Pops update=... from kw (timer.start and again); -1 on error. */
static int stl__update_kw(PyObject *kw, int dflt)
{
    if (kw == NULL)
        return dflt;
    PyObject *v = PyDict_GetItemString(kw, "update");
    Py_ssize_t n = PyDict_Size(kw);
    if (n > (v ? 1 : 0)) {
        PyErr_SetString(PyExc_TypeError, "the only keyword argument is 'update'");
        return -1;
    }
    return v ? PyObject_IsTrue(v) : dflt;
}

static PyObject *timer_start(stl_pywatcher *w, PyObject *args, PyObject *kw)
{
    int update = stl__update_kw(kw, 0);
    if (update < 0 || stl_pyloop_check(w->loop) < 0 || stl__pw_set_callback(w, args, 0) < 0)
        return NULL;
    if (update)
        stl_loop_update_now(w->loop->loop);
    if (stl_pywatcher_start_raw(w) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *timer_again(stl_pywatcher *w, PyObject *args, PyObject *kw)
{
    int update = stl__update_kw(kw, 1);
    if (update < 0 || w->closed || stl_pyloop_check(w->loop) < 0 || stl__pw_set_callback(w, args, 0) < 0) {
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
    stl_timer_again(w->loop->loop, t);
    stl_pywatcher_sync(w);
    Py_RETURN_NONE;
}

static PyObject *timer_get_remaining(stl_pywatcher *w, void *c)
{
    if (w->loop == NULL || w->loop->loop == NULL)
        return stl_pyloop_check(w->loop), NULL;
    return PyFloat_FromDouble(stl_timer_remaining(w->loop->loop, C_OF(w, stl_pytimer)));
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
    {"start", (PyCFunction)(void (*)(void))timer_start, METH_VARARGS | METH_KEYWORDS,
     "start(callback, *args, update=False)"},
    {"again", (PyCFunction)(void (*)(void))timer_again, METH_VARARGS | METH_KEYWORDS,
     "again(callback, *args, update=True): restart at now + repeat (libev's again)."},
    {NULL}
};

static PyGetSetDef timer_getset[] = {
    {"remaining", (getter)timer_get_remaining, NULL, "Seconds until it fires.", NULL},
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
        {"READ", STL_READ}, {"WRITE", STL_WRITE}, {"MINPRI", STL_MINPRI}, {"MAXPRI", STL_MAXPRI},
        {"EVBREAK_CANCEL", STL_BREAK_CANCEL}, {"EVBREAK_ONE", STL_BREAK_ONE}, {"EVBREAK_ALL", STL_BREAK_ALL},
        {NULL, 0}};
    for (int i = 0; consts[i].name; i++)
        if (PyModule_AddIntConstant(module, consts[i].name, consts[i].v) < 0)
            return -1;
    return 0;
}
