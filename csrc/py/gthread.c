/*
 * gthread.c -- per-thread greenlet state: the main greenlet of each thread,
 * the current greenlet, and what happens when a thread exits.
 *
 * The state is found through a C thread-local pointer (getcurrent() is a
 * load).  A small "sentinel" object in the thread state's dict holds the
 * main greenlet; CPython clears that dict when the thread exits, with the
 * GIL held, which is our exit hook: no pthread destructor runs Python code.
 */
#include "greenlet.h"

static _Thread_local stl_gthread *stl__tls;

typedef struct {
    PyObject_HEAD
    stl_greenlet *main;
} stl_sentinel;

/* The thread is going away: its greenlets can never run again. */
static void stl__sentinel_dealloc(stl_sentinel *self)
{
    stl_greenlet *main = self->main;
    if (main != NULL) {
        stl_gthread *gt = main->thread;
        gt->alive = 0;
        if (stl__tls == gt && gt->ident == PyThread_get_thread_ident())
            stl__tls = NULL;
        Py_CLEAR(gt->tracer);
        Py_CLEAR(gt->hub);
        Py_CLEAR(gt->deleteme);         /* their owner is gone: they are freed in place */
        stl_greenlet *cur = gt->current;
        gt->current = NULL;
        Py_XDECREF(cur);
        self->main = NULL;
        Py_DECREF(main);
    }
    PyObject_Free(self);
}

static PyTypeObject stl__sentinel_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stolon._core._ThreadSentinel",
    .tp_basicsize = sizeof(stl_sentinel),
    .tp_dealloc = (destructor)stl__sentinel_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

static stl_gthread *stl__gthread_create(void)
{
    PyObject *tsdict = PyThreadState_GetDict();
    if (tsdict == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "stolon: no thread state dict");
        return NULL;
    }
    stl_gthread *gt = PyMem_Calloc(1, sizeof *gt);
    if (gt == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    stl_greenlet *main = (stl_greenlet *)stl_greenlet_type.tp_alloc(&stl_greenlet_type, 0);
    if (main == NULL) {
        PyMem_Free(gt);
        return NULL;
    }
    stl_stack_init_main(&main->stack);
    stl_pystate_init(&main->py);
    main->thread = gt;
    gt->main = main;
    gt->ident = PyThread_get_thread_ident();
    gt->alive = 1;
    stl_thread_init(&gt->core, &main->stack);
    Py_INCREF(main);
    gt->current = main;

    stl_sentinel *sentinel = PyObject_New(stl_sentinel, &stl__sentinel_type);
    if (sentinel == NULL) {
        Py_DECREF(main);
        return NULL;
    }
    sentinel->main = main;              /* takes the creation reference */
    int rc = PyDict_SetItemString(tsdict, "stolon.greenlet.thread", (PyObject *)sentinel);
    Py_DECREF(sentinel);
    if (rc < 0)
        return NULL;
    stl__tls = gt;
    return gt;
}

int stl_gthread_ready(void)
{
    return PyType_Ready(&stl__sentinel_type);
}

stl_gthread *stl_gthread_get(void)
{
    stl_gthread *gt = stl__tls;
    if (gt != NULL)
        return gt;
    if (STL_IS_FINALIZING()) {
        PyErr_SetString(PyExc_RuntimeError, "greenlet is being finalized");
        return NULL;
    }
    return stl__gthread_create();
}

stl_gthread *stl_gthread_of(stl_greenlet *g)
{
    while (g != NULL) {
        if (stl_greenlet_is_main(g))
            return g->thread->alive ? g->thread : NULL;
        if (g->main != NULL)
            return g->main->thread->alive ? g->main->thread : NULL;
        g = g->parent;
    }
    return NULL;
}

void stl_gthread_drain(stl_gthread *gt)
{
    while (gt->deleteme != NULL) {
        PyObject *list = gt->deleteme;
        gt->deleteme = NULL;
        Py_DECREF(list);                /* each greenlet's last reference: killed here */
    }
}

int stl_gthread_defer_kill(stl_gthread *gt, stl_greenlet *g)
{
    if (gt->deleteme == NULL && (gt->deleteme = PyList_New(0)) == NULL) {
        Py_DECREF(g);
        return -1;
    }
    int rc = PyList_Append(gt->deleteme, (PyObject *)g);
    Py_DECREF(g);
    return rc;
}
