/*
 * stolon_api.h -- the C API other C code uses to drive greenlets without
 * Python calls.  Get it with:
 *
 *     stl_capi *api = PyCapsule_Import("stolon._C_API", 0);
 *
 * and check api->version.  Every function follows the CPython convention:
 * NULL or -1 with an exception set on failure; returned objects are new
 * references.
 */
#ifndef STOLON_API_H
#define STOLON_API_H

#include <Python.h>

/* 2: the loop's C fast path (watcher_start_c, watcher_stop) after `version`. */
#define STL_CAPI_VERSION 2

/* A C callback for watcher_start_c: called with the GIL held, with the
 * watcher object (borrowed), the events, and the arg given at start. */
typedef void (*stl_capi_watcher_cb)(PyObject *watcher, int revents, void *arg);

/* The first twelve entries have greenlet.h's order and meaning
 * (_PyGreenlet_API[0..11]), so C code written against greenlet's table
 * works with stolon's after changing the capsule it imports. */
typedef struct stl_capi {
    PyTypeObject *greenlet_type;                                    /* 0 */
    PyObject *error;                                                /* 1 */
    PyObject *GreenletExit;                                         /* 2 */
    /* greenlet(run, parent); run and parent may be NULL */
    PyObject *(*greenlet_new)(PyObject *run, PyObject *parent);     /* 3 */
    PyObject *(*getcurrent)(void);                                  /* 4 */
    /* g.throw(typ, val, tb); val and tb may be NULL */
    PyObject *(*greenlet_throw)(PyObject *g, PyObject *typ, PyObject *val, PyObject *tb); /* 5 */
    /* g.switch(*args, **kwargs); args NULL means (), a non-dict kwargs is ignored */
    PyObject *(*greenlet_switch)(PyObject *g, PyObject *args, PyObject *kwargs); /* 6 */
    int (*greenlet_set_parent)(PyObject *g, PyObject *parent);      /* 7 */
    int (*greenlet_main)(PyObject *g);                              /* 8 */
    int (*greenlet_started)(PyObject *g);                           /* 9 */
    int (*greenlet_active)(PyObject *g);                            /* 10 */
    /* g.parent as a new reference, or NULL without an exception */
    PyObject *(*greenlet_get_parent)(PyObject *g);                  /* 11 */
    /* stolon's own entries follow */
    int version;
    /* Version 2 and later.  watcher_start_c(w, fn, arg): start a stolon.loop
     * watcher so that each event calls fn(w, revents, arg) in C instead of a
     * Python callback (its Python callback and args are dropped); 0, or -1
     * with an exception (closed watcher, destroyed loop, the C start failed:
     * MemoryError if the timer heap could not grow).  w must be a
     * stolon.loop watcher (TypeError otherwise). */
    int (*watcher_start_c)(PyObject *w, stl_capi_watcher_cb fn, void *arg);
    /* watcher_stop(w): stop it (a no-op if inactive; forgets a pending event);
     * 0, or -1 with TypeError if w is not a stolon.loop watcher.  The
     * watcher may be freed by this call if the loop held the last reference. */
    int (*watcher_stop)(PyObject *w);
} stl_capi;

#endif /* STOLON_API_H */
