/*
 * frames.h -- frames of suspended greenlets (CPython 3.11+).
 *
 * stl_frame_object: a frame object for any frame of this thread's data
 * stack (CPython only makes them for a thread's current frame).
 *
 * stl_frame_links (3.12+): each eval-loop invocation pushes an "entry
 * frame" that lives on the C stack, and the first Python frame it runs
 * links to it through `previous`.  Once a greenlet is suspended its C stack
 * may be spilled and overwritten, so a walk along f_back through an entry
 * frame would read garbage.  While a greenlet is suspended, every frame
 * that links to an entry frame is "cut": linked straight past it.  Python
 * frames live in the data stack (heap), so the cut chain is always safe.
 *
 * Finding those links means walking the frame chain, which would make a
 * switch cost grow with the depth of the stack.  A "mark" avoids that: a
 * frame some levels below the top whose frame object we hold; while the
 * object still points at it (CPython repoints it when the frame is
 * popped), the frame is live, so every frame below it is unchanged since
 * the last switch, and so are their links.  A switch walks only the
 * frames above the mark.
 */
#ifndef STL_FRAMES_H
#define STL_FRAMES_H

#include "pyinclude.h"

#if PY_VERSION_HEX >= 0x030B0000
/* A new reference to the frame object of `frame` (complete, of this
 * thread), or NULL without an exception if there is none. */
PyObject *stl_frame_object(PyThreadState *ts, _PyInterpreterFrame *frame);
#endif

#if PY_VERSION_HEX >= 0x030C0000

typedef struct stl_link {
    _PyInterpreterFrame *frame;   /* links to an entry frame... */
    _PyInterpreterFrame *entry;   /* ...this one (its real `previous`) */
    _PyInterpreterFrame *skip;    /* the first non-entry frame below it */
} stl_link;

typedef struct stl_link_list {
    stl_link *v;
    int n, cap;
} stl_link_list;

typedef struct stl_frame_links {
    _PyInterpreterFrame *mark;    /* live, with all below unchanged; or NULL */
    PyObject *mark_obj;           /* strong: its frame object */
    PyObject *popped_obj;         /* strong: a former mark's object, released after the switch */
    _PyInterpreterFrame *shown_top; /* the innermost non-entry frame */
    stl_link_list below;          /* links at or below the mark: kept */
    stl_link_list above;          /* links above it: found at each switch */
} stl_frame_links;

/* Finds the links of the chain that starts at `top`; may run Python code
 * and allocate, so it runs before a switch begins.  -1 with an error set. */
int stl_links_prepare(stl_frame_links *l, PyThreadState *ts, _PyInterpreterFrame *top);
/* Cuts every found link (the greenlet is being suspended). */
void stl_links_cut(stl_frame_links *l);
/* Restores every cut link (the greenlet resumes). */
void stl_links_mend(stl_frame_links *l);
/* Releases what prepare() could not release without running code: call
 * once the switch is over (from whichever greenlet runs then). */
void stl_links_after_switch(stl_frame_links *l);
/* Forgets everything (the greenlet has finished or is abandoned). */
void stl_links_clear(stl_frame_links *l);

#endif
#endif /* STL_FRAMES_H */
