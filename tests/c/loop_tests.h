/*
 * loop_tests.h -- what the loop scenarios (tests/c/loop_scen_*.c) share:
 * the scenario table and its runners, failure recording, a callback that
 * records into an array, small fd and time helpers, and the counting
 * allocator that csrc/loop is built with in tests.  Internal to tests/c/.
 *
 * A scenario is `int fn(unsigned backend)`: it builds its loops with that
 * backend (STL_BACKEND_EPOLL or _POLL), returns 0 or the failure it
 * recorded.  Scenarios run one at a time, in a forked child with a timeout
 * (tl_run_isolated), so global state here is fine.
 */
#ifndef STL_LOOP_TESTS_H
#define STL_LOOP_TESTS_H

#include "stl_loop.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tl_result {
    int code;            /* 0: passed */
    long value;          /* a measured number, reported by pytest */
    char what[240];      /* the first failed check: expression, file, line */
} tl_result;

/* ---- the table (loop_harness.c) ---- */
int tl_count(void);
const char *tl_name(int i);
/* Runs scenario i in this process. */
int tl_run(int i, unsigned backend, tl_result *r);
/* Runs scenario i in a forked child killed after timeout_s seconds. */
int tl_run_isolated(int i, unsigned backend, unsigned timeout_s, tl_result *r);
/* Scales the scenarios that take a size (1: full size; valgrind uses less). */
void tl_set_scale(int divisor);
int tl_scale(int n);

/* ---- failures ---- */
int tl_fail(const char *expr, const char *file, int line);
int tl_failed(void);
void tl_set_value(long v);

/* Fails the scenario (in a function returning int) unless cond. */
#define TL_CHECK(cond)                                                  \
    do {                                                                \
        if (!(cond))                                                    \
            return tl_fail(#cond, __FILE__, __LINE__);                  \
    } while (0)
/* Records a failure without returning (for callbacks). */
#define TL_EXPECT(cond)                                                 \
    do {                                                                \
        if (!(cond))                                                    \
            tl_fail(#cond, __FILE__, __LINE__);                         \
    } while (0)

/* ---- the recorder ---- */
#define TL_LOG_MAX 65536
typedef struct tl_rec {
    long tag;            /* (long)w->data */
    int revents;
    uint64_t iteration;  /* stl_loop_iteration when called */
} tl_rec;
extern tl_rec tl_log[TL_LOG_MAX];
extern int tl_nlog;
void tl_log_reset(void);
/* A callback that appends (w->data, revents, iteration) to tl_log. */
void tl_record(stl_loop *loop, stl_watcher *w, int revents);
/* The tags recorded so far, as a string like "P W T C" (for messages). */
const char *tl_log_string(void);
/* 1 if the log's tags are exactly tags[0..n). */
int tl_log_is(const long *tags, int n);
/* How many records carry tag. */
int tl_log_count(long tag);

/* ---- helpers ---- */
stl_loop *tl_loop(unsigned backend);       /* aborts the scenario's process on failure */
int tl_socketpair(int sv[2]);              /* non-blocking AF_UNIX stream pair */
int64_t tl_now_ns(void);                   /* CLOCK_MONOTONIC */
void tl_sleep_ms(int ms);
int tl_nonblock(int fd);

/* ---- the counting allocator (csrc/loop is built with it) ---- */
void *tl_realloc(void *p, size_t n);
void tl_free(void *p);
void tl_alloc_reset(void);                 /* zero the count; no failures */
long tl_alloc_calls(void);
void tl_alloc_fail_from(long n);           /* the n-th call from now on (1: the next) fails; 0: none */

/* ---- the scenarios ---- */
#define TL_SCENARIOS(X)                                 \
    X(new_and_free)                                     \
    X(phase_order)                                      \
    X(priorities_fifo)                                  \
    X(idle_lockout)                                     \
    X(idle_keeps_loop_awake)                            \
    X(ref_unref_exit)                                   \
    X(break_modes)                                      \
    X(nested_run_depth)                                 \
    X(feed_and_clear)                                   \
    X(callback_frees_itself)                            \
    X(destroy_with_active_watchers)                     \
    X(prepare_check_pairs)                              \
    X(block_hook_only_when_blocking)                    \
    X(timer_fifo_ties)                                  \
    X(timer_never_early)                                \
    X(timer_zero_next_iteration)                        \
    X(timer_repeat_again_remaining)                     \
    X(timer_random_ops)                                 \
    X(timer_million_no_alloc)                           \
    X(timer_heap_enomem)                                \
    X(io_basic)                                         \
    X(io_many_per_fd)                                   \
    X(io_modify_active)                                 \
    X(io_fd_reuse_after_close)                          \
    X(io_closed_fd_alive_elsewhere)                     \
    X(io_dup_fds)                                       \
    X(io_regular_file)                                  \
    X(io_bad_fd_error)                                  \
    X(io_hangup)                                        \
    X(io_eintr)                                         \
    X(io_enomem_table)                                  \
    X(io_closing_fd)                                    \
    X(io_ten_thousand)                                  \
    X(signal_basic)                                     \
    X(signal_one_owner)                                 \
    X(signal_from_threads)                              \
    X(signal_loop_in_thread)                            \
    X(async_coalesce)                                   \
    X(async_threads_no_lost_wakeup)                     \
    X(async_from_signal_handler)                        \
    X(loops_in_threads)                                 \
    X(child_exit_status)                                \
    X(child_only_watched_reaped)                        \
    X(child_exited_before_start)                        \
    X(child_not_ours)                                   \
    X(child_trace)                                      \
    X(fork_child_keeps_working)                         \
    X(fork_parent_unaffected)                           \
    X(fork_signal_to_child)                             \
    X(fork_announced_and_pidcheck)                      \
    X(fork_while_signals_fly)

#define TL_DECLARE(name) int tl_##name(unsigned backend);
TL_SCENARIOS(TL_DECLARE)
#undef TL_DECLARE

#endif /* STL_LOOP_TESTS_H */
