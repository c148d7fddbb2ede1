/*
 * linkable.c -- the notifier of stolon._abstract_linkable in C, for its
 * common case.
 *
 * Events and semaphores wake their waiters from one hub callback, the
 * notifier.  Nearly always exactly one greenlet waits, so the notifier pops
 * that one link and switches into it (a waiting greenlet links itself).
 * Doing that in C instead of a Python method halves the cost of a hand-off.
 * Every other case (several links, late arrivals, a semaphore's lock, a
 * link that raises) is passed to the Python methods, which own the rules;
 * this file only decides which path to take.
 */
#include "hub.h"

static PyObject *s_notifier, *s_links, *s_arrived, *s_lock, *s_notify_links,
    *s_check_and_notify, *s_link_failed, *s_serve_late_arrivals, *s_handle_unswitched;

static int stl__set_none(PyObject *obj, PyObject *name)
{
    return PyObject_SetAttr(obj, name, Py_None);
}

static int stl__call_method(PyObject *obj, PyObject *name, PyObject *arg)
{
    PyObject *r = arg ? PyObject_CallMethodOneArg(obj, name, arg) : PyObject_CallMethodNoArgs(obj, name);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* True when the one-link hand-off applies: one link, nobody arrived late,
 * no lock to drop around the call.  -1 on error. */
static int stl__single_link(PyObject *obj, PyObject *links)
{
    if (!PyList_CheckExact(links) || PyList_GET_SIZE(links) != 1)
        return 0;
    PyObject *arrived = PyObject_GetAttr(obj, s_arrived);
    if (arrived == NULL)
        return -1;
    int late = PyObject_IsTrue(arrived);
    Py_DECREF(arrived);
    if (late != 0)
        return late < 0 ? -1 : 0;
    PyObject *lock = PyObject_GetAttr(obj, s_lock);
    if (lock == NULL)
        return -1;
    Py_DECREF(lock);
    return lock == Py_None;
}

/* The woken greenlet may have waited again, arriving late behind this round:
 * the Python rules serve such arrivals in this round.  Sets *unswitched to the
 * links that could not switch (a new reference, or NULL for none): 0 or -1. */
static int stl__serve_arrivals(PyObject *obj, PyObject **unswitched)
{
    *unswitched = NULL;
    PyObject *arrived = PyObject_GetAttr(obj, s_arrived);
    if (arrived == NULL)
        return -1;
    int late = PyObject_IsTrue(arrived);
    Py_DECREF(arrived);
    if (late <= 0)
        return late;
    PyObject *r = PyObject_CallMethodNoArgs(obj, s_serve_late_arrivals);
    if (r == NULL)
        return -1;
    int some = PyObject_IsTrue(r);
    if (some > 0)
        *unswitched = r;
    else
        Py_DECREF(r);
    return some < 0 ? -1 : 0;
}

/* The Python notifier's `finally`: no late arrivals and no notifier queued, so
 * that the next notification can happen whatever failed before.  Keeps an error
 * already raised (the first one is the one to report): 0, or -1 with an error. */
static int stl__end_round(PyObject *obj)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    int rc = stl__set_none(obj, s_arrived) < 0 || stl__set_none(obj, s_notifier) < 0 ? -1 : 0;
    if (t == NULL)
        return rc;
    if (rc < 0)
        PyErr_Clear();
    PyErr_Restore(t, v, tb);
    return -1;
}

/* The hand-off: pop the link, call link(obj), then the bookkeeping the
 * Python notifier does after it. */
static int stl__hand_off(PyObject *obj, PyObject *links)
{
    PyObject *link = PyList_GET_ITEM(links, 0);
    Py_INCREF(link);
    if (PyList_SetSlice(links, 0, 1, NULL) < 0) {
        Py_DECREF(link);
        return -1;
    }
    /* a parked greenlet links itself: switch into it with obj */
    PyObject *r = stl_greenlet_check(link) && Py_TYPE(link)->tp_call == NULL
        ? stl_greenlet_resume(link, obj) : PyObject_CallOneArg(link, obj);
    PyObject *exc = NULL;
    if (r == NULL) {
        PyObject *t, *tb;
        PyErr_Fetch(&t, &exc, &tb);
        PyErr_NormalizeException(&t, &exc, &tb);
        if (exc != NULL && tb != NULL)
            PyException_SetTraceback(exc, tb);
        Py_XDECREF(t);
        Py_XDECREF(tb);
    }
    Py_XDECREF(r);
    PyObject *unswitched;
    int rc = stl__serve_arrivals(obj, &unswitched);
    if (stl__end_round(obj) < 0)
        rc = -1;
    else if (rc == 0 && PyList_GET_SIZE(links) > 0)
        rc = stl__call_method(obj, s_check_and_notify, NULL);
    if (rc == 0 && exc != NULL) {
        PyObject *args[3] = {obj, link, exc};
        PyObject *f = PyObject_VectorcallMethod(s_link_failed, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_XDECREF(f);
        rc = f ? 0 : -1;
    }
    if (rc == 0 && unswitched != NULL)
        rc = stl__call_method(obj, s_handle_unswitched, unswitched);
    Py_XDECREF(unswitched);
    Py_XDECREF(exc);
    Py_DECREF(link);
    return rc;
}

/* The notifier queued by schedule_notify(): a C entry of the loop's FIFO. */
static int stl__linkable_notify(PyObject *obj)
{
    PyObject *notifier = PyObject_GetAttr(obj, s_notifier);
    if (notifier == NULL)
        return -1;
    Py_DECREF(notifier);
    if (notifier == Py_None)        /* cancelled meanwhile: the Python rules decide */
        return stl__call_method(obj, s_notify_links, NULL);
    PyObject *links = PyObject_GetAttr(obj, s_links);
    if (links == NULL)
        return -1;
    int single = stl__single_link(obj, links);
    int rc;
    if (single > 0)
        rc = stl__hand_off(obj, links);
    else if (single == 0)
        rc = stl__call_method(obj, s_notify_links, NULL);
    else
        rc = -1;
    Py_DECREF(links);
    return rc;
}

static PyObject *mod_schedule_notify(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "schedule_notify(loop, linkable) takes 2 arguments");
        return NULL;
    }
    if (!PyObject_TypeCheck(args[0], &stl_pyloop_type)) {
        PyErr_Format(PyExc_TypeError, "schedule_notify() needs a stolon loop, not %.200s",
                     Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    return (PyObject *)stl_pyloop_run_callback_c((stl_pyloop *)args[0], stl__linkable_notify, args[1]);
}

static PyMethodDef linkable_functions[] = {
    {"schedule_notify", (PyCFunction)(void (*)(void))mod_schedule_notify, METH_FASTCALL,
     "schedule_notify(loop, linkable): queue linkable's notifier on loop's callback FIFO; "
     "returns the callback object (stop() cancels it)."},
    {NULL}
};

int stl_linkable_ready(PyObject *module)
{
    s_notifier = PyUnicode_InternFromString("_notifier");
    s_links = PyUnicode_InternFromString("_links");
    s_arrived = PyUnicode_InternFromString("_arrived");
    s_lock = PyUnicode_InternFromString("_lock");
    s_notify_links = PyUnicode_InternFromString("_notify_links");
    s_check_and_notify = PyUnicode_InternFromString("_check_and_notify");
    s_link_failed = PyUnicode_InternFromString("_link_failed");
    s_serve_late_arrivals = PyUnicode_InternFromString("_serve_late_arrivals");
    s_handle_unswitched = PyUnicode_InternFromString("_handle_unswitched_notifications");
    if (!s_notifier || !s_links || !s_arrived || !s_lock || !s_notify_links || !s_check_and_notify
        || !s_link_failed || !s_serve_late_arrivals || !s_handle_unswitched)
        return -1;
    return PyModule_AddFunctions(module, linkable_functions);
}
