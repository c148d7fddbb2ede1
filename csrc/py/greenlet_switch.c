/*
 * greenlet_switch.c -- greenlet's switch, throw, start and finish rules on
 * top of the switch core.
 *
 * A switch hands over through the thread state (stl_gthread): the leaving
 * greenlet stores who it is (origin) and what it sends (pass_args and
 * pass_kwargs; pass_args NULL means "the exception set in the interpreter",
 * which is per thread and so crosses the switch by itself).  The resumed
 * greenlet takes them in stl__take_over(), right after the core returns.
 *
 * "You called switch wrongly" (wrong thread, no run, tracer failure before
 * the switch) is an exception in the caller; "the target raised" arrives
 * as an exception from the target side: both are NULL returns here, but
 * they never mix, because the first kind is raised before any stack moves.
 */
#include "greenlet.h"

static void stl__entry(void *arg);

/* Borrowed: the empty tuple (a singleton in CPython); NULL with an error. */
static PyObject *stl__empty_tuple(void)
{
    static PyObject *empty;
    if (empty == NULL)
        empty = PyTuple_New(0);
    return empty;
}

/* What the resumed switch() returns for switch(*args, **kwargs); steals both. */
static PyObject *stl__pack(PyObject *args, PyObject *kwargs)
{
    if (kwargs == NULL || PyDict_GET_SIZE(kwargs) == 0) {
        Py_XDECREF(kwargs);
        if (PyTuple_GET_SIZE(args) == 1) {
            PyObject *only = PyTuple_GET_ITEM(args, 0);
            Py_INCREF(only);
            Py_DECREF(args);
            return only;
        }
        return args;
    }
    if (PyTuple_GET_SIZE(args) == 0) {
        Py_DECREF(args);
        return kwargs;
    }
    PyObject *both = PyTuple_Pack(2, args, kwargs);
    Py_DECREF(args);
    Py_DECREF(kwargs);
    return both;
}

/* Calls the thread's tracer as tracer(event, (origin, target)) with the
 * pending exception (if any) kept aside.  A tracer that raises is removed
 * and its exception replaces whatever the switch carried: -1. */
static int stl__trace(stl_gthread *gt, int throwing, stl_greenlet *origin, stl_greenlet *target)
{
    PyObject *tracer = gt->tracer;
    if (tracer == NULL)
        return 0;
    Py_INCREF(tracer);
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyThreadState *ts = PyThreadState_Get();
    stl_pystate_enter_tracing(ts);
    PyObject *r = PyObject_CallFunction(tracer, "s(OO)", throwing ? "throw" : "switch",
                                        (PyObject *)origin, (PyObject *)target);
    stl_pystate_leave_tracing(ts);
    Py_DECREF(tracer);
    if (r == NULL) {
        Py_CLEAR(gt->tracer);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        return -1;
    }
    Py_DECREF(r);
    PyErr_Restore(et, ev, etb);
    return 0;
}

/* A finishing greenlet never returns from its last switch, so references
 * held by its C frames would leak: it parks them (steals), and the greenlet
 * that runs next releases them. */
static void stl__park(stl_gthread *gt, PyObject *o)
{
    if (o == NULL)
        return;
    if (gt->nparked == gt->parked_cap) {
        int cap = gt->parked_cap ? gt->parked_cap * 2 : 8;
        PyObject **v = PyMem_RawRealloc(gt->parked, (size_t)cap * sizeof *v);
        if (v == NULL)
            Py_FatalError("greenlet: out of memory while a greenlet was finishing");
        gt->parked = v;
        gt->parked_cap = cap;
    }
    gt->parked[gt->nparked++] = o;
}

static void stl__release_parked(stl_gthread *gt)
{
    while (gt->nparked > 0) {
        PyObject *o = gt->parked[--gt->nparked];
        Py_DECREF(o);
    }
}

/* Drops the hand-over reference to the greenlet we came from; a finished
 * one gives its data stack back now (it could not free the stack it ran on). */
static void stl__drop_origin(stl_greenlet *origin)
{
    if (stl_stack_dead(&origin->stack))
        stl_pystate_release(&origin->py);
    else
        stl_pystate_after_switch(&origin->py);
    Py_DECREF(origin);
}

/* `self` runs (again): it becomes current and takes what the switching side
 * handed over.  The tracer runs; the origin and the references a finished
 * greenlet parked are let go now, not held while `self` runs.  Returns 0
 * with the arguments owned by the caller (args NULL: an exception is
 * pending), or -1 if the tracer raised (its exception is pending). */
static int stl__take_over(stl_gthread *gt, stl_greenlet *self, PyObject **args, PyObject **kwargs)
{
    Py_INCREF(self);
    gt->current = self;
    stl_greenlet *origin = gt->origin;
    *args = gt->pass_args;
    *kwargs = gt->pass_kwargs;
    gt->origin = NULL;
    gt->pass_args = gt->pass_kwargs = NULL;

    int rc = stl__trace(gt, *args == NULL, origin, self);
    if (rc < 0) {
        Py_CLEAR(*args);
        Py_CLEAR(*kwargs);
    }
    stl__drop_origin(origin);
    if (gt->nparked)
        stl__release_parked(gt);
    return rc;
}

/* `self` runs again: what its switch() returns. */
static PyObject *stl__arrive(stl_gthread *gt, stl_greenlet *self)
{
    PyObject *args, *kwargs;
    if (stl__take_over(gt, self, &args, &kwargs) < 0 || args == NULL)
        return NULL;
    return stl__pack(args, kwargs);
}

/* Runs in `self` right after the core switched back to it. */
static PyObject *stl__resumed(stl_gthread *gt, stl_greenlet *self)
{
    stl_pystate_restore(&self->py, PyThreadState_Get());
    return stl__arrive(gt, self);
}

/* Gives up the running greenlet's place: the hand-over fields and, unless it
 * is finishing, its interpreter state.  -1 with an error and nothing changed. */
static int stl__hand_over(stl_gthread *gt, PyObject *args, PyObject *kwargs, int dying)
{
    stl_greenlet *self = gt->current;
    PyThreadState *ts = PyThreadState_Get();
    if (dying) {
        stl_pystate_leave(&self->py, ts);
    } else {
        if (stl_pystate_presave(&self->py, ts) < 0)
            return -1;
        /* presave may have run Python code; nothing runs from here on */
        stl_pystate_save(&self->py, ts);
    }
    gt->origin = self;                  /* the reference moves */
    gt->current = NULL;
    Py_XINCREF(args);
    Py_XINCREF(kwargs);
    gt->pass_args = args;
    gt->pass_kwargs = kwargs;
    return 0;
}

/* Undoes stl__hand_over after the core refused to switch. */
static PyObject *stl__switch_failed(stl_gthread *gt, int rc, int dying)
{
    stl_greenlet *self = gt->origin;
    gt->current = self;
    gt->origin = NULL;
    Py_CLEAR(gt->pass_args);
    Py_CLEAR(gt->pass_kwargs);
    if (!dying)
        stl_pystate_restore(&self->py, PyThreadState_Get());
    if (rc == STL_ENOMEM)
        return PyErr_NoMemory();
    PyErr_Format(stl_GreenletError, "greenlet: the switch core refused the switch (%d)", rc);
    return NULL;
}

static PyObject *stl__resume(stl_gthread *gt, stl_greenlet *target, PyObject *args,
                             PyObject *kwargs, int dying)
{
    if (stl__hand_over(gt, args, kwargs, dying) < 0)
        return NULL;
    stl_greenlet *self = gt->origin;
    int rc = dying ? stl_exit(&gt->core, &target->stack) : stl_switch(&gt->core, &target->stack);
    if (rc != STL_OK)
        return stl__switch_failed(gt, rc, dying);
    return stl__resumed(gt, self);
}

static PyObject *stl__cross_thread_error(stl_gthread *gt, stl_greenlet *target)
{
    stl_gthread *owner = stl_gthread_of(target);
    if (owner == NULL) {
        PyErr_SetString(stl_GreenletError,
                        "cannot switch to a different thread (which happens to have exited)");
    } else {
        PyErr_Format(stl_GreenletError,
                     "Cannot switch to a different thread\n\tCurrent:  %R\n\tExpected: %R",
                     (PyObject *)gt->main, (PyObject *)owner->main);
    }
    return NULL;
}


/* First switch into `target`: look up run (ordinary attribute access, which
 * may run code and even switch), then start it on a fresh window.  *retry
 * is set when the lookup itself started the target. */
static PyObject *stl__start(stl_gthread *gt, stl_greenlet *target, PyObject *args,
                            PyObject *kwargs, int dying, int *retry)
{
    static PyObject *run_name;
    if (run_name == NULL && (run_name = PyUnicode_InternFromString("run")) == NULL)
        return NULL;
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    if (args == NULL)
        PyErr_Fetch(&et, &ev, &etb);
    PyObject *run = PyObject_GetAttr((PyObject *)target, run_name);
    if (args == NULL) {
        if (run != NULL) {
            PyErr_Restore(et, ev, etb);
        } else {
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(etb);
        }
    }
    if (run == NULL)
        return NULL;
    /* run is no longer visible once started; dropping the old value may run
     * code (even start the target), so do it before anything else. */
    if (!stl_greenlet_started(target))
        Py_CLEAR(target->run);
    if (stl_greenlet_started(target)) {
        Py_DECREF(run);
        *retry = 1;
        return NULL;
    }
    if (stl_gthread_of(target) != gt) {     /* reparented while looking up run */
        Py_DECREF(run);
        return stl__cross_thread_error(gt, target);
    }
    if (stl_pystate_prepare(&target->py) < 0 || stl__hand_over(gt, args, kwargs, dying) < 0) {
        Py_DECREF(run);
        return NULL;
    }
    stl_greenlet *self = gt->origin;
    gt->start_run = run;
    Py_INCREF(gt->main);
    target->main = gt->main;
    int rc = dying ? stl_exit_start(&gt->core, &target->stack, stl__entry, target)
                   : stl_start(&gt->core, &target->stack, stl__entry, target);
    if (rc != STL_OK) {
        Py_CLEAR(target->main);
        Py_CLEAR(gt->start_run);
        return stl__switch_failed(gt, rc, dying);
    }
    return stl__resumed(gt, self);
}

/* The one switch: to the first live ancestor of `target`, starting it if it
 * has not started.  args NULL: deliver the pending exception.
 * exit_value: args is (a GreenletExit instance,) turned into a value; greenlet
 * delivers it as the value of a suspended target's switch() but starts an
 * unstarted target with no arguments at all, and so does stolon. */
static PyObject *stl__switch_impl(stl_greenlet *target, PyObject *args, PyObject *kwargs,
                                  int dying, int exit_value)
{
    stl_gthread *gt = stl_gthread_get();
    if (gt == NULL)
        return NULL;
    Py_INCREF(target);
    int owned = 1;                      /* 0: parked (dying), released by the next greenlet */
    PyObject *result;
    for (;;) {
        while (stl_greenlet_dead(target) && target->parent != NULL) {
            stl_greenlet *up = target->parent;
            Py_INCREF(up);
            Py_SETREF(target, up);
        }
        if (stl_gthread_of(target) != gt) {
            result = stl__cross_thread_error(gt, target);
            break;
        }
        if (target == gt->current) {
            Py_INCREF(target);
            gt->origin = target;
            Py_XINCREF(args);
            Py_XINCREF(kwargs);
            gt->pass_args = args;
            gt->pass_kwargs = kwargs;
            Py_DECREF(gt->current);     /* stl__arrive takes it again */
            gt->current = NULL;
            result = stl__arrive(gt, target);
            break;
        }
        if (dying) {
            stl__park(gt, (PyObject *)target);
            owned = 0;
        }
        if (stl_greenlet_started(target)) {
            result = stl__resume(gt, target, args, kwargs, dying);
            break;
        }
        int retry = 0;
        if (exit_value && args != NULL && (args = stl__empty_tuple()) == NULL) {
            result = NULL;
            break;
        }
        result = stl__start(gt, target, args, kwargs, dying, &retry);
        if (!retry)
            break;
        if (!owned) {
            Py_INCREF(target);
            owned = 1;
        }
    }
    if (owned)
        Py_DECREF(target);
    return result;
}

/* A finished greenlet sends its result (or its exception) to its parent,
 * or, if that fails, to the grandparent, and so on.  Never returns. */
static void stl__finish(stl_gthread *gt, stl_greenlet *self, PyObject *result, int exit_value)
{
    stl_greenlet *p = self->parent;
    while (p != NULL) {
        Py_INCREF(p);
        stl__park(gt, (PyObject *)p);   /* this frame never returns */
        PyObject *args = NULL;
        if (result != NULL) {
            args = PyTuple_Pack(1, result);
            Py_CLEAR(result);
            stl__park(gt, args);
        }
        /* Only a failed switch comes back; its exception goes further up. */
        PyObject *r = stl__switch_impl(p, args, NULL, 1, exit_value);
        Py_XDECREF(r);
        exit_value = 0;
        p = p->parent;
    }
    Py_FatalError("greenlet: ran out of parent greenlets while propagating exception; cannot continue");
}

/* The first C frame of every greenlet, on its fresh window.  Never returns. */
static void stl__entry(void *arg)
{
    stl_greenlet *self = arg;
    stl_pystate_base base;
    PyThreadState *ts = PyThreadState_Get();
    stl_gthread *gt = stl_gthread_get();    /* exists: we are switching inside it */

    stl_pystate_begin(&self->py, ts, &base);
    PyObject *run = gt->start_run, *args, *kwargs;
    gt->start_run = NULL;

    PyObject *result = NULL;
    int exit_value = 0;
    if (stl__take_over(gt, self, &args, &kwargs) == 0 && args != NULL)
        result = PyObject_Call(run, args, kwargs);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    Py_DECREF(run);

    if (result == NULL && PyErr_ExceptionMatches(stl_GreenletExit)) {
        /* GreenletExit is how a greenlet is told to end: its instance is the result. */
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        result = ev ? ev : Py_NewRef(Py_None);
        exit_value = 1;
        Py_XDECREF(et);
        Py_XDECREF(etb);
    }
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    stl_pystate_end(&self->py, ts);
    PyErr_Restore(et, ev, etb);
    stl__finish(gt, self, result, exit_value);
}

/* ------------------------------------------------------------------ */
/* Public entry points                                                 */
/* ------------------------------------------------------------------ */

PyObject *stl_greenlet_switch(stl_greenlet *target, PyObject *args, PyObject *kwargs)
{
    return stl__switch_impl(target, args, kwargs, 0, 0);
}

PyObject *stl_greenlet_throw(stl_greenlet *target, PyObject *typ, PyObject *val, PyObject *tb)
{
    if (tb == Py_None)
        tb = NULL;
    if (tb != NULL && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError, "throw() third argument must be a traceback object");
        return NULL;
    }
    Py_INCREF(typ);
    Py_XINCREF(val);
    Py_XINCREF(tb);
    if (PyExceptionClass_Check(typ)) {
        PyErr_NormalizeException(&typ, &val, &tb);
    } else if (PyExceptionInstance_Check(typ)) {
        if (val != NULL && val != Py_None) {
            PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
            goto fail;
        }
        Py_XDECREF(val);
        val = typ;
        typ = (PyObject *)Py_TYPE(val);
        Py_INCREF(typ);
    } else {
        PyErr_Format(PyExc_TypeError, "exceptions must be classes, or instances, not %s",
                     Py_TYPE(typ)->tp_name);
        goto fail;
    }
    PyErr_Restore(typ, val, tb);
    if (stl_greenlet_started(target) && !stl_greenlet_active(target)
        && PyErr_ExceptionMatches(stl_GreenletExit)) {
        /* Killing what is already dead is a plain return of the exception. */
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        Py_XDECREF(et);
        Py_XDECREF(etb);
        PyObject *args = PyTuple_Pack(1, ev ? ev : Py_None);
        Py_XDECREF(ev);
        if (args == NULL)
            return NULL;
        PyObject *r = stl__switch_impl(target, args, NULL, 0, 1);
        Py_DECREF(args);
        return r;
    }
    return stl__switch_impl(target, NULL, NULL, 0, 0);
fail:
    Py_DECREF(typ);
    Py_XDECREF(val);
    Py_XDECREF(tb);
    return NULL;
}

PyObject *stl_greenlet_settrace(PyObject *tracer)
{
    stl_gthread *gt = stl_gthread_get();
    if (gt == NULL)
        return NULL;
    PyObject *old = gt->tracer ? gt->tracer : Py_NewRef(Py_None);
    gt->tracer = NULL;
    if (tracer != Py_None) {
        Py_INCREF(tracer);
        gt->tracer = tracer;
    }
    return old;
}

PyObject *stl_greenlet_gettrace(void)
{
    stl_gthread *gt = stl_gthread_get();
    if (gt == NULL)
        return NULL;
    return Py_NewRef(gt->tracer ? gt->tracer : Py_None);
}
