/*
 * frames.c -- frame objects on demand and entry-frame links; the essay is
 * in frames.h.
 */
#include "frames.h"

#if PY_VERSION_HEX >= 0x030B0000

#if PY_VERSION_HEX >= 0x030D0000
#  define STL_CUR_FRAME(ts) ((ts)->current_frame)
#else
#  define STL_CUR_FRAME(ts) ((ts)->cframe->current_frame)
#endif

PyObject *stl_frame_object(PyThreadState *ts, _PyInterpreterFrame *frame)
{
    /* The maker of frame objects is not exported: point the thread at the
     * frame for one call of the public getter, with the collector off so
     * that no Python code can run while the thread points there. */
    _PyInterpreterFrame *saved = STL_CUR_FRAME(ts);
    int gc_was_on = PyGC_Disable();
    STL_CUR_FRAME(ts) = frame;
    PyFrameObject *f = PyThreadState_GetFrame(ts);
    STL_CUR_FRAME(ts) = saved;
    if (gc_was_on)
        PyGC_Enable();
    return (PyObject *)f;
}

#endif

#if PY_VERSION_HEX >= 0x030C0000

/* How many frames below the top the mark goes, and how long a walk must
 * be before the mark moves: a switch walks at most about 2 * this many. */
#define STL_MARK_DEPTH 8

static int stl__is_entry(_PyInterpreterFrame *f)
{
    return f->owner == FRAME_OWNED_BY_CSTACK;
}

/* A mark must stay in the chain while live: not a generator's frame (those
 * leave the chain when they yield) and complete (it has a frame object). */
static int stl__can_mark(_PyInterpreterFrame *f)
{
    return f->owner == FRAME_OWNED_BY_THREAD && !_PyFrame_IsIncomplete(f);
}

static int stl__reserve(stl_link_list *list, int n)
{
    if (list->n + n <= list->cap)
        return 0;
    int cap = list->cap ? list->cap : 4;
    while (cap < list->n + n)
        cap *= 2;
    stl_link *v = PyMem_RawRealloc(list->v, (size_t)cap * sizeof *v);
    if (v == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    list->v = v;
    list->cap = cap;
    return 0;
}

static int stl__push(stl_link_list *list, _PyInterpreterFrame *frame, _PyInterpreterFrame *entry)
{
    if (stl__reserve(list, 1) < 0)
        return -1;
    _PyInterpreterFrame *skip = entry;
    while (skip != NULL && stl__is_entry(skip))
        skip = skip->previous;
    list->v[list->n++] = (stl_link){frame, entry, skip};
    return 0;
}

/* The mark's frame was popped: its object now owns that frame's locals,
 * and freeing them may run __del__ code, which must not run between
 * prepare() and the switch.  It is released after the switch. */
static void stl__drop_mark(stl_frame_links *l)
{
    l->mark = NULL;
    l->below.n = 0;
    PyObject *old = l->popped_obj;
    l->popped_obj = l->mark_obj;
    l->mark_obj = NULL;
    Py_XDECREF(old);            /* only after a failed switch */
}

void stl_links_after_switch(stl_frame_links *l)
{
    Py_CLEAR(l->popped_obj);
}

/* Moves the mark up to `cand`, found `nabove` links into the walk. */
static void stl__move_mark(stl_frame_links *l, PyThreadState *ts, _PyInterpreterFrame *cand, int nabove)
{
    PyObject *fo = stl_frame_object(ts, cand);
    if (fo == NULL || ((PyFrameObject *)fo)->f_frame != cand) {
        Py_XDECREF(fo);
        return;                 /* keep the old mark: still correct, only slower */
    }
    if (stl__reserve(&l->below, l->above.n - nabove) < 0) {
        PyErr_Clear();
        Py_DECREF(fo);
        return;
    }
    for (int i = nabove; i < l->above.n; i++)
        l->below.v[l->below.n++] = l->above.v[i];
    l->above.n = nabove;
    Py_XSETREF(l->mark_obj, fo);  /* the old mark is live: this frees nothing */
    l->mark = cand;
}

int stl_links_prepare(stl_frame_links *l, PyThreadState *ts, _PyInterpreterFrame *top)
{
    if (l->mark != NULL && ((PyFrameObject *)l->mark_obj)->f_frame != l->mark)
        stl__drop_mark(l);      /* popped since the last switch */
    while (top != NULL && stl__is_entry(top))
        top = top->previous;
    l->shown_top = top;
    l->above.n = 0;

    _PyInterpreterFrame *cand = NULL;
    int depth = 0, nabove = 0;
    for (_PyInterpreterFrame *f = top; f != NULL && f != l->mark; f = f->previous, depth++) {
        if (cand == NULL && depth >= STL_MARK_DEPTH && stl__can_mark(f)) {
            cand = f;
            nabove = l->above.n;
        }
        if (f->previous != NULL && stl__is_entry(f->previous) && stl__push(&l->above, f, f->previous) < 0)
            return -1;
    }
    if (cand != NULL && depth >= 2 * STL_MARK_DEPTH)
        stl__move_mark(l, ts, cand, nabove);
    return 0;
}

static void stl__cut(stl_link_list *list)
{
    for (int i = 0; i < list->n; i++)
        list->v[i].frame->previous = list->v[i].skip;
}

static void stl__mend(stl_link_list *list)
{
    for (int i = 0; i < list->n; i++)
        list->v[i].frame->previous = list->v[i].entry;
}

void stl_links_cut(stl_frame_links *l)
{
    stl__cut(&l->below);
    stl__cut(&l->above);
}

void stl_links_mend(stl_frame_links *l)
{
    stl__mend(&l->above);
    stl__mend(&l->below);
}

void stl_links_clear(stl_frame_links *l)
{
    stl__drop_mark(l);
    Py_CLEAR(l->popped_obj);
    PyMem_RawFree(l->below.v);
    PyMem_RawFree(l->above.v);
    l->below = (stl_link_list){NULL, 0, 0};
    l->above = (stl_link_list){NULL, 0, 0};
    l->shown_top = NULL;
}

#endif
