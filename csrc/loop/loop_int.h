/*
 * loop_int.h -- what the files of csrc/loop/ share and nobody else sees:
 * the loop struct, the backend table, the intrusive lists, the per-fd table.
 *
 * Invariants kept by every file:
 *   - w->active: the watcher is in exactly one container of its kind (a
 *     list through w->link, or the timer heap); refcount counts the active
 *     watchers without STL__W_UNREF.
 *   - w->pending: the watcher is in pending[its priority] through w->pend;
 *     npending counts them.  Active and pending are independent.
 *   - Nothing in the loop holds a pointer to a watcher across a callback:
 *     a callback may stop or free any watcher, its own included.
 */
#ifndef STL_LOOP_INT_H
#define STL_LOOP_INT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "stl_loop.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

/* All allocation goes through here, so that tests can count and fail it. */
#ifndef STL_LOOP_REALLOC
#define STL_LOOP_REALLOC realloc
#endif
#ifndef STL_LOOP_FREE
#define STL_LOOP_FREE free
#endif

#define STL__NPRI (STL_MAXPRI - STL_MINPRI + 1)
#define STL__PRI(w) ((w)->priority - STL_MINPRI)
#define STL__NSIG NSIG

#define STL__NS 1000000000LL

/* Watcher flags. */
#define STL__W_UNREF 0x01  /* not counted in loop->refcount */
#define STL__W_NEWFD 0x02  /* io: set since the last start; maybe a new file */
#define STL__W_HIT   0x04  /* child: status collected in this reaping pass */

/* Per-fd flags. */
#define STL__FD_QUEUED 0x01 /* on the change list */
#define STL__FD_NEWFD  0x02 /* re-register: the fd may name a new file */
#define STL__FD_EPERM  0x04 /* epoll refused it (a regular file): always ready */

/* Which backends this platform has. */
#if defined(__linux__)
#define STL__HAVE_EPOLL 1
#endif
#if !defined(__linux__) && defined(__has_include)
#if __has_include(<sys/event.h>)
#define STL__HAVE_KQUEUE 1
#endif
#endif

#define STL__W_CHILDERR 0x08 /* child: waitpid said the pid is not our child */

#define STL__LIKELY(x) __builtin_expect(!!(x), 1)
#define STL__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- intrusive lists (FIFO, O(1) removal) ---- */

typedef struct stl__list {
    stl_watcher *head, *tail;
    long count;
} stl__list;

#define STL__PEND offsetof(stl_watcher, pend)
#define STL__LINK offsetof(stl_watcher, link)

static inline stl__node *stl__node_of(stl_watcher *w, size_t off)
{
    return (stl__node *)((char *)w + off);
}

/* Appends w to l through the node at offset off. */
static inline void stl__list_append(stl__list *l, stl_watcher *w, size_t off)
{
    stl__node *n = stl__node_of(w, off);
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail)
        stl__node_of(l->tail, off)->next = w;
    else
        l->head = w;
    l->tail = w;
    l->count++;
}

/* Unlinks w, which is in l through the node at offset off. */
static inline void stl__list_remove(stl__list *l, stl_watcher *w, size_t off)
{
    stl__node *n = stl__node_of(w, off);
    if (n->prev)
        stl__node_of(n->prev, off)->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        stl__node_of(n->next, off)->prev = n->prev;
    else
        l->tail = n->prev;
    n->next = n->prev = NULL;
    l->count--;
}

/* ---- the timer heap's entries (heap.c) ---- */

/* The key is copied into the entry so that comparisons never leave the array. */
typedef struct stl__hent {
    int64_t at;          /* the timer's deadline (ns) */
    uint64_t seq;        /* its start order: the FIFO tie-break */
    stl_timer *w;
} stl__hent;

/* ---- the per-fd table ---- */

typedef struct stl__fd {
    stl__list watchers;  /* active io watchers on this fd, through link */
    int want;            /* events wanted, merged, as of the last reify */
    int kmask;           /* backend: what the kernel was told */
    uint32_t gen;        /* epoll: generation, in data.u64's upper half */
    int bidx;            /* backend: poll slot, or eperm slot; -1 none */
    int next_change;     /* the change list; -1 ends it */
    unsigned char flags; /* STL__FD_* */
} stl__fd;

/* ---- backends ---- */

typedef struct stl__backend {
    const char *name;
    unsigned id;                               /* STL_BACKEND_* */
    int (*init)(stl_loop *loop);               /* sets loop->bstate */
    void (*destroy)(stl_loop *loop);           /* never touches the kernel set */
    int (*modify)(stl_loop *loop, int fd);     /* push fds[fd].want (and NEWFD) */
    int (*poll)(stl_loop *loop, int64_t timeout_ns); /* -1: forever */
    int (*fork)(stl_loop *loop);               /* child: fresh kernel state */
} stl__backend;

extern const stl__backend stl__backend_epoll;
extern const stl__backend stl__backend_poll;
extern const stl__backend stl__backend_kqueue;

/* ---- the loop ---- */

struct stl_loop {
    const stl__backend *backend;
    void *bstate;
    int backend_fd;           /* the backend's kernel object (epoll, kqueue), or -1 */
    unsigned flags;
    void *data;

    stl_block_cb block_hook;  /* called around a poll that may block, or NULL */

    int64_t now;              /* cached monotonic time, ns */
    uint64_t iteration;
    int depth;
    int break_how;
    long refcount;            /* active, referenced watchers */
    long npending;
    stl__list pending[STL__NPRI];

    stl__fd *fds;             /* indexed by fd */
    int nfds;
    int changes;              /* first fd on the change list, or -1 */
    int rebuild;              /* the backend asked for a fresh kernel set */

    stl__hent *heap;          /* the timer heap (heap.c), heapcap slots */
    long ntimers, heapcap;
    uint64_t timer_seq;

    stl__list idles[STL__NPRI];
    long nidles;
    stl__list prepares, checks, forks, asyncs, children;
    stl__list sigs[STL__NSIG];
    int sigrefs[STL__NSIG];   /* users of each signal: watchers, + children for SIGCHLD */

    int wake_r, wake_w;       /* eventfd (both the same) or a pipe */
    stl_io wake_io;           /* internal, unreferenced */
    int sig_pending;          /* atomic: some owned signal arrived */
    int async_pending;        /* atomic: some async watcher was sent */

    pid_t pid;                /* getpid() when kernel state was made */
    unsigned fork_gen;        /* stl__fork_gen then */
    int postfork;             /* a fork was detected or announced */
};

/* ---- shared between files ---- */

/* loop.c */
int64_t stl__clock_ns(void);
void stl__activate(stl_loop *loop, stl_watcher *w);
void stl__deactivate(stl_loop *loop, stl_watcher *w);
void stl__queue_list(stl_loop *loop, stl__list *l, int revents);
void stl__list_release(stl__list *l);
void *stl__realloc(void *p, size_t n);
void stl__watcher_init(stl_watcher *w, stl_cb cb);

/* heap.c: the timer heap, ordered by (at, seq) */
int stl__heap_insert(stl_loop *loop, stl_timer *t); /* 0 or -ENOMEM (growth) */
void stl__heap_remove(stl_loop *loop, stl_timer *t);
void stl__heap_adjust(stl_loop *loop, stl_timer *t);
void stl__heap_each(stl_loop *loop, void (*fn)(stl_loop *, stl_timer *));

/* timer.c */
void stl__timers_due(stl_loop *loop);

/* io.c */
void stl__fd_reify(stl_loop *loop);
void stl__fd_event(stl_loop *loop, int fd, int revents);
void stl__fd_kill(stl_loop *loop, int fd);
void stl__fd_requeue_all(stl_loop *loop);
void stl__fd_change(stl_loop *loop, int fd, int flags);

/* idle.c */
void stl__idles_queue(stl_loop *loop);

/* wakeup.c */
int stl__wakeup_open(stl_loop *loop);
void stl__wakeup_close(stl_loop *loop);
int stl__wakeup_reopen(stl_loop *loop);
void stl__wakeup_write(stl_loop *loop);
void stl__wakeup_enter(void);
void stl__wakeup_leave(void);
void stl__wakeup_quiesce(void);
void stl__wakeup_atfork_child(void);

/* signal.c */
int stl__sig_acquire(stl_loop *loop, int signum);
void stl__sig_release(stl_loop *loop, int signum);
void stl__sig_raise(stl_loop *loop, int signum);
void stl__signals_dispatch(stl_loop *loop);
void stl__signals_disown(stl_loop *loop);
void stl__sig_atfork_prepare(void);
void stl__sig_atfork_parent(void);
void stl__sig_atfork_child(void);

/* child.c */
void stl__children_reap(stl_loop *loop);

/* async.c */
void stl__asyncs_dispatch(stl_loop *loop);

/* fork detection (loop.c) */
extern unsigned stl__fork_gen;

/* Atomics (GCC/Clang builtins; the header stays plain C). */
#define STL__XCHG(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define STL__LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STL__STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define STL__ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)

#endif /* STL_LOOP_INT_H */
