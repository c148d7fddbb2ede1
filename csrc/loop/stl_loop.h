/*
 * stl_loop.h -- the whole API of stolon's event loop (libev's model).
 *
 * A loop waits for events and calls the callbacks of "watchers": structs
 * that the caller owns and embeds wherever it likes.  Every watcher starts
 * with a stl_watcher header; the loop links watchers through nodes inside
 * them (lists, the pending queues), so starting, stopping and feeding a
 * watcher never allocates.  Two exceptions, both amortised and both
 * reported as -ENOMEM by the start that needed them: an io watcher on an fd
 * number higher than any the loop has seen grows the per-fd table, and a
 * timer start that makes the count of active timers exceed every earlier
 * high-water mark grows the timer heap's array (doubling).
 *
 * Rules (docs/loop.md says the rest):
 *   - A loop and its watchers belong to one thread at a time.  Only
 *     stl_async_send may be called from other threads (and from signal
 *     handlers).
 *   - Every function that can fail returns 0 or a negative errno value;
 *     nothing here reports through errno.
 *   - Callbacks may start, stop, feed and free any watcher (their own too),
 *     run the loop recursively and break it; they must not free the loop.
 *   - A watcher must be stopped before its memory is reused or freed; stop
 *     also forgets a pending event.  After stl_loop_free every watcher of
 *     the loop is inactive, not pending, and never touched again.
 *   - Fields marked "read" may be read at any time; "private" ones never.
 *
 * This file knows nothing of Python.
 */
#ifndef STL_LOOP_H
#define STL_LOOP_H

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct stl_loop stl_loop;
typedef struct stl_watcher stl_watcher;

/* Event bits, as passed to callbacks (libev's values). */
#define STL_READ     0x00001
#define STL_WRITE    0x00002
#define STL_TIMER    0x00100
#define STL_SIGNAL   0x00400
#define STL_CHILD    0x00800
#define STL_CUSTOM   0x01000 /* free for stl_feed_event users */
#define STL_IDLE     0x02000
#define STL_PREPARE  0x04000
#define STL_CHECK    0x08000
#define STL_FORK     0x20000
#define STL_ASYNC    0x80000
#define STL_ERROR    0x40000000 /* the fd was bad, or the child was not ours */

/* Priorities: higher runs first; default 0. */
#define STL_MINPRI (-2)
#define STL_MAXPRI 2

/* stl_loop_new flags: one backend (0: the best available), plus options. */
#define STL_BACKEND_EPOLL  0x01
#define STL_BACKEND_POLL   0x02
#define STL_BACKEND_KQUEUE 0x04
#define STL_BACKEND_MASK   0xff
#define STL_LOOP_PIDCHECK  0x100 /* also compare getpid() every iteration */

/* stl_loop_run modes. */
#define STL_RUN_DEFAULT 0 /* until nothing referenced is active, or a break */
#define STL_RUN_ONCE    1 /* one iteration; may block */
#define STL_RUN_NOWAIT  2 /* one iteration; never blocks */

/* stl_loop_break how. */
#define STL_BREAK_CANCEL 0 /* undo an earlier break */
#define STL_BREAK_ONE    1 /* the innermost stl_loop_run returns */
#define STL_BREAK_ALL    2 /* every nested stl_loop_run returns */

typedef void (*stl_cb)(stl_loop *loop, stl_watcher *w, int revents);
/* stl_loop_set_block_hook: entering 1 just before a poll that may block, 0 just after it. */
typedef void (*stl_block_cb)(stl_loop *loop, int entering);

/* Private: a link in one of the loop's doubly linked watcher lists. */
typedef struct stl__node {
    stl_watcher *next, *prev;
} stl__node;

/* The header of every watcher.  cb and data are the caller's (write any
 * time); active, pending and priority are "read". */
struct stl_watcher {
    stl_cb cb;              /* called as cb(loop, w, revents) */
    void *data;             /* the caller's */
    unsigned char active;   /* read: started and not stopped */
    unsigned char pending;  /* read: an event waits to be delivered */
    signed char priority;   /* read: STL_MINPRI..STL_MAXPRI */
    unsigned char flags;    /* private */
    int revents;            /* private: events gathered while pending */
    stl__node pend;         /* private: the pending queue */
    stl__node link;         /* private: the kind's list of active watchers */
};

typedef struct stl_io {
    stl_watcher w;
    int fd;                 /* read */
    int events;             /* read: STL_READ | STL_WRITE */
} stl_io;

typedef struct stl_timer {
    stl_watcher w;
    int64_t after;          /* private: ns, for the next start */
    int64_t repeat;         /* private: ns, 0 for a one-shot */
    int64_t at;             /* private: deadline on the loop clock (ns) */
    uint64_t seq;           /* private: start order, the tie-break */
    long hidx;              /* private: its slot in the loop's heap while active */
} stl_timer;

typedef struct stl_signal {
    stl_watcher w;
    int signum;             /* read */
} stl_signal;

typedef struct stl_child {
    stl_watcher w;
    pid_t pid;              /* read: the pid watched */
    int trace;              /* read: also report stops and continues */
    pid_t rpid;             /* read: the pid that changed state */
    int rstatus;            /* read: its status, as from waitpid */
} stl_child;

typedef struct stl_idle { stl_watcher w; } stl_idle;
typedef struct stl_prepare { stl_watcher w; } stl_prepare;
typedef struct stl_check { stl_watcher w; } stl_check;
typedef struct stl_fork { stl_watcher w; } stl_fork;

typedef struct stl_async {
    stl_watcher w;
    int sent;               /* private: set by stl_async_send (atomically) */
} stl_async;

/* ---- the loop ---- */

/* Creates a loop with the backend chosen by `flags` (0: the best one). */
int stl_loop_new(stl_loop **out, unsigned flags);
/* Frees the loop; its watchers become inactive and are never touched again. -EBUSY while it runs. */
int stl_loop_free(stl_loop *loop);
/* Runs iterations in `mode`; returns 1 if referenced watchers remain active, 0 if not, or -errno. */
int stl_loop_run(stl_loop *loop, int mode);
/* Asks stl_loop_run to return after the current iteration (STL_BREAK_*). */
void stl_loop_break(stl_loop *loop, int how);
/* The cached time (seconds on the monotonic clock), fixed during callbacks. */
double stl_loop_now(const stl_loop *loop);
/* The cached time in nanoseconds. */
int64_t stl_loop_now_ns(const stl_loop *loop);
/* Refreshes the cached time from the clock. */
void stl_loop_update_now(stl_loop *loop);
/* How many times the loop has polled the kernel. */
uint64_t stl_loop_iteration(const stl_loop *loop);
/* How many stl_loop_run calls are in progress on this loop. */
int stl_loop_depth(const stl_loop *loop);
/* How many active watchers are referenced (what keeps stl_loop_run going). */
long stl_loop_refcount(const stl_loop *loop);
/* How many watchers are pending. */
long stl_loop_pending_count(const stl_loop *loop);
/* The backend in use (STL_BACKEND_*). */
unsigned stl_loop_backend(const stl_loop *loop);
/* The backend's name: "epoll", "poll" or "kqueue". */
const char *stl_loop_backend_name(const stl_loop *loop);
/* The backend's own fd (the epoll or kqueue fd; it changes after a fork), or -1 for poll. */
int stl_loop_backend_fd(const stl_loop *loop);
/* 1 if a signal owned by this loop arrived and its watchers have not been fed yet. */
int stl_loop_sig_pending(const stl_loop *loop);
/* The fd is about to be closed: feeds every active io watcher on it its own events, and marks the
 * fd so that it is registered afresh (a reused number is a new file); the count fed, or -EBADF. */
int stl_loop_closing_fd(stl_loop *loop, int fd);
/* The STL_BACKEND_* bits this build supports. */
unsigned stl_loop_supported_backends(void);
/* Announces a fork: the next iteration (in the child) rebuilds kernel state. */
void stl_loop_fork(stl_loop *loop);
/* Calls the callbacks of every pending watcher now, highest priority first. */
void stl_loop_invoke_pending(stl_loop *loop);
/* Sets fn (or NULL) to be called around every poll with a non-zero timeout, never around one that cannot block. */
void stl_loop_set_block_hook(stl_loop *loop, stl_block_cb fn);
/* Stores a pointer for the embedding layer. */
void stl_loop_set_data(stl_loop *loop, void *data);
/* The pointer stored with stl_loop_set_data. */
void *stl_loop_get_data(const stl_loop *loop);

/* ---- every watcher ---- */

/* Makes `w` pending with `revents` (ORed in if it already is); it need not be active. */
void stl_feed_event(stl_loop *loop, stl_watcher *w, int revents);
/* Forgets a pending event; returns its revents, or 0. */
int stl_clear_pending(stl_loop *loop, stl_watcher *w);
/* Sets the priority; -EBUSY if active or pending, -EINVAL if out of range. */
int stl_set_priority(stl_watcher *w, int priority);
/* Makes `w` keep the loop running while active (the default). */
void stl_ref(stl_loop *loop, stl_watcher *w);
/* Makes `w` not keep the loop running. */
void stl_unref(stl_loop *loop, stl_watcher *w);
/* 1 if `w` is referenced. */
int stl_is_ref(const stl_watcher *w);

/* ---- io: readiness of an fd (level-triggered) ---- */

/* Initialises; -EBADF for fd < 0, -EINVAL for a mask outside READ|WRITE. */
int stl_io_init(stl_io *w, stl_cb cb, int fd, int events);
/* Sets fd and events of an inactive watcher (the fd may be a new file); errors as init, -EBUSY if active. */
int stl_io_set(stl_io *w, int fd, int events);
/* Changes the events only (same file); allowed while active. */
int stl_io_modify(stl_loop *loop, stl_io *w, int events);
/* Starts watching; -ENOMEM if the fd table cannot grow. */
int stl_io_start(stl_loop *loop, stl_io *w);
/* Stops watching. */
void stl_io_stop(stl_loop *loop, stl_io *w);

/* ---- timer: fires `after` seconds from the cached now, then every `repeat` ---- */

/* Initialises; -EINVAL for a negative or NaN after or repeat. */
int stl_timer_init(stl_timer *w, stl_cb cb, double after, double repeat);
/* Sets after and repeat of an inactive timer; -EBUSY if active. */
int stl_timer_set(stl_timer *w, double after, double repeat);
/* Sets repeat (used at the next expiry or again); allowed while active. */
int stl_timer_set_repeat(stl_timer *w, double repeat);
/* The repeat interval in seconds. */
double stl_timer_repeat(const stl_timer *w);
/* Starts the timer at now + after; -ENOMEM if the heap had to grow and could not (rare: see heap.c). */
int stl_timer_start(stl_loop *loop, stl_timer *w);
/* Stops the timer. */
void stl_timer_stop(stl_loop *loop, stl_timer *w);
/* Restarts a repeating timer at now + repeat (stops it if repeat is 0); clears pending; -ENOMEM as start. */
int stl_timer_again(stl_loop *loop, stl_timer *w);
/* The deadline (seconds, on stl_loop_now's clock) of an active timer; of the last start if inactive. */
double stl_timer_at(const stl_timer *w);
/* Seconds until it fires (active), or its `after` (inactive). */
double stl_timer_remaining(const stl_loop *loop, const stl_timer *w);

/* ---- signal: delivered in the loop, never in the handler ---- */

/* Initialises; -EINVAL for a signal that cannot be caught. */
int stl_signal_init(stl_signal *w, stl_cb cb, int signum);
/* Starts; -EBUSY if another loop owns the signal, or the sigaction error. */
int stl_signal_start(stl_loop *loop, stl_signal *w);
/* Stops; the last watcher of a signal restores the previous handler. */
void stl_signal_stop(stl_loop *loop, stl_signal *w);

/* ---- child: a child process changed state ---- */

/* Initialises for `pid` (> 0), -EINVAL otherwise; trace also reports stops and continues. */
int stl_child_init(stl_child *w, stl_cb cb, pid_t pid, int trace);
/* Starts; -EBUSY if another loop owns SIGCHLD. */
int stl_child_start(stl_loop *loop, stl_child *w);
/* Stops (done by the loop itself once the pid has terminated). */
void stl_child_stop(stl_loop *loop, stl_child *w);

/* ---- idle, prepare, check, fork ---- */

/* Initialises an idle watcher: runs when nothing of equal or higher priority is pending. */
void stl_idle_init(stl_idle *w, stl_cb cb);
/* Starts it (the loop does not block while any idle watcher is active). */
int stl_idle_start(stl_loop *loop, stl_idle *w);
/* Stops it. */
void stl_idle_stop(stl_loop *loop, stl_idle *w);
/* Initialises a prepare watcher: runs before the loop polls. */
void stl_prepare_init(stl_prepare *w, stl_cb cb);
/* Starts it. */
int stl_prepare_start(stl_loop *loop, stl_prepare *w);
/* Stops it. */
void stl_prepare_stop(stl_loop *loop, stl_prepare *w);
/* Initialises a check watcher: runs after the loop polled. */
void stl_check_init(stl_check *w, stl_cb cb);
/* Starts it. */
int stl_check_start(stl_loop *loop, stl_check *w);
/* Stops it. */
void stl_check_stop(stl_loop *loop, stl_check *w);
/* Initialises a fork watcher: runs in the child at the first iteration after a fork. */
void stl_fork_init(stl_fork *w, stl_cb cb);
/* Starts it. */
int stl_fork_start(stl_loop *loop, stl_fork *w);
/* Stops it. */
void stl_fork_stop(stl_loop *loop, stl_fork *w);

/* ---- async: a wake-up from another thread or a signal handler ---- */

/* Initialises an async watcher. */
void stl_async_init(stl_async *w, stl_cb cb);
/* Starts it (clears an earlier send). */
int stl_async_start(stl_loop *loop, stl_async *w);
/* Stops it. */
void stl_async_stop(stl_loop *loop, stl_async *w);
/* Thread- and async-signal-safe: the loop will call w's callback (sends coalesce). */
void stl_async_send(stl_loop *loop, stl_async *w);
/* 1 if sent and not yet delivered. */
int stl_async_pending(const stl_async *w);

#ifdef __cplusplus
}
#endif

#endif /* STL_LOOP_H */
