/*
 * stl_switch.h -- the whole API of stolon's stack-switching core.
 *
 * Every coroutine ("stack") of a thread runs on the thread's one C stack.
 * A stack owns a window [start, stop) of it (stacks grow down: stop is the
 * older, higher end).  When a switch needs a region that a suspended stack
 * still occupies, that stack's bytes are copied to a heap buffer ("spilled");
 * they are copied back when it resumes.  docs/switch.md draws the picture.
 *
 * This file knows nothing of Python.  All functions are for one thread: a
 * stl_thread and its stacks are never touched by two threads at once.
 */
#ifndef STL_SWITCH_H
#define STL_SWITCH_H

#include <stddef.h>

typedef struct stl_stack stl_stack;

struct stl_stack {
    char *start;       /* low end of the window; NULL: unstarted or dead */
    char *stop;        /* high end; NULL: unstarted */
    char *copy;        /* heap buffer for the spilled low part (kept for reuse) */
    size_t saved;      /* bytes of the window currently in `copy` */
    size_t cap;        /* capacity of `copy` */
    stl_stack *prev;   /* next live window above this one (the chain) */
};

typedef void (*stl_entry_fn)(void *arg);

typedef struct stl_thread {
    stl_stack *current;   /* the stack running now */
    stl_stack *target;    /* during a switch: where we are going */
    stl_entry_fn entry;   /* during a start: what the new stack runs */
    void *entry_arg;
    char *from_sp;        /* during a switch: the stack pointer we left */
} stl_thread;

/* Result codes; every function that can fail returns 0 or one of these. */
#define STL_OK 0
#define STL_ENOMEM (-12) /* a spill buffer could not grow; nothing switched */
#define STL_EINVAL (-22) /* the target is the running stack or is dead */

/* The stack that was running when the thread first used the core. */
void stl_stack_init_main(stl_stack *main_stack);
/* A stack that has not started yet. */
void stl_stack_init(stl_stack *s);
/* Frees the spill buffer; `s` must not be running or suspended with saved bytes in use. */
void stl_stack_release(stl_stack *s);
/* Binds a thread to its main stack, which is running now. */
void stl_thread_init(stl_thread *t, stl_stack *main_stack);

/* 1 if `s` has started and not finished (it is running or suspended). */
int stl_stack_active(const stl_stack *s);
/* 1 if `s` has finished. */
int stl_stack_dead(const stl_stack *s);

/* Suspend the running stack and resume the suspended `target`.  Returns
 * STL_OK when someone switches back to the caller, or a negative code at once
 * if nothing happened. */
int stl_switch(stl_thread *t, stl_stack *target);
/* Like stl_switch to an unstarted `target`, which runs entry(arg) just below
 * the caller.  entry must never return: it ends with stl_exit. */
int stl_start(stl_thread *t, stl_stack *target, stl_entry_fn entry, void *arg);
/* The running stack has finished: abandon its window and resume the
 * suspended `target`.  Returns only on failure, with a negative code; the
 * caller is then still running and not yet dead. */
int stl_exit(stl_thread *t, stl_stack *target);
/* stl_exit to an unstarted target, which runs entry(arg). */
int stl_exit_start(stl_thread *t, stl_stack *target, stl_entry_fn entry, void *arg);

#endif /* STL_SWITCH_H */
