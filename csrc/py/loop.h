/*
 * loop.h -- stolon.loop's Python types over csrc/loop: the loop object,
 * the watcher base type and its kinds, and the queued-callback object.
 *
 * Ownership (the reason nothing here can free memory the C loop still uses):
 *   - A watcher object embeds its C watcher and holds a strong reference to
 *     its loop object, so the loop object (and its stl_loop) outlives every
 *     watcher object of it.
 *   - While its C watcher is active or pending, a watcher object is "held":
 *     it is on its loop's held list and the loop owns one reference to it.
 *     So a watcher the user dropped while active keeps running (as in
 *     gevent) until stop() or close() or loop.destroy(); it is never freed
 *     while the C loop can still reach it.
 *   - loop.destroy() frees the stl_loop (which leaves every watcher inactive
 *     and never touches them again) and releases the held list; watchers
 *     then refuse to start: ValueError('operation on destroyed loop').
 *
 * The GIL: released only around a poll that may block (the C loop's block
 * hook, stl_loop_set_block_hook: never for a poll with timeout 0, where the
 * release and re-take would cost more than the poll), and taken back as
 * soon as the poll returns.  While it is released, `saved` is set, and
 * other threads may only use the thread-safe entries (async_.send,
 * run_callback_threadsafe); anything else that would touch the C loop
 * raises RuntimeError.
 *
 * The C fast path: a watcher with `ccb` set calls ccb(w, revents, carg)
 * (with the GIL held) instead of its Python callback: no Python call per
 * event.  stl_pywatcher_start_c() starts a watcher that way.
 */
#ifndef STL_PY_LOOP_H
#define STL_PY_LOOP_H

#include <stddef.h>

#include "pyinclude.h"
#include "stl_loop.h"

typedef struct stl_pyloop stl_pyloop;
typedef struct stl_pywatcher stl_pywatcher;
typedef struct stl_pycallback stl_pycallback;

/* A C callback for the fast path; called with the GIL held. */
typedef void (*stl_pywatcher_ccb)(stl_pywatcher *w, int revents, void *arg);

/* Watcher kinds (index into the kind table of watcher_kinds.c). */
enum {
    STL_PWK_IO, STL_PWK_TIMER, STL_PWK_SIGNAL, STL_PWK_CHILD, STL_PWK_IDLE,
    STL_PWK_PREPARE, STL_PWK_CHECK, STL_PWK_FORK, STL_PWK_ASYNC, STL_PWK_COUNT
};

struct stl_pyloop {
    PyObject_HEAD
    stl_loop *loop;             /* NULL once destroyed */
    PyObject *dict;
    PyObject *weakreflist;
    PyObject *error_handler;    /* strong or NULL: gets handle_error calls */
    stl_pywatcher *held;        /* list of held watchers (one reference each) */
    long nheld;
    stl_pycallback *cb_head, *cb_tail; /* run_callback FIFO (strong refs) */
    stl_prepare prep;           /* drains the FIFO, releases the GIL */
    stl_async wake;             /* run_callback_threadsafe's wake-up */
    stl_timer timer0;           /* armed when a drain hit the time slice */
    PyThreadState *saved;       /* set while the GIL is released around the poll */
    int gil_phase;              /* the prepare phase allows the poll to release the GIL */
    /* set while the FIFO drains: timer.start() then counts from the real present
     * (gevent's rule: a greenlet resumed by a callback may have run long since the
     * iteration read the clock) */
    int running_callbacks;
    /* KeyboardInterrupt/SystemExit (or a failing handle_error) waiting for run() */
    PyObject *exc_type, *exc_value, *exc_tb;
    char is_default;
};

struct stl_pywatcher {
    PyObject_HEAD
    stl_pyloop *loop;           /* strong; NULL after tp_clear */
    PyObject *callback;         /* strong or NULL */
    PyObject *args;             /* strong tuple or NULL */
    stl_pywatcher_ccb ccb;      /* the C fast path, or NULL */
    void *carg;
    stl_pywatcher *hprev, *hnext; /* the loop's held list */
    stl_watcher *cw;            /* the embedded C watcher (below, per kind) */
    PyObject *weakreflist;
    unsigned char kind, held, closed;
    /* sockio.c's read hint on an io watcher: the fd's socket type (0 not known yet,
     * 1 stream, 2 other) and whether the last read emptied the kernel's buffer. */
    unsigned char sock_kind, drained;
};

struct stl_pycallback {
    PyObject_HEAD
    PyObject *callback;         /* NULL once run or stopped */
    PyObject *args;             /* NULL for a C entry */
    int (*cfn)(PyObject *);     /* a C entry: cfn(callback) instead of a call */
    stl_pycallback *next;       /* the FIFO link (the queue owns a reference) */
};

extern PyTypeObject stl_pyloop_type;
extern PyTypeObject stl_pywatcher_type;
extern PyTypeObject stl_pycallback_type;
extern PyTypeObject *stl_pywatcher_kinds[STL_PWK_COUNT];

/* Registers stolon._core's loop types and constants. */
int stl_loop_types_ready(PyObject *module);

/* --- loop_type.c --- */
/* Takes the GIL back if the poll released it (a no-op unless inside the poll). */
void stl_pyloop_acquire(stl_pyloop *pl);
/* Says the coming poll may release the GIL (the prepare phase ended cleanly); the
 * block hook then releases it if, and only if, the poll may block. */
void stl_pyloop_release(stl_pyloop *pl);
/* The block hook of every Python loop's C loop: the GIL around a blocking poll. */
void stl_pyloop_block_hook(stl_loop *loop, int entering);
/* 0, or -1 with ValueError (destroyed) / RuntimeError (blocked in another thread). */
int stl_pyloop_check(stl_pyloop *pl);
/* The pending exception goes to handle_error; system errors are kept for run(). */
void stl_pyloop_report(stl_pyloop *pl, PyObject *context);
/* Keeps the pending exception for run() to raise, and breaks the loop. */
void stl_pyloop_keep_error(stl_pyloop *pl);

/* --- loop_callbacks.c --- */
PyObject *stl_pyloop_run_callback(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs);
PyObject *stl_pyloop_run_callback_threadsafe(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs);
/* Sets up the internal watchers (after stl_loop_new). */
int stl_pyloop_callbacks_init(stl_pyloop *pl);
/* Drops every queued callback (destroy, tp_clear). */
void stl_pyloop_callbacks_clear(stl_pyloop *pl);

/* --- watcher_type.c --- */
/* Starts the C watcher and holds the object; 0 or -1 with an exception. */
int stl_pywatcher_start_raw(stl_pywatcher *w);
/* Stops the C watcher and lets the object go (may drop the last reference). */
void stl_pywatcher_stop_raw(stl_pywatcher *w);
/* Holds or releases the object to match its C watcher's state. */
void stl_pywatcher_sync(stl_pywatcher *w);
/* watcher.stop(): stops it and drops its callback (C or Python); 0, or -1 with
 * RuntimeError while the loop polls in another thread. */
int stl_pywatcher_stop(stl_pywatcher *w);
/* The C fast path: start with fn(w, revents, arg) instead of a Python callback. */
int stl_pywatcher_start_c(stl_pywatcher *w, stl_pywatcher_ccb fn, void *arg);
/* Releases every held watcher of the loop (destroy, tp_clear). */
void stl_pyloop_release_held(stl_pyloop *pl);
/* The C callback of every watcher object. */
void stl_pywatcher_dispatch(stl_loop *loop, stl_watcher *cw, int revents);

/* --- watcher_kinds.c --- */
int stl_pywatcher_kind_start(stl_pywatcher *w);
void stl_pywatcher_kind_stop(stl_pywatcher *w);
int stl_watcher_kinds_ready(PyObject *module);
PyObject *stl_pyloop_new_io(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *stl_pyloop_new_timer(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *stl_pyloop_new_signal(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *stl_pyloop_new_child(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *stl_pyloop_new_idle(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *stl_pyloop_new_prepare(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *stl_pyloop_new_check(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *stl_pyloop_new_fork(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *stl_pyloop_new_async(stl_pyloop *pl, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);

/* The sentinel that start(cb, EVENTS, ...) replaces with revents (gevent's GEVENT_CORE_EVENTS). */
extern PyObject *stl_pyloop_EVENTS;

/* Sets an OSError (MemoryError for -ENOMEM) from a negative errno; returns NULL. */
PyObject *stl_pyloop_errno(int rc);

#endif /* STL_PY_LOOP_H */
