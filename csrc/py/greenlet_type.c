/*
 * greenlet_type.c -- the stolon.greenlet type: construction, attributes,
 * repr, garbage collection, and what happens when the last reference to a
 * suspended greenlet goes away (greenlet's rules: GreenletExit is thrown
 * into it, in its own thread).
 */
#include "greenlet.h"

#include <stddef.h>

PyObject *stl_GreenletExit;
PyObject *stl_GreenletError;

stl_greenlet *stl_greenlet_new(PyObject *run, stl_greenlet *parent)
{
    PyObject *g = stl_greenlet_type.tp_new(&stl_greenlet_type, NULL, NULL);
    if (g == NULL)
        return NULL;
    stl_greenlet *self = (stl_greenlet *)g;
    if (run != NULL) {
        Py_INCREF(run);
        Py_XSETREF(self->run, run);
    }
    if (parent != NULL && stl_greenlet_set_parent(self, (PyObject *)parent) < 0) {
        Py_DECREF(g);
        return NULL;
    }
    return self;
}

static PyObject *greenlet_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    stl_gthread *gt = stl_gthread_get();
    if (gt == NULL)
        return NULL;
    stl_gthread_drain(gt);
    if (PyType_HasFeature(type, Py_TPFLAGS_IS_ABSTRACT)) {
        /* object.__new__ says which abstract methods are missing */
        PyObject *empty = PyTuple_New(0);
        PyObject *r = empty ? PyBaseObject_Type.tp_new(type, empty, NULL) : NULL;
        Py_XDECREF(empty);
        Py_XDECREF(r);
        if (r == NULL)
            return NULL;
    }
    stl_greenlet *self = (stl_greenlet *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    stl_stack_init(&self->stack);
    stl_pystate_init(&self->py);
    Py_INCREF(gt->current);
    self->parent = gt->current;
    return (PyObject *)self;
}

static int greenlet_set_run(stl_greenlet *self, PyObject *run, void *closure);

static int greenlet_tp_init(stl_greenlet *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"run", "parent", NULL};
    PyObject *run = NULL, *parent = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:greenlet", kwlist, &run, &parent))
        return -1;
    if (run != NULL && greenlet_set_run(self, run, NULL) < 0)
        return -1;
    if (parent != NULL && parent != Py_None && stl_greenlet_set_parent(self, parent) < 0)
        return -1;
    return 0;
}

int stl_greenlet_set_parent(stl_greenlet *self, PyObject *parent)
{
    if (parent == NULL) {
        PyErr_SetString(PyExc_AttributeError, "can't delete attribute");
        return -1;
    }
    if (!stl_greenlet_check(parent)) {
        PyErr_Format(PyExc_TypeError, "GreenletChecker: Expected any type of greenlet, not %s",
                     Py_TYPE(parent)->tp_name);
        return -1;
    }
    if (stl_greenlet_is_main(self)) {
        PyErr_SetString(PyExc_AttributeError, "cannot set the parent of a main greenlet");
        return -1;
    }
    for (stl_greenlet *p = (stl_greenlet *)parent; p != NULL; p = p->parent) {
        if (p == self) {
            PyErr_SetString(PyExc_ValueError, "cyclic parent chain");
            return -1;
        }
    }
    /* An unstarted greenlet may take a parent of any thread (even an exited
     * one): the switch checks.  A started one belongs to its thread. */
    stl_gthread *theirs = stl_gthread_of((stl_greenlet *)parent);
    if (stl_greenlet_started(self) && self->main != NULL && self->main->thread != theirs) {
        PyErr_SetString(PyExc_ValueError, "parent cannot be on a different thread");
        return -1;
    }
    Py_INCREF(parent);
    Py_XSETREF(self->parent, (stl_greenlet *)parent);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Death                                                               */
/* ------------------------------------------------------------------ */

/* The last reference to a suspended greenlet is gone (it has been given a
 * temporary one).  Kill it in its own thread, queue it for that thread, or,
 * if that thread is gone or the interpreter is finalizing, abandon it. */
static void stl__dealloc_suspended(stl_greenlet *self)
{
    stl_gthread *owner = self->main != NULL ? self->main->thread : NULL;
    if (owner == NULL || !owner->alive || STL_IS_FINALIZING()) {
        stl_pystate_abandon(&self->py);
        self->stack.start = NULL;       /* dead: its window is nobody's now */
        return;
    }
    stl_gthread *gt = stl_gthread_get();
    if (gt != owner) {
        PyErr_Clear();
        Py_INCREF(self);
        if (stl_gthread_defer_kill(owner, self) < 0)
            PyErr_WriteUnraisable((PyObject *)self);
        return;
    }
    /* Killed from here, so it comes back here; then its parent is restored. */
    stl_greenlet *old_parent = self->parent;
    Py_INCREF(gt->current);
    self->parent = gt->current;
    PyObject *exc = PyObject_CallFunction(stl_GreenletExit, "s",
                                          "Killing the greenlet because all references have vanished.");
    PyObject *r = exc ? stl_greenlet_throw(self, exc, NULL, NULL) : NULL;
    Py_XDECREF(exc);
    if (r == NULL)
        PyErr_WriteUnraisable((PyObject *)self);
    Py_XDECREF(r);
    Py_XSETREF(self->parent, old_parent);
    if (Py_REFCNT(self) == 1 && stl_greenlet_active(self)) {
        /* It caught GreenletExit and went on: it cannot be freed.  Leak it. */
        PySys_WriteStderr("GreenletExit did not kill ");
        PyObject_Print((PyObject *)self, stderr, 0);
        PySys_WriteStderr("\n");
        Py_INCREF(self);
    }
}

static void greenlet_tp_dealloc(stl_greenlet *self)
{
    PyObject_GC_UnTrack(self);
    if (!stl_greenlet_is_main(self) && stl_greenlet_active(self)) {
        Py_SET_REFCNT(self, 1);
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        stl__dealloc_suspended(self);
        PyErr_Restore(et, ev, etb);
        Py_ssize_t left = Py_REFCNT(self) - 1;
        Py_SET_REFCNT(self, left);
        if (left > 0) {                 /* resurrected, queued or leaked */
            PyObject_GC_Track(self);
            /* subtype_dealloc drops the type's reference after we return,
             * though the object lives on: give it one to drop. */
            if (PyType_HasFeature(Py_TYPE(self), Py_TPFLAGS_HEAPTYPE))
                Py_INCREF(Py_TYPE(self));
            return;
        }
    }
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    Py_CLEAR(self->dict);
    Py_CLEAR(self->run);
    Py_CLEAR(self->parent);
    stl_pystate_release(&self->py);
    stl_pystate_clear(&self->py);
    stl_stack_release(&self->stack);
    Py_CLEAR(self->main);
    if (self->thread != NULL) {
        PyMem_Free(self->thread);
        self->thread = NULL;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int greenlet_tp_traverse(stl_greenlet *self, visitproc visit, void *arg)
{
    Py_VISIT(self->dict);
    Py_VISIT(self->run);
    Py_VISIT(self->parent);
    Py_VISIT(self->main);
    if (self->thread != NULL) {
        Py_VISIT(self->thread->tracer);
        Py_VISIT(self->thread->deleteme);
    }
    return stl_pystate_traverse(&self->py, visit, arg);
}

/* Suspended greenlets are not collectable: their frames live in a C stack
 * the collector cannot see (greenlet's rule; documented in the migration
 * guide).  Dead, unstarted and main greenlets are. */
static int greenlet_tp_is_gc(stl_greenlet *self)
{
    if (stl_greenlet_is_main(self) || !stl_greenlet_active(self))
        return 1;
    return self->main != NULL && !self->main->thread->alive;
}

static int greenlet_tp_clear(stl_greenlet *self)
{
    Py_CLEAR(self->dict);
    Py_CLEAR(self->run);
    if (!stl_greenlet_active(self) || stl_greenlet_is_main(self))
        Py_CLEAR(self->parent);
    stl_pystate_clear(&self->py);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Attributes                                                          */
/* ------------------------------------------------------------------ */


static int stl__thread_exited(stl_greenlet *g)
{
    stl_greenlet *main = stl_greenlet_is_main(g) ? g : g->main;
    return main != NULL && !main->thread->alive;
}

static PyObject *greenlet_get_run(stl_greenlet *self, void *closure)
{
    if (stl_greenlet_is_main(self)) {
        PyErr_SetString(PyExc_AttributeError, "Main greenlets do not have a run attribute.");
        return NULL;
    }
    if (stl_greenlet_started(self) || self->run == NULL) {
        PyErr_SetString(PyExc_AttributeError, "run");
        return NULL;
    }
    return Py_NewRef(self->run);
}

static int greenlet_set_run(stl_greenlet *self, PyObject *run, void *closure)
{
    if (stl_greenlet_is_main(self)) {
        PyErr_SetString(PyExc_AttributeError, "Main greenlets do not have a run attribute.");
        return -1;
    }
    if (stl_greenlet_started(self)) {
        PyErr_SetString(PyExc_AttributeError, "run cannot be set after the start of the greenlet");
        return -1;
    }
    Py_XINCREF(run);
    Py_XSETREF(self->run, run);
    return 0;
}

static PyObject *greenlet_get_parent(stl_greenlet *self, void *closure)
{
    return Py_NewRef(self->parent ? (PyObject *)self->parent : Py_None);
}

static int greenlet_set_parent_attr(stl_greenlet *self, PyObject *parent, void *closure)
{
    return stl_greenlet_set_parent(self, parent);
}

static PyObject *greenlet_get_dead(stl_greenlet *self, void *closure)
{
    return PyBool_FromLong(stl_greenlet_dead(self));
}

static int stl__is_current(stl_greenlet *g)
{
    stl_gthread *gt = stl_gthread_get();
    if (gt == NULL) {
        PyErr_Clear();
        return 0;
    }
    return gt->current == g;
}

/* The greenlet is the running one of some other live thread. */
static int stl__running_elsewhere(stl_greenlet *g)
{
    stl_gthread *owner = stl_gthread_of(g);
    return owner != NULL && owner->current == g && !stl__is_current(g);
}

static PyObject *greenlet_get_frame(stl_greenlet *self, void *closure)
{
    if (!stl_greenlet_active(self) || stl_greenlet_dead(self) || stl__is_current(self)
        || stl__running_elsewhere(self))
        Py_RETURN_NONE;
    PyObject *f = stl_pystate_frame(&self->py, PyThreadState_Get());
    if (f == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return f;
}

static PyObject *greenlet_get_context(stl_greenlet *self, void *closure)
{
    PyObject *ctx;
    if (stl__is_current(self)) {
        ctx = PyThreadState_Get()->context;
    } else if (stl__running_elsewhere(self)) {
        PyErr_SetString(PyExc_ValueError,
                        "cannot get context of a greenlet that is running in a different thread");
        return NULL;
    } else {
        ctx = self->py.context;
    }
    return Py_NewRef(ctx ? ctx : Py_None);
}

static int greenlet_set_context(stl_greenlet *self, PyObject *ctx, void *closure)
{
    if (ctx == NULL) {
        PyErr_SetString(PyExc_AttributeError, "can't delete context attribute");
        return -1;
    }
    if (ctx == Py_None) {
        ctx = NULL;
    } else if (!PyContext_CheckExact(ctx)) {
        PyErr_SetString(PyExc_TypeError, "greenlet context must be a contextvars.Context or None");
        return -1;
    }
    if (stl__is_current(self)) {
        PyThreadState *ts = PyThreadState_Get();
        Py_XINCREF(ctx);
        Py_XSETREF(ts->context, ctx);
        ts->context_ver++;
        return 0;
    }
    if (stl__running_elsewhere(self)) {
        PyErr_SetString(PyExc_ValueError,
                        "cannot set context of a greenlet that is running in a different thread");
        return -1;
    }
    Py_XINCREF(ctx);
    Py_XSETREF(self->py.context, ctx);
    return 0;
}

static PyObject *greenlet_get_stack_saved(stl_greenlet *self, void *closure)
{
    return PyLong_FromSize_t(stl_greenlet_active(self) ? self->stack.saved : 0);
}

static PyGetSetDef greenlet_getset[] = {
    {"run", (getter)greenlet_get_run, (setter)greenlet_set_run, NULL, NULL},
    {"parent", (getter)greenlet_get_parent, (setter)greenlet_set_parent_attr, NULL, NULL},
    {"dead", (getter)greenlet_get_dead, NULL, NULL, NULL},
    {"gr_frame", (getter)greenlet_get_frame, NULL, NULL, NULL},
    {"gr_context", (getter)greenlet_get_context, (setter)greenlet_set_context, NULL, NULL},
    {"_stack_saved", (getter)greenlet_get_stack_saved, NULL, NULL, NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL}
};

/* ------------------------------------------------------------------ */
/* Methods, repr, truth                                                */
/* ------------------------------------------------------------------ */

static PyObject *greenlet_switch(stl_greenlet *self, PyObject *args, PyObject *kwargs)
{
    return stl_greenlet_switch(self, args, kwargs);
}

static PyObject *greenlet_throw(stl_greenlet *self, PyObject *args)
{
    PyObject *typ = stl_GreenletExit, *val = NULL, *tb = NULL;
    if (!PyArg_ParseTuple(args, "|OOO:throw", &typ, &val, &tb))
        return NULL;
    return stl_greenlet_throw(self, typ, val, tb);
}

static PyObject *greenlet_getstate(stl_greenlet *self, PyObject *unused)
{
    PyErr_Format(PyExc_TypeError, "cannot serialize '%s' object", Py_TYPE(self)->tp_name);
    return NULL;
}

static PyMethodDef greenlet_methods[] = {
    {"switch", (PyCFunction)(void (*)(void))greenlet_switch, METH_VARARGS | METH_KEYWORDS,
     "switch(*args, **kwargs): run this greenlet, sending it the arguments."},
    {"throw", (PyCFunction)greenlet_throw, METH_VARARGS,
     "throw(typ=GreenletExit, val=None, tb=None): raise an exception in this greenlet."},
    {"__getstate__", (PyCFunction)greenlet_getstate, METH_NOARGS, NULL},
    {NULL}
};

static PyObject *greenlet_tp_repr(stl_greenlet *self)
{
    const char *tp_name = Py_TYPE(self)->tp_name;
    stl_greenlet *main = stl_greenlet_is_main(self) ? self : self->main;
    void *otid = main != NULL ? (void *)main->thread : NULL;
    int exited = stl__thread_exited(self);
    if (stl_greenlet_dead(self))
        return PyUnicode_FromFormat("<%s object at %p (otid=%p) %sdead>", tp_name, self, otid,
                                    exited ? "(thread exited) " : "");
    const char *where = exited ? " (thread exited)"
                      : stl__is_current(self) ? " current"
                      : stl_greenlet_started(self) ? " suspended" : "";
    return PyUnicode_FromFormat("<%s object at %p (otid=%p)%s%s%s%s>", tp_name, self, otid, where,
                                stl_greenlet_active(self) ? " active" : "",
                                stl_greenlet_started(self) ? " started" : " pending",
                                stl_greenlet_is_main(self) ? " main" : "");
}

static int greenlet_nb_bool(stl_greenlet *self)
{
    return stl_greenlet_active(self) && !stl_greenlet_dead(self);
}

static PyNumberMethods greenlet_as_number = {
    .nb_bool = (inquiry)greenlet_nb_bool,
};

PyTypeObject stl_greenlet_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stolon.greenlet",
    .tp_basicsize = sizeof(stl_greenlet),
    .tp_dealloc = (destructor)greenlet_tp_dealloc,
    .tp_repr = (reprfunc)greenlet_tp_repr,
    .tp_as_number = &greenlet_as_number,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "greenlet(run=None, parent=None): a coroutine on the shared C stack.",
    .tp_traverse = (traverseproc)greenlet_tp_traverse,
    .tp_clear = (inquiry)greenlet_tp_clear,
    .tp_weaklistoffset = offsetof(stl_greenlet, weakreflist),
    .tp_methods = greenlet_methods,
    .tp_getset = greenlet_getset,
    .tp_dictoffset = offsetof(stl_greenlet, dict),
    .tp_init = (initproc)greenlet_tp_init,
    .tp_new = greenlet_tp_new,
    .tp_is_gc = (inquiry)greenlet_tp_is_gc,
};
