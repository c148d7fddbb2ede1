/*
 * heap.c -- the timer heap: a 4-ary min-heap whose nodes are the timers.
 *
 * Why intrusive: an array heap must grow, so starting a timer could
 * allocate or fail.  Here every timer carries its links (up, down[4]), so
 * starting and stopping never allocate and never fail, whatever the count.
 *
 * Shape: the usual complete 4-ary tree, filled level by level, left to right.
 * Node i (0 = root) has children 4i+1 .. 4i+4, so the path from the root to
 * node i is spelled by the base-4 digits of the chain i -> (i-1)/4 -> ... 0;
 * the last node and the next free slot are found in O(log4 n) steps.
 *
 *              root (0)
 *        /     |     |     \
 *      1       2     3      4
 *    / | | \
 *   5  6 7  8  ...
 *
 * Order: (at, seq).  seq grows with every start, so timers that share a
 * deadline leave the heap in the order they were started (FIFO).
 * Invariant: no node is less than its parent.
 */
#include "loop_int.h"

#include <string.h>

/* a before b: earlier deadline, or the same deadline and started earlier */
static inline int stl__before(const stl_timer *a, const stl_timer *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

/* Which of its parent's four links points at t. */
static inline int stl__slot(const stl_timer *t)
{
    const stl_timer *p = t->up;
    int k = 0;
    while (p->down[k] != t)
        k++;
    return k;
}

/* The link that holds (or will hold) node i, and that node's parent. */
static stl_timer **stl__heap_link(stl_loop *loop, unsigned long i, stl_timer **parent)
{
    unsigned char digits[sizeof(long) * 4 + 1];
    int n = 0;
    *parent = NULL;
    if (i == 0)
        return &loop->heap;
    while (i > 0) {
        digits[n++] = (unsigned char)((i - 1) % 4);
        i = (i - 1) / 4;
    }
    stl_timer *node = loop->heap;
    while (--n > 0)
        node = node->down[digits[n]];
    *parent = node;
    return &node->down[digits[0]];
}

/* The link that points at t: its parent's slot, or the root. */
static inline stl_timer **stl__link_to(stl_loop *loop, stl_timer *t)
{
    return t->up ? &t->up->down[stl__slot(t)] : &loop->heap;
}

/*
 * Swaps t with its parent p: t takes p's place (and p's other children),
 * p takes t's old children.  Only links move; no timer is copied.
 */
static void stl__swap_up(stl_loop *loop, stl_timer *t)
{
    stl_timer *p = t->up;
    stl_timer *kids[4];
    int k = stl__slot(t);

    memcpy(kids, t->down, sizeof kids);
    *stl__link_to(loop, p) = t;
    t->up = p->up;
    for (int j = 0; j < 4; j++) {
        t->down[j] = (j == k) ? p : p->down[j];
        if (t->down[j])
            t->down[j]->up = t;
    }
    for (int j = 0; j < 4; j++) {
        p->down[j] = kids[j];
        if (kids[j])
            kids[j]->up = p;
    }
}

static void stl__sift_up(stl_loop *loop, stl_timer *t)
{
    while (t->up && stl__before(t, t->up))
        stl__swap_up(loop, t);
}

static void stl__sift_down(stl_loop *loop, stl_timer *t)
{
    for (;;) {
        stl_timer *least = NULL;
        for (int j = 0; j < 4 && t->down[j]; j++)
            if (!least || stl__before(t->down[j], least))
                least = t->down[j];
        if (!least || !stl__before(least, t))
            return;
        stl__swap_up(loop, least);
    }
}

/* Adds t (at and seq set) as the last node, then lets it rise. */
void stl__heap_insert(stl_loop *loop, stl_timer *t)
{
    stl_timer *parent;
    stl_timer **link = stl__heap_link(loop, (unsigned long)loop->ntimers, &parent);
    *link = t;
    t->up = parent;
    memset(t->down, 0, sizeof t->down);
    loop->ntimers++;
    stl__sift_up(loop, t);
}

/*
 * Removes t: the last node is detached and takes t's place, then moves up
 * or down to where it belongs.  t's links are cleared.
 */
void stl__heap_remove(stl_loop *loop, stl_timer *t)
{
    stl_timer *parent;
    stl_timer **last_link = stl__heap_link(loop, (unsigned long)(loop->ntimers - 1), &parent);
    stl_timer *last = *last_link;

    loop->ntimers--;
    *last_link = NULL;
    if (last != t) {
        *stl__link_to(loop, t) = last;
        last->up = t->up;
        memcpy(last->down, t->down, sizeof last->down);
        for (int j = 0; j < 4; j++)
            if (last->down[j])
                last->down[j]->up = last;
        stl__heap_adjust(loop, last);
    }
    t->up = NULL;
    memset(t->down, 0, sizeof t->down);
}

/* Restores the order after t's key (at, seq) changed. */
void stl__heap_adjust(stl_loop *loop, stl_timer *t)
{
    if (t->up && stl__before(t, t->up))
        stl__sift_up(loop, t);
    else
        stl__sift_down(loop, t);
}

/* Calls fn on every node, children before parents (fn may clear links). */
static void stl__heap_walk(stl_loop *loop, stl_timer *t, void (*fn)(stl_loop *, stl_timer *))
{
    if (!t)
        return;
    for (int j = 0; j < 4; j++)
        stl__heap_walk(loop, t->down[j], fn);
    fn(loop, t);
}

/* Calls fn on every timer and empties the heap (the loop is going away). */
void stl__heap_each(stl_loop *loop, void (*fn)(stl_loop *, stl_timer *))
{
    stl__heap_walk(loop, loop->heap, fn);
    loop->heap = NULL;
    loop->ntimers = 0;
}
