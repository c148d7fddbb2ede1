/*
 * switch.c -- stack slices: what to spill before a switch, what to restore
 * after it.  The register swap itself is one routine per architecture
 * (one .S file per architecture under arch/, contract in switch_arch.h); everything else is here.
 *
 * Invariant (the chain): starting at t->current and following `prev`, the
 * live windows that still hold bytes on the C stack appear in order of
 * increasing `stop`.  A window missing from the chain is wholly on the heap.
 * The main stack's window is [1, (char*)-1): it owns everything above it.
 */
#include "stl_switch.h"
#include "switch_arch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#  if __has_include(<valgrind/memcheck.h>) && !defined(STL_NO_VALGRIND)
#    include <valgrind/memcheck.h>
#    define STL_VALGRIND 1
#  endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#  define STL_ASAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define STL_ASAN 1
#  endif
#endif
#ifdef STL_ASAN
#  include <sanitizer/asan_interface.h>
#  define STL_NO_ASAN __attribute__((no_sanitize_address))
#else
#  define STL_NO_ASAN
#endif

#define STL_HIDDEN __attribute__((visibility("hidden")))
#define STL_NOINLINE __attribute__((noinline))

/* Called from the assembly routine only. */
STL_HIDDEN int stl__stack_switch(stl_thread *t);
STL_HIDDEN intptr_t stl__stack_save(stl_thread *t, char *sp);
STL_HIDDEN void stl__stack_restore(stl_thread *t);
STL_HIDDEN void stl__stack_enter(stl_thread *t);

#ifndef STL_REALLOC
#  define STL_REALLOC realloc
#endif

/*
 * Copies between the stack and a heap buffer.  Under ASan the stack bytes
 * include other frames' poisoned redzones, and memcpy is intercepted and
 * checked even inside no_sanitize functions, so copy word by word.
 */
STL_NO_ASAN static void stl__copy(char *dst, const char *src, size_t n)
{
#ifdef STL_ASAN
    volatile char *d = dst;
    const volatile char *s = src;
    while (n--)
        *d++ = *s++;
#else
    memcpy(dst, src, n);
#endif
}

void stl_stack_init_main(stl_stack *s)
{
    memset(s, 0, sizeof *s);
    s->start = (char *)1;
    s->stop = (char *)-1;
}

void stl_stack_init(stl_stack *s)
{
    memset(s, 0, sizeof *s);
}

void stl_stack_release(stl_stack *s)
{
    free(s->copy);
    s->copy = NULL;
    s->cap = s->saved = 0;
}

void stl_thread_init(stl_thread *t, stl_stack *main_stack)
{
    memset(t, 0, sizeof *t);
    t->current = main_stack;
}

int stl_stack_active(const stl_stack *s)
{
    return s->start != NULL;
}

int stl_stack_dead(const stl_stack *s)
{
    return s->start == NULL && s->stop != NULL;
}

/*
 * Moves the part of `s`'s window below `upto` to the heap (only what is not
 * there yet).  The buffer only grows, so a steady stream of switches at
 * similar depths allocates nothing.
 */
static int stl__spill(stl_stack *s, char *upto)
{
    /* `upto` may even lie below the window (the owner is now shallower than
     * it was when the target started): then nothing needs to move. */
    if (upto <= s->start + s->saved)
        return STL_OK;
    size_t want = (size_t)(upto - s->start);
    if (want > s->cap) {
        /* First spill: the exact size (rounded), since most stacks are
         * suspended at one depth; later growth doubles, so a stack that
         * keeps going deeper reallocates only O(log n) times. */
        size_t cap = s->cap ? s->cap * 2 : 0;
        if (cap < want)
            cap = (want + 63) & ~(size_t)63;
        char *copy = STL_REALLOC(s->copy, cap);
        if (copy == NULL)
            return STL_ENOMEM;
        s->copy = copy;
        s->cap = cap;
    }
    stl__copy(s->copy + s->saved, s->start + s->saved, want - s->saved);
#ifdef STL_ASAN
    /* Its frames' redzones leave with the bytes: the region is free now. */
    __asan_unpoison_memory_region(s->start + s->saved, want - s->saved);
#endif
    s->saved = want;
    return STL_OK;
}

/*
 * Step 2 of the routine: the running stack stops at `sp`.  Spill every
 * window that lies in the region the target will use, that is everything
 * below target->stop.  A fresh target's window begins right below `sp`, so
 * starting a stack spills nothing.
 * Returns the target's stack pointer, 1 for a fresh target, 0 on failure.
 */
STL_HIDDEN STL_NOINLINE intptr_t stl__stack_save(stl_thread *t, char *sp)
{
    stl_stack *origin = t->current;
    stl_stack *target = t->target;
    stl_stack *owner;

    t->from_sp = sp;
    if (origin->start == NULL) {        /* dying: its window is garbage */
#ifdef STL_ASAN
        __asan_unpoison_memory_region(sp, (size_t)(origin->stop - sp));
#endif
        owner = origin->prev;
    } else {
        origin->start = sp;
        owner = origin;
    }
    if (target->stop == NULL) {         /* fresh: runs below sp */
        target->stop = sp;
        target->prev = owner;
        return 1;
    }
    while (owner != NULL && owner->stop < target->stop) {
        if (stl__spill(owner, owner->stop) != STL_OK)
            goto fail;
        owner = owner->prev;
    }
    if (owner != NULL && owner != target && stl__spill(owner, target->stop) != STL_OK)
        goto fail;
    return (intptr_t)target->start;
fail:
    /* Spilled suspended windows stay valid; the origin runs on and changes
     * its bytes, so its own copy is void. */
    if (origin->start != NULL)
        origin->saved = 0;
    return 0;
}

/*
 * Step 3: the stack pointer is the target's again; put its spilled bytes
 * back and find its place in the chain.  Called with the target's frames
 * about to be popped, so it must not be inlined into the caller.
 */
STL_HIDDEN STL_NOINLINE void stl__stack_restore(stl_thread *t)
{
    stl_stack *target = t->target;
    stl_stack *owner = t->current;

    if (target->saved != 0) {
        stl__copy(target->start, target->copy, target->saved);
#ifdef STL_ASAN
        __asan_unpoison_memory_region(target->start, target->saved);
#endif
        target->saved = 0;
    }
#ifdef STL_VALGRIND
    /* Memcheck marked the bytes between the two stack pointers undefined when
     * the stack pointer moved down; they are live data of suspended stacks. */
    if (target->start < t->from_sp)
        VALGRIND_MAKE_MEM_DEFINED(target->start, (size_t)(t->from_sp - target->start));
#endif
    if (owner->start == NULL)
        owner = owner->prev;
    while (owner != NULL && owner->stop <= target->stop)
        owner = owner->prev;
    target->prev = owner;
    t->current = target;
    t->target = NULL;
}

/* The first frame of a fresh stack (called by the routine, never returns). */
STL_HIDDEN STL_NOINLINE void stl__stack_enter(stl_thread *t)
{
    stl_stack *target = t->target;
    stl_entry_fn entry = t->entry;
    void *arg = t->entry_arg;

    target->start = (char *)1;          /* running; the real value comes at its first switch */
    t->current = target;
    t->target = NULL;
    t->entry = NULL;
    t->entry_arg = NULL;
    entry(arg);
    abort();                            /* entry must leave through stl_exit */
}

static int stl__go(stl_thread *t, stl_stack *target)
{
    if (target == t->current || stl_stack_dead(target))
        return STL_EINVAL;
    t->target = target;
    if (stl__stack_switch(t) != 0) {
        t->target = NULL;
        return STL_ENOMEM;
    }
    return STL_OK;
}

int stl_switch(stl_thread *t, stl_stack *target)
{
    if (target->stop == NULL)
        return STL_EINVAL;              /* unstarted: use stl_start */
    return stl__go(t, target);
}

int stl_start(stl_thread *t, stl_stack *target, stl_entry_fn entry, void *arg)
{
    if (target->stop != NULL)
        return STL_EINVAL;
    t->entry = entry;
    t->entry_arg = arg;
    int rc = stl__go(t, target);
    if (rc != STL_OK) {
        t->entry = NULL;
        t->entry_arg = NULL;
    }
    return rc;
}

static int stl__leave(stl_thread *t, stl_stack *target)
{
    stl_stack *self = t->current;
    char *start = self->start;

    self->start = NULL;                 /* dead: the save step skips it */
    self->saved = 0;
    int rc = stl__go(t, target);
    /* Only reached on failure: still running, still alive. */
    self->start = start;
    return rc;
}

int stl_exit(stl_thread *t, stl_stack *target)
{
    if (target->stop == NULL)
        return STL_EINVAL;
    return stl__leave(t, target);
}

int stl_exit_start(stl_thread *t, stl_stack *target, stl_entry_fn entry, void *arg)
{
    if (target->stop != NULL)
        return STL_EINVAL;
    t->entry = entry;
    t->entry_arg = arg;
    int rc = stl__leave(t, target);
    t->entry = NULL;
    t->entry_arg = NULL;
    return rc;
}
