/*
 * tstate.h -- the part of CPython's per-thread state that belongs to one
 * greenlet, and the operations that move it in and out of PyThreadState.
 *
 * tstate.c is the one file that knows which fields each CPython version
 * keeps per thread (one section per version).  Everything else treats
 * stl_pystate as opaque.
 */
#ifndef STL_TSTATE_H
#define STL_TSTATE_H

#include "pyinclude.h"
#include "frames.h"

typedef struct stl_pystate {
    PyObject *context;              /* owned; NULL: empty */
    _PyErr_StackItem exc_state;     /* owned references */
    _PyErr_StackItem *exc_info;     /* NULL: &tstate->exc_state */
    void *top_frame;                /* PyFrameObject* (<3.11), _PyInterpreterFrame* (3.11+) */
    int recursion_depth;
#if PY_VERSION_HEX >= 0x030C0000
    int c_recursion_depth;
#endif
#if PY_VERSION_HEX < 0x030D0000
    int trash_delete_nesting;
#endif
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *trash_delete_later;
#endif
#if PY_VERSION_HEX >= 0x030A0000 && PY_VERSION_HEX < 0x030D0000
    void *cframe;                   /* CFrame* on this greenlet's C stack */
#endif
#if PY_VERSION_HEX >= 0x030B0000
    _PyStackChunk *datastack_chunk;
    PyObject **datastack_top;
    PyObject **datastack_limit;
    _PyStackChunk *root_chunk;      /* ours, from the pool; NULL for a main greenlet */
#endif
#if PY_VERSION_HEX >= 0x030C0000
    stl_frame_links links;
#endif
} stl_pystate;

/* Storage a starting greenlet keeps on its own C stack for the interpreter
 * (3.10-3.12: the bottom CFrame, so no eval loop of the new greenlet ever
 * writes into its creator's stack). */
typedef struct stl_pystate_base {
#if PY_VERSION_HEX >= 0x030A0000 && PY_VERSION_HEX < 0x030D0000
#  if PY_VERSION_HEX >= 0x030B0000
    _PyCFrame cframe;
#  else
    CFrame cframe;
#  endif
#else
    char unused;
#endif
} stl_pystate_base;

/* Zeroes `s` (a greenlet that has not started, or a fresh main greenlet). */
void stl_pystate_init(stl_pystate *s);
/* Work for save() that may run Python code or fail; -1 with an error set. */
int stl_pystate_presave(stl_pystate *s, PyThreadState *ts);
/* Moves the running greenlet's state out of `ts` into `s` (after presave()). */
void stl_pystate_save(stl_pystate *s, PyThreadState *ts);
/* Called once a switch away from `s`'s greenlet is complete; may run code. */
void stl_pystate_after_switch(stl_pystate *s);
/* Moves `s` back into `ts` (the greenlet resumes). Cannot fail. */
void stl_pystate_restore(stl_pystate *s, PyThreadState *ts);
/* Allocates what a greenlet needs before it starts; -1 with MemoryError set. */
int stl_pystate_prepare(stl_pystate *s);
/* Sets up `ts` for a greenlet that starts now, on the stack holding `base`
 * (after prepare()).  Cannot fail. */
void stl_pystate_begin(stl_pystate *s, PyThreadState *ts, stl_pystate_base *base);
/* The running greenlet has finished its run: drops its context and exception
 * state (this may run __del__ code; frames can still be pushed). */
void stl_pystate_end(stl_pystate *s, PyThreadState *ts);
/* The finished greenlet leaves for good: remembers its data stack, which
 * the resumed side then frees with stl_pystate_release. */
void stl_pystate_leave(stl_pystate *s, PyThreadState *ts);
void stl_pystate_release(stl_pystate *s);
/* Suspends CPython's tracing around a greenlet tracer call. */
void stl_pystate_enter_tracing(PyThreadState *ts);
void stl_pystate_leave_tracing(PyThreadState *ts);
/* A suspended greenlet will never run again (its thread is gone): drop what it holds. */
void stl_pystate_abandon(stl_pystate *s);
/* The innermost complete frame of a suspended greenlet, as a new reference (or NULL, no error). */
PyObject *stl_pystate_frame(stl_pystate *s, PyThreadState *ts);
int stl_pystate_traverse(stl_pystate *s, visitproc visit, void *arg);
/* Clears the owned references of a greenlet that is not running. */
void stl_pystate_clear(stl_pystate *s);

#endif /* STL_TSTATE_H */
