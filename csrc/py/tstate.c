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

#define STL_ROOT_CHUNK_SIZE 2048
#define STL_CHUNK_POOL_MAX 1024

static _PyStackChunk *stl__chunk_pool;   /* linked through `previous`; GIL-protected */
static int stl__chunk_pool_len;

static _PyStackChunk *stl__chunk_get(void)
{
    _PyStackChunk *c = stl__chunk_pool;
    if (c != NULL) {
        stl__chunk_pool = c->previous;
        stl__chunk_pool_len--;
    } else {
        c = PyMem_RawMalloc(STL_ROOT_CHUNK_SIZE);
        if (c == NULL)
            return NULL;
    }
    c->previous = NULL;
    c->size = STL_ROOT_CHUNK_SIZE;
    c->top = 0;
    return c;
}

static void stl__chunk_put(_PyStackChunk *c)
{
    if (stl__chunk_pool_len >= STL_CHUNK_POOL_MAX) {
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
/* Frame links (3.12+)                                                 */
/*                                                                     */
/* Each eval-loop invocation pushes an "entry frame" that lives on the  */
/* C stack, and the first Python frame it runs points at it.  Once a    */
/* greenlet is suspended its C stack may be spilled and overwritten, so */
/* walking f_back through an entry frame would read garbage.  On save,  */
/* every Python frame that points at an entry frame is relinked past    */
/* it (pointer writes only: no frame objects are created); restore puts */
/* the original links back before the greenlet runs again.  Frames     */
/* stay in the data stack (heap), so the relinked chain is always safe. */
/* ------------------------------------------------------------------ */
#if PY_VERSION_HEX >= 0x030C0000

static int stl__is_entry(_PyInterpreterFrame *f)
{
    return f->owner == FRAME_OWNED_BY_CSTACK;
}

static int stl__links_grow(stl_pystate *s)
{
    int cap = s->links_cap ? s->links_cap * 2 : 4;
    stl_frame_link *links = PyMem_RawRealloc(s->links, (size_t)cap * sizeof *links);
    if (links == NULL)
        return -1;
    s->links = links;
    s->links_cap = cap;
    return 0;
}

static int stl__unlink_entry_frames(stl_pystate *s, _PyInterpreterFrame *top)
{
    s->nlinks = 0;
    while (top != NULL && stl__is_entry(top))
        top = top->previous;
    s->shown_top = top;
    for (_PyInterpreterFrame *f = top; f != NULL; f = f->previous) {
        _PyInterpreterFrame *p = f->previous;
        if (p == NULL || !stl__is_entry(p))
            continue;
        if (s->nlinks == s->links_cap && stl__links_grow(s) < 0) {
            /* undo, so the failed switch leaves the chain as it was */
            for (int i = 0; i < s->nlinks; i++)
                ((_PyInterpreterFrame *)s->links[i].frame)->previous = s->links[i].previous;
            s->nlinks = 0;
            return -1;
        }
        s->links[s->nlinks].frame = f;
        s->links[s->nlinks].previous = p;
        s->nlinks++;
        while (p != NULL && stl__is_entry(p))
            p = p->previous;
        f->previous = p;
    }
    return 0;
}

static void stl__relink_entry_frames(stl_pystate *s)
{
    for (int i = s->nlinks - 1; i >= 0; i--)
        ((_PyInterpreterFrame *)s->links[i].frame)->previous = s->links[i].previous;
    s->nlinks = 0;
}

#endif

/* ------------------------------------------------------------------ */
/* The operations                                                      */
/* ------------------------------------------------------------------ */

void stl_pystate_init(stl_pystate *s)
{
    memset(s, 0, sizeof *s);
}

int stl_pystate_save(stl_pystate *s, PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (stl__unlink_entry_frames(s, STL_CUR_FRAME(ts)) < 0) {
        PyErr_NoMemory();
        return -1;
    }
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
    return 0;
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
#else
    ts->frame = s->top_frame;
#endif
#if PY_VERSION_HEX >= 0x030C0000
    stl__relink_entry_frames(s);
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
    Py_CLEAR(ts->context);
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
    (void)s;
    Py_CLEAR(ts->context);
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
    if (s->datastack_chunk != NULL || s->root_chunk != NULL)
        stl__chunks_release(s->datastack_chunk, s->root_chunk);
    s->root_chunk = NULL;
    s->datastack_chunk = NULL;
#endif
#if PY_VERSION_HEX >= 0x030C0000
    PyMem_RawFree(s->links);
    s->links = NULL;
    s->nlinks = s->links_cap = 0;
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
#if PY_VERSION_HEX >= 0x030C0000
    s->shown_top = NULL;
#endif
    stl_pystate_clear(s);
}

PyObject *stl_pystate_frame(stl_pystate *s, PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030B0000
#  if PY_VERSION_HEX >= 0x030C0000
    _PyInterpreterFrame *top = s->shown_top;
#  else
    _PyInterpreterFrame *top = s->top_frame;
#  endif
    if (top == NULL)
        return NULL;
    /* CPython makes frame objects only for the current frame of a thread
     * state (the maker is not exported): point the thread at the
     * suspended frame for the one call, with the collector off so that no
     * Python code can run meanwhile. */
    _PyInterpreterFrame *saved = STL_CUR_FRAME(ts);
    int gc_was_on = PyGC_Disable();
    STL_CUR_FRAME(ts) = top;
    PyFrameObject *f = PyThreadState_GetFrame(ts);
    STL_CUR_FRAME(ts) = saved;
    if (gc_was_on)
        PyGC_Enable();
    return (PyObject *)f;
#else
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
