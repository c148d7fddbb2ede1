/*
 * stolon_api.h -- the C API other C code uses to drive greenlets without
 * Python calls.  Get it with:
 *
 *     stl_capi *api = PyCapsule_Import("stolon._core._C_API", 0);
 *
 * and check api->version.  Every function follows the CPython convention:
 * NULL or -1 with an exception set on failure; returned objects are new
 * references.
 */
#ifndef STOLON_API_H
#define STOLON_API_H

#include <Python.h>

#define STL_CAPI_VERSION 1

typedef struct stl_capi {
    int version;
    PyTypeObject *greenlet_type;
    PyObject *GreenletExit;
    PyObject *error;
    /* greenlet(run, parent); run and parent may be NULL */
    PyObject *(*greenlet_new)(PyObject *run, PyObject *parent);
    /* getcurrent() */
    PyObject *(*getcurrent)(void);
    /* g.switch(*args, **kwargs); args NULL means () and kwargs may be NULL */
    PyObject *(*greenlet_switch)(PyObject *g, PyObject *args, PyObject *kwargs);
    /* g.throw(typ, val, tb); val and tb may be NULL */
    PyObject *(*greenlet_throw)(PyObject *g, PyObject *typ, PyObject *val, PyObject *tb);
    /* g.parent = parent */
    int (*greenlet_set_parent)(PyObject *g, PyObject *parent);
    /* g.parent, or NULL without an exception for a main greenlet */
    PyObject *(*greenlet_get_parent)(PyObject *g);
    /* 1 if started and not finished, 0 otherwise */
    int (*greenlet_active)(PyObject *g);
    /* 1 if started (even if finished since) */
    int (*greenlet_started)(PyObject *g);
    /* 1 for a thread's main greenlet */
    int (*greenlet_main)(PyObject *g);
} stl_capi;

#endif /* STOLON_API_H */
