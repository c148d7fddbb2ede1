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

#define STL_CAPI_VERSION 1

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
} stl_capi;

#endif /* STOLON_API_H */
