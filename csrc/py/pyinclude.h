/*
 * pyinclude.h -- Python.h and, from 3.12 on, the one internal header whose
 * frame layout the thread-state code needs (3.13 refuses it without
 * Py_BUILD_CORE).  Every file of csrc/py includes this instead of Python.h.
 */
#ifndef STL_PYINCLUDE_H
#define STL_PYINCLUDE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#if PY_VERSION_HEX >= 0x030B0000
#  ifndef Py_BUILD_CORE
#    define Py_BUILD_CORE 1
#    define STL_UNDEF_BUILD_CORE 1
#  endif
#  include <internal/pycore_frame.h>
#  ifdef STL_UNDEF_BUILD_CORE
#    undef Py_BUILD_CORE
#    undef STL_UNDEF_BUILD_CORE
#  endif
#endif

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *Py_NewRef(PyObject *o) { Py_INCREF(o); return o; }
static inline PyObject *Py_XNewRef(PyObject *o) { Py_XINCREF(o); return o; }
#endif

#if PY_VERSION_HEX < 0x030D0000
#  define PyLong_AsInt _PyLong_AsInt    /* public from 3.13 on */
#  define STL_IS_FINALIZING() _Py_IsFinalizing()
#else
#  define STL_IS_FINALIZING() Py_IsFinalizing()
#endif

#endif /* STL_PYINCLUDE_H */
