/*
 * tstate.c -- which interpreter fields belong to a greenlet, per CPython
 * version, and how they move between a greenlet and PyThreadState.
 *
 *   all      context (+context_ver bump), exc_state (by value), exc_info
 *   3.9      frame (PyFrameObject*), recursion_depth, trash_delete_nesting
 *   3.10     + cframe (CFrame* on the greenlet's own stack), use_tracing
 *   3.11     cframe->current_frame (_PyInterpreterFrame*), recursion as
 *            limit - remaining, datastack_chunk/top/limit
 *   3.12     + c_recursion_remaining, trash.{delete_nesting,delete_later},
 *            entry frames on the C stack (see "Frame links" below)
 *   3.13     no cframe: current_frame on the thread state; delete_later only
 *
 * Nothing here may run Python code or trigger a garbage collection between
 * save() and restore(): a switch is in progress.
 */
#include "tstate.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* Version accessors                                                   */
/* ------------------------------------------------------------------ */

#if PY_VERSION_HEX >= 0x030D0000
#  define STL_CUR_FRAME(ts) ((ts)->current_frame)
#elif PY_VERSION_HEX >= 0x030B0000
#  define STL_CUR_FRAME(ts) ((ts)->cframe->current_frame)
#endif

#if PY_VERSION_HEX >= 0x030D0000
#  define STL_C_RECURSION_LIMIT Py_C_RECURSION_LIMIT
#elif PY_VERSION_HEX >= 0x030C0000
#  define STL_C_RECURSION_LIMIT C_RECURSION_LIMIT
#endif

static int stl__recursion_depth(PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030C0000
    return ts->py_recursion_limit - ts->py_recursion_remaining;
#elif PY_VERSION_HEX >= 0x030B0000
    return ts->recursion_limit - ts->recursion_remaining;
#else
    return ts->recursion_depth;
#endif
}

static void stl__set_recursion_depth(PyThreadState *ts, int depth)
{
#if PY_VERSION_HEX >= 0x030C0000
    ts->py_recursion_remaining = ts->py_recursion_limit - depth;
#elif PY_VERSION_HEX >= 0x030B0000
    ts->recursion_remaining = ts->recursion_limit - depth;
#else
    ts->recursion_depth = depth;
#endif
}

/* 3.10 and 3.11 cache "is a trace or profile function set" in the current
 * CFrame, which now is the resumed greenlet's: recompute it thread-wide,
 * since sys.settrace is per thread and may have changed meanwhile. */
static void stl__update_use_tracing(PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030A0000 && PY_VERSION_HEX < 0x030C0000
    int on = ts->tracing == 0 && (ts->c_tracefunc != NULL || ts->c_profilefunc != NULL);
#  if PY_VERSION_HEX >= 0x030B0000
    ts->cframe->use_tracing = on ? 255 : 0;
#  else
    ts->cframe->use_tracing = on;
#  endif
#else
    (void)ts;
#endif
}

/* ------------------------------------------------------------------ */
/* Frame data stack (3.11+)                                            */
/*                                                                     */
/* CPython gives a thread one data stack made of chunks; a new greenlet */
/* has none, and CPython would mmap a 16 KiB chunk for its first frame  */
/* and munmap it at its end, never freeing the root (the 3.11 leak).    */
/* Each greenlet instead starts on a small root chunk from a pool.      */
/* CPython frees only chunks that have a `previous`, so the root stays  */
/* ours; deeper frames spill into CPython's own chunks as usual.        */
/* ------------------------------------------------------------------ */
#if PY_VERSION_HEX >= 0x030B0000

/* Root chunks start small (a greenlet suspended a frame or two deep needs
 * a few hundred bytes) and grow, for all greenlets made afterwards, each
 * time a greenlet outgrew its root: CPython then had to map a 16 KiB chunk
 * of its own, and would again each time that greenlet's depth crossed the
 * boundary.  CPython writes the root's `top` only when it pushes a chunk
 * above it, so a non-zero `top` tells that this happened. */
#define STL_ROOT_CHUNK_MIN 1024
#define STL_ROOT_CHUNK_MAX (16 * 1024)
#define STL_CHUNK_POOL_MAX 1024

static size_t stl__root_size = STL_ROOT_CHUNK_MIN;
static _PyStackChunk *stl__chunk_pool;   /* linked through `previous`; GIL-protected */
static int stl__chunk_pool_len;

static _PyStackChunk *stl__chunk_get(void)
{
    _PyStackChunk *c = stl__chunk_pool;
    if (c != NULL) {
        stl__chunk_pool = c->previous;
        stl__chunk_pool_len--;
    } else {
        c = PyMem_RawMalloc(stl__root_size);
        if (c == NULL)
            return NULL;
        c->size = stl__root_size;
    }
    c->previous = NULL;
    c->top = 0;
    return c;
}

static void stl__chunk_put(_PyStackChunk *c)
{
    if (c->top != 0 && stl__root_size < STL_ROOT_CHUNK_MAX)
        stl__root_size *= 2;                /* outgrown: make them bigger */
    if (c->size != stl__root_size || stl__chunk_pool_len >= STL_CHUNK_POOL_MAX) {
        PyMem_RawFree(c);
        return;
    }
    c->previous = stl__chunk_pool;
    stl__chunk_pool = c;
    stl__chunk_pool_len++;
}

/* Frees a chunk chain down to (and including) our root chunk. */
static void stl__chunks_release(_PyStackChunk *c, _PyStackChunk *root)
{
    PyObjectArenaAllocator arena;
    PyObject_GetArenaAllocator(&arena);
    while (c != NULL && c != root) {
        _PyStackChunk *prev = c->previous;
        arena.free(arena.ctx, c, c->size);
        c = prev;
    }
    if (root != NULL)
        stl__chunk_put(root);
}
#endif

/* ------------------------------------------------------------------ */
/* The operations                                                      */
/* ------------------------------------------------------------------ */

void stl_pystate_init(stl_pystate *s)
{
    memset(s, 0, sizeof *s);
}

int stl_pystate_presave(stl_pystate *s, PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030C0000
    return stl_links_prepare(&s->links, ts, STL_CUR_FRAME(ts));
#else
    (void)s;
    (void)ts;
    return 0;
#endif
}

void stl_pystate_after_switch(stl_pystate *s)
{
#if PY_VERSION_HEX >= 0x030C0000
    stl_links_after_switch(&s->links);
#else
    (void)s;
#endif
}

void stl_pystate_save(stl_pystate *s, PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030C0000
    stl_links_cut(&s->links);
#endif
    s->context = ts->context;               /* ownership moves */
    ts->context = NULL;
    s->exc_state = ts->exc_state;
    s->exc_info = ts->exc_info == &ts->exc_state ? NULL : ts->exc_info;
    memset(&ts->exc_state, 0, sizeof ts->exc_state);
    s->recursion_depth = stl__recursion_depth(ts);
#if PY_VERSION_HEX >= 0x030C0000
    s->c_recursion_depth = STL_C_RECURSION_LIMIT - ts->c_recursion_remaining;
#endif
#if PY_VERSION_HEX >= 0x030D0000
    s->trash_delete_later = ts->delete_later;
#elif PY_VERSION_HEX >= 0x030C0000
    s->trash_delete_nesting = ts->trash.delete_nesting;
    s->trash_delete_later = ts->trash.delete_later;
#else
    s->trash_delete_nesting = ts->trash_delete_nesting;
#endif
#if PY_VERSION_HEX >= 0x030B0000
    s->top_frame = STL_CUR_FRAME(ts);
    s->datastack_chunk = ts->datastack_chunk;
    s->datastack_top = ts->datastack_top;
    s->datastack_limit = ts->datastack_limit;
#else
    s->top_frame = ts->frame;
#endif
#if PY_VERSION_HEX >= 0x030A0000 && PY_VERSION_HEX < 0x030D0000
    s->cframe = ts->cframe;
#endif
}

void stl_pystate_restore(stl_pystate *s, PyThreadState *ts)
{
    Py_XSETREF(ts->context, s->context);    /* the running side gave its own away in save() */
    s->context = NULL;
    ts->context_ver++;
    ts->exc_state = s->exc_state;
    ts->exc_info = s->exc_info ? s->exc_info : &ts->exc_state;
    memset(&s->exc_state, 0, sizeof s->exc_state);
    stl__set_recursion_depth(ts, s->recursion_depth);
#if PY_VERSION_HEX >= 0x030C0000
    ts->c_recursion_remaining = STL_C_RECURSION_LIMIT - s->c_recursion_depth;
#endif
#if PY_VERSION_HEX >= 0x030D0000
    ts->delete_later = s->trash_delete_later;
#elif PY_VERSION_HEX >= 0x030C0000
    ts->trash.delete_nesting = s->trash_delete_nesting;
    ts->trash.delete_later = s->trash_delete_later;
#else
    ts->trash_delete_nesting = s->trash_delete_nesting;
#endif
#if PY_VERSION_HEX >= 0x030A0000 && PY_VERSION_HEX < 0x030D0000
    ts->cframe = s->cframe;
#endif
#if PY_VERSION_HEX >= 0x030B0000
    STL_CUR_FRAME(ts) = s->top_frame;
    ts->datastack_chunk = s->datastack_chunk;
    ts->datastack_top = s->datastack_top;
    ts->datastack_limit = s->datastack_limit;
    s->datastack_chunk = NULL;
#else
    ts->frame = s->top_frame;
#endif
#if PY_VERSION_HEX >= 0x030C0000
    stl_links_mend(&s->links);
#endif
    s->top_frame = NULL;
    stl__update_use_tracing(ts);
}

int stl_pystate_prepare(stl_pystate *s)
{
#if PY_VERSION_HEX >= 0x030B0000
    if (s->root_chunk == NULL && (s->root_chunk = stl__chunk_get()) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
#endif
    return 0;
}

void stl_pystate_begin(stl_pystate *s, PyThreadState *ts, stl_pystate_base *base)
{
#if PY_VERSION_HEX >= 0x030B0000
    _PyStackChunk *chunk = s->root_chunk;
    ts->datastack_chunk = chunk;
    /* Like CPython's own root chunk, skip data[0] so that no frame ever
     * starts there and _PyThreadState_PopFrame never frees the chunk. */
    ts->datastack_top = &chunk->data[1];
    ts->datastack_limit = (PyObject **)((char *)chunk + chunk->size);
#endif
#if PY_VERSION_HEX >= 0x030A0000 && PY_VERSION_HEX < 0x030D0000
    /* The new greenlet's eval loops chain their CFrames to this one, which
     * lives on its own stack and ends at the thread's root CFrame, so no
     * eval loop of it ever writes into another greenlet's stack. */
    base->cframe = *ts->cframe;
    base->cframe.previous = &ts->root_cframe;
    ts->cframe = &base->cframe;
#else
    (void)base;
#endif
#if PY_VERSION_HEX >= 0x030B0000
    STL_CUR_FRAME(ts) = NULL;
#else
    ts->frame = NULL;
#endif
    /* Its own context, empty unless one was assigned to gr_context before the start. */
    Py_XSETREF(ts->context, s->context);
    s->context = NULL;
    ts->context_ver++;
    memset(&ts->exc_state, 0, sizeof ts->exc_state);
    ts->exc_info = &ts->exc_state;
#if PY_VERSION_HEX >= 0x030D0000
    ts->delete_later = NULL;
#elif PY_VERSION_HEX >= 0x030C0000
    ts->trash.delete_nesting = 0;
    ts->trash.delete_later = NULL;
#else
    ts->trash_delete_nesting = 0;
#endif
}

void stl_pystate_end(stl_pystate *s, PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030C0000
    stl_links_clear(&s->links);
#else
    (void)s;
#endif
    /* A finished greenlet's context stays readable through gr_context. */
    Py_XSETREF(s->context, ts->context);
    ts->context = NULL;
    ts->context_ver++;
#if PY_VERSION_HEX >= 0x030B0000
    Py_CLEAR(ts->exc_state.exc_value);
#else
    Py_CLEAR(ts->exc_state.exc_type);
    Py_CLEAR(ts->exc_state.exc_value);
    Py_CLEAR(ts->exc_state.exc_traceback);
#endif
}

void stl_pystate_leave(stl_pystate *s, PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030B0000
    s->datastack_chunk = ts->datastack_chunk;
#else
    (void)s;
    (void)ts;
#endif
}

void stl_pystate_release(stl_pystate *s)
{
#if PY_VERSION_HEX >= 0x030B0000
    /* Only chains that grew from our root chunk are ours to free: a main
     * greenlet's chunks belong to its thread state. */
    if (s->root_chunk != NULL)
        stl__chunks_release(s->datastack_chunk, s->root_chunk);
    s->root_chunk = NULL;
    s->datastack_chunk = NULL;
#endif
#if PY_VERSION_HEX >= 0x030C0000
    stl_links_clear(&s->links);
#endif
}

void stl_pystate_enter_tracing(PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030B0000
    PyThreadState_EnterTracing(ts);
#else
    ts->tracing++;
#  if PY_VERSION_HEX >= 0x030A0000
    ts->cframe->use_tracing = 0;
#  else
    ts->use_tracing = 0;
#  endif
#endif
}

void stl_pystate_leave_tracing(PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030B0000
    PyThreadState_LeaveTracing(ts);
#else
    ts->tracing--;
#  if PY_VERSION_HEX >= 0x030A0000
    stl__update_use_tracing(ts);
#  else
    ts->use_tracing = ts->tracing == 0 && (ts->c_tracefunc != NULL || ts->c_profilefunc != NULL);
#  endif
#endif
}

void stl_pystate_abandon(stl_pystate *s)
{
    /* The frames in its data stack keep their references: leaked, as
     * greenlet does, since no thread can ever unwind them. */
    stl_pystate_release(s);
    s->top_frame = NULL;
    stl_pystate_clear(s);
}

PyObject *stl_pystate_frame(stl_pystate *s, PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030C0000
    _PyInterpreterFrame *top = s->links.shown_top;
#elif PY_VERSION_HEX >= 0x030B0000
    _PyInterpreterFrame *top = s->top_frame;
#endif
#if PY_VERSION_HEX >= 0x030B0000
    return top ? stl_frame_object(ts, top) : NULL;
#else
    (void)ts;
    PyObject *f = (PyObject *)s->top_frame;
    Py_XINCREF(f);
    return f;
#endif
}

int stl_pystate_traverse(stl_pystate *s, visitproc visit, void *arg)
{
    Py_VISIT(s->context);
#if PY_VERSION_HEX >= 0x030B0000
    Py_VISIT(s->exc_state.exc_value);
#else
    Py_VISIT(s->exc_state.exc_type);
    Py_VISIT(s->exc_state.exc_value);
    Py_VISIT(s->exc_state.exc_traceback);
#endif
    return 0;
}

void stl_pystate_clear(stl_pystate *s)
{
    Py_CLEAR(s->context);
#if PY_VERSION_HEX >= 0x030B0000
    Py_CLEAR(s->exc_state.exc_value);
#else
    Py_CLEAR(s->exc_state.exc_type);
    Py_CLEAR(s->exc_state.exc_value);
    Py_CLEAR(s->exc_state.exc_traceback);
#endif
}
