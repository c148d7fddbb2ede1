/*
 * greenlet.h -- the Python greenlet object and the per-thread state that
 * the csrc/py files share.  The switch core (stl_switch.h) does the stack
 * work; tstate.h moves the interpreter's per-greenlet fields.
 */
#ifndef STL_GREENLET_H
#define STL_GREENLET_H

#include "pyinclude.h"
#include "stl_switch.h"
#include "tstate.h"

typedef struct stl_greenlet stl_greenlet;

/* One per OS thread that used greenlets; owned by its main greenlet. */
typedef struct stl_gthread {
    stl_thread core;
    stl_greenlet *main;         /* borrowed (it owns us) */
    stl_greenlet *current;      /* strong */
    PyObject *tracer;           /* strong or NULL */
    PyObject *hub;              /* strong or NULL: the thread's stolon hub (hub.c) */
    PyObject *deleteme;         /* list of greenlets dropped in other threads, or NULL */
    unsigned long ident;
    int alive;                  /* 0 once the thread has exited */
    /* Hand-over from the switching greenlet to the resumed one. */
    stl_greenlet *origin;       /* strong */
    PyObject *pass_args;        /* strong tuple; NULL: an exception is pending */
    PyObject *pass_kwargs;      /* strong dict or NULL */
    PyObject *start_run;        /* strong: what a starting greenlet calls */
    /* References a finishing greenlet's C frames held when it left for good;
     * the greenlet that runs next releases them (greenlet_switch.c). */
    PyObject **parked;
    int nparked, parked_cap;
} stl_gthread;

struct stl_greenlet {
    PyObject_HEAD
    PyObject *weakreflist;
    PyObject *dict;
    stl_greenlet *parent;       /* strong; NULL for a main greenlet */
    PyObject *run;              /* strong; NULL once started or when unset */
    stl_greenlet *main;         /* strong: its thread's main greenlet, once started (NULL for mains) */
    stl_gthread *thread;        /* owned, main greenlets only */
    stl_stack stack;
    stl_pystate py;
};

extern PyTypeObject stl_greenlet_type;
extern PyObject *stl_GreenletExit;
extern PyObject *stl_GreenletError;

#define stl_greenlet_check(op) PyObject_TypeCheck((op), &stl_greenlet_type)

static inline int stl_greenlet_is_main(stl_greenlet *g) { return g->thread != NULL; }
static inline int stl_greenlet_started(stl_greenlet *g) { return g->stack.stop != NULL; }
static inline int stl_greenlet_active(stl_greenlet *g) { return g->stack.start != NULL; }
/* Dead: finished, or its thread has exited. */
static inline int stl_greenlet_dead(stl_greenlet *g)
{
    stl_greenlet *main = g->thread != NULL ? g : g->main;
    if (main != NULL && !main->thread->alive)
        return 1;
    return stl_stack_dead(&g->stack);
}

/* --- gthread.c: per-thread state --- */
int stl_gthread_ready(void);
/* The calling thread's state, creating its main greenlet on first use; NULL with an error set. */
stl_gthread *stl_gthread_get(void);
/* The thread a greenlet belongs to (through its lineage); NULL if none is alive. */
stl_gthread *stl_gthread_of(stl_greenlet *g);
/* Kills the greenlets other threads dropped for this one. */
void stl_gthread_drain(stl_gthread *gt);
/* Queues a greenlet dropped in a foreign thread; steals a reference. */
int stl_gthread_defer_kill(stl_gthread *gt, stl_greenlet *g);

/* --- greenlet_switch.c: switching --- */
/* switch(*args, **kwargs); args NULL means "the pending exception"; steals nothing. */
PyObject *stl_greenlet_switch(stl_greenlet *target, PyObject *args, PyObject *kwargs);
/* throw with the exception already normalized into (typ, val, tb) rules of raise. */
PyObject *stl_greenlet_throw(stl_greenlet *target, PyObject *typ, PyObject *val, PyObject *tb);
/* Sets the tracer of the calling thread; returns the old one (new ref, None if none). */
PyObject *stl_greenlet_settrace(PyObject *tracer);
PyObject *stl_greenlet_gettrace(void);
/* A new greenlet; run and parent may be NULL. */
stl_greenlet *stl_greenlet_new(PyObject *run, stl_greenlet *parent);
/* Validates and applies a parent change (greenlet's rules and messages). */
int stl_greenlet_set_parent(stl_greenlet *g, PyObject *parent);

/* --- greenlet_type.c --- */
int stl_greenlet_type_ready(PyObject *module);

#endif /* STL_GREENLET_H */
