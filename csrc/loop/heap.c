/*
 * heap.c -- the timer heap: a 4-ary min-heap in one array of
 * (deadline, sequence, timer) entries.
 *
 * Why an array: the keys the sift loops compare sit next to each other in
 * memory (a node's four children are 96 contiguous bytes), so a start or a
 * stop touches a handful of cache lines instead of chasing a pointer per
 * level; each timer remembers its slot (hidx), so stop is O(log4 n) too.
 *
 * Why the array never grows on a steady-state start: it only grows when the
 * count of active timers exceeds every earlier high-water mark, and then it
 * doubles; it never shrinks (until the loop is freed).  A loop that keeps
 * at most N timers active allocates O(log N) times in its whole life, and
 * never once a first peak is reached.  A failed growth is reported as
 * -ENOMEM by stl_timer_start (and stl_timer_again), with the timer left
 * inactive and the heap unchanged.
 *
 * Shape: node i (0 = root) has children 4i+1 .. 4i+4.
 * Order: (at, seq).  seq grows with every start, so timers that share a
 * deadline leave the heap in the order they were started (FIFO); seq is
 * unique, so the order is total and the FIFO holds whatever the shape.
 * Invariant: no entry is less than its parent; heap[w->hidx].w == w.
 */
#include "loop_int.h"

#include <string.h>

#define STL__HEAP_MIN 64 /* first capacity: one small block, most loops never grow it */

/* a before b: earlier deadline, or the same deadline and started earlier */
static inline int stl__before(const stl__hent *a, const stl__hent *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

/* Writes e into slot i and tells its timer where it lives. */
static inline void stl__put(stl__hent *h, long i, const stl__hent *e)
{
    h[i] = *e;
    e->w->hidx = i;
}

/* Moves the hole at i up until e fits there; returns the final slot. */
static void stl__sift_up(stl__hent *h, long i, const stl__hent *e)
{
    while (i > 0) {
        long p = (i - 1) >> 2;
        if (!stl__before(e, &h[p]))
            break;
        stl__put(h, i, &h[p]);
        i = p;
    }
    stl__put(h, i, e);
}

/* Moves the hole at i down (among n entries) until e fits there. */
static void stl__sift_down(stl__hent *h, long n, long i, const stl__hent *e)
{
    for (;;) {
        long c = 4 * i + 1;
        if (c >= n)
            break;
        long end = c + 4 < n ? c + 4 : n, least = c;
        for (long k = c + 1; k < end; k++)
            if (stl__before(&h[k], &h[least]))
                least = k;
        if (!stl__before(&h[least], e))
            break;
        stl__put(h, i, &h[least]);
        i = least;
    }
    stl__put(h, i, e);
}

/* Puts e at slot i, up or down, whichever way the order needs. */
static void stl__place(stl_loop *loop, long i, const stl__hent *e)
{
    stl__hent *h = loop->heap;
    if (i > 0 && stl__before(e, &h[(i - 1) >> 2]))
        stl__sift_up(h, i, e);
    else
        stl__sift_down(h, loop->ntimers, i, e);
}

/* Room for one more entry: doubles past the high-water mark; -ENOMEM. */
static int stl__heap_reserve(stl_loop *loop)
{
    if (STL__LIKELY(loop->ntimers < loop->heapcap))
        return 0;
    long cap = loop->heapcap ? loop->heapcap * 2 : STL__HEAP_MIN;
    stl__hent *h = stl__realloc(loop->heap, (size_t)cap * sizeof *h);
    if (!h)
        return -ENOMEM;
    loop->heap = h;
    loop->heapcap = cap;
    return 0;
}

/* Adds t (at and seq set) as the last entry, then lets it rise; 0 or -ENOMEM. */
int stl__heap_insert(stl_loop *loop, stl_timer *t)
{
    int rc = stl__heap_reserve(loop);
    if (rc)
        return rc;
    stl__hent e = {t->at, t->seq, t};
    stl__sift_up(loop->heap, loop->ntimers++, &e);
    return 0;
}

/* Removes t: the last entry fills its slot and moves to where it belongs. */
void stl__heap_remove(stl_loop *loop, stl_timer *t)
{
    long i = t->hidx, n = --loop->ntimers;
    if (i != n) {
        stl__hent last = loop->heap[n];
        stl__place(loop, i, &last);
    }
    t->hidx = -1;
}

/* Restores the order after t's key (at, seq) changed. */
void stl__heap_adjust(stl_loop *loop, stl_timer *t)
{
    stl__hent e = {t->at, t->seq, t};
    stl__place(loop, t->hidx, &e);
}

/* Calls fn on every timer, empties the heap and frees the array (the loop is going away). */
void stl__heap_each(stl_loop *loop, void (*fn)(stl_loop *, stl_timer *))
{
    for (long i = 0; i < loop->ntimers; i++)
        fn(loop, loop->heap[i].w);
    stl__realloc(loop->heap, 0);
    loop->heap = NULL;
    loop->ntimers = loop->heapcap = 0;
}
